//! The WordPiece tokenizer against Hugging Face `BertTokenizerFast`.
//!
//! Fixtures come from `scripts/gen_tokenizer_fixtures.py` (see its docstring); the vocabularies
//! are the real `vocab.txt` files of the model packages (`scripts/fetch_models.sh`).
use bertq_runtime::tokenizer::{
    Encoded, NormalizedChar, Token, Tokenizer, TokenizerSettings, VocabTables, NO_WORD,
};
use bertq_tests::{fixture, minilm_dir, rampart_dir};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Fixture {
    vocab: String,
    settings: TokenizerSettings,
    cases: Vec<Case>,
    truncation: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    input_ids: Vec<u32>,
    offsets: Vec<[u32; 2]>,
    tokens: Vec<String>,
    word_ids: Vec<Option<u32>>,
    #[serde(default)]
    max_length: Option<usize>,
    #[serde(default)]
    total: Option<usize>,
}

fn load_json<T: for<'de> Deserialize<'de>>(path: PathBuf) -> T {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/gen_tokenizer_fixtures.py)",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `vocab.txt` of a package, checked against the `tokenizer.json` Hugging Face actually loads.
fn vocab_tables(which: &str) -> VocabTables {
    let dir = match which {
        "minilm" => minilm_dir(),
        "rampart" => rampart_dir(),
        other => panic!("unknown vocabulary {other}"),
    };
    let text = std::fs::read_to_string(dir.join("vocab.txt")).expect("vocab.txt");
    let tables = VocabTables::from_vocab_txt(&text);
    let json: serde_json::Value = load_json(dir.join("tokenizer.json"));
    let map = json["model"]["vocab"]
        .as_object()
        .expect("tokenizer.json model.vocab");
    let vocab = tables.vocab().expect("valid vocabulary tables");
    assert_eq!(
        map.len(),
        vocab.len(),
        "{which}: vocab.txt and tokenizer.json sizes differ"
    );
    for (token, id) in map {
        let id = id.as_u64().unwrap() as u32;
        assert_eq!(vocab.token(id), Some(token.as_str()));
        assert_eq!(vocab.lookup(token), Some(id), "{which}: lookup {token:?}");
    }
    tables
}

/// Byte offset of every char index of `text` (plus the end).
fn char_to_byte(text: &str) -> Vec<usize> {
    let mut v: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    v.push(text.len());
    v
}

fn describe(tok: &Tokenizer<'_>, tokens: &[Token]) -> String {
    tokens
        .iter()
        .map(|t| {
            format!(
                "{}({}..{} w{})",
                tok.vocab().token(t.id).unwrap_or("?"),
                t.start,
                t.end,
                if t.word == NO_WORD { -1 } else { t.word as i64 }
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Compares one encoding with the fixture; returns a description of the differences.
fn check_case(tok: &Tokenizer<'_>, case: &Case, buffer: usize) -> Option<String> {
    let mut out = vec![Token::default(); buffer];
    let enc = match tok.encode(&case.text, &mut out) {
        Ok(e) => e,
        Err(e) => return Some(format!("encode failed: {e}")),
    };
    let got = &out[..enc.len.min(out.len())];
    let ids: Vec<u32> = got.iter().map(|t| t.id).collect();
    let offsets: Vec<[u32; 2]> = got.iter().map(|t| [t.start, t.end]).collect();
    let words: Vec<Option<u32>> = got
        .iter()
        .map(|t| {
            if t.word == NO_WORD {
                None
            } else {
                Some(t.word)
            }
        })
        .collect();
    let mut problems = Vec::new();
    if ids != case.input_ids {
        problems.push("ids differ");
    }
    if offsets != case.offsets {
        problems.push("offsets differ");
    }
    // Hugging Face numbers words only when asked; `[CLS]`/`[SEP]` are `None`.
    if words != case.word_ids {
        problems.push("word ids differ");
    }
    let expected_total = case.total.unwrap_or(case.input_ids.len());
    let expected = Encoded {
        len: case.input_ids.len(),
        total: expected_total,
        truncated: expected_total > case.input_ids.len(),
    };
    if enc != expected {
        problems.push("Encoded differs");
    }
    // Byte offsets must be the char offsets, in bytes.
    let map = char_to_byte(&case.text);
    for t in got {
        let bytes = if t.word == NO_WORD && t.start == 0 && t.end == 0 && t.byte_end == 0 {
            Some((0, 0))
        } else {
            map.get(t.start as usize)
                .zip(map.get(t.end as usize))
                .map(|(&a, &b)| (a, b))
        };
        if bytes != Some((t.byte_start as usize, t.byte_end as usize)) {
            problems.push("byte offsets inconsistent with char offsets");
            break;
        }
    }
    if problems.is_empty() {
        return None;
    }
    Some(format!(
        "{}\n  text:     {:?}\n  expected: {}\n            ids {:?} offsets {:?} words {:?} ({:?})\n  actual:   {}\n            ids {:?} offsets {:?} words {:?} ({:?})",
        problems.join(", "),
        case.text,
        case.tokens
            .iter()
            .zip(&case.offsets)
            .map(|(t, o)| format!("{t}({}..{})", o[0], o[1]))
            .collect::<Vec<_>>()
            .join(" "),
        case.input_ids,
        case.offsets,
        case.word_ids,
        expected,
        describe(tok, got),
        ids,
        offsets,
        words,
        enc,
    ))
}

fn run_fixture(name: &str) {
    let fx: Fixture = load_json(fixture(name));
    let tables = vocab_tables(&fx.vocab);
    let tok = Tokenizer::new(tables.vocab().unwrap(), fx.settings).expect("tokenizer");
    assert!(
        fx.cases.len() >= 160,
        "{name}: only {} cases",
        fx.cases.len()
    );
    let mut failures = Vec::new();
    for case in &fx.cases {
        for (i, t) in case.tokens.iter().enumerate() {
            assert_eq!(
                tok.vocab().token(case.input_ids[i]),
                Some(t.as_str()),
                "{name}"
            );
        }
        // Exactly the needed room, and plenty of room: both must give the full encoding.
        for buffer in [case.input_ids.len(), case.input_ids.len() + 17] {
            if let Some(problem) = check_case(&tok, case, buffer) {
                failures.push(format!("[buffer {buffer}] {problem}"));
                break;
            }
        }
    }
    for case in &fx.truncation {
        let n = case.max_length.expect("max_length");
        assert!(case.total.is_some());
        if let Some(problem) = check_case(&tok, case, n) {
            failures.push(format!("[truncation max_length={n}] {problem}"));
        }
    }
    if !failures.is_empty() {
        for f in failures.iter().take(25) {
            eprintln!("{name}: {f}\n");
        }
        panic!(
            "{name}: {} of {} cases differ from Hugging Face",
            failures.len(),
            fx.cases.len() + fx.truncation.len()
        );
    }
    eprintln!(
        "{name}: {} cases + {} truncation cases identical to Hugging Face",
        fx.cases.len(),
        fx.truncation.len()
    );
}

#[test]
fn minilm_matches_hugging_face() {
    run_fixture("tokenizer_minilm.json");
}

#[test]
fn rampart_matches_hugging_face() {
    run_fixture("tokenizer_rampart.json");
}

#[test]
fn cased_matches_hugging_face() {
    run_fixture("tokenizer_minilm_cased.json");
}

#[test]
fn strip_accents_without_lowercase_matches_hugging_face() {
    run_fixture("tokenizer_minilm_strip.json");
}

#[test]
fn lowercase_keeping_accents_matches_hugging_face() {
    run_fixture("tokenizer_minilm_lower_keep_accents.json");
}

#[derive(Deserialize)]
struct Sweep {
    chunk: u32,
    configs: Vec<SweepConfig>,
}

#[derive(Deserialize)]
struct SweepConfig {
    clean_text: bool,
    handle_chinese_chars: bool,
    strip_accents: bool,
    lowercase: bool,
    chunks: Vec<SweepChunk>,
}

#[derive(Deserialize)]
struct SweepChunk {
    start: u32,
    end: u32,
    words: usize,
    chars: usize,
    hash: String,
}

fn fnv64(hash: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *hash ^= u64::from(b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// Every code point through the normaliser and pre-tokenizer, under several configurations,
/// against hashes of what `tokenizers` produces (normalised chars, their origins, word breaks).
#[test]
fn every_code_point_normalizes_like_hugging_face() {
    let sweep: Sweep = load_json(fixture("tokenizer_unicode_sweep.json"));
    let tables = VocabTables::build(&["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]);
    let mut failures = Vec::new();
    let mut checked = 0usize;
    for config in &sweep.configs {
        let settings = TokenizerSettings {
            clean_text: config.clean_text,
            handle_chinese_chars: config.handle_chinese_chars,
            strip_accents: config.strip_accents,
            lowercase: config.lowercase,
            max_input_chars_per_word: 100,
            cls_id: 2,
            sep_id: 3,
            pad_id: 0,
            unk_id: 1,
            mask_id: 4,
            model_max_length: 512,
        };
        let tok = Tokenizer::new(tables.vocab().unwrap(), settings).unwrap();
        assert_eq!(config.chunks.len(), (0x11_0000 / sweep.chunk) as usize);
        for chunk in &config.chunks {
            let text: String = (chunk.start..chunk.end)
                .filter_map(char::from_u32)
                .collect();
            let mut hash = 0xCBF2_9CE4_8422_2325u64;
            let mut words = 0usize;
            let mut chars = 0usize;
            let mut current_word = None;
            tok.for_each_pretokenized_char(&text, |word, c: NormalizedChar| {
                if current_word != Some(word) {
                    current_word = Some(word);
                    words += 1;
                    fnv64(&mut hash, &0xFFFF_FFFFu32.to_le_bytes());
                }
                chars += 1;
                fnv64(&mut hash, &(c.ch as u32).to_le_bytes());
                fnv64(&mut hash, &c.start.to_le_bytes());
                fnv64(&mut hash, &c.end.to_le_bytes());
            });
            let got = format!("{hash:016x}");
            if got != chunk.hash || words != chunk.words || chars != chunk.chars {
                failures.push(format!(
                    "config clean={} chinese={} strip={} lower={}: U+{:04X}..U+{:04X}: \
                     expected {} words {} chars hash {}, got {} words {} chars hash {}",
                    config.clean_text,
                    config.handle_chinese_chars,
                    config.strip_accents,
                    config.lowercase,
                    chunk.start,
                    chunk.end,
                    chunk.words,
                    chunk.chars,
                    chunk.hash,
                    words,
                    chars,
                    got
                ));
            }
            checked += 1;
        }
    }
    if !failures.is_empty() {
        for f in failures.iter().take(40) {
            eprintln!("{f}");
        }
        panic!(
            "{} of {checked} code point chunks differ from Hugging Face",
            failures.len()
        );
    }
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SPICE: &[&str] = &[
    "[MASK]",
    "[CLS]",
    "[SEP]",
    "[UNK]",
    "[PAD]",
    "[MAS",
    "K]",
    "[",
    "##",
    "\u{301}",
    "\u{316}",
    "\u{334}",
    "\u{345}",
    "\u{1d165}",
    "\u{f73}",
    "\u{344}",
    "\u{130}",
    "\u{fb01}",
    "中",
    "한",
    "\u{ac00}",
    "\u{fffd}",
    "\u{200d}",
    "\u{0}",
    "\r\n",
    "\u{3000}",
    "😀",
    "👍🏽",
    "🇫🇷",
    "\u{e0067}",
];

fn random_text(rng: &mut Rng, max_len: u64) -> String {
    let len = rng.below(max_len + 1);
    let mode = rng.below(4);
    let mut s = String::new();
    for _ in 0..len {
        match (mode, rng.below(10)) {
            // Mostly ASCII words.
            (0, 0..=7) => {
                let c = b"abcdefghijklmnopqrstuvwxyz      .,!?ABCXYZ0123456789"
                    [rng.below(52) as usize] as char;
                s.push(c);
            }
            // Combining-mark soup.
            (1, 0..=6) => s.push(char::from_u32(0x300 + rng.below(0x70) as u32).unwrap()),
            // Fragments that matter: special tokens, marks, CJK, emoji, controls.
            (_, 8..=9) | (2, _) => s.push_str(SPICE[rng.below(SPICE.len() as u64) as usize]),
            // Any Unicode scalar value.
            _ => {
                if let Some(c) = char::from_u32(rng.below(0x11_0000) as u32) {
                    s.push(c);
                }
            }
        }
    }
    s
}

/// Garbage of every kind, into buffers of every size: no panic, consistent results, and a
/// truncated encoding is a prefix of the full one.
#[test]
fn random_text_never_panics_and_truncates_consistently() {
    let tables = vocab_tables("minilm");
    let fx: Fixture = load_json(fixture("tokenizer_minilm.json"));
    let mut cased = fx.settings;
    cased.lowercase = false;
    cased.strip_accents = true;
    cased.max_input_chars_per_word = 256;
    let mut raw = fx.settings;
    raw.clean_text = false;
    raw.handle_chinese_chars = false;
    raw.max_input_chars_per_word = 0;
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut big = vec![Token::default(); 4096];
    for settings in [fx.settings, cased, raw] {
        let tok = Tokenizer::new(tables.vocab().unwrap(), settings).unwrap();
        for round in 0..400 {
            let text = random_text(&mut rng, if round % 10 == 0 { 6000 } else { 200 });
            let full = tok.encode(&text, &mut big).unwrap();
            assert!(full.total >= 2 && full.len <= big.len());
            let full_tokens = big[..full.len].to_vec();
            assert_eq!(full_tokens[0].id, settings.cls_id);
            assert_eq!(full_tokens[full.len - 1].id, settings.sep_id);
            let n_chars = text.chars().count() as u32;
            for t in &full_tokens[1..full.len - 1] {
                assert!(t.start <= n_chars && t.end <= n_chars, "{text:?}");
                assert!(text.is_char_boundary(t.byte_start as usize));
                assert!(text.is_char_boundary(t.byte_end as usize));
            }
            for n in [2usize, 3, 7, 64] {
                let mut small = vec![Token::default(); n];
                let e = tok.encode(&text, &mut small).unwrap();
                assert_eq!(e.total, full.total, "{text:?}");
                assert_eq!(e.truncated, full.total > n);
                assert_eq!(e.len, full.total.min(n));
                if full.len == full.total {
                    assert_eq!(&small[..e.len - 1], &full_tokens[..e.len - 1], "{text:?}");
                }
                assert_eq!(small[e.len - 1].id, settings.sep_id);
            }
        }
    }
}
