//! f32 matrix products of attention (`Q K^T`, `P V`) for x86: an AVX-512 register-tiled kernel
//! (8 rows x 32 columns, 16 zmm accumulators, fused multiply-add, masked column tails), and the
//! portable tile compiled with FMA for AVX2.

use crate::kernels::vector::{self, Matrix};
use crate::kernels::MatMut;
use crate::kernels::{GemmF32, Weights};
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
    c: &mut MatMut<'_>,
    alpha: f32,
) {
    vector::gemm_nn(m, n, k, a, b, c, alpha, madd)
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
    c: &mut MatMut<'_>,
    alpha: f32,
) {
    if k == 0 {
        for i in 0..m {
            c.row(i)[..n].fill(0.0);
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
                    8 => tile::<8>(k, &a, &b, c, alpha, i, j, cols),
                    7 => tile::<7>(k, &a, &b, c, alpha, i, j, cols),
                    6 => tile::<6>(k, &a, &b, c, alpha, i, j, cols),
                    5 => tile::<5>(k, &a, &b, c, alpha, i, j, cols),
                    4 => tile::<4>(k, &a, &b, c, alpha, i, j, cols),
                    3 => tile::<3>(k, &a, &b, c, alpha, i, j, cols),
                    2 => tile::<2>(k, &a, &b, c, alpha, i, j, cols),
                    _ => tile::<1>(k, &a, &b, c, alpha, i, j, cols),
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
    c: &mut MatMut<'_>,
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
            let out = c.row(i + r)[j..j + cols].as_mut_ptr();
            _mm512_mask_storeu_ps(out, m0, _mm512_mul_ps(acc_r[0], scale));
            if cols > 16 {
                _mm512_mask_storeu_ps(out.add(16), m1, _mm512_mul_ps(acc_r[1], scale));
            }
        }
    }
}

/// `out = a W^T + bias` for f32 or f16 weights (`[n, k]` row-major): 2 rows of `a` x 4 weight
/// rows per step, 8-wide fused multiply-adds, f16 widened with `vcvtph2ps` as it is loaded
/// (the weights stay in the file). Int8 weights go to `fallback`.
pub fn gemm_f32_fma(p: &GemmF32<'_>, out: &mut [f32], fallback: fn(&GemmF32<'_>, &mut [f32])) {
    if matches!(p.w, Weights::I8(_)) || !f16c_fma() {
        return fallback(p, out);
    }
    let (m, n, k) = (p.m, p.n, p.k);
    let ok = p.a.len() >= m * k
        && out.len() >= m * n
        && p.bias.is_none_or(|b| b.len() >= n)
        && match p.w {
            Weights::F32(w) => w.len() >= n * k,
            Weights::F16(w) => w.len() >= n * k,
            Weights::I8(_) => false,
        };
    if !ok {
        return fallback(p, out);
    }
    // SAFETY: the CPU has avx2, fma and f16c (checked above); every slice holds the rows and
    // columns the kernel reads and writes (checked above).
    unsafe { gemm_f32_fma_impl(p, out) }
}

#[cfg(feature = "std")]
fn f16c_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("fma")
        && std::arch::is_x86_feature_detected!("f16c")
}

#[cfg(not(feature = "std"))]
fn f16c_fma() -> bool {
    cfg!(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))
}

/// 8 weights of row `j` from column `c` as f32.
#[inline(always)]
unsafe fn load_w(w: &Weights<'_>, k: usize, j: usize, c: usize) -> __m256 {
    // SAFETY: the caller keeps `j * k + c + 8 <= n * k` and has the features enabled.
    unsafe {
        match w {
            Weights::F16(h) => {
                _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr().add(j * k + c) as *const __m128i))
            }
            Weights::F32(f) => _mm256_loadu_ps(f.as_ptr().add(j * k + c)),
            Weights::I8(_) => _mm256_setzero_ps(),
        }
    }
}

#[inline(always)]
fn w_at(w: &Weights<'_>, k: usize, j: usize, c: usize) -> f32 {
    match w {
        Weights::F16(h) => half::f16::from_bits(h[j * k + c]).to_f32(),
        Weights::F32(f) => f[j * k + c],
        Weights::I8(_) => 0.0,
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: avx is enabled by the caller.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn gemm_f32_fma_impl(p: &GemmF32<'_>, out: &mut [f32]) {
    let (m, n, k) = (p.m, p.n, p.k);
    let k8 = k / 8 * 8;
    let w = &p.w;
    let a = p.a.as_ptr();
    let mut j = 0;
    while j < n {
        let cols = (n - j).min(4);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(2);
            // SAFETY: reads stay within rows i..i+rows of `a` and j..j+cols of `w` (the last
            // row/column is repeated to fill the tile); features are enabled for this function.
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 4]; 2];
                let mut c = 0;
                while c < k8 {
                    let wv: [__m256; 4] =
                        core::array::from_fn(|t| load_w(w, k, j + t.min(cols - 1), c));
                    for (r, acc_r) in acc.iter_mut().enumerate() {
                        let av = _mm256_loadu_ps(a.add((i + r.min(rows - 1)) * k + c));
                        for (acc_rt, &wt) in acc_r.iter_mut().zip(&wv) {
                            *acc_rt = _mm256_fmadd_ps(av, wt, *acc_rt);
                        }
                    }
                    c += 8;
                }
                for r in 0..rows {
                    for t in 0..cols {
                        let mut s = hsum(acc[r][t]);
                        for cc in k8..k {
                            s += *a.add((i + r) * k + cc) * w_at(w, k, j + t, cc);
                        }
                        out[(i + r) * n + j + t] = s + p.bias.map_or(0.0, |b| b[j + t]);
                    }
                }
            }
            i += rows;
        }
        j += cols;
    }
}
