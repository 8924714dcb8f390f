//! The f32 GEMM of attention (`Q K^T` and `P V`) with NEON, as `x86_64/f32gemm.rs` is for x86.
//!
//! The portable [`vector::gemm_nn`] leaves the register tiling to LLVM, which spills its 4 x 32
//! tile on aarch64: about one multiply-add per instruction, the largest cost outside the int8
//! GEMMs (a third of a MiniLM inference at 128 tokens). Here a 4 x 16 tile lives in 16
//! registers; per 4 k: 4 activation loads, 16 B loads and 64 `FMLA` (by lane), 256 multiply-adds
//! in 84 instructions.
//!
//! Bit-identical to [`vector::gemm_nn`] with fused multiply-adds: every output is the same chain
//! `acc = fma(a[i][p], b[p][j], acc)` for `p = 0, 1, ...`, then `acc * alpha`. Edges (the last
//! `n % 16` columns, the last `m % 4` rows) go to the portable code, which computes them that way
//! too, so the result does not depend on which path took an element.

use crate::kernels::vector::{self, Matrix, Out};
use core::arch::aarch64::*;

/// `c[i][j] = alpha * sum_p a[i][p] * b[p][j]` (row stride `ldc`), as [`vector::gemm_nn`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_nn(
    m: usize,
    n: usize,
    k: usize,
    a: Matrix<'_>,
    b: Matrix<'_>,
    mut c: Out<'_>,
    ldc: usize,
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
        return vector::gemm_nn(m, n, k, a, b, c, ldc, alpha, madd);
    }
    for i in (0..m4).step_by(4) {
        for j in (0..n16).step_by(16) {
            let mut acc = [[0.0f32; 16]; 4];
            // SAFETY: rows `i..i + 4 <= m4` of `a` hold `k` floats from `a.data[(i + r) *
            // a.stride]`, rows `0..k` of `b` hold 16 floats from column `j + 16 <= n16` (both
            // checked above); NEON is part of the aarch64 baseline.
            unsafe {
                tile_4x16(
                    &mut acc,
                    a.data.as_ptr().add(i * a.stride),
                    a.stride,
                    b.data.as_ptr().add(j),
                    b.stride,
                    k,
                )
            };
            for (r, acc) in acc.iter().enumerate() {
                let out = c.row(ldc, i + r, j, 16);
                for (o, &v) in out.iter_mut().zip(acc) {
                    *o = v * alpha;
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
            c.shifted(0, n16, ldc),
            ldc,
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
            c.shifted(m4, 0, ldc),
            ldc,
            alpha,
            madd,
        );
    }
}

/// `acc[r][l] = fma chain over p of a[r][p] * b[p][l]` for 4 rows and 16 columns.
///
/// # Safety
/// `a + r * lda` holds `k` floats for `r < 4`, `b + p * ldb` holds 16 floats for `p < k`.
#[inline(always)]
unsafe fn tile_4x16(
    acc: &mut [[f32; 16]; 4],
    a: *const f32,
    lda: usize,
    b: *const f32,
    ldb: usize,
    k: usize,
) {
    // SAFETY: reads stay inside the ranges of the contract; stores go to `acc`.
    unsafe {
        let z = vdupq_n_f32(0.0);
        let mut c = [[z; 4]; 4];
        let ar: [*const f32; 4] = core::array::from_fn(|r| a.add(r * lda));
        let mut p = 0;
        while p + 4 <= k {
            let av: [float32x4_t; 4] = core::array::from_fn(|r| vld1q_f32(ar[r].add(p)));
            macro_rules! step {
                ($lane:literal) => {
                    let bv = vld1q_f32_x4(b.add((p + $lane) * ldb));
                    let bv = [bv.0, bv.1, bv.2, bv.3];
                    for r in 0..4 {
                        for q in 0..4 {
                            c[r][q] = vfmaq_laneq_f32::<$lane>(c[r][q], bv[q], av[r]);
                        }
                    }
                };
            }
            step!(0);
            step!(1);
            step!(2);
            step!(3);
            p += 4;
        }
        while p < k {
            let bv = vld1q_f32_x4(b.add(p * ldb));
            let bv = [bv.0, bv.1, bv.2, bv.3];
            for r in 0..4 {
                let av = *ar[r].add(p);
                for q in 0..4 {
                    c[r][q] = vfmaq_n_f32(c[r][q], bv[q], av);
                }
            }
            p += 1;
        }
        for r in 0..4 {
            vst1q_f32_x4(
                acc[r].as_mut_ptr(),
                float32x4x4_t(c[r][0], c[r][1], c[r][2], c[r][3]),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::Rng;
    use crate::parallel::SharedMut;

    fn madd(x: f32, y: f32, z: f32) -> f32 {
        x.mul_add(y, z)
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
            vector::gemm_nn(m, n, k, am, bm, Out::Slice(&mut want), ldc, alpha, madd);
            let mut got = std::vec![f32::NAN; m * ldc];
            gemm_nn(m, n, k, am, bm, Out::Slice(&mut got), ldc, alpha, madd);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<std::vec::Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{m}x{n}x{k}");
            // Columns of a wider matrix (attention's P V output), from column 3.
            let mut wide = std::vec![f32::NAN; m * (ldc + 3)];
            let out = Out::Columns {
                out: SharedMut::new(&mut wide),
                col0: 3,
            };
            gemm_nn(m, n, k, am, bm, out, ldc + 3, alpha, madd);
            for i in 0..m {
                assert_eq!(
                    bits(&wide[i * (ldc + 3) + 3..][..n]),
                    bits(&want[i * ldc..][..n]),
                    "columns {m}x{n}x{k} row {i}"
                );
            }
        }
    }
}
