//! int8 GEMM throughput of every kernel table this CPU supports, for BERT's matrix shapes
//! (M tokens x K inputs -> N outputs), weights packed in each table's native layout, activation
//! quantization included (as the model runs it).
//!
//! `cargo bench -p bertq-benches --bench gemm`

use bertq_runtime::kernels::{self, pack, GemmI8, MatMut, PackedI8};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// (k, n) of MiniLM / BERT-base linear layers.
const SHAPES: [(usize, usize); 6] = [
    (384, 384),
    (384, 1536),
    (1536, 384),
    (768, 768),
    (768, 3072),
    (3072, 768),
];

fn gemm(c: &mut Criterion) {
    for name in kernels::ALL_NAMES {
        let Some(table) = kernels::by_name(name) else {
            continue;
        };
        let mut group = c.benchmark_group(format!("gemm_i8/{name}"));
        for m in [8usize, 128] {
            for (k, n) in SHAPES {
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7 % 61) as f32 - 30.0) * 0.1)
                    .collect();
                let w: Vec<i8> = (0..n * k).map(|i| (i * 13 % 255) as i8).collect();
                let layout = table.native_layout;
                let packed = pack::pack(layout, &w, n, k);
                let sums = pack::row_sums(&w, n, k);
                let (w_scales, bias) = (vec![0.02f32; n], vec![0.5f32; n]);
                let (mut q, mut s) = (vec![0i8; m * k], vec![0f32; m]);
                let mut out = vec![0f32; m * n];
                group.throughput(Throughput::Elements((m * n * k) as u64));
                group.bench_function(BenchmarkId::from_parameter(format!("{m}x{k}x{n}")), |b| {
                    b.iter(|| {
                        (table.quantize_rows)(&x, k, &mut q, &mut s, false);
                        let p = GemmI8 {
                            m,
                            a: &q,
                            a_scales: &s,
                            w: PackedI8 {
                                layout,
                                data: &packed,
                                scales: &w_scales,
                                row_sums: Some(&sums),
                                n,
                                k,
                            },
                            bias: Some(&bias),
                        };
                        (table.gemm_i8)(&p, &mut MatMut::new(&mut out, m, n));
                        std::hint::black_box(&out);
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = gemm
}
criterion_main!(benches);
