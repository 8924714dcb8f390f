
/// `gemm_f32` with f32 and f16 weights on every table (the x86 FMA + F16C kernel, the portable
/// code) against a naive f64 product, over shapes that exercise every tail (m odd, n % 4, k % 8).
#[test]
fn float_gemm_matches_a_naive_product_on_every_table() {
    let mut rng = Lcg(77);
    for table in kernels::ALL_NAMES.iter().filter_map(|n| kernels::by_name(n)) {
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (2, 4, 8), (5, 9, 17), (8, 33, 384), (7, 6, 1536)] {
            let a: Vec<f32> = (0..m * k).map(|_| rng.f32()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rng.f32()).collect();
            let h: Vec<u16> = w.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
            let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            for (weights, wv) in [
                (Weights::F32(&w), w.clone()),
                (
                    Weights::F16(&h),
                    h.iter().map(|&b| half::f16::from_bits(b).to_f32()).collect(),
                ),
            ] {
                let p = kernels::GemmF32 {
                    m,
                    n,
                    k,
                    a: &a,
                    w: weights,
                    bias: Some(&bias),
                };
                let mut out = vec![f32::NAN; m * n];
                (table.gemm_f32)(&p, &mut out);
                for i in 0..m {
                    for j in 0..n {
                        let (mut s, mut mag) = (bias[j] as f64, bias[j].abs() as f64);
                        for c in 0..k {
                            let t = a[i * k + c] as f64 * wv[j * k + c] as f64;
                            s += t;
                            mag += t.abs();
                        }
                        let got = out[i * n + j] as f64;
                        assert!(
                            (got - s).abs() <= 1e-6 * mag + 1e-7,
                            "{} {m}x{n}x{k} ({i},{j}): {got} vs {s}",
                            table.name
                        );
                    }
                }
            }
        }
    }
}
