//! Branch-free elementwise kernels (softmax, GELU, tanh) written so that LLVM vectorises them
//! for whatever SIMD width the caller's target features allow: each ISA wraps them in a
//! `#[target_feature]` function. Accuracy (in f32, `scripts/gen_float_polys.py` fits and checks
//! the polynomials): `exp` within 1.6e-7 relative, `erf` within 2.5e-7 absolute, far below the
//! 1e-4 the model is verified to.
//!
//! Polynomials take the ISA's multiply-add as `madd` (`x * y + z`): one fused instruction where
//! the table's features have it (FMA, NEON), the separate multiply and add otherwise (core has no
//! `mul_add`, and `f32::mul_add` without hardware FMA is a slow library call).

use crate::format::Activation;
use crate::kernels::MatMut;
use crate::parallel::SharedMut;
use core::ops::Range;

pub(crate) const LOG2E: f32 = core::f32::consts::LOG2_E;
// ln 2 split in two (Cody-Waite, as Cephes): LN2_HI has 9 significant bits, so `n * LN2_HI` is
// exact for every n that occurs.
pub(crate) const LN2_HI: f32 = 0.693_359_4;
pub(crate) const LN2_LO: f32 = -2.121_944_4e-4;
/// e^r on |r| <= ln2 / 2, highest degree first: a degree-5 polynomial with p(0) = 1, fitted for
/// the least maximum relative error (9.2e-8; `scripts/gen_float_polys.py`), so that `exp` is within
/// 1.6e-7 of e^x in f32 with fused multiply-adds. Two degrees fewer than Taylor's degree 7 for
/// the same 2-ulp bound: two multiply-adds less per lane in every softmax and GELU.
pub(crate) const EXP_POLY: [f32; 6] = [
    0.008_290_297,
    0.041_897_91,
    0.166_676_36,
    0.499_991_5,
    0.999_999_7,
    1.0,
];
pub(crate) const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer in the low bits
/// `bits(t) - EXP_BIAS` is the biased exponent of 2^n when `t = n + MAGIC` (see [`exp_clamped`]).
pub(crate) const EXP_BIAS: u32 = MAGIC.to_bits() - 127;

/// e^x for x in [-87, 88] (clamped outside).
#[inline(always)]
pub fn exp(x: f32, madd: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    exp_clamped(x.clamp(-87.0, 88.0), madd)
}

/// e^x for x <= 0 (softmax's differences to the row maximum, erf's `-x^2`): only the lower
/// clamp, with `f32::max` (a NaN becomes -87, as FMAXNM does), so -inf gives e^-87.
#[inline(always)]
pub fn exp_nonpositive(x: f32, madd: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    exp_clamped(x.max(-87.0), madd)
}

/// e^x for x in [-87, 88]: Cody-Waite reduction to `r = x - n ln2`, the polynomial, and 2^n
/// built in the exponent bits.
#[inline(always)]
fn exp_clamped(x: f32, madd: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    let t = madd(x, LOG2E, MAGIC);
    let n = t - MAGIC; // round(x / ln 2), exactly
    let r = madd(-n, LN2_LO, madd(-n, LN2_HI, x));
    let p = horner(r, &EXP_POLY, madd);
    // 2^n from the integer sitting in t's low mantissa bits (no float-to-int conversion, which
    // would not vectorise): bits(t) - bits(MAGIC) = n, n in [-126, 127] after the clamp.
    let scale = f32::from_bits(t.to_bits().wrapping_sub(EXP_BIAS) << 23);
    p * scale
}

/// erf's rational approximation `x P(x^2) / Q(x^2)` (`scripts/gen_float_polys.py`), highest
/// degree first: absolute error 1.6e-8 on |x| <= [`ERF_CLAMP`], 2.5e-7 in f32 with fused
/// multiply-adds. No `exp` and no branch: 10 multiply-adds, one division; about half the
/// instructions of Abramowitz & Stegun 7.1.26 with its `exp(-x^2)`, which this replaced.
// The last numerator coefficient is the fit's, 2 ulp from 2 / sqrt(pi) (erf'(0)).
#[allow(clippy::approx_constant)]
pub(crate) const ERF_NUM: [f32; 6] = [
    2.034_583_8e-6,
    2.874_503_6e-4,
    3.867_824_8e-3,
    0.053_058_91,
    0.192_754_78,
    1.128_379,
];
pub(crate) const ERF_DEN: [f32; 6] = [
    3.806_753e-5,
    1.187_959_1e-3,
    0.015_171_32,
    0.115_080_47,
    0.504_156_1,
    1.0,
];
/// erf(3.92) rounds to 1 in f32: beyond, the clamped input gives erf's limit.
pub(crate) const ERF_CLAMP: f32 = 3.92;

/// erf(x), within 2.5e-7 absolute (odd by construction: `x P(x^2) / Q(x^2)`).
#[inline(always)]
pub fn erf(x: f32, madd: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    // `max` then `min`, not `clamp`: two instructions (FMAXNM/FMINNM) where `clamp`'s NaN
    // rule costs compares and selects; a NaN becomes -ERF_CLAMP.
    #[allow(clippy::manual_clamp)]
    let x = x.max(-ERF_CLAMP).min(ERF_CLAMP);
    let s = x * x;
    x * horner(s, &ERF_NUM, madd) / horner(s, &ERF_DEN, madd)
}

#[inline(always)]
pub fn tanh(x: f32, madd: impl Fn(f32, f32, f32) -> f32 + Copy) -> f32 {
    // tanh(x) = 1 - 2 / (e^{2x} + 1); saturates cleanly through the clamp in `exp`.
    1.0 - 2.0 / (exp(2.0 * x, madd) + 1.0)
}

/// `c[0] x^(n-1) + ... + c[n-1]` by Horner's rule, one multiply-add per coefficient.
#[inline(always)]
fn horner(x: f32, c: &[f32], madd: impl Fn(f32, f32, f32) -> f32) -> f32 {
    c[1..].iter().fold(c[0], |acc, &k| madd(acc, x, k))
}

/// Softmax of one row in place.
#[inline(always)]
pub fn softmax(x: &mut [f32], madd: impl Fn(f32, f32, f32) -> f32 + Copy) {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            lanes[l] = lanes[l].max(c[l]);
        }
    }
    let max = chunks.remainder().iter().fold(
        lanes.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)),
        |m, &v| m.max(v),
    );
    let mut sums = [0.0f32; 16];
    let mut chunks = x.chunks_exact_mut(16);
    for c in &mut chunks {
        for l in 0..16 {
            c[l] = exp_nonpositive(c[l] - max, madd);
            sums[l] += c[l];
        }
    }
    // The tail through one padded 16-lane block, so it vectorises too (exp(-inf - max) = e^-87,
    // nothing against the sum).
    let tail = chunks.into_remainder();
    if !tail.is_empty() {
        let mut block = [f32::NEG_INFINITY; 16];
        block[..tail.len()].copy_from_slice(tail);
        for l in 0..16 {
            block[l] = exp_nonpositive(block[l] - max, madd);
            sums[l] += block[l];
        }
        tail.copy_from_slice(&block[..tail.len()]);
    }
    let sum = sums.iter().sum::<f32>();
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// The feed-forward activation in place, on rows `cols` wide; with `row_max`, each row's
/// `max |x|` after the activation goes to `row_max[row]`, found in the same pass (the
/// quantization that follows then reads the row once: see [`super::Kernels::quantize_rows`]).
#[inline(always)]
pub fn activate_rows(
    act: Activation,
    x: &mut [f32],
    cols: usize,
    row_max: Option<&mut [f32]>,
    madd: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    match act {
        Activation::GeluErf => map_rows(x, cols, row_max, |v| {
            let h = 0.5 * v;
            madd(h, erf(v * core::f32::consts::FRAC_1_SQRT_2, madd), h)
        }),
        Activation::GeluTanh => map_rows(x, cols, row_max, |u| {
            const C: f32 = 0.797_884_6; // sqrt(2 / pi)
            let h = 0.5 * u;
            madd(h, tanh(C * madd(0.044_715 * u, u * u, u), madd), h)
        }),
        Activation::Relu => map_rows(x, cols, row_max, |v| v.max(0.0)),
    }
}

/// `x = f(x)` element by element; with `row_max`, each row's (`cols` wide) `max |f(x)|` noted
/// in the same pass, 16 lanes so that it vectorises (the same value as [`max_abs`]: the
/// maximum of magnitudes does not depend on the order, and `f32::max` skips NaN in any order).
#[inline(always)]
pub(crate) fn map_rows(
    x: &mut [f32],
    cols: usize,
    row_max: Option<&mut [f32]>,
    f: impl Fn(f32) -> f32,
) {
    let Some(row_max) = row_max.filter(|_| cols > 0) else {
        x.iter_mut().for_each(|v| *v = f(*v));
        return;
    };
    for (row, max) in x.chunks_exact_mut(cols).zip(row_max) {
        let mut lanes = [0.0f32; 16];
        let mut chunks = row.chunks_exact_mut(16);
        for c in &mut chunks {
            for l in 0..16 {
                c[l] = f(c[l]);
                lanes[l] = lanes[l].max(c[l].abs());
            }
        }
        let tail = chunks.into_remainder();
        tail.iter_mut().for_each(|v| *v = f(*v));
        *max = lanes_max(&lanes, tail);
    }
}

/// One encoder layer's multi-head attention, `ctx = softmax(q k^T / sqrt(d)) v`, for a range of
/// heads (parallel parts take disjoint ranges). `q`, `k`, `v`, `ctx` are `[seq, hidden]` with
/// heads side by side. Each head's K is first transposed into `kt` (`kt[(head * d + t) * seq + j]
/// = k[j][head * d + t]`) so that every inner loop runs over contiguous memory.
#[derive(Debug)]
pub struct Attention<'a> {
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    /// `[hidden, seq]` scratch; head `h` uses rows `h * d .. (h + 1) * d`.
    pub kt: SharedMut<f32>,
    /// `[seq, hidden]` output; head `h` writes columns `h * d .. (h + 1) * d`.
    pub ctx: SharedMut<f32>,
}

/// Heads `heads` of `a`, with `scores` (`seq * seq`) private to the caller.
#[inline(always)]
pub fn attention(
    a: &Attention<'_>,
    heads: Range<usize>,
    scores: &mut [f32],
    softmax: impl Fn(&mut [f32]),
    gemm: impl Fn(usize, usize, usize, Matrix<'_>, Matrix<'_>, &mut MatMut<'_>, f32),
) {
    let (seq, d) = (a.seq, a.head_dim);
    let h = a.heads * d;
    let scale = 1.0 / sqrt(d as f32);
    let scores = &mut scores[..seq * seq];
    for head in heads {
        let off = head * d;
        // SAFETY: head `head` belongs to this part only, and its rows of `kt` are disjoint from
        // every other head's.
        let kt = unsafe { a.kt.range(off * seq..(off + d) * seq) };
        // Row by row of K_h^T: contiguous stores, strided loads (gathers where the ISA has them).
        let k_head = &a.k[off..(seq - 1) * h + off + d];
        for (t, kt_row) in kt.chunks_exact_mut(seq).enumerate() {
            for (dst, k_row) in kt_row.iter_mut().zip(k_head[t..].iter().step_by(h)) {
                *dst = *k_row;
            }
        }
        // scores = scale * Q_h K_h^T
        let q = Matrix {
            data: &a.q[off..],
            stride: h,
        };
        let k_t = Matrix {
            data: kt,
            stride: seq,
        };
        gemm(
            seq,
            seq,
            d,
            q,
            k_t,
            &mut MatMut::new(scores, seq, seq),
            scale,
        );
        for row in scores.chunks_exact_mut(seq) {
            softmax(row);
        }
        // ctx[:, off..off + d] = P V_h
        let p = Matrix {
            data: scores,
            stride: seq,
        };
        let v = Matrix {
            data: &a.v[off..],
            stride: h,
        };
        // SAFETY: head `head`'s columns of `ctx` belong to this part only.
        let mut ctx = unsafe { a.ctx.columns(seq, h, off..off + d) };
        gemm(seq, d, seq, p, v, &mut ctx, 1.0);
    }
}

/// A row-major matrix view with a row stride.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub stride: usize,
}

/// `c[i][j] = alpha * sum_p a[i][p] * b[p][j]` (the first `m` rows and `n` columns of `c`
/// overwritten), register-tiled 4 rows x 32 columns: eight 16-lane accumulators that LLVM keeps
/// in vector registers.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: Matrix<'_>,
    b: Matrix<'_>,
    c: &mut MatMut<'_>,
    alpha: f32,
    madd: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    let mut i = 0;
    while i + 4 <= m {
        let rows: [&[f32]; 4] = core::array::from_fn(|r| &a.data[(i + r) * a.stride..][..k]);
        let mut j = 0;
        while j + 32 <= n {
            // Eight named accumulators: indexing an array of them by the row defeats LLVM's
            // vectoriser, named ones become eight vector registers.
            let z = [0.0f32; 16];
            let (mut c00, mut c01, mut c10, mut c11) = (z, z, z, z);
            let (mut c20, mut c21, mut c30, mut c31) = (z, z, z, z);
            let [r0, r1, r2, r3] = rows;
            for p in 0..k {
                let bp = &b.data[p * b.stride + j..][..32];
                let b0: &[f32; 16] = bp[..16].try_into().unwrap();
                let b1: &[f32; 16] = bp[16..].try_into().unwrap();
                let (a0, a1, a2, a3) = (r0[p], r1[p], r2[p], r3[p]);
                axpy16(&mut c00, a0, b0, madd);
                axpy16(&mut c01, a0, b1, madd);
                axpy16(&mut c10, a1, b0, madd);
                axpy16(&mut c11, a1, b1, madd);
                axpy16(&mut c20, a2, b0, madd);
                axpy16(&mut c21, a2, b1, madd);
                axpy16(&mut c30, a3, b0, madd);
                axpy16(&mut c31, a3, b1, madd);
            }
            for (r, (lo, hi)) in [(c00, c01), (c10, c11), (c20, c21), (c30, c31)]
                .iter()
                .enumerate()
            {
                let out = &mut c.row(i + r)[j..j + 32];
                store16(&mut out[..16], lo, alpha);
                store16(&mut out[16..], hi, alpha);
            }
            j += 32;
        }
        while j + 16 <= n {
            let z = [0.0f32; 16];
            let (mut c0, mut c1, mut c2, mut c3) = (z, z, z, z);
            let [r0, r1, r2, r3] = rows;
            for p in 0..k {
                let b0: &[f32; 16] = b.data[p * b.stride + j..][..16].try_into().unwrap();
                axpy16(&mut c0, r0[p], b0, madd);
                axpy16(&mut c1, r1[p], b0, madd);
                axpy16(&mut c2, r2[p], b0, madd);
                axpy16(&mut c3, r3[p], b0, madd);
            }
            for (r, acc) in [c0, c1, c2, c3].iter().enumerate() {
                store16(&mut c.row(i + r)[j..j + 16], acc, alpha);
            }
            j += 16;
        }
        if j < n {
            // Fewer than 16 columns left: the same 4 x 16 tile on zero-padded copies of B's rows.
            let cols = n - j;
            let z = [0.0f32; 16];
            let (mut c0, mut c1, mut c2, mut c3) = (z, z, z, z);
            let [r0, r1, r2, r3] = rows;
            for p in 0..k {
                let mut b0 = z;
                b0[..cols].copy_from_slice(&b.data[p * b.stride + j..][..cols]);
                axpy16(&mut c0, r0[p], &b0, madd);
                axpy16(&mut c1, r1[p], &b0, madd);
                axpy16(&mut c2, r2[p], &b0, madd);
                axpy16(&mut c3, r3[p], &b0, madd);
            }
            for (r, acc) in [c0, c1, c2, c3].iter().enumerate() {
                store16(&mut c.row(i + r)[j..j + cols], acc, alpha);
            }
        }
        i += 4;
    }
    while i < m {
        let row = &a.data[i * a.stride..][..k];
        let mut j = 0;
        while j + 16 <= n {
            let mut acc = [0.0f32; 16];
            for (p, &av) in row.iter().enumerate() {
                axpy16(
                    &mut acc,
                    av,
                    b.data[p * b.stride + j..][..16].try_into().unwrap(),
                    madd,
                );
            }
            store16(&mut c.row(i)[j..j + 16], &acc, alpha);
            j += 16;
        }
        gemm_row_tail(k, row, b, &mut c.row(i)[j..n], j, alpha);
        i += 1;
    }
}

/// Columns `j0 ..` of one output row, one at a time (`out` holds exactly those columns).
#[inline(always)]
fn gemm_row_tail(k: usize, row: &[f32], b: Matrix<'_>, out: &mut [f32], j0: usize, alpha: f32) {
    for (jj, o) in out.iter_mut().enumerate() {
        let j = j0 + jj;
        let mut acc = 0.0;
        for (p, &av) in row.iter().enumerate().take(k) {
            acc += av * b.data[p * b.stride + j];
        }
        *o = acc * alpha;
    }
}

#[inline(always)]
fn axpy16(acc: &mut [f32; 16], a: f32, b: &[f32; 16], madd: impl Fn(f32, f32, f32) -> f32) {
    for l in 0..16 {
        acc[l] = madd(a, b[l], acc[l]);
    }
}

#[inline(always)]
fn store16(out: &mut [f32], acc: &[f32; 16], alpha: f32) {
    for (o, &v) in out.iter_mut().zip(acc) {
        *o = v * alpha;
    }
}

/// Symmetric per-row int8 quantization (the reference's arithmetic, inlinable into SIMD tables).
/// `max_known`: `scales` holds each row's `max |x|` on entry (see
/// [`super::Kernels::quantize_rows`]).
#[inline(always)]
pub fn quantize_rows(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool) {
    if cols == 0 {
        return;
    }
    for ((row, qrow), scale) in x
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(scales)
    {
        let max = if max_known { *scale } else { max_abs(row) };
        if max == 0.0 || !max.is_finite() {
            // An all-zero row, or one that already overflowed: emit zeros rather than NaNs.
            *scale = 0.0;
            qrow.fill(0);
            continue;
        }
        *scale = max / 127.0;
        let inv = 127.0 / max;
        for (d, &v) in qrow.iter_mut().zip(row) {
            *d = super::reference::quantize_value(v * inv);
        }
    }
}

/// The largest magnitude in `x` (16 lanes so that LLVM vectorises it).
#[inline(always)]
pub fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            lanes[l] = lanes[l].max(c[l].abs());
        }
    }
    lanes_max(&lanes, chunks.remainder())
}

/// The largest magnitude among 16 lane maxima and a row's tail values: the end of [`max_abs`]
/// and of the passes that note row maxima on the way (the same value in any order).
#[inline(always)]
fn lanes_max(lanes: &[f32; 16], tail: &[f32]) -> f32 {
    tail.iter()
        .chain(lanes)
        .fold(0.0f32, |m, &v| m.max(v.abs()))
}

/// `x = LayerNorm(x + residual)` for every row (`gamma.len()` wide), two-pass mean and variance
/// like PyTorch; with `row_max`, each row's `max |x|` afterwards, found in the pass that writes
/// it (as [`activate_rows`]).
#[inline(always)]
pub fn add_layer_norm(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    row_max: Option<&mut [f32]>,
    madd: impl Fn(f32, f32, f32) -> f32 + Copy,
) {
    let n = gamma.len();
    if n == 0 {
        return;
    }
    match row_max {
        Some(row_max) => {
            for ((r, row), max) in x.chunks_exact_mut(n).enumerate().zip(row_max) {
                let (mean, inv) = layer_norm_moments(row, residual, r, eps, madd);
                let mut lanes = [0.0f32; 16];
                let mut chunks = row.chunks_exact_mut(16);
                let (mut g, mut b) = (gamma.chunks_exact(16), beta.chunks_exact(16));
                for ((c, g), b) in (&mut chunks).zip(&mut g).zip(&mut b) {
                    for l in 0..16 {
                        c[l] = madd((c[l] - mean) * inv, g[l], b[l]);
                        lanes[l] = lanes[l].max(c[l].abs());
                    }
                }
                let tail = chunks.into_remainder();
                for ((v, &g), &b) in tail.iter_mut().zip(g.remainder()).zip(b.remainder()) {
                    *v = madd((*v - mean) * inv, g, b);
                }
                *max = lanes_max(&lanes, tail);
            }
        }
        None => {
            for (r, row) in x.chunks_exact_mut(n).enumerate() {
                let (mean, inv) = layer_norm_moments(row, residual, r, eps, madd);
                for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
                    *v = madd((*v - mean) * inv, g, b);
                }
            }
        }
    }
}

/// Adds row `r` of `residual` to `row`, then its mean and `1 / sqrt(variance + eps)`.
#[inline(always)]
fn layer_norm_moments(
    row: &mut [f32],
    residual: Option<&[f32]>,
    r: usize,
    eps: f32,
    madd: impl Fn(f32, f32, f32) -> f32 + Copy,
) -> (f32, f32) {
    let n = row.len();
    if let Some(res) = residual {
        for (v, &a) in row.iter_mut().zip(&res[r * n..(r + 1) * n]) {
            *v += a;
        }
    }
    let mean = sum16(row) / n as f32;
    let mut lanes = [0.0f32; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            let d = c[l] - mean;
            lanes[l] = madd(d, d, lanes[l]);
        }
    }
    let tail: f32 = chunks
        .remainder()
        .iter()
        .map(|&v| (v - mean) * (v - mean))
        .sum();
    let var = (lanes.iter().sum::<f32>() + tail) / n as f32;
    (mean, 1.0 / sqrt(var + eps))
}

/// Square root in the caller's target features: with std, `f32::sqrt` is `llvm.sqrt` (one
/// `vsqrtss` in AVX code). libm's x86 `sqrtf` is a legacy-SSE `sqrtss` in inline assembly, which
/// in AVX-512 code paid an SSE/AVX transition on every LayerNorm row (a third of its time).
#[inline(always)]
fn sqrt(x: f32) -> f32 {
    #[cfg(feature = "std")]
    return x.sqrt();
    #[cfg(not(feature = "std"))]
    return libm::sqrtf(x);
}

#[inline(always)]
fn sum16(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for l in 0..16 {
            lanes[l] += c[l];
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(x: f32, y: f32, z: f32) -> f32 {
        x * y + z
    }

    /// Both multiply-adds a table may pass: separate, and fused (libm's exact `fmaf`).
    const MADDS: [fn(f32, f32, f32) -> f32; 2] = [plain, libm::fmaf];

    #[test]
    fn exp_matches_libm() {
        for madd in MADDS {
            let mut worst = 0f32;
            for i in -86_900..=87_900 {
                let x = i as f32 * 1e-3;
                let (a, b) = (exp(x, madd), libm::expf(x));
                worst = worst.max(((a - b) / b).abs());
            }
            assert!(worst < 3e-7, "relative error {worst}");
            assert!(exp(-1000.0, madd) < 1e-37 && exp(-1000.0, madd) >= 0.0);
        }
    }

    #[test]
    fn erf_and_tanh_match_libm() {
        for madd in MADDS {
            for i in -6000..=6000 {
                let x = i as f32 * 1e-3;
                assert!((erf(x, madd) - libm::erff(x)).abs() < 5e-7, "erf({x})");
                assert!((tanh(x, madd) - libm::tanhf(x)).abs() < 3e-7, "tanh({x})");
            }
        }
    }

    #[test]
    fn softmax_sums_to_one_and_matches_libm() {
        let mut x: [f32; 37] = core::array::from_fn(|i| (i as f32 * 0.37).sin() * 8.0);
        let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let reference: [f32; 37] = {
            let e: [f32; 37] = core::array::from_fn(|i| libm::expf(x[i] - max));
            let s: f32 = e.iter().sum();
            core::array::from_fn(|i| e[i] / s)
        };
        softmax(&mut x, libm::fmaf);
        for (a, b) in x.iter().zip(&reference) {
            assert!((a - b).abs() < 1e-6);
        }
    }
}
