//! Issue 13: what an adversarial probe found in the runtime and the quantizer, each a regression
//! test that failed before its fix (D1 one token type, D2 sizes trusted from the header, D7 the
//! stride underflow, D8 non-finite weights and the QA self-check, D9 escapes in names), plus
//! the generator of the fuzzers' seed corpora (`--ignored`).

use bertq_quantize::{ConvertOptions, QuantizeError, WeightPrecision};
use bertq_runtime::format::{LoadError, PREAMBLE_LEN};
use bertq_runtime::session::{MemorySizes, SessionError, MAX_SESSION_BYTES};
use bertq_runtime::{Model, ModelBytes, QaOptions, RunError, RunOptions, Session};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{bertq_binary, convert};
use std::path::Path;
use std::process::Command;

fn config(type_vocab_size: usize, positions: usize) -> RandomConfig {
    RandomConfig {
        num_hidden_layers: 1,
        hidden_size: 32,
        num_attention_heads: 2,
        intermediate_size: 64,
        vocab_size: 200,
        max_position_embeddings: positions,
        type_vocab_size,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    }
}

fn model_bytes(c: &RandomConfig, head: RandomHead) -> ModelBytes {
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(dir.path(), c, 7, Some(head));
    convert(dir.path(), WeightPrecision::Int8)
}

fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

/// transformers' `BertEmbeddings` with `type_vocab_size=1` raises an IndexError on token type
/// 1 (a pair, a question): here a typed error, from the library, `bertq run` and `bertq serve`.
#[test]
fn d1_one_token_type_is_a_typed_error_for_pairs_and_questions() {
    let c = config(1, 64);
    let pair_model = model_bytes(&c, RandomHead::SequenceClassification { labels: 2 });
    let qa_model = model_bytes(&c, RandomHead::QuestionAnswering);
    let want = RunError::TokenTypes {
        needed: 2,
        available: 1,
    };

    let m = Model::load(&pair_model).unwrap();
    let mut s = Session::with_owned_memory(&m, 32).unwrap();
    s.run("tok1 tok2").unwrap(); // one text: type 0 only, fine
    let e = s
        .run_pair("tok1", "tok2", &RunOptions::default())
        .unwrap_err();
    assert_eq!(e, want);

    let m = Model::load(&qa_model).unwrap();
    let mut s = Session::with_input_limit(&m, 32, 64, 1).unwrap();
    let e = s
        .run_qa("tok1", "tok2 tok3", &QaOptions::default())
        .unwrap_err();
    assert_eq!(e, want);

    // The command line: exit 1 with the error (before: a panic, exit 101).
    let dir = tempfile::tempdir().unwrap();
    let pair = write_model(dir.path(), "pair.bertq", &pair_model);
    let qa = write_model(dir.path(), "qa.bertq", &qa_model);
    let out = Command::new(bertq_binary())
        .args(["run", "--model", &pair, "--pair", "tok2", "tok1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token types"));
    let out = Command::new(bertq_binary())
        .args([
            "run",
            "--model",
            &qa,
            "--question",
            "tok1",
            "--context",
            "tok2",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // The server refuses the model at start, before creating its socket (before: a panic in
    // warm-up that left the socket file behind).
    let sock = dir.path().join("s.sock");
    let out = Command::new(bertq_binary())
        .args(["serve", "--model", &qa, "--unix", sock.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token type"));
    assert!(!sock.exists());
}

/// Rewrites the file length and checksum after an edit.
fn fix_checksum(bytes: &mut [u8]) {
    let len = bytes.len() as u64;
    bytes[16..24].copy_from_slice(&len.to_le_bytes());
    let crc = crc32fast::hash(&bytes[PREAMBLE_LEN..]);
    bytes[24..28].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn d2_sizes_in_the_header_are_bounded_and_session_memory_is_checked() {
    // A CRC-valid file claiming 65,536 positions (a real table of that many rows): a session
    // at full length would need 65536^2 f32 attention scores (16 GiB) per head buffer.
    let c = RandomConfig {
        hidden_size: 8,
        intermediate_size: 16,
        ..config(2, 65536)
    };
    let bytes = model_bytes(&c, RandomHead::TokenClassification { labels: 3 });
    assert!(matches!(
        Model::load(&bytes).unwrap_err(),
        LoadError::InvalidConfig(_)
    ));

    // Sizes a caller asks for are computed in checked arithmetic and capped.
    let bytes = model_bytes(
        &config(2, 64),
        RandomHead::TokenClassification { labels: 3 },
    );
    let m = Model::load(&bytes).unwrap();
    for (max_input, threads) in [(usize::MAX / 2, 1), (62, usize::MAX / 4), (1 << 40, 1)] {
        let e = MemorySizes::checked(&m, 64, max_input, threads).unwrap_err();
        assert!(matches!(e, SessionError::TooLarge { .. }), "{e:?}");
        let e = Session::with_input_limit(&m, 64, max_input, threads).unwrap_err();
        assert!(matches!(e, SessionError::TooLarge { .. }), "{e:?}");
    }
    let ok = MemorySizes::checked(&m, 64, 1000, 2).unwrap();
    assert!(ok.bytes() < MAX_SESSION_BYTES);
    assert_eq!(ok, MemorySizes::for_model_input(&m, 64, 1000, 2));

    // The position count edited in a valid file (and the CRC recomputed): refused at load.
    let mut edited = bytes.to_vec();
    let header = &edited[PREAMBLE_LEN..];
    // max_position_embeddings = 64 is the varint 0x40 after the name/source strings; find the
    // config's [layers, hidden, heads, inter, vocab(2 bytes), positions] run and raise it.
    let pattern = [1u8, 32, 2, 64, 0xc8, 0x01, 64];
    let at = header
        .windows(pattern.len())
        .position(|w| w == pattern)
        .expect("the config in the header")
        + PREAMBLE_LEN
        + 6;
    // 65536 needs a 3-byte varint: the header length changes, so this stays a typed error
    // whatever it hits (the point: no panic, no huge allocation).
    edited.splice(at..at + 1, [0x80, 0x80, 0x04]);
    fix_checksum(&mut edited);
    let aligned = ModelBytes::copy_from(&edited);
    assert!(Model::load(&aligned).is_err());
}

#[test]
fn d7_windows_with_no_room_for_text_are_an_error() {
    let bytes = model_bytes(
        &config(2, 64),
        RandomHead::TokenClassification { labels: 3 },
    );
    let m = Model::load(&bytes).unwrap();
    let mut s = Session::with_input_limit(&m, 2, 100, 1).unwrap();
    for stride in [0, 1] {
        let o = RunOptions {
            stride: Some(stride),
            ..RunOptions::default()
        };
        let e = s.run_with("tok1 tok2 tok3", &o).unwrap_err();
        assert_eq!(e, RunError::WindowTooSmall { max_seq: 2 });
        assert!(!e.to_string().contains("18446744073709551615"));
    }
}

#[test]
fn d8_non_finite_weights_are_refused_naming_the_tensor() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let dir = tempfile::tempdir().unwrap();
        write_hf_dir_with_head(
            dir.path(),
            &config(2, 64),
            7,
            Some(RandomHead::TokenClassification { labels: 3 }),
        );
        let path = dir.path().join("model.safetensors");
        let data = std::fs::read(&path).unwrap();
        let st = safetensors::SafeTensors::deserialize(&data).unwrap();
        let victim = "bert.encoder.layer.0.attention.self.query.weight";
        let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = st
            .tensors()
            .into_iter()
            .map(|(n, v)| (n, v.data().to_vec(), v.shape().to_vec()))
            .collect();
        let t = tensors.iter_mut().find(|t| t.0 == victim).unwrap();
        t.1[40..44].copy_from_slice(&bad.to_le_bytes()); // element 10
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
            .iter()
            .map(|(n, d, s)| {
                let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d)
                    .unwrap();
                (n.clone(), v)
            })
            .collect();
        std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();
        let e = bertq_quantize::convert_dir(dir.path(), &ConvertOptions::default()).unwrap_err();
        match &e {
            QuantizeError::NonFinite { name, index, .. } => {
                assert_eq!(name, "encoder.layer.0.attention.self.query.weight");
                assert_eq!(*index, 10);
            }
            other => panic!("{other}"),
        }
        assert!(e.to_string().contains("query.weight"), "{e}");
    }
}

#[test]
fn d8_a_question_answering_model_with_64_positions_gets_its_self_check() {
    // The self-check ran the question and the context concatenated as one sequence of
    // `[CLS] q [SEP] [CLS] c [SEP]` ids: longer than 64 positions on the sample texts, an
    // error after the file was written (exit 1). Now the first window, with token types.
    let bytes = model_bytes(&config(2, 64), RandomHead::QuestionAnswering);
    let m = Model::load(&bytes).unwrap();
    let r =
        bertq_quantize::check::compare_precisions(&m, bertq_quantize::check::SAMPLE_TEXTS).unwrap();
    assert_eq!(r.texts, bertq_quantize::check::SAMPLE_TEXTS.len());
    assert!(r.min_cosine > 0.9, "{r:?}");
}

#[test]
fn d9_names_with_terminal_escapes_are_printed_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let hf = dir.path().join("hf");
    write_hf_dir_with_head(
        &hf,
        &config(2, 64),
        7,
        Some(RandomHead::TokenClassification { labels: 3 }),
    );
    let evil = "evil\u{1b}[2J\u{1b}]0;pwned\u{7}\u{9b}31m";
    let opts = ConvertOptions {
        name: Some(evil.to_string()),
        ..ConvertOptions::default()
    };
    let converted = bertq_quantize::convert_dir(&hf, &opts).unwrap();
    let model = write_model(dir.path(), "evil.bertq", &converted.bytes);
    let out = Command::new(bertq_binary())
        .args(["info", "--model", &model])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}'));
    assert!(text.contains("evil\\u{1b}[2J"), "{text}");
    // The server's log line.
    let sock = dir.path().join("s.sock");
    let mut child = Command::new(bertq_binary())
        .args(["serve", "--model", &model, "--unix", sock.to_str().unwrap()])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(stderr);
    while !line.contains("serving") {
        line.clear();
        assert!(r.read_line(&mut line).unwrap() > 0, "server exited");
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(!line.contains('\u{1b}'), "{line:?}");
    assert!(line.contains("evil\\u{1b}"), "{line}");
}

/// Writes the committed seed corpora of the fuzz targets (`fuzz/corpus/*`): tiny models of
/// every task (with the loader target's mode byte), frames and JSON lines, texts. Run with
/// `cargo test --release -p bertq-tests --test robustness -- --ignored write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let root = bertq_tests::workspace_root().join("fuzz/corpus");
    let seed = |target: &str, name: &str, bytes: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let tiny = RandomConfig {
        num_hidden_layers: 1,
        hidden_size: 8,
        num_attention_heads: 2,
        intermediate_size: 16,
        vocab_size: 40,
        max_position_embeddings: 16,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let heads = [
        ("ner", RandomHead::TokenClassification { labels: 3 }),
        ("cls", RandomHead::SequenceClassification { labels: 2 }),
        ("qa", RandomHead::QuestionAnswering),
        ("mlm", RandomHead::MaskedLm),
    ];
    for (name, head) in heads {
        for (suffix, precision) in [("i8", WeightPrecision::Int8), ("f32", WeightPrecision::F32)] {
            let dir = tempfile::tempdir().unwrap();
            write_hf_dir_with_head(dir.path(), &tiny, 3, Some(head));
            let bytes = convert(dir.path(), precision);
            let mut with_mode = vec![1u8];
            with_mode.extend_from_slice(&bytes);
            seed("model_load", &format!("{name}-{suffix}"), &with_mode);
        }
    }
    // The quantizer target's base directory (fuzz/quantize/base) and one seed per file kind
    // (the first byte picks the file the fuzzer replaces).
    let base = bertq_tests::workspace_root().join("fuzz/quantize/base");
    write_hf_dir_with_head(
        &base,
        &tiny,
        3,
        Some(RandomHead::TokenClassification { labels: 3 }),
    );
    let qseeds = bertq_tests::workspace_root().join("fuzz/quantize/corpus/quantize_input");
    std::fs::create_dir_all(&qseeds).unwrap();
    for (k, file) in [
        (0u8, "config.json"),
        (1, "vocab.txt"),
        (2, "model.safetensors"),
    ] {
        let mut b = vec![k];
        b.extend(std::fs::read(base.join(file)).unwrap());
        std::fs::write(qseeds.join(file), b).unwrap();
    }
    let mut onnx = vec![4u8];
    onnx.extend(std::fs::read(bertq_tests::fixture("onnx/token_q4.onnx")).unwrap());
    std::fs::write(qseeds.join("model.onnx"), onnx).unwrap();

    use bertq_protocol::{encode_frame, InferOptions, InferRequest, Request, RequestBody};
    let mut frames = Vec::new();
    for (i, body) in [
        RequestBody::Infer(InferRequest {
            text: "Hi, I'm Maria",
            options: InferOptions::default(),
        }),
        RequestBody::Health,
        RequestBody::Auth("0123456789abcdef"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut buf = [0u8; 256];
        let n = encode_frame(
            &Request {
                id: i as u32 + 1,
                body,
            },
            &mut buf,
        )
        .unwrap();
        frames.extend_from_slice(&buf[..n]);
    }
    let lines = b"{\"id\": 1, \"text\": \"Call Maria at 555-0100\"}\n\
{\"id\": \"q\", \"question\": \"Who?\", \"context\": \"Maria \\u00e9\", \"top_k\": 2}\n\
{\"type\": \"auth\", \"token\": \"0123456789abcdef\"}\n\x01junk\n";
    let mut mixed = vec![7u8]; // the knob byte: chunks of 8
    mixed.extend_from_slice(&frames);
    mixed.extend_from_slice(lines);
    seed("frame", "mixed", &mixed);
    for (i, l) in lines.split(|&b| b == b'\n').enumerate() {
        if !l.is_empty() {
            seed("jsonl", &format!("line{i}"), l);
        }
    }
    seed(
        "jsonl",
        "options",
        br#"{"id":-2.5e3,"text":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","aggregation_strategy":"max","truncate":false,"stride":16,"top_k":null,"x":[{"y":null}]}"#,
    );
    for (i, t) in [
        "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.",
        "Zoë Ångström lives in Zürich. 日本語のテキスト. [MASK] [CLS]x[SEP]",
        "\u{0}\u{1b}[2J\t\r\n combining e\u{301} and ﬁ ligature 🙂🙂",
    ]
    .iter()
    .enumerate()
    {
        seed("tokenizer", &format!("text{i}"), t.as_bytes());
    }
}
