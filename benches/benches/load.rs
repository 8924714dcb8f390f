//! Loading the shipped Rampart PII model: `Model::load` (checksum over the whole file, tensor
//! table and every tensor validated, zero-copy), and converting its encoder's int8 weights from
//! the file's K4N16 to K8N8 (`Model::repacked`: what `bertq` does at load on an i8mm core).
//!
//! `cargo bench -p bertq-benches --bench load`

use bertq_runtime::format::Layout;
use bertq_runtime::kernels::{self, Kernels};
use bertq_runtime::Model;
use bertq_tests::default_model;
use criterion::{criterion_group, criterion_main, Criterion};

fn load(c: &mut Criterion) {
    let bytes = default_model();
    let mut group = c.benchmark_group("load/rampart-pii");
    group.bench_function("Model::load", |b| {
        b.iter(|| std::hint::black_box(Model::load(&bytes).unwrap().name().len()))
    });
    let model = Model::load(&bytes).unwrap();
    // The i8mm table's plan, whatever this CPU is (the conversion is plain copies).
    let planner = Kernels {
        native_layout: Layout::K8N8,
        ..kernels::REFERENCE
    };
    let (_, len) = model.repack_plan(&planner).unwrap();
    let mut buf = vec![0i8; len];
    group.bench_function("Model::repacked to K8N8", |b| {
        b.iter(|| {
            let m = model.repacked(&planner, &mut buf).unwrap();
            std::hint::black_box(m.encoder.layers.len());
        })
    });
    group.finish();
}

criterion_group!(benches, load);
criterion_main!(benches);
