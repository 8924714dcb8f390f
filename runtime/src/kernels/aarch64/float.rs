//! The float steps with NEON: attention's f32 GEMMs (`Q K^T`, `P V`, as `x86_64/f32gemm.rs` is
//! for x86), the softmax, and the GEMM of f32 weights (task heads, layers kept in f32). All are
//! bit-identical to the portable code in [`vector`] and [`reference`] (unit tests below compare
//! every bit), so outputs do not change with the path, the firmware and Linux agree, and only
//! the instruction count drops.
//!
//! - [`gemm_nn`]: the portable kernel leaves the register tiling to LLVM, which spills its
//!   4 x 32 tile on aarch64: about one multiply-add per instruction. Here a 4 x 16 tile lives in
//!   16 registers; per 4 k: 4 activation loads, 16 B loads and 64 `FMLA` (by lane), 256
//!   multiply-adds in 84 instructions. Every output is the same chain
//!   `acc = fma(a[i][p], b[p][j], acc)` for `p = 0, 1, ...`, then `acc * alpha`; the edges (the
//!   last `n % 16` columns, the last `m % 4` rows) go to the portable code. Tiles are scaled and
//!   stored from registers.
//! - [`softmax`]: LLVM turned the portable 16-lane loops into gathers and spills; here the same
//!   16 lanes are four registers, with the same clamp, Cody-Waite reduction, Horner polynomial
//!   and exponent bits as [`vector::exp_nonpositive`].
//!
//! - [`gemm_f32`]: f32 weights with the reference's eight-lane sums (multiply, then add).
//!
//! (GELU stays the portable loop: LLVM vectorises its rational erf well, about 8 instructions an
//! element; a NEON copy of the earlier exp-based erf was no better than LLVM's, about 13.)

use crate::kernels::vector::{self, Matrix};
use crate::kernels::{reference, GemmF32, MatMut, Weights};
use core::arch::aarch64::*;
use core::arch::asm;

/// `c[i][j] = alpha * sum_p a[i][p] * b[p][j]` (into a [`MatMut`]), as [`vector::gemm_nn`] with
/// fused multiply-adds.
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
    let (m4, n16) = (m - m % 4, n - n % 16);
    // The tiles read rows `..m4` of `a` (k each) and rows `..k` of `b` (n16 each): in bounds
    // whenever the portable code's slicing would be; otherwise let it report the bad input.
    let fits = |rows: usize, stride: usize, len: usize, have: usize| {
        rows == 0
            || (rows - 1)
                .checked_mul(stride)
                .and_then(|x| x.checked_add(len))
                .is_some_and(|end| end <= have)
    };
    if k == 0 || !fits(m4, a.stride, k, a.data.len()) || !fits(k, b.stride, n16, b.data.len()) {
        return vector::gemm_nn(m, n, k, a, b, c, alpha, madd);
    }
    // Tiles store straight from registers: `m4 <= rows`, `n16 <= cols` of `c` (the portable
    // code would panic otherwise, so let it).
    if m4 > c.rows() || n16 > c.cols() {
        return vector::gemm_nn(m, n, k, a, b, c, alpha, madd);
    }
    let (ldc, c_ptr) = (c.ldc(), c.as_mut_ptr());
    for i in (0..m4).step_by(4) {
        for j in (0..n16).step_by(16) {
            // SAFETY: rows `i..i + 4 <= m4` of `a` hold `k` floats from `a.data[(i + r) *
            // a.stride]`, rows `0..k` of `b` hold 16 floats from column `j + 16 <= n16` (both
            // checked above); the 4 x 16 outputs at rows `i + r < m4 <= c.rows()`, columns
            // `j..j + 16 <= n16 <= c.cols()` are the view's own (`c` is borrowed mutably);
            // NEON is part of the aarch64 baseline.
            unsafe {
                let acc = tile_4x16(
                    a.data.as_ptr().add(i * a.stride),
                    a.stride,
                    b.data.as_ptr().add(j),
                    b.stride,
                    k,
                );
                for (r, acc) in acc.iter().enumerate() {
                    let scaled = acc.map(|v| vmulq_n_f32(v, alpha));
                    vst1q_f32_x4(
                        c_ptr.add((i + r) * ldc + j),
                        float32x4x4_t(scaled[0], scaled[1], scaled[2], scaled[3]),
                    );
                }
            }
        }
    }
    // The last columns of the tiled rows, then the last rows: the portable code on views.
    if n16 < n && m4 > 0 {
        let b_cols = Matrix {
            data: &b.data[n16..],
            stride: b.stride,
        };
        vector::gemm_nn(
            m4,
            n - n16,
            k,
            a,
            b_cols,
            &mut c.split_rows(m4).0.split_cols(n16).1,
            alpha,
            madd,
        );
    }
    if m4 < m {
        let a_rows = Matrix {
            data: &a.data[m4 * a.stride..],
            stride: a.stride,
        };
        vector::gemm_nn(
            m - m4,
            n,
            k,
            a_rows,
            b,
            &mut c.split_rows(m4).1,
            alpha,
            madd,
        );
    }
}

/// One k of the 4 x 16 tile: a row of B into v4-v7 (the pointer `{b}` advanced by `{ldb}`
/// bytes), then the 16 products with lane `$lane` of the rows of A in v0-v3, into v16-v31.
macro_rules! fmla_4x16 {
    ($lane:literal) => {
        concat!(
            "ld1 {{v4.4s-v7.4s}}, [{b}], {ldb}\n",
            "fmla v16.4s, v4.4s, v0.s[",
            $lane,
            "]\n",
            "fmla v17.4s, v5.4s, v0.s[",
            $lane,
            "]\n",
            "fmla v18.4s, v6.4s, v0.s[",
            $lane,
            "]\n",
            "fmla v19.4s, v7.4s, v0.s[",
            $lane,
            "]\n",
            "fmla v20.4s, v4.4s, v1.s[",
            $lane,
            "]\n",
            "fmla v21.4s, v5.4s, v1.s[",
            $lane,
            "]\n",
            "fmla v22.4s, v6.4s, v1.s[",
            $lane,
            "]\n",
            "fmla v23.4s, v7.4s, v1.s[",
            $lane,
            "]\n",
            "fmla v24.4s, v4.4s, v2.s[",
            $lane,
            "]\n",
            "fmla v25.4s, v5.4s, v2.s[",
            $lane,
            "]\n",
            "fmla v26.4s, v6.4s, v2.s[",
            $lane,
            "]\n",
            "fmla v27.4s, v7.4s, v2.s[",
            $lane,
            "]\n",
            "fmla v28.4s, v4.4s, v3.s[",
            $lane,
            "]\n",
            "fmla v29.4s, v5.4s, v3.s[",
            $lane,
            "]\n",
            "fmla v30.4s, v6.4s, v3.s[",
            $lane,
            "]\n",
            "fmla v31.4s, v7.4s, v3.s[",
            $lane,
            "]\n",
        )
    };
}

/// The k loop of [`tile_4x16`]: `$n` iterations of the template (the loads of A's rows from
/// `{a0}`-`{a3}`, then [`fmla_4x16`] steps), the accumulators `$c` in v16-v31.
macro_rules! tile_4x16_loop {
    ($c:ident, $ar:ident, $bp:ident, $ldb:expr, $n:expr, $($template:expr),+ $(,)?) => {
        asm!(
            "2:",
            $($template,)+
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) $ar[0],
            a1 = inout(reg) $ar[1],
            a2 = inout(reg) $ar[2],
            a3 = inout(reg) $ar[3],
            b = inout(reg) $bp,
            ldb = in(reg) $ldb,
            n = inout(reg) $n => _,
            inout("v16") $c[0][0],
            inout("v17") $c[0][1],
            inout("v18") $c[0][2],
            inout("v19") $c[0][3],
            inout("v20") $c[1][0],
            inout("v21") $c[1][1],
            inout("v22") $c[1][2],
            inout("v23") $c[1][3],
            inout("v24") $c[2][0],
            inout("v25") $c[2][1],
            inout("v26") $c[2][2],
            inout("v27") $c[2][3],
            inout("v28") $c[3][0],
            inout("v29") $c[3][1],
            inout("v30") $c[3][2],
            inout("v31") $c[3][3],
            out("v0") _,
            out("v1") _,
            out("v2") _,
            out("v3") _,
            out("v4") _,
            out("v5") _,
            out("v6") _,
            out("v7") _,
            options(nostack, readonly),
        )
    };
}

/// Lane `l % 4` of `[r][l / 4]` = the fma chain over `p` of `a[r][p] * b[p][l]`, for 4 rows and
/// 16 columns, in `asm!` so that the 16 accumulators stay in registers (v16-v31; rows in v0-v3,
/// a row of B in v4-v7): LLVM spilled the same loop written with intrinsics. Returned in
/// registers, so the caller scales and stores them without a round trip through memory (which
/// cost as much as the k loop when k is a head's 32).
///
/// # Safety
/// `a + r * lda` holds `k` floats for `r < 4`, `b + p * ldb` holds 16 floats for `p < k`.
#[inline(always)]
#[allow(unused_assignments)] // the tail loop advances the pointers too; nothing reads them after
unsafe fn tile_4x16(
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    k: usize,
) -> [[float32x4_t; 4]; 4] {
    // SAFETY: the loops read `k` floats of each row of `a` and 16 floats of `k` rows of `b`
    // (post-incremented pointers, the contract's ranges); only declared registers change.
    unsafe {
        let z = vdupq_n_f32(0.0);
        let mut c = [[z; 4]; 4];
        let mut ar: [*const f32; 4] = core::array::from_fn(|r| a.add(r * lda));
        let mut bp = b;
        let ldb_bytes = 4 * ldb;
        let (steps, rest) = (k / 4, k % 4);
        if steps > 0 {
            tile_4x16_loop!(
                c,
                ar,
                bp,
                ldb_bytes,
                steps,
                "ldr q0, [{a0}], #16",
                "ldr q1, [{a1}], #16",
                "ldr q2, [{a2}], #16",
                "ldr q3, [{a3}], #16",
                fmla_4x16!("0"),
                fmla_4x16!("1"),
                fmla_4x16!("2"),
                fmla_4x16!("3"),
            );
        }
        if rest > 0 {
            tile_4x16_loop!(
                c,
                ar,
                bp,
                ldb_bytes,
                rest,
                "ldr s0, [{a0}], #4",
                "ldr s1, [{a1}], #4",
                "ldr s2, [{a2}], #4",
                "ldr s3, [{a3}], #4",
                fmla_4x16!("0"),
            );
        }
        c
    }
}

/// [`reference::gemm_f32`] bit for bit, with NEON for f32 weights (task heads, layers kept in
/// f32): each output is the reference's `dot4` sum, eight lanes of separate multiplies and
/// adds (no FMLA: the reference has none), folded `((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 +
/// l7))`, plus the scalar tail, plus the bias. LLVM's vectorisation of the portable loop shuffled
/// lanes through the stack (3 to 4 instructions a multiply-add, and it varied from build to
/// build); here it is 22 instructions for 32. f16 weights go to the reference.
pub fn gemm_f32(p: &GemmF32<'_>, out: &mut [f32]) {
    let (m, n, k) = (p.m, p.n, p.k);
    let w = match p.w {
        Weights::F32(w) => w,
        _ => return reference::gemm_f32(p, out),
    };
    let fits = |len: usize, rows: usize| rows.checked_mul(k).is_some_and(|need| need <= len);
    if !fits(w.len(), n)
        || !fits(p.a.len(), m)
        || m.checked_mul(n).is_none_or(|need| need > out.len())
        || p.bias.is_some_and(|b| b.len() < n)
    {
        // Let the reference report the bad shapes.
        return reference::gemm_f32(p, out);
    }
    let bias = |j: usize| p.bias.map_or(0.0, |b| b[j]);
    let k8 = k - k % 8;
    let mut j = 0;
    while j + 4 <= n {
        let rows: [&[f32]; 4] = core::array::from_fn(|r| &w[(j + r) * k..(j + r + 1) * k]);
        for i in 0..m {
            let a = &p.a[i * k..(i + 1) * k];
            // SAFETY: `a` and the four rows hold `k >= k8` floats each; NEON is baseline.
            let d = unsafe { dot4(a, rows, k8) };
            for r in 0..4 {
                let tail: f32 = a[k8..].iter().zip(&rows[r][k8..]).map(|(x, y)| x * y).sum();
                out[i * n + j + r] = d[r] + tail + bias(j + r);
            }
        }
        j += 4;
    }
    for jj in j..n {
        for i in 0..m {
            out[i * n + jj] =
                reference::dot_f32(&p.a[i * k..(i + 1) * k], &w[jj * k..(jj + 1) * k]) + bias(jj);
        }
    }
}

/// The first `k8` (a multiple of 8) elements of `a` against four rows, each folded as the
/// reference's `dot4` folds its eight lanes (the tail is the caller's).
///
/// # Safety
/// `a` and every row hold at least `k8` floats.
#[inline(always)]
unsafe fn dot4(a: &[f32], w: [&[f32]; 4], k8: usize) -> [f32; 4] {
    // SAFETY: every load reads 8 floats at an offset `< k8` (the contract).
    unsafe {
        let z = vdupq_n_f32(0.0);
        let mut lo = [z; 4];
        let mut hi = [z; 4];
        let mut p = 0;
        while p < k8 {
            let x = vld1q_f32_x2(a.as_ptr().add(p));
            for r in 0..4 {
                let y = vld1q_f32_x2(w[r].as_ptr().add(p));
                lo[r] = vaddq_f32(lo[r], vmulq_f32(x.0, y.0));
                hi[r] = vaddq_f32(hi[r], vmulq_f32(x.1, y.1));
            }
            p += 8;
        }
        core::array::from_fn(|r| {
            // [l0 + l4, l1 + l5, l2 + l6, l3 + l7], then (v0 + v1) + (v2 + v3).
            let v = vaddq_f32(lo[r], hi[r]);
            let pairs = vpaddq_f32(v, v);
            vpadds_f32(vget_low_f32(pairs))
        })
    }
}

/// Softmax of one row in place, bit-identical to [`vector::softmax`] with fused multiply-adds.
pub fn softmax(x: &mut [f32]) {
    // SAFETY: NEON is part of the aarch64 baseline; every load and store is of a 16-float
    // chunk of `x` or of a local block.
    unsafe {
        let mut chunks = x.chunks_exact(16);
        let mut m = [vdupq_n_f32(f32::NEG_INFINITY); 4];
        for c in &mut chunks {
            let v = vld1q_f32_x4(c.as_ptr());
            // FMAXNM is `f32::max` (the larger number, a NaN ignored): the portable lanes.
            m = [
                vmaxnmq_f32(m[0], v.0),
                vmaxnmq_f32(m[1], v.1),
                vmaxnmq_f32(m[2], v.2),
                vmaxnmq_f32(m[3], v.3),
            ];
        }
        // The maximum of numbers does not depend on the order it is taken in.
        let lanes = vmaxnmvq_f32(vmaxnmq_f32(
            vmaxnmq_f32(m[0], m[1]),
            vmaxnmq_f32(m[2], m[3]),
        ));
        let max = chunks.remainder().iter().fold(lanes, |a, &v| a.max(v));
        let vmax = vdupq_n_f32(max);
        let mut sums = [vdupq_n_f32(0.0); 4];
        let mut chunks = x.chunks_exact_mut(16);
        let mut exp16 = |p: *mut f32| {
            let v = vld1q_f32_x4(p);
            let e = [v.0, v.1, v.2, v.3].map(|v| exp_nonpositive(vsubq_f32(v, vmax)));
            for l in 0..4 {
                sums[l] = vaddq_f32(sums[l], e[l]);
            }
            vst1q_f32_x4(p, float32x4x4_t(e[0], e[1], e[2], e[3]));
        };
        for c in &mut chunks {
            exp16(c.as_mut_ptr());
        }
        // The tail through one block padded with -inf, as the portable code does.
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let mut block = [f32::NEG_INFINITY; 16];
            block[..tail.len()].copy_from_slice(tail);
            exp16(block.as_mut_ptr());
            tail.copy_from_slice(&block[..tail.len()]);
        }
        let mut lanes = [0.0f32; 16];
        vst1q_f32_x4(
            lanes.as_mut_ptr(),
            float32x4x4_t(sums[0], sums[1], sums[2], sums[3]),
        );
        // The same left-to-right sum of the 16 lanes.
        let inv = 1.0 / lanes.iter().sum::<f32>();
        let mut chunks = x.chunks_exact_mut(4);
        for c in &mut chunks {
            vst1q_f32(c.as_mut_ptr(), vmulq_n_f32(vld1q_f32(c.as_ptr()), inv));
        }
        for v in chunks.into_remainder() {
            *v *= inv;
        }
    }
}

/// [`vector::exp_nonpositive`] on 4 lanes, operation for operation.
#[inline(always)]
unsafe fn exp_nonpositive(x: float32x4_t) -> float32x4_t {
    // SAFETY: NEON arithmetic only.
    unsafe {
        // `x.max(-87.0)`: FMAXNM is `f32::max` (a NaN gives -87).
        let x = vmaxnmq_f32(x, vdupq_n_f32(-87.0));
        let magic = vdupq_n_f32(vector::MAGIC);
        let t = vfmaq_f32(magic, x, vdupq_n_f32(vector::LOG2E));
        let n = vsubq_f32(t, magic);
        // fma(-n, c, r) is FMLS (the negation is exact).
        let r = vfmsq_f32(x, n, vdupq_n_f32(vector::LN2_HI));
        let r = vfmsq_f32(r, n, vdupq_n_f32(vector::LN2_LO));
        let mut p = vdupq_n_f32(vector::EXP_POLY[0]);
        for &c in &vector::EXP_POLY[1..] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let bits = vshlq_n_u32::<23>(vsubq_u32(
            vreinterpretq_u32_f32(t),
            vdupq_n_u32(vector::EXP_BIAS),
        ));
        vmulq_f32(p, vreinterpretq_f32_u32(bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::Rng;

    fn madd(x: f32, y: f32, z: f32) -> f32 {
        x.mul_add(y, z)
    }

    /// The f32-weight GEMM (heads, kept-float layers) bit for bit the reference: row blocks of
    /// 4 and the leftover rows, k around the 8-lane blocks, with and without bias, and an f16
    /// layer (the reference's path).
    #[test]
    fn f32_weights_equal_the_reference_bit_for_bit() {
        let mut rng = Rng(12);
        for (m, n, k) in [
            (1, 1, 1),
            (3, 4, 8),
            (5, 7, 9),
            (17, 9, 384),
            (128, 13, 384),
            (2, 5, 0),
        ] {
            let a: std::vec::Vec<f32> = (0..m * k).map(|_| rng.f32() * 4.0 - 2.0).collect();
            let w: std::vec::Vec<f32> = (0..n * k).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let h: std::vec::Vec<u16> = w
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            let bias: std::vec::Vec<f32> = (0..n).map(|_| rng.f32()).collect();
            for weights in [Weights::F32(&w), Weights::F16(&h)] {
                for bias in [None, Some(&bias[..])] {
                    let p = GemmF32 {
                        m,
                        n,
                        k,
                        a: &a,
                        w: weights,
                        bias,
                    };
                    let (mut want, mut got) = (std::vec![0f32; m * n], std::vec![1f32; m * n]);
                    reference::gemm_f32(&p, &mut want);
                    gemm_f32(&p, &mut got);
                    let bits =
                        |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                    assert_eq!(bits(&want), bits(&got), "m {m} n {n} k {k}");
                }
            }
        }
    }

    /// Bit for bit the portable kernel, for every shape class (full tiles, column and row
    /// edges, k below and above 4), row strides wider than the data, and both output kinds.
    #[test]
    fn equals_the_portable_gemm_bit_for_bit() {
        let mut rng = Rng(11);
        let mut shapes = std::vec::Vec::new();
        for m in [1, 3, 4, 5, 8, 13] {
            for n in [1, 15, 16, 17, 32, 40] {
                for k in [0, 1, 3, 4, 5, 32, 37] {
                    shapes.push((m, n, k));
                }
            }
        }
        shapes.extend([(128, 128, 32), (128, 32, 128), (9, 64, 64)]);
        for (m, n, k) in shapes {
            let (lda, ldb, ldc) = (k + 3, n + 5, n + 2);
            let a: std::vec::Vec<f32> = (0..m * lda).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let b: std::vec::Vec<f32> =
                (0..k.max(1) * ldb).map(|_| rng.f32() * 2.0 - 1.0).collect();
            let (am, bm) = (
                Matrix {
                    data: &a,
                    stride: lda,
                },
                Matrix {
                    data: &b,
                    stride: ldb,
                },
            );
            let alpha = 0.17;
            let mut want = std::vec![f32::NAN; m * ldc];
            let mut want_view = MatMut::strided(&mut want, m, n, ldc);
            vector::gemm_nn(m, n, k, am, bm, &mut want_view, alpha, madd);
            let mut got = std::vec![f32::NAN; m * ldc];
            gemm_nn(
                m,
                n,
                k,
                am,
                bm,
                &mut MatMut::strided(&mut got, m, n, ldc),
                alpha,
                madd,
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k}");
            // Columns of a wider matrix (attention's P V output), from column 3.
            let mut wide = std::vec![f32::NAN; m * (ldc + 3)];
            let mut out = MatMut::strided(&mut wide, m, ldc + 3, ldc + 3);
            gemm_nn(m, n, k, am, bm, &mut out.split_cols(3).1, alpha, madd);
            for i in 0..m {
                assert_eq!(
                    bits(&wide[i * (ldc + 3) + 3..][..n]),
                    bits(&want[i * ldc..][..n]),
                    "columns {m}x{n}x{k} row {i}"
                );
            }
        }
    }

    /// Bit for bit the portable softmax: lengths around the 16-lane blocks, large and tiny
    /// spreads (the clamp), masked (-inf) entries, a row of equal values.
    #[test]
    fn softmax_equals_the_portable_one_bit_for_bit() {
        let mut rng = Rng(12);
        for len in [1, 2, 5, 15, 16, 17, 31, 32, 33, 64, 100, 128, 384] {
            for spread in [0.0, 1.0, 30.0, 200.0] {
                let mut row: std::vec::Vec<f32> =
                    (0..len).map(|_| (rng.f32() * 2.0 - 1.0) * spread).collect();
                if len > 3 {
                    row[len / 2] = f32::NEG_INFINITY;
                }
                let mut want = row.clone();
                vector::softmax(&mut want, madd);
                softmax(&mut row);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
                assert_eq!(bits(&row), bits(&want), "len {len} spread {spread}");
            }
        }
    }
}
