//! f32 matrix products of attention (`Q K^T`, `P V`) for x86: an AVX-512 register-tiled kernel
//! (8 rows x 32 columns, 16 zmm accumulators, fused multiply-add, masked column tails), and the
//! portable tile compiled with FMA for AVX2.

use crate::kernels::vector::{self, Matrix, Out};
use core::arch::x86_64::*;

/// The portable [`vector::gemm_nn`] with fused multiply-add.
///
/// # Safety
/// The CPU must support `fma` (and the caller's other target features).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_nn_fma(
    m: usize,
    n: usize,
    k: usize,
    a: Matrix<'_>,
    b: Matrix<'_>,
    c: Out<'_>,
    ldc: usize,
    alpha: f32,
) {
    vector::gemm_nn(m, n, k, a, b, c, ldc, alpha, madd)
}

/// `x * y + z`: one fused instruction with `std` (`f32::mul_add` under the `fma` feature); core
/// has no `mul_add`, so without `std` the multiply and add stay separate.
#[inline(always)]
pub(crate) fn madd(x: f32, y: f32, z: f32) -> f32 {
    #[cfg(feature = "std")]
    return x.mul_add(y, z);
    #[cfg(not(feature = "std"))]
    return x * y + z;
}

/// `c = alpha * a b` (see [`vector::gemm_nn`]) with AVX-512.
///
/// # Safety
/// The CPU must support `avx512f` and `fma`.
#[target_feature(enable = "avx512f,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemm_nn_avx512(
    m: usize,
    n: usize,
    k: usize,
    a: Matrix<'_>,
    b: Matrix<'_>,
    mut c: Out<'_>,
    ldc: usize,
    alpha: f32,
) {
    if k == 0 {
        for i in 0..m {
            c.row(ldc, i, 0, n).fill(0.0);
        }
        return;
    }
    // Every row of `a` we read is `k` long and every row of `b` spans `n` columns.
    assert!(a.data.len() >= (m - 1) * a.stride + k || m == 0);
    assert!(b.data.len() >= (k - 1) * b.stride + n);
    let mut i = 0;
    while i < m {
        let rows = (m - i).min(8);
        let mut j = 0;
        while j < n {
            let cols = (n - j).min(32);
            // SAFETY: avx512f/fma are enabled for this function; `tile` reads rows i..i+rows of
            // `a` (k each) and columns j..j+cols of `b`'s k rows, in bounds by the asserts.
            unsafe {
                match rows {
                    8 => tile::<8>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    7 => tile::<7>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    6 => tile::<6>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    5 => tile::<5>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    4 => tile::<4>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    3 => tile::<3>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    2 => tile::<2>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                    _ => tile::<1>(k, &a, &b, &mut c, ldc, alpha, i, j, cols),
                }
            }
            j += cols;
        }
        i += rows;
    }
}

fn mask(lanes: usize) -> __mmask16 {
    if lanes >= 16 {
        0xffff
    } else {
        ((1u32 << lanes) - 1) as __mmask16
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize>(
    k: usize,
    a: &Matrix<'_>,
    b: &Matrix<'_>,
    c: &mut Out<'_>,
    ldc: usize,
    alpha: f32,
    i: usize,
    j: usize,
    cols: usize,
) {
    let (m0, m1) = (mask(cols), mask(cols.saturating_sub(16)));
    let a_rows: [*const f32; R] = core::array::from_fn(|r| a.data[(i + r) * a.stride..].as_ptr());
    let b_ptr = b.data[j..].as_ptr();
    // SAFETY: avx512f/fma are enabled for the caller; loads stay within the rows and columns the
    // caller checked; masked-off lanes are not accessed.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..k {
            let bp = b_ptr.add(p * b.stride);
            let b0 = _mm512_maskz_loadu_ps(m0, bp);
            let b1 = _mm512_maskz_loadu_ps(m1, bp.add(16));
            for r in 0..R {
                let av = _mm512_set1_ps(*a_rows[r].add(p));
                acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
            }
        }
        let scale = _mm512_set1_ps(alpha);
        for (r, acc_r) in acc.iter().enumerate() {
            let out = c.row(ldc, i + r, j, cols).as_mut_ptr();
            _mm512_mask_storeu_ps(out, m0, _mm512_mul_ps(acc_r[0], scale));
            if cols > 16 {
                _mm512_mask_storeu_ps(out.add(16), m1, _mm512_mul_ps(acc_r[1], scale));
            }
        }
    }
}
