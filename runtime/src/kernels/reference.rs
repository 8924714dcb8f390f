//! Portable scalar kernels: the reference every SIMD kernel is tested against. They accept every
//! weight layout; row-major is their fast path (LLVM vectorises the integer dot products).

use super::{GemmF32, GemmI8, Layout, MatMut, PackedI8, Weights};
use crate::format::Activation;

/// Rounds half away from zero without `std` (a saturating float-to-int cast truncates).
#[inline(always)]
pub fn round_to_i32(x: f32) -> i32 {
    (x + if x >= 0.0 { 0.5 } else { -0.5 }) as i32
}

/// Quantizes a value already divided by its scale to int8 in `[-127, 127]` (symmetric). The one
/// rounding rule of every quantizer (weights offline, activations in the kernels).
#[inline(always)]
pub fn quantize_value(x: f32) -> i8 {
    round_to_i32(x).clamp(-127, 127) as i8
}

pub fn quantize_rows(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool) {
    super::vector::quantize_rows(x, cols, q, scales, max_known)
}

/// Static quantization with one calibrated `scale` for every row: `q = quantize_value(x * (1 /
/// scale))`, every entry of `scales` set to `scale`. `unsigned` stores `q + 128` (as the tables
/// with [`super::Kernels::unsigned_activations`] expect).
pub fn quantize_rows_static(
    x: &[f32],
    scale: f32,
    unsigned: bool,
    q: &mut [i8],
    scales: &mut [f32],
) {
    let inv = 1.0 / scale;
    for (d, &v) in q.iter_mut().zip(x) {
        let v = quantize_value(v * inv);
        *d = if unsigned { (v as u8 ^ 0x80) as i8 } else { v };
    }
    scales.fill(scale);
}

/// Exact i32 dot product of two int8 rows.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
}

/// The exact i32 dot product of activation row `a` with weight row `j`, any layout.
/// `OFFSET`: activations are stored as `q + 128` (unsigned encoding).
#[inline]
fn dot_packed<const OFFSET: bool>(a: &[i8], w: &PackedI8<'_>, j: usize) -> i32 {
    let decode = |x: i8| {
        if OFFSET {
            (x as u8) as i32 - 128
        } else {
            x as i32
        }
    };
    match w.layout {
        Layout::RowMajor if !OFFSET => dot_i8(a, &w.data[j * w.k..(j + 1) * w.k]),
        Layout::RowMajor => a
            .iter()
            .zip(&w.data[j * w.k..(j + 1) * w.k])
            .map(|(&x, &y)| decode(x) * y as i32)
            .sum(),
        _ => {
            let mut row = [0i8; 256];
            let mut sum = 0;
            for (chunk_index, chunk) in a.chunks(256).enumerate() {
                let row = &mut row[..chunk.len()];
                gather_row(w, j, chunk_index * 256, row);
                sum += chunk
                    .iter()
                    .zip(row.iter())
                    .map(|(&x, &y)| decode(x) * y as i32)
                    .sum::<i32>();
            }
            sum
        }
    }
}

fn gemm_i8_generic<const OFFSET: bool>(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    assert!(
        out.rows() >= m && out.cols() >= n,
        "output smaller than [m, n]"
    );
    for i in 0..m {
        let a = &p.a[i * k..(i + 1) * k];
        let sa = p.a_scales[i];
        let row = &mut out.row(i)[..n];
        for (j, o) in row.iter_mut().enumerate() {
            let acc = dot_packed::<OFFSET>(a, &p.w, j);
            *o = dequantize(acc, sa, p.w.scales[j], p.bias.map_or(0.0, |b| b[j]));
        }
    }
}

pub fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    gemm_i8_generic::<false>(p, out)
}

/// [`gemm_i8`] for activations in the unsigned encoding (`q + 128`), any layout: the fallback of
/// kernel tables with `unsigned_activations`.
pub fn gemm_i8_unsigned(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    gemm_i8_generic::<true>(p, out)
}

/// The output step every int8 kernel shares, so that all of them round identically.
#[inline]
pub fn dequantize(acc: i32, a_scale: f32, w_scale: f32, bias: f32) -> f32 {
    acc as f32 * (a_scale * w_scale) + bias
}

/// f32 dot product with 8 independent partial sums (lets LLVM vectorise without reassociation).
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

/// `out[i] = w[j][c0 + i]`, walking the packed layout group by group.
fn gather_row(w: &PackedI8<'_>, j: usize, c0: usize, out: &mut [i8]) {
    let (nr, kr) = w.layout.tile();
    if nr == 1 {
        out.copy_from_slice(&w.data[j * w.k + c0..j * w.k + c0 + out.len()]);
        return;
    }
    // Both packed layouts keep the `kr` k-values of one row contiguous inside a 64-byte group,
    // and consecutive groups of a panel 64 bytes apart.
    let first = w.layout.index(w.k, j, c0 - c0 % kr);
    let mut i = 0;
    let mut col = c0;
    let mut group_start = first;
    while i < out.len() {
        let within = col % kr;
        let take = (kr - within).min(out.len() - i);
        for t in 0..take {
            out[i + t] = w.data[group_start + within + t];
        }
        i += take;
        col += take;
        group_start += 64;
    }
}

pub fn gemm_f32(p: &GemmF32<'_>, out: &mut [f32]) {
    gemm_f32_inline(p, out)
}

/// Four dot products of `a` with `w[0..4]` at once, each summed exactly as [`dot_f32`] sums
/// (bit-identical results); four independent accumulator sets keep the vector units busy.
#[inline(always)]
fn dot4(a: &[f32], w: [&[f32]; 4]) -> [f32; 4] {
    let (mut s0, mut s1, mut s2, mut s3) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
    let n8 = a.len() / 8 * 8;
    let (a8, _) = a[..n8].as_chunks::<8>();
    let (w0, _) = w[0][..n8].as_chunks::<8>();
    let (w1, _) = w[1][..n8].as_chunks::<8>();
    let (w2, _) = w[2][..n8].as_chunks::<8>();
    let (w3, _) = w[3][..n8].as_chunks::<8>();
    for ((((x, y0), y1), y2), y3) in a8.iter().zip(w0).zip(w1).zip(w2).zip(w3) {
        for l in 0..8 {
            s0[l] += x[l] * y0[l];
            s1[l] += x[l] * y1[l];
            s2[l] += x[l] * y2[l];
            s3[l] += x[l] * y3[l];
        }
    }
    let acc = [s0, s1, s2, s3];
    core::array::from_fn(|r| {
        let tail: f32 = a[n8..]
            .iter()
            .zip(&w[r][n8..a.len()])
            .map(|(x, y)| x * y)
            .sum();
        let acc = &acc[r];
        ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
    })
}

/// [`gemm_f32`] for inlining into tables compiled with their own target features (same
/// operations in the same order: bit-identical on every table).
#[inline(always)]
pub fn gemm_f32_inline(p: &GemmF32<'_>, out: &mut [f32]) {
    let (m, n, k) = (p.m, p.n, p.k);
    let bias = |j: usize| p.bias.map_or(0.0, |b| b[j]);
    match p.w {
        Weights::F32(w) => {
            // Weight-stationary: four weight rows stay in L1 while every row of `a` passes.
            let w = &w[..n * k];
            let mut j = 0;
            while j + 4 <= n {
                let rows: [&[f32]; 4] = core::array::from_fn(|r| &w[(j + r) * k..(j + r + 1) * k]);
                for i in 0..m {
                    let d = dot4(&p.a[i * k..(i + 1) * k], rows);
                    for r in 0..4 {
                        out[i * n + j + r] = d[r] + bias(j + r);
                    }
                }
                j += 4;
            }
            for jj in j..n {
                for i in 0..m {
                    out[i * n + jj] =
                        dot_f32(&p.a[i * k..(i + 1) * k], &w[jj * k..(jj + 1) * k]) + bias(jj);
                }
            }
        }
        Weights::F16(w) => {
            // Weight-stationary like the int8 path: widen a chunk of four rows once, use it for
            // every row of `a` (the weights stay in the file; no session memory).
            const CHUNK: usize = 256;
            let mut buf = [[0.0f32; CHUNK]; 4];
            for i in 0..m {
                for j in 0..n {
                    out[i * n + j] = bias(j);
                }
            }
            for j in (0..n).step_by(4) {
                let rows = (n - j).min(4);
                for c0 in (0..k).step_by(CHUNK) {
                    let len = CHUNK.min(k - c0);
                    for (r, b) in buf.iter_mut().enumerate() {
                        let jr = j + r.min(rows - 1);
                        let src = &w[jr * k + c0..jr * k + c0 + len];
                        for (d, &h) in b.iter_mut().zip(src) {
                            *d = half::f16::from_bits(h).to_f32();
                        }
                    }
                    for i in 0..m {
                        let a = &p.a[i * k + c0..i * k + c0 + len];
                        let d = dot4(a, core::array::from_fn(|r| &buf[r][..len]));
                        for r in 0..rows {
                            out[i * n + j + r] += d[r];
                        }
                    }
                }
            }
        }
        Weights::I8(w) => {
            // Weight-stationary: convert a chunk of one weight row once, use it for every row of
            // `a` (the conversion, not the multiply, dominates for packed layouts).
            const CHUNK: usize = 512;
            let (mut raw, mut buf) = ([0i8; CHUNK], [0.0f32; CHUNK]);
            for j in 0..n {
                for i in 0..m {
                    out[i * n + j] = 0.0;
                }
                for c0 in (0..k).step_by(CHUNK) {
                    let len = CHUNK.min(k - c0);
                    gather_row(&w, j, c0, &mut raw[..len]);
                    for (b, &r) in buf.iter_mut().zip(&raw[..len]) {
                        *b = r as f32;
                    }
                    for i in 0..m {
                        out[i * n + j] += dot_f32(&p.a[i * k + c0..i * k + c0 + len], &buf[..len]);
                    }
                }
                for i in 0..m {
                    out[i * n + j] = out[i * n + j] * w.scales[j] + p.bias.map_or(0.0, |b| b[j]);
                }
            }
        }
    }
}

/// Numerically stable softmax in place (libm `expf`).
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// The feed-forward activation in place (libm `erff` / `tanhf`), with row maxima as
/// [`super::vector::activate_rows`].
pub fn activate(act: Activation, x: &mut [f32], cols: usize, row_max: Option<&mut [f32]>) {
    use super::vector::map_rows;
    match act {
        Activation::GeluErf => map_rows(x, cols, row_max, |v| {
            0.5 * v * (1.0 + libm::erff(v * core::f32::consts::FRAC_1_SQRT_2))
        }),
        Activation::GeluTanh => map_rows(x, cols, row_max, |u| {
            const C: f32 = 0.797_884_6; // sqrt(2 / pi)
            0.5 * u * (1.0 + libm::tanhf(C * (u + 0.044_715 * u * u * u)))
        }),
        Activation::Relu => map_rows(x, cols, row_max, |v| v.max(0.0)),
    }
}

/// Attention with the exact softmax.
pub fn attention(
    a: &super::vector::Attention<'_>,
    heads: core::ops::Range<usize>,
    scores: &mut [f32],
) {
    super::vector::attention(a, heads, scores, softmax, |m, n, k, x, y, out, alpha| {
        super::vector::gemm_nn(m, n, k, x, y, out, alpha, |p, q, r| p * q + r)
    })
}

pub fn add_layer_norm(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    row_max: Option<&mut [f32]>,
) {
    super::vector::add_layer_norm(x, residual, gamma, beta, eps, row_max, |p, q, r| p * q + r)
}
