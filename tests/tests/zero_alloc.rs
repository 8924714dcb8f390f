//! `Session::run` performs zero heap allocations: tokenization, inference and decoding, for every
//! task head and both precisions. A counting global allocator watches this thread.

use bertq_quantize::WeightPrecision;
use bertq_runtime::{Aggregation, Model, Precision, QaOptions, RunOptions, Session};
use bertq_tests::counting_alloc::{count_allocations, CountingAllocator};
use bertq_tests::random_bert::{write_hf_dir_with_head, RandomConfig, RandomHead};
use bertq_tests::{convert, default_model, minilm_dir};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Hugging Face's strategies and bertq's span modes (`pii`, `compat`: models with a PII
/// profile only).
const AGGREGATIONS: [Aggregation; 8] = Aggregation::ALL;

const TEXTS: &[&str] = &[
    "My name is Sarah Connor and my e-mail is sarah.connor@example.com.",
    "",
    "   ",
    "Call +1 (555) 010-9999 or visit https://example.org/a?b=c.",
    "Ça coûte 12,50 € à Zürich — naïve café résumé.",
    "中文字符和日本語のテキスト 🙂👍🏽 emoji",
    "[CLS] [MASK] literal special tokens [SEP]",
    "control\u{0}\u{7}chars\u{200b}and\u{feff}zero width",
    "SSN 123-45-6789, card 4111 1111 1111 1111 / 4111-1111-1111-1112, from 10.0.0.1, fe80::1 \
     or www.example.org/x?y=1), mail <a.b@example.co.uk>, phone (555) 867-5309.",
];

fn long_text() -> String {
    "The quick brown fox jumps over the lazy dog near 221B Baker Street. ".repeat(60)
}

fn assert_run_allocates_nothing(model: &Model<'_>, max_seq: usize) {
    for threads in [1, 2] {
        assert_session_allocates_nothing(model, max_seq, threads);
    }
}

fn assert_session_allocates_nothing(model: &Model<'_>, max_seq: usize, threads: usize) {
    let long = long_text();
    // The session's memory (and its worker threads) are allocated here, once.
    let mut session = Session::with_threads(model, max_seq, threads).unwrap();
    for precision in [Precision::Int8, Precision::F32] {
        session.set_precision(precision);
        session.run(TEXTS[0]).unwrap(); // warm-up (lazy statics, if any)
        let allocations = count_allocations(|| {
            for _ in 0..2 {
                for text in TEXTS.iter().copied().chain([long.as_str()]) {
                    for aggregation in AGGREGATIONS {
                        let pii = matches!(aggregation, Aggregation::Pii | Aggregation::Compat);
                        if pii && model.pii.is_none() {
                            continue;
                        }
                        for threshold in [None, Some(0.9)] {
                            let options = RunOptions {
                                aggregation,
                                threshold,
                                ..RunOptions::default()
                            };
                            let out = session.run_with(text, &options).unwrap();
                            std::hint::black_box(&out);
                        }
                    }
                }
            }
        });
        assert_eq!(
            allocations,
            0,
            "{} ({precision:?}, {threads} threads) allocated",
            model.name()
        );
    }
}

#[test]
fn run_never_allocates() {
    // The counter itself works.
    assert!(count_allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) >= 1);

    // Token classification: the shipped Rampart model (with its PII profile), long input
    // truncated.
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    assert!(model.pii.is_some());
    assert_run_allocates_nothing(&model, 128);

    // Sentence embeddings: MiniLM.
    let bytes = convert(&minilm_dir(), WeightPrecision::Int8);
    assert_run_allocates_nothing(&Model::load(&bytes).unwrap(), 256);

    // Sequence classification: a random miniature with a classifier head.
    let config = RandomConfig {
        num_hidden_layers: 2,
        hidden_size: 128,
        num_attention_heads: 2,
        intermediate_size: 512,
        vocab_size: 1000,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(
        dir.path(),
        &config,
        7,
        Some(RandomHead::SequenceClassification { labels: 5 }),
    );
    let bytes = convert(dir.path(), WeightPrecision::Int8);
    assert_run_allocates_nothing(&Model::load(&bytes).unwrap(), 64);

    // Mixed precision and static activations: f16 and f32 Linears among int8 ones, some of
    // the int8 ones with a calibrated input scale (the f32 GEMM and static quantization paths).
    let opts = bertq_quantize::ConvertOptions {
        keep_float: vec![
            "encoder.layer.0.attention.self.key".into(),
            "encoder.layer.1.output.dense".into(),
            "embeddings.word_embeddings".into(),
        ],
        float_dtype: bertq_quantize::FloatDType::F16,
        input_scales: [
            ("encoder.layer.0.attention.self.query".to_string(), 0.02f32),
            ("encoder.layer.1.intermediate.dense".to_string(), 0.03),
        ]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let mixed = bertq_quantize::convert_dir(dir.path(), &opts)
        .unwrap()
        .bytes;
    let bytes = bertq_runtime::ModelBytes::copy_from(&mixed);
    assert_run_allocates_nothing(&Model::load(&bytes).unwrap(), 64);

    // Pooled classification (what `train-head` writes): the miniature as an encoder, a head.
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(dir.path(), &config, 9, None);
    let input = bertq_quantize::load_input(dir.path()).unwrap();
    let (k, d) = (3, config.hidden_size);
    let head = bertq_quantize::train::LinearHead {
        weight: (0..k * d).map(|i| ((i % 13) as f32 - 6.0) * 0.1).collect(),
        bias: vec![0.1, -0.2, 0.05],
        d,
        k,
    };
    let labels = ["a".to_string(), "b".to_string(), "c".to_string()];
    let opts = bertq_quantize::ConvertOptions::default();
    let bytes = bertq_quantize::train::write_model(&input, &head, &labels, &opts).unwrap();
    let bytes = bertq_runtime::ModelBytes::copy_from(&bytes);
    assert_run_allocates_nothing(&Model::load(&bytes).unwrap(), 64);

    // Fill-mask: the same miniature as a masked LM (texts with and without masks, too many).
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(dir.path(), &config, 8, Some(RandomHead::MaskedLm));
    let bytes = convert(dir.path(), WeightPrecision::Int8);
    let model = Model::load(&bytes).unwrap();
    for threads in [1, 2] {
        assert_fill_mask_allocates_nothing(&model, 64, threads);
    }
}

fn assert_fill_mask_allocates_nothing(model: &Model<'_>, max_seq: usize, threads: usize) {
    let many = "tok5 [MASK] ".repeat(100);
    let texts: Vec<&str> = [
        "tok7 [MASK] tok9",
        "[MASK] [MASK] tok20 [MASK]",
        many.as_str(),
    ]
    .into_iter()
    .chain(TEXTS.iter().copied())
    .collect();
    let mut session = Session::with_threads(model, max_seq, threads).unwrap();
    for precision in [Precision::Int8, Precision::F32] {
        session.set_precision(precision);
        session.run(texts[0]).unwrap(); // warm-up
        let allocations = count_allocations(|| {
            for text in &texts {
                for top_k in [1, 5, 1000] {
                    let options = RunOptions {
                        top_k,
                        ..RunOptions::default()
                    };
                    // Texts without a mask, or with too many, are errors: they must not allocate.
                    let out = session.run_with(text, &options);
                    std::hint::black_box(&out);
                }
            }
        });
        assert_eq!(
            allocations, 0,
            "fill-mask ({precision:?}, {threads} threads) allocated"
        );
    }
}

/// Token classification with a stride: the whole long text in windows, entities merged, for
/// every strategy but `none` (which refuses a stride), and errors (too long, bad stride).
#[test]
fn windowed_token_classification_never_allocates() {
    let bytes = default_model();
    let model = Model::load(&bytes).unwrap();
    let long = "The quick brown fox jumps over the lazy dog near 221B Baker Street. ".repeat(12);
    let too_long = long.repeat(4);
    for threads in [1, 2] {
        let mut session = Session::with_input_limit(&model, 64, 512, threads).unwrap();
        for precision in [Precision::Int8, Precision::F32] {
            session.set_precision(precision);
            session.run(TEXTS[0]).unwrap(); // warm-up
            let allocations = count_allocations(|| {
                for text in TEXTS[..3]
                    .iter()
                    .copied()
                    .chain([long.as_str(), too_long.as_str()])
                {
                    for aggregation in [
                        Aggregation::None,
                        Aggregation::Simple,
                        Aggregation::Average,
                        Aggregation::Span,
                        Aggregation::Pii,
                        Aggregation::Compat,
                    ] {
                        for stride in [16, 62] {
                            let options = RunOptions {
                                aggregation,
                                stride: Some(stride),
                                ..RunOptions::default()
                            };
                            let out = session.run_with(text, &options);
                            std::hint::black_box(&out);
                        }
                    }
                }
            });
            assert_eq!(
                allocations, 0,
                "stride ({precision:?}, {threads} threads) allocated"
            );
        }
    }
}

/// Question answering: several windows, every option, and the typed errors.
#[test]
fn question_answering_never_allocates() {
    let config = RandomConfig {
        num_hidden_layers: 2,
        hidden_size: 64,
        num_attention_heads: 2,
        intermediate_size: 128,
        vocab_size: 1000,
        max_position_embeddings: 128,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir_with_head(dir.path(), &config, 9, Some(RandomHead::QuestionAnswering));
    let bytes = convert(dir.path(), WeightPrecision::Int8);
    let model = Model::load(&bytes).unwrap();
    let context = "tok7 tok8 tok9 tok10, tok11 tok12 Zürich café. ".repeat(30);
    let contexts = [context.as_str(), "tok5", "Ça coûte 12,50 € à Zürich", ""];
    for threads in [1, 2] {
        let mut session = Session::with_input_limit(&model, 64, 512, threads).unwrap();
        for precision in [Precision::Int8, Precision::F32] {
            session.set_precision(precision);
            let o = QaOptions::default();
            session.run_qa("tok5 tok6", contexts[1], &o).unwrap(); // warm-up
            let allocations = count_allocations(|| {
                for c in contexts {
                    for (top_k, stride, impossible) in
                        [(1, None, false), (3, Some(8), true), (32, Some(30), false)]
                    {
                        let options = QaOptions {
                            top_k,
                            doc_stride: stride,
                            max_answer_len: 15,
                            handle_impossible_answer: impossible,
                        };
                        let out = session.run_qa("tok5 tok6 Zürich?", c, &options);
                        std::hint::black_box(&out);
                    }
                }
            });
            assert_eq!(
                allocations, 0,
                "question answering ({precision:?}, {threads} threads) allocated"
            );
        }
    }
}
