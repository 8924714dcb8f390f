//! The test suite every kernel table gets (like tract's kernel-declaring macro): each ISA module
//! invokes [`kernel_test_suite!`] for its table, and the same tests compare it with the portable
//! reference, bit for bit, on every weight layout.
//!
//! Shapes: every (M, N, K) in 1..=17 (edges of every tile and unroll), powers of two to 256,
//! BERT-like shapes and odd ones (43 x 500 x 401); plus seeded random shapes (property tests).

use super::pack::{self, Layout};
use super::{GemmI8, Kernels, MatMut, PackedI8, REFERENCE};

/// A small deterministic generator (SplitMix64) so the suite needs no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / 16_777_216.0 * 2.0 - 1.0
    }
    pub fn i8(&mut self) -> i8 {
        // Full symmetric range, with the extremes over-represented (they find overflow bugs).
        match self.below(8) {
            0 => 127,
            1 => -127,
            _ => (self.below(255) as i32 - 127) as i8,
        }
    }
}

pub const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::K4N16, Layout::K8N8];

/// A random int8 GEMM problem: f32 activations `[m, k]`, int8 weights `[n, k]` (row-major and
/// packed in `layout`), weight scales and biases.
struct Problem {
    m: usize,
    n: usize,
    k: usize,
    layout: Layout,
    x: Vec<f32>,
    w: Vec<i8>,
    w_scales: Vec<f32>,
    bias: Vec<f32>,
    packed: Vec<i8>,
    sums: Vec<i32>,
}

impl Problem {
    fn new(layout: Layout, m: usize, n: usize, k: usize, rng: &mut Rng) -> Problem {
        let x: Vec<f32> = (0..m * k).map(|_| rng.f32() * 4.0).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.i8()).collect();
        let w_scales: Vec<f32> = (0..n).map(|_| rng.f32().abs() * 0.05 + 1e-3).collect();
        let bias: Vec<f32> = (0..n).map(|_| rng.f32()).collect();
        let packed = pack::pack(layout, &w, n, k);
        let sums = pack::row_sums(&w, n, k);
        Problem {
            m,
            n,
            k,
            layout,
            x,
            w,
            w_scales,
            bias,
            packed,
            sums,
        }
    }

    /// The weights row-major (what the reference runs) or packed in `layout`.
    fn weights(&self, packed: bool) -> PackedI8<'_> {
        let (data, layout) = match packed {
            true => (&self.packed, self.layout),
            false => (&self.w, Layout::RowMajor),
        };
        PackedI8 {
            layout,
            data,
            scales: &self.w_scales,
            row_sums: Some(&self.sums),
            n: self.n,
            k: self.k,
        }
    }

    /// The activations as table `t`'s `quantize_rows` encodes them, and their scales.
    fn quantized(&self, t: &Kernels) -> (Vec<i8>, Vec<f32>) {
        let mut q = vec![0i8; self.m * self.k];
        let mut s = vec![0f32; self.m];
        (t.quantize_rows)(&self.x, self.k, &mut q, &mut s, false);
        (q, s)
    }

    /// The whole product by table `t`, into a contiguous `[m, n]` output.
    fn run(&self, t: &Kernels, packed: bool) -> Vec<f32> {
        let (q, s) = self.quantized(t);
        let mut out = vec![f32::NAN; self.m * self.n];
        let p = GemmI8 {
            m: self.m,
            a: &q,
            a_scales: &s,
            w: self.weights(packed),
            bias: Some(&self.bias),
        };
        (t.gemm_i8)(&p, &mut MatMut::new(&mut out, self.m, self.n));
        out
    }

    /// Asserts that `actual` (by `kernels`) equals the reference's `expected`, bit for bit.
    fn assert_same_bits(&self, kernels: &Kernels, how: &str, expected: &[f32], actual: &[f32]) {
        let (m, n, k, layout) = (self.m, self.n, self.k, self.layout);
        for (idx, (e, a)) in expected.iter().zip(actual).enumerate() {
            assert!(
                e.to_bits() == a.to_bits(),
                "{} {layout:?} m={m} n={n} k={k}{how}: out[{}][{}] = {a}, reference {e}",
                kernels.name,
                idx / n,
                idx % n
            );
        }
    }
}

/// Checks one GEMM of `kernels` against the reference, bit for bit. Activations go through each
/// table's own `quantize_rows` from the same f32 input, so activation encodings may differ.
pub fn check_gemm(kernels: &Kernels, layout: Layout, m: usize, n: usize, k: usize, rng: &mut Rng) {
    let problem = Problem::new(layout, m, n, k, rng);
    let expected = problem.run(&REFERENCE, false);
    let actual = problem.run(kernels, true);
    problem.assert_same_bits(kernels, "", &expected, &actual);
}

/// Checks a GEMM computed in column blocks, as the threads of a column split compute it: each
/// block is `w.rows(..)` (whole panels) writing its columns of the full `[m, n]` output through
/// a [`MatMut`] of row stride `n`. The result must equal the reference's single GEMM bit for
/// bit, and a block must leave the other columns alone.
pub fn check_gemm_columns(
    kernels: &Kernels,
    layout: Layout,
    m: usize,
    n: usize,
    k: usize,
    rng: &mut Rng,
) {
    let problem = Problem::new(layout, m, n, k, rng);
    let expected = problem.run(&REFERENCE, false);
    // The table under test: blocks of whole panels, split near the middle.
    let (q, s) = problem.quantized(kernels);
    let weights = problem.weights(true);
    let panel = layout.tile().0;
    let split = (n / 2).next_multiple_of(panel).min(n);
    let mut actual = vec![f32::NAN; m * n];
    for (b, cols) in [split..n, 0..split].into_iter().enumerate() {
        if cols.is_empty() {
            continue;
        }
        let block = weights.rows(cols.clone()).expect("panel-aligned block");
        let p = GemmI8 {
            m,
            a: &q,
            a_scales: &s,
            w: block,
            bias: Some(&problem.bias[cols.clone()]),
        };
        // SAFETY: the view covers columns `cols` of the `[m, n]` matrix `actual`, which nothing
        // else touches while the kernel runs.
        let mut view = unsafe {
            MatMut::from_raw_parts(actual.as_mut_ptr().add(cols.start), m, cols.len(), n)
        };
        (kernels.gemm_i8)(&p, &mut view);
        if b == 0 {
            // Only the first block's columns are written so far.
            for (idx, v) in actual.iter().enumerate() {
                assert_eq!(
                    cols.contains(&(idx % n)),
                    !v.is_nan(),
                    "{} {layout:?} m={m} n={n} k={k}: block {cols:?} wrote out[{}][{}]",
                    kernels.name,
                    idx / n,
                    idx % n
                );
            }
        }
    }
    problem.assert_same_bits(kernels, " in column blocks", &expected, &actual);
}

/// Checks that `quantize_rows` encodes the same values and scales as the reference.
pub fn check_quantize(kernels: &Kernels, rows: usize, cols: usize, rng: &mut Rng) {
    let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * 10.0).collect();
    if rows > 1 {
        x[cols..2 * cols].fill(0.0); // an all-zero row
    }
    let (mut q0, mut s0) = (vec![0i8; rows * cols], vec![0f32; rows]);
    let (mut q1, mut s1) = (vec![0i8; rows * cols], vec![0f32; rows]);
    (REFERENCE.quantize_rows)(&x, cols, &mut q0, &mut s0, false);
    (kernels.quantize_rows)(&x, cols, &mut q1, &mut s1, false);
    let offset = if kernels.unsigned_activations {
        0x80u8
    } else {
        0
    };
    for (i, (a, b)) in q0.iter().zip(&q1).enumerate() {
        assert_eq!(
            *a as u8,
            (*b as u8) ^ offset,
            "{}: q[{i}] of {rows}x{cols}",
            kernels.name
        );
    }
    for (a, b) in s0.iter().zip(&s1) {
        assert_eq!(a.to_bits(), b.to_bits(), "{}: scale", kernels.name);
    }
}

/// Checks the row maxima that `activate` and `add_layer_norm` note for the quantization after
/// them: the outputs are those of the plain calls, bit for bit, each maximum is the row's
/// `max |x|` (what `quantize_rows` would find), and `quantize_rows` given them (`max_known`)
/// writes what it writes without.
pub fn check_row_max(kernels: &Kernels, rows: usize, cols: usize, rng: &mut Rng) {
    use crate::format::Activation;
    let mut x: Vec<f32> = (0..rows * cols).map(|_| rng.f32() * 6.0).collect();
    if rows > 1 {
        x[cols..2 * cols].fill(0.0);
    }
    let residual: Vec<f32> = (0..rows * cols).map(|_| rng.f32()).collect();
    let gamma: Vec<f32> = (0..cols).map(|_| 1.0 + rng.f32()).collect();
    let beta: Vec<f32> = (0..cols).map(|_| rng.f32()).collect();
    let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
    let maxima = |v: &[f32]| -> Vec<u32> {
        v.chunks(cols)
            .map(|r| super::vector::max_abs(r).to_bits())
            .collect()
    };
    let mut outputs = Vec::new();
    for act in [Activation::GeluErf, Activation::GeluTanh, Activation::Relu] {
        let (mut plain, mut noted, mut max) = (x.clone(), x.clone(), vec![f32::NAN; rows]);
        (kernels.activate)(act, &mut plain, cols, None);
        (kernels.activate)(act, &mut noted, cols, Some(&mut max));
        assert_eq!(
            bits(&plain),
            bits(&noted),
            "{}: {act:?} {rows}x{cols}",
            kernels.name
        );
        assert_eq!(
            bits(&max),
            maxima(&noted),
            "{}: {act:?} maxima",
            kernels.name
        );
        outputs.push((noted, max));
    }
    let (mut plain, mut noted, mut max) = (x.clone(), x.clone(), vec![f32::NAN; rows]);
    (kernels.add_layer_norm)(&mut plain, Some(&residual), &gamma, &beta, 1e-12, None);
    let ln = kernels.add_layer_norm;
    ln(
        &mut noted,
        Some(&residual),
        &gamma,
        &beta,
        1e-12,
        Some(&mut max),
    );
    assert_eq!(
        bits(&plain),
        bits(&noted),
        "{}: LayerNorm {rows}x{cols}",
        kernels.name
    );
    assert_eq!(
        bits(&max),
        maxima(&noted),
        "{}: LayerNorm maxima",
        kernels.name
    );
    outputs.push((noted, max));
    for (v, max) in outputs {
        let (mut q0, mut s0) = (vec![0i8; rows * cols], vec![0f32; rows]);
        let (mut q1, mut s1) = (vec![0i8; rows * cols], max);
        (kernels.quantize_rows)(&v, cols, &mut q0, &mut s0, false);
        (kernels.quantize_rows)(&v, cols, &mut q1, &mut s1, true);
        assert_eq!(q0, q1, "{}: quantized with known maxima", kernels.name);
        assert_eq!(
            bits(&s0),
            bits(&s1),
            "{}: scales with known maxima",
            kernels.name
        );
    }
}

kernel_test_suite!(reference_suite, &REFERENCE, true);
