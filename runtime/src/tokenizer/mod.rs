//! BERT's tokenizer: special-token matching, `BertNormalizer`, `BertPreTokenizer`, WordPiece and
//! `[CLS] … [SEP]` post-processing, with ids AND offsets identical to Hugging Face
//! `BertTokenizerFast` (`add_special_tokens=True, return_offsets_mapping=True`).
//!
//! Encoding allocates nothing and never panics: the text is streamed through the normaliser one
//! character at a time, a word at most [`MAX_WORD_CHARS`] normalised characters long is kept in
//! a fixed scratch (longer words become `[UNK]` as in Hugging Face, whose limit is
//! `max_input_chars_per_word`), and tokens are written into the caller's buffer.
//!
//! What is reproduced, in Hugging Face's order:
//! 1. special tokens (`[PAD] [UNK] [CLS] [SEP] [MASK]`, their strings taken from the vocabulary)
//!    are matched on the raw text, leftmost-longest, even when glued to words (`foo[MASK]bar`),
//!    case-sensitively (`[mask]` is ordinary text). The text between them is processed
//!    separately.
//! 2. `clean_text` (delete controls/format/private-use chars, map whitespace to `' '`),
//!    `handle_chinese_chars` (CJK ideographs become words of their own), `strip_accents` (NFD
//!    with canonical reordering, then drop non-spacing marks), `lowercase`.
//! 3. split on whitespace, isolate punctuation.
//! 4. WordPiece, greedy longest-match-first with `##` continuations; a word that cannot be fully
//!    matched, or is longer than `max_input_chars_per_word` chars, is a single `[UNK]`.
//!
//! Offsets: every normalised character remembers the original character it came from, with
//! Hugging Face's alignment rules (inserted characters share the previous one's origin; NFD's
//! canonical reordering keeps alignments by position, not by character). A token spans from
//! the origin of its first character to the end of the origin of its last one.
//!
//! The character tables are those of the reference implementation, not of the toolchain or of
//! any single Unicode version: see `scripts/gen_unicode_tables.py`.

use core::fmt;
use core::str::Chars;

pub use crate::format::TokenizerSettings;

pub mod chars;
#[rustfmt::skip]
mod unicode_tables;
pub mod vocab;

#[cfg(feature = "std")]
pub use vocab::VocabTables;
pub use vocab::{Vocab, VocabError};

use vocab::{fnv1a, fnv1a_start, CONTINUATION_PREFIX};

/// `Token::word` of `[CLS]` and `[SEP]`.
pub const NO_WORD: u32 = u32::MAX;

/// The most normalised characters one word may keep for WordPiece; `max_input_chars_per_word`
/// may not exceed it (Hugging Face's default is 100).
pub const MAX_WORD_CHARS: usize = 256;

/// One token of an encoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Token {
    pub id: u32,
    /// Character offsets (Python `str` indices) into the original text, end exclusive.
    /// `(0, 0)` for `[CLS]`/`[SEP]`.
    pub start: u32,
    pub end: u32,
    /// The same span in UTF-8 bytes.
    pub byte_start: u32,
    pub byte_end: u32,
    /// Index of the pre-tokenized word it came from (0-based; a special token found in the text
    /// counts as a word), [`NO_WORD`] for `[CLS]`/`[SEP]`.
    pub word: u32,
}

// SAFETY: `Token` is `repr(C)` with six `u32` fields: no padding, every bit pattern valid.
unsafe impl bytemuck::Zeroable for Token {}
// SAFETY: as above.
unsafe impl bytemuck::Pod for Token {}

/// What [`Tokenizer::encode`] wrote.
/// How many content tokens of each side of a pair survive in `budget` slots, as `tokenizers`'
/// `longest_first` truncation decides: if the shorter side fits in half the budget it is kept
/// whole and the longer one gets the rest; otherwise the shorter gets `budget / 2` and the longer
/// the other half rounded up (on equal lengths the second side counts as the longer).
pub fn longest_first(a: usize, b: usize, budget: usize) -> (usize, usize) {
    if a + b <= budget {
        return (a, b);
    }
    let half = budget / 2;
    let second_is_long = b >= a;
    let short = if second_is_long { a } else { b };
    let (short, long) = if short <= half {
        (short, budget - short)
    } else {
        (half, budget - half)
    };
    if second_is_long {
        (short, long)
    } else {
        (long, short)
    }
}

/// The result of [`Tokenizer::encode_pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairEncoded {
    /// Tokens written, specials included.
    pub len: usize,
    /// `[CLS] a [SEP]`: the tokens of token type 0.
    pub first_len: usize,
    /// Tokens the whole pair needs.
    pub total: usize,
    pub truncated: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// Tokens written to the buffer, `[CLS]` and `[SEP]` included.
    pub len: usize,
    /// Tokens the whole text needs, `[CLS]` and `[SEP]` included.
    pub total: usize,
    /// `total > len`: only the first `len - 2` content tokens were kept.
    pub truncated: bool,
}

/// Why a tokenizer could not be built or a text not encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerError {
    /// The output buffer has room for fewer than the 2 tokens `[CLS] [SEP]`.
    BufferTooSmall { len: usize },
    /// A special token id of the settings is not in the vocabulary.
    SpecialTokenMissing(u32),
    /// `max_input_chars_per_word` exceeds [`MAX_WORD_CHARS`].
    WordLimitTooLarge(u32),
    /// The text is 4 GiB or longer: offsets would not fit in `u32`.
    TextTooLong(usize),
}

impl fmt::Display for TokenizerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TokenizerError::BufferTooSmall { len } => {
                write!(f, "token buffer of {len} cannot hold [CLS] and [SEP]")
            }
            TokenizerError::SpecialTokenMissing(id) => {
                write!(f, "special token id {id} is not in the vocabulary")
            }
            TokenizerError::WordLimitTooLarge(n) => write!(
                f,
                "max_input_chars_per_word {n} exceeds the supported {MAX_WORD_CHARS}"
            ),
            TokenizerError::TextTooLong(n) => write!(f, "text of {n} bytes is too long"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TokenizerError {}

/// A normalised character and the original character it came from (see
/// [`Tokenizer::for_each_pretokenized_char`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NormalizedChar {
    pub ch: char,
    /// Character offsets of the original character (`end == start + 1`).
    pub start: u32,
    pub end: u32,
    pub byte_start: u32,
    pub byte_end: u32,
}

/// The BERT WordPiece tokenizer over a borrowed vocabulary.
#[derive(Debug, Clone, Copy)]
pub struct Tokenizer<'a> {
    vocab: Vocab<'a>,
    settings: TokenizerSettings,
    /// (id, text) of the special tokens matched in raw text; empty strings never match.
    specials: [(u32, &'a str); 5],
}

impl<'a> Tokenizer<'a> {
    /// Checks that the special ids exist and that the word limit fits the scratch.
    pub fn new(vocab: Vocab<'a>, settings: TokenizerSettings) -> Result<Self, TokenizerError> {
        if settings.max_input_chars_per_word as usize > MAX_WORD_CHARS {
            return Err(TokenizerError::WordLimitTooLarge(
                settings.max_input_chars_per_word,
            ));
        }
        let ids = [
            settings.pad_id,
            settings.unk_id,
            settings.cls_id,
            settings.sep_id,
            settings.mask_id,
        ];
        let mut specials = [(0u32, ""); 5];
        for (slot, &id) in specials.iter_mut().zip(ids.iter()) {
            let text = vocab
                .token(id)
                .ok_or(TokenizerError::SpecialTokenMissing(id))?;
            *slot = (id, text);
        }
        Ok(Tokenizer {
            vocab,
            settings,
            specials,
        })
    }

    pub fn vocab(&self) -> &Vocab<'a> {
        &self.vocab
    }

    pub fn settings(&self) -> &TokenizerSettings {
        &self.settings
    }

    /// Encodes `[CLS] text [SEP]` into `out` (`out.len()` = the maximum sequence length).
    ///
    /// If the text needs more than `out.len()` tokens, the first `out.len() - 2` content tokens
    /// are kept, followed by `[SEP]` (Hugging Face's `truncation=True, max_length=out.len()`),
    /// and [`Encoded::total`] tells how many the whole text needed. Never allocates, never
    /// panics.
    pub fn encode(&self, text: &str, out: &mut [Token]) -> Result<Encoded, TokenizerError> {
        if out.len() < 2 {
            return Err(TokenizerError::BufferTooSmall { len: out.len() });
        }
        if text.len() >= u32::MAX as usize {
            return Err(TokenizerError::TextTooLong(text.len()));
        }
        let special = |id| Token {
            id,
            start: 0,
            end: 0,
            byte_start: 0,
            byte_end: 0,
            word: NO_WORD,
        };
        if let Some(first) = out.first_mut() {
            *first = special(self.settings.cls_id);
        }
        let mut sink = WordPiece::new(self, Output::new(out));
        let mut pos = 0usize;
        let mut char_index = 0u32;
        loop {
            let found = self.find_special(text, pos);
            let segment_end = found.map_or(text.len(), |(start, _, _)| start);
            let segment = text.get(pos..segment_end).unwrap_or("");
            self.normalize(segment, pos as u32, char_index, &mut |c, o| {
                pre_tokenize(&mut sink, c, o)
            });
            sink.end_word();
            char_index = char_index.wrapping_add(segment.chars().count() as u32);
            let Some((start, end, id)) = found else { break };
            let chars = text.get(start..end).map_or(0, |s| s.chars().count()) as u32;
            let word = sink.take_word_index();
            sink.out.push(Token {
                id,
                start: char_index,
                end: char_index.wrapping_add(chars),
                byte_start: start as u32,
                byte_end: end as u32,
                word,
            });
            char_index = char_index.wrapping_add(chars);
            pos = end;
        }
        let Output {
            buf,
            written,
            total,
        } = sink.out;
        if let Some(last) = buf.get_mut(written + 1) {
            *last = special(self.settings.sep_id);
        }
        Ok(Encoded {
            len: written + 2,
            total: total.saturating_add(2),
            truncated: total > written,
        })
    }

    /// Encodes a text pair as BERT expects it, `[CLS] a [SEP] b [SEP]` (token types 0 up to and
    /// including the first `[SEP]`, 1 after). When the pair does not fit `out`, the slots are
    /// shared as Hugging Face's `longest_first` truncation shares them ([`longest_first`]).
    /// Offsets of `b`'s tokens are relative to `b`, as Hugging Face reports them. An empty `b`
    /// encodes `a` alone. Never allocates.
    pub fn encode_pair(
        &self,
        a: &str,
        b: &str,
        out: &mut [Token],
    ) -> Result<PairEncoded, TokenizerError> {
        if b.is_empty() {
            // Like `BertTokenizerFast(a, "")`: an empty second text is no pair at all.
            let e = self.encode(a, out)?;
            return Ok(PairEncoded {
                len: e.len,
                first_len: e.len,
                total: e.total,
                truncated: e.truncated,
            });
        }
        if out.len() < 3 {
            return Err(TokenizerError::BufferTooSmall { len: out.len() });
        }
        // Content lengths of both sides (a 2-token buffer only counts).
        let a_total = self.encode(a, &mut out[..2])?.total - 2;
        let b_total = self.encode(b, &mut out[..2])?.total - 2;
        let (na, nb) = longest_first(a_total, b_total, out.len() - 3);
        self.encode(a, &mut out[..na + 2])?;
        // `b` lands right after `a`'s [SEP]; its own [CLS] overwrote that [SEP]: put it back.
        self.encode(b, &mut out[na + 1..na + nb + 3])?;
        out[na + 1] = Token {
            id: self.settings.sep_id,
            start: 0,
            end: 0,
            byte_start: 0,
            byte_end: 0,
            word: NO_WORD,
        };
        Ok(PairEncoded {
            len: na + nb + 3,
            first_len: na + 2,
            total: a_total + b_total + 3,
            truncated: na < a_total || nb < b_total,
        })
    }

    /// Runs the normaliser and the pre-tokenizer over the whole `text` (special tokens are NOT
    /// matched here) and calls `f(word, char)` for every normalised character of every word,
    /// words numbered from 0. For tests and debugging.
    pub fn for_each_pretokenized_char(&self, text: &str, f: impl FnMut(u32, NormalizedChar)) {
        struct Words<F> {
            f: F,
            word: u32,
            in_word: bool,
        }
        impl<F: FnMut(u32, NormalizedChar)> WordSink for Words<F> {
            fn push_char(&mut self, c: char, o: Origin) {
                self.in_word = true;
                (self.f)(
                    self.word,
                    NormalizedChar {
                        ch: c,
                        start: o.char_index,
                        end: o.char_index.wrapping_add(1),
                        byte_start: o.byte_index,
                        byte_end: o.byte_end(),
                    },
                );
            }
            fn end_word(&mut self) {
                if self.in_word {
                    self.word = self.word.wrapping_add(1);
                    self.in_word = false;
                }
            }
        }
        let mut words = Words {
            f,
            word: 0,
            in_word: false,
        };
        self.normalize(text, 0, 0, &mut |c, o| pre_tokenize(&mut words, c, o));
    }

    /// The leftmost (then longest) special token in `text[from..]`: (byte start, byte end, id).
    fn find_special(&self, text: &str, from: usize) -> Option<(usize, usize, u32)> {
        let bytes = text.as_bytes();
        let tail = bytes.get(from..)?;
        for (i, &b) in tail.iter().enumerate() {
            let mut best: Option<(usize, u32)> = None;
            for &(id, s) in &self.specials {
                let s = s.as_bytes();
                if s.first() == Some(&b)
                    && tail.get(i..).is_some_and(|t| t.starts_with(s))
                    && best.is_none_or(|(len, _)| s.len() > len)
                {
                    best = Some((s.len(), id));
                }
            }
            if let Some((len, id)) = best {
                let start = from + i;
                return Some((start, start + len, id));
            }
        }
        None
    }

    /// `BertNormalizer` over one segment, streaming `(char, origin)` to `sink`.
    fn normalize<F: FnMut(char, Origin)>(
        &self,
        segment: &str,
        byte_base: u32,
        char_base: u32,
        sink: &mut F,
    ) {
        let src = Cleaned {
            chars: segment.chars(),
            byte_index: byte_base,
            char_index: char_base,
            clean_text: self.settings.clean_text,
            chinese: self.settings.handle_chinese_chars,
            pending: Pending::None,
        };
        if self.settings.lowercase {
            let mut lower = |c: char, o: Origin| {
                let (a, b) = chars::lowercase(c);
                sink(a, o);
                if let Some(b) = b {
                    // An inserted char shares the origin of the one before it.
                    sink(b, o);
                }
            };
            self.accents(src, &mut lower);
        } else {
            self.accents(src, sink);
        }
    }

    fn accents<F: FnMut(char, Origin)>(&self, src: Cleaned<'_>, sink: &mut F) {
        if self.settings.strip_accents {
            strip_accents(src, sink);
        } else {
            for (c, o) in src {
                sink(c, o);
            }
        }
    }
}

/// The original character a normalised one comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Origin {
    char_index: u32,
    byte_index: u32,
    byte_len: u8,
}

impl Origin {
    fn byte_end(&self) -> u32 {
        self.byte_index.wrapping_add(u32::from(self.byte_len))
    }
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    /// A CJK char whose leading space was just returned.
    Char(char, Origin),
    /// The trailing space after a CJK char.
    Space(Origin),
}

/// The first two normaliser steps (`clean_text`, `handle_chinese_chars`): stateless per
/// character, so a copy of this iterator can replay any stretch of the text.
#[derive(Clone, Debug)]
struct Cleaned<'t> {
    chars: Chars<'t>,
    byte_index: u32,
    char_index: u32,
    clean_text: bool,
    chinese: bool,
    pending: Pending,
}

impl Iterator for Cleaned<'_> {
    type Item = (char, Origin);

    #[inline]
    fn next(&mut self) -> Option<(char, Origin)> {
        match self.pending {
            Pending::None => {}
            Pending::Char(c, o) => {
                self.pending = Pending::Space(o);
                return Some((c, o));
            }
            Pending::Space(o) => {
                self.pending = Pending::None;
                return Some((' ', o));
            }
        }
        loop {
            let c = self.chars.next()?;
            let len = c.len_utf8();
            let o = Origin {
                char_index: self.char_index,
                byte_index: self.byte_index,
                byte_len: len as u8,
            };
            self.char_index = self.char_index.wrapping_add(1);
            self.byte_index = self.byte_index.wrapping_add(len as u32);
            let mut c = c;
            if self.clean_text {
                if chars::is_removed_by_clean_text(c) {
                    continue;
                }
                if chars::is_whitespace(c) {
                    c = ' ';
                }
            }
            if self.chinese && chars::is_chinese(c) {
                // The spaces only separate words (they are dropped by the pre-tokenizer), so
                // their origin does not matter.
                self.pending = Pending::Char(c, o);
                return Some((' ', o));
            }
            return Some((c, o));
        }
    }
}

/// NFD (with canonical reordering) followed by dropping non-spacing marks, streaming.
///
/// Hugging Face decomposes every char, stable-sorts each run of non-starters by combining class,
/// and then aligns the result *by position*: the k-th char that starts a decomposition gets the
/// origin of the k-th input char, a char that continues a decomposition gets the origin of the
/// input char most recently used. Runs of non-starters can be arbitrarily long, so instead of
/// buffering them this replays the run from the source once per combining class present.
fn strip_accents<F: FnMut(char, Origin)>(mut src: Cleaned<'_>, sink: &mut F) {
    let mut emit = |c: char, o: Origin| {
        if !chars::is_nonspacing_mark(c) {
            sink(c, o);
        }
    };
    loop {
        let run_start = src.clone();
        let Some((c, o)) = src.next() else { return };
        let d = chars::decompose(c);
        let items = d.as_slice();
        // Leading starters go out in place (a continuation shares `o`, the last used origin).
        let mut skip = 0;
        while let Some(&x) = items.get(skip) {
            if chars::combining_class(x) != 0 {
                break;
            }
            emit(x, o);
            skip += 1;
        }
        if skip == items.len() {
            continue;
        }
        // A run of non-starters starts at items[skip]. Decompositions never put a starter after
        // a non-starter, so it goes on through every following char whose decomposition starts
        // with a non-starter.
        let mut stats = RunStats::default();
        for &x in items.get(skip..).unwrap_or(&[]) {
            stats.add(chars::combining_class(x));
        }
        let mut run_chars = 1usize;
        loop {
            let before = src.clone();
            let Some((c2, _)) = src.next() else { break };
            let d2 = chars::decompose(c2);
            match d2.as_slice().first() {
                Some(&x) if chars::combining_class(x) != 0 => {
                    for &y in d2.as_slice() {
                        stats.add(chars::combining_class(y));
                    }
                    run_chars += 1;
                }
                _ => {
                    src = before;
                    break;
                }
            }
        }
        let replay = |k: usize, c: char| {
            let d = chars::decompose(c);
            let from = if k == 0 { skip } else { 0 };
            (d, from)
        };
        if stats.sorted {
            // Already in canonical order: every char keeps its own origin.
            let mut it = run_start;
            for k in 0..run_chars {
                let Some((c, o)) = it.next() else { break };
                let (d, from) = replay(k, c);
                for &x in d.as_slice().iter().skip(from) {
                    emit(x, o);
                }
            }
            continue;
        }
        let mut aligner = run_start.clone();
        let mut last: Option<Origin> = None;
        if skip > 0 {
            // The first char's head was emitted before the run.
            last = aligner.next().map(|(_, o)| o);
        }
        let mut class = stats.min;
        loop {
            let mut next_class = u16::MAX;
            let mut it = run_start.clone();
            for k in 0..run_chars {
                let Some((c, o)) = it.next() else { break };
                let (d, from) = replay(k, c);
                for (i, &x) in d.as_slice().iter().enumerate().skip(from) {
                    let cc = chars::combining_class(x);
                    if cc == class {
                        if i == 0 {
                            last = aligner.next().map(|(_, o)| o);
                        }
                        emit(x, last.unwrap_or(o));
                    } else if cc > class && u16::from(cc) < next_class {
                        next_class = u16::from(cc);
                    }
                }
            }
            match u8::try_from(next_class) {
                Ok(next) => class = next,
                Err(_) => break,
            }
        }
    }
}

struct RunStats {
    min: u8,
    prev: u8,
    sorted: bool,
}

impl Default for RunStats {
    fn default() -> Self {
        RunStats {
            min: u8::MAX,
            prev: 0,
            sorted: true,
        }
    }
}

impl RunStats {
    fn add(&mut self, class: u8) {
        self.min = self.min.min(class);
        if class < self.prev {
            self.sorted = false;
        }
        self.prev = class;
    }
}

/// Receives the pre-tokenizer's words, one char at a time.
trait WordSink {
    fn push_char(&mut self, c: char, o: Origin);
    fn end_word(&mut self);
}

/// `BertPreTokenizer`: whitespace ends a word and is dropped, punctuation is a word of its own.
#[inline]
fn pre_tokenize<W: WordSink>(words: &mut W, c: char, o: Origin) {
    if chars::is_whitespace(c) {
        words.end_word();
    } else if chars::is_punctuation(c) {
        words.end_word();
        words.push_char(c, o);
        words.end_word();
    } else {
        words.push_char(c, o);
    }
}

/// The content part of the caller's buffer (between `[CLS]` and `[SEP]`).
struct Output<'o> {
    buf: &'o mut [Token],
    written: usize,
    total: usize,
}

impl<'o> Output<'o> {
    fn new(buf: &'o mut [Token]) -> Self {
        Output {
            buf,
            written: 0,
            total: 0,
        }
    }

    fn push(&mut self, token: Token) {
        if self.written + 2 < self.buf.len() {
            if let Some(slot) = self.buf.get_mut(self.written + 1) {
                *slot = token;
            }
            self.written += 1;
        }
        self.total = self.total.saturating_add(1);
    }
}

/// WordPiece over the words of the pre-tokenizer.
struct WordPiece<'t, 'o> {
    vocab: Vocab<'t>,
    unk_id: u32,
    limit: usize,
    word_index: u32,
    /// Normalised chars seen in the current word (may exceed what is stored).
    count: usize,
    first: Origin,
    last: Origin,
    /// Chars stored (`min(count, limit)`): origins, UTF-8 bytes and each char's byte end.
    stored: usize,
    origins: [Origin; MAX_WORD_CHARS],
    ends: [u16; MAX_WORD_CHARS],
    bytes: [u8; MAX_WORD_CHARS * 4],
    hashes: [u32; MAX_WORD_CHARS],
    /// Matched pieces of the current word: (id, end char).
    pieces: [(u32, u16); MAX_WORD_CHARS],
    out: Output<'o>,
}

impl<'t, 'o> WordPiece<'t, 'o> {
    fn new(tokenizer: &Tokenizer<'t>, out: Output<'o>) -> Self {
        WordPiece {
            vocab: tokenizer.vocab,
            unk_id: tokenizer.settings.unk_id,
            limit: (tokenizer.settings.max_input_chars_per_word as usize).min(MAX_WORD_CHARS),
            word_index: 0,
            count: 0,
            first: Origin::default(),
            last: Origin::default(),
            stored: 0,
            origins: [Origin::default(); MAX_WORD_CHARS],
            ends: [0; MAX_WORD_CHARS],
            bytes: [0; MAX_WORD_CHARS * 4],
            hashes: [0; MAX_WORD_CHARS],
            pieces: [(0, 0); MAX_WORD_CHARS],
            out,
        }
    }

    fn take_word_index(&mut self) -> u32 {
        let w = self.word_index;
        self.word_index = self.word_index.wrapping_add(1);
        w
    }

    fn span(&self, id: u32, first: Origin, last: Origin, word: u32) -> Token {
        Token {
            id,
            start: first.char_index,
            end: last.char_index.wrapping_add(1),
            byte_start: first.byte_index,
            byte_end: last.byte_end(),
            word,
        }
    }

    /// Greedy longest-match-first over the stored chars: the number of pieces, or `None` if
    /// some part of the word matches nothing.
    fn match_pieces(&mut self) -> Option<usize> {
        let n = self.stored;
        let mut start = 0usize;
        let mut count = 0usize;
        while start < n {
            let continuation = start > 0;
            let piece_start = match start.checked_sub(1) {
                Some(prev) => usize::from(*self.ends.get(prev)?),
                None => 0,
            };
            // Hash every candidate [start, end) in one pass.
            let mut hash = fnv1a_start();
            if continuation {
                hash = fnv1a(hash, CONTINUATION_PREFIX);
            }
            let mut prev_end = piece_start;
            for e in start..n {
                let end = usize::from(*self.ends.get(e)?);
                hash = fnv1a(hash, self.bytes.get(prev_end..end)?);
                *self.hashes.get_mut(e)? = hash;
                prev_end = end;
            }
            let mut found = None;
            for e in (start..n).rev() {
                let end = usize::from(*self.ends.get(e)?);
                let piece = self.bytes.get(piece_start..end)?;
                if let Some(id) = self.vocab.find(*self.hashes.get(e)?, continuation, piece) {
                    found = Some((id, e + 1));
                    break;
                }
            }
            let (id, end) = found?;
            *self.pieces.get_mut(count)? = (id, end as u16);
            count += 1;
            start = end;
        }
        Some(count)
    }
}

impl WordSink for WordPiece<'_, '_> {
    #[inline]
    fn push_char(&mut self, c: char, o: Origin) {
        if self.count == 0 {
            self.first = o;
        }
        self.last = o;
        self.count = self.count.saturating_add(1);
        if self.count > self.limit {
            return;
        }
        let start = match self.stored.checked_sub(1) {
            Some(prev) => self.ends.get(prev).map_or(0, |&e| usize::from(e)),
            None => 0,
        };
        let len = c.len_utf8();
        let (Some(dst), Some(end), Some(origin)) = (
            self.bytes.get_mut(start..start + len),
            self.ends.get_mut(self.stored),
            self.origins.get_mut(self.stored),
        ) else {
            return;
        };
        c.encode_utf8(dst);
        *end = (start + len) as u16;
        *origin = o;
        self.stored += 1;
    }

    fn end_word(&mut self) {
        if self.count == 0 {
            return;
        }
        let word = self.take_word_index();
        let too_long = self.count > self.limit;
        let pieces = if too_long { None } else { self.match_pieces() };
        match pieces {
            Some(n) => {
                let mut start = 0usize;
                for i in 0..n {
                    let Some(&(id, end)) = self.pieces.get(i) else {
                        break;
                    };
                    let end = usize::from(end);
                    let (Some(&first), Some(&last)) = (
                        self.origins.get(start),
                        end.checked_sub(1).and_then(|e| self.origins.get(e)),
                    ) else {
                        break;
                    };
                    let token = self.span(id, first, last, word);
                    self.out.push(token);
                    start = end;
                }
            }
            None => {
                let token = self.span(self.unk_id, self.first, self.last, word);
                self.out.push(token);
            }
        }
        self.count = 0;
        self.stored = 0;
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn settings() -> TokenizerSettings {
        TokenizerSettings {
            clean_text: true,
            handle_chinese_chars: true,
            strip_accents: true,
            lowercase: true,
            max_input_chars_per_word: 100,
            cls_id: 2,
            sep_id: 3,
            pad_id: 0,
            unk_id: 1,
            mask_id: 4,
            model_max_length: 512,
        }
    }

    const TOKENS: &[&str] = &[
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "un", "##aff", "##able",
        ",", "!", "cafe", "中", "a", "##a", "i", "##s", "e", "x", "[", "]", "mask",
    ];

    fn with_tokenizer(s: TokenizerSettings, f: impl FnOnce(&Tokenizer<'_>)) {
        let tables = VocabTables::build(TOKENS);
        let vocab = tables.vocab().unwrap();
        let tok = Tokenizer::new(vocab, s).unwrap();
        f(&tok)
    }

    fn encode(tok: &Tokenizer<'_>, text: &str, n: usize) -> (Encoded, Vec<Token>) {
        let mut buf = vec![Token::default(); n];
        let e = tok.encode(text, &mut buf).unwrap();
        buf.truncate(e.len);
        (e, buf)
    }

    fn ids(tokens: &[Token]) -> Vec<u32> {
        tokens.iter().map(|t| t.id).collect()
    }

    fn spans(tokens: &[Token]) -> Vec<(u32, u32)> {
        tokens.iter().map(|t| (t.start, t.end)).collect()
    }

    #[test]
    fn basic_words_and_offsets() {
        with_tokenizer(settings(), |tok| {
            let (e, t) = encode(tok, "Hello, unaffable WORLD!", 16);
            assert_eq!(
                e,
                Encoded {
                    len: 9,
                    total: 9,
                    truncated: false
                }
            );
            assert_eq!(ids(&t), [2, 5, 10, 7, 8, 9, 6, 11, 3]);
            assert_eq!(
                spans(&t),
                [
                    (0, 0),
                    (0, 5),
                    (5, 6),
                    (7, 9),
                    (9, 12),
                    (12, 16),
                    (17, 22),
                    (22, 23),
                    (0, 0)
                ]
            );
            assert_eq!(
                t.iter().map(|t| t.word).collect::<Vec<_>>(),
                [NO_WORD, 0, 1, 2, 2, 2, 3, 4, NO_WORD]
            );
        });
    }

    #[test]
    fn accents_offsets_are_chars_and_bytes() {
        with_tokenizer(settings(), |tok| {
            let (_, t) = encode(tok, "Caf\u{e9} cafe\u{301}", 8);
            assert_eq!(ids(&t), [2, 12, 12, 3]);
            // The dropped mark is not part of the token (Hugging Face does the same).
            assert_eq!(spans(&t)[1..3], [(0, 4), (5, 9)]);
            assert_eq!((t[1].byte_start, t[1].byte_end), (0, 5));
            assert_eq!((t[2].byte_start, t[2].byte_end), (6, 10));
        });
    }

    #[test]
    fn special_tokens_in_text() {
        with_tokenizer(settings(), |tok| {
            let (_, t) = encode(tok, "x[MASK]x [mask]", 16);
            assert_eq!(ids(&t), [2, 19, 4, 19, 20, 22, 21, 3]);
            assert_eq!(spans(&t)[1..4], [(0, 1), (1, 7), (7, 8)]);
            assert_eq!(t[2].word, 1);
        });
    }

    #[test]
    fn truncation() {
        with_tokenizer(settings(), |tok| {
            let (e, t) = encode(tok, "hello world hello world", 4);
            assert_eq!(
                e,
                Encoded {
                    len: 4,
                    total: 6,
                    truncated: true
                }
            );
            assert_eq!(ids(&t), [2, 5, 6, 3]);
            let (e, t) = encode(tok, "hello world", 2);
            assert_eq!(
                e,
                Encoded {
                    len: 2,
                    total: 4,
                    truncated: true
                }
            );
            assert_eq!(ids(&t), [2, 3]);
            let mut one = [Token::default(); 1];
            assert_eq!(
                tok.encode("x", &mut one),
                Err(TokenizerError::BufferTooSmall { len: 1 })
            );
        });
    }

    #[test]
    fn unknown_and_long_words() {
        let mut s = settings();
        s.max_input_chars_per_word = 3;
        with_tokenizer(s, |tok| {
            let (_, t) = encode(tok, "aaa aaaa xyz", 16);
            assert_eq!(ids(&t), [2, 14, 15, 15, 1, 1, 3]);
            assert_eq!(spans(&t)[4..6], [(4, 8), (9, 12)]);
        });
    }

    #[test]
    fn constructor_checks() {
        let tables = VocabTables::build(TOKENS);
        let vocab = tables.vocab().unwrap();
        let mut s = settings();
        s.mask_id = 999;
        assert_eq!(
            Tokenizer::new(vocab, s).unwrap_err(),
            TokenizerError::SpecialTokenMissing(999)
        );
        let mut s = settings();
        s.max_input_chars_per_word = MAX_WORD_CHARS as u32 + 1;
        assert!(matches!(
            Tokenizer::new(vocab, s),
            Err(TokenizerError::WordLimitTooLarge(_))
        ));
        s.max_input_chars_per_word = MAX_WORD_CHARS as u32;
        let tok = Tokenizer::new(vocab, s).unwrap();
        assert_eq!(
            tok.settings().max_input_chars_per_word,
            MAX_WORD_CHARS as u32
        );
        assert_eq!(tok.vocab().len(), TOKENS.len());
        assert!(format!("{}", TokenizerError::TextTooLong(5)).contains("too long"));
    }

    #[test]
    fn reordering_keeps_positional_alignment() {
        // Non-spacing marks vanish, so the alignment shows on a non-starter that is not Mn:
        // U+1D165 (Mc, class 216) after U+0301 (Mn, class 230). Checked against `tokenizers`.
        let mut s = settings();
        s.lowercase = false;
        with_tokenizer(s, |tok| {
            let mut got = Vec::new();
            tok.for_each_pretokenized_char("x\u{301}\u{1d165}y", |w, c| {
                got.push((w, c.ch, c.start))
            });
            // NFD sorts U+1D165 (216) before U+0301 (230); positionally it takes the origin
            // of the first mark (char 1).
            assert_eq!(got, [(0, 'x', 0), (0, '\u{1d165}', 1), (0, 'y', 3)]);
        });
    }

    #[test]
    fn never_panics_on_odd_input() {
        with_tokenizer(settings(), |tok| {
            let texts = [
                "",
                "\u{0}",
                "[MASK",
                "[MASK][MASK]",
                "\u{301}\u{301}\u{316}",
                "\u{10ffff}\u{e0000}",
                "\u{130}\u{130}",
                "中\u{301}",
            ];
            for text in texts {
                for n in [2, 3, 5, 64] {
                    let mut buf = vec![Token::default(); n];
                    let e = tok.encode(text, &mut buf).unwrap();
                    assert!(e.len <= n && e.len >= 2);
                }
            }
        });
    }
}
