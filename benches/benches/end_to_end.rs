//! End-to-end latency of `Session::run` (tokenize + encoder + head) on the shipped Rampart model,
//! batch 1, for inputs of about 8, 32 and 128 tokens.
//!
//! `cargo bench -p bertq-benches --bench end_to_end`

use bertq_runtime::{Model, ModelBytes, Session};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::path::Path;

fn text_of_tokens(model: &Model<'_>, tokens: usize) -> String {
    // Grow a realistic sentence until it tokenizes to exactly `tokens` (or just over).
    let base = "Please send the invoice to Maria Gonzalez at 42 Elm Street, Springfield, or call 555-0100. ";
    let mut buf = vec![Default::default(); 1024];
    let mut text = String::new();
    for word in base.repeat(64).split_inclusive(' ') {
        text.push_str(word);
        let n = model.tokenizer.encode(&text, &mut buf).unwrap().len;
        if n >= tokens {
            break;
        }
    }
    text
}

fn end_to_end(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/rampart-pii.bertq");
    let bytes = ModelBytes::map(&path).expect("models/rampart-pii.bertq");
    let model = Model::load(&bytes).unwrap();
    let mut group = c.benchmark_group("rampart_int8_run");
    for tokens in [8usize, 32, 128] {
        let text = text_of_tokens(&model, tokens);
        let mut session = Session::with_owned_memory(&model, 512).unwrap();
        group.bench_with_input(BenchmarkId::from_parameter(tokens), &text, |b, text| {
            b.iter(|| {
                let out = session.run(text).unwrap();
                std::hint::black_box(out.encoded.len);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
