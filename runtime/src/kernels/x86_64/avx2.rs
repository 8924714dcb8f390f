//! AVX2 int8 GEMM for x86 CPUs without VNNI: int8 operands widened to i16 and multiplied with
//! `vpmaddwd` (two products summed into each i32 lane, exact: no saturation, unlike
//! `vpmaddubsw`).
//!
//! Weights in [`Layout::K4N16`]: 16 bytes of a k-group are 4 columns x 4 k; widened they meet a
//! broadcast of the activation group `[a0 a1 a2 a3] x 4` and give each column two pair sums,
//! folded at the end with `vphaddd`. Micro-kernel: 2 rows x 16 columns, 8 accumulators.

use crate::kernels::reference;
use crate::kernels::{GemmI8, Kernels, Layout};
use core::arch::x86_64::*;

pub static AVX2: Kernels = Kernels {
    name: "avx2",
    native_layout: Layout::K4N16,
    unsigned_activations: false,
    quantize_rows: ops::quantize_rows_signed,
    gemm_i8,
    gemm_f32: ops::gemm_f32,
    softmax: ops::softmax,
    activate: ops::activate,
    attention: ops::attention,
    add_layer_norm: ops::add_layer_norm,
};

vector_ops!("avx2,fma", crate::kernels::x86_64::f32gemm::gemm_nn_fma);

#[cfg(feature = "std")]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(feature = "std"))]
pub fn available() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "fma"))
}

fn gemm_i8(p: &GemmI8<'_>, out: &mut [f32]) {
    if p.w.layout == Layout::K4N16 {
        // SAFETY: this table is only selected (and only tested) when `available()` holds.
        unsafe { gemm_k4n16(p, out) }
    } else {
        reference::gemm_i8(p, out)
    }
}

/// Activation bytes `4g..4g+4` of a row (zero-completed past the end).
#[inline(always)]
fn group(row: &[i8], g: usize) -> i32 {
    let at = 4 * g;
    match row.get(at..at + 4) {
        Some(b) => i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]),
        None => {
            let mut b = [0u8; 4];
            for (d, &s) in b.iter_mut().zip(row.get(at..).unwrap_or(&[])) {
                *d = s as u8;
            }
            i32::from_le_bytes(b)
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_k4n16(p: &GemmI8<'_>, out: &mut [f32]) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let kg = k.div_ceil(4);
    for panel in 0..n.div_ceil(16) {
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(2);
            // SAFETY: avx2 is enabled for this function; `tile` checks its bounds.
            unsafe {
                if rows == 2 {
                    tile::<2>(p, out, i, panel, kg)
                } else {
                    tile::<1>(p, out, i, panel, kg)
                }
            }
            i += rows;
        }
    }
}

#[inline(always)]
unsafe fn tile<const R: usize>(
    p: &GemmI8<'_>,
    out: &mut [f32],
    i0: usize,
    panel: usize,
    kg: usize,
) {
    let (n, k) = (p.w.n, p.w.k);
    let w = p.w.data;
    let base = panel * kg * 64;
    assert!(w.len() >= base + kg * 64 && p.a.len() >= (i0 + R) * k);
    let rows: [&[i8]; R] = core::array::from_fn(|r| &p.a[(i0 + r) * k..(i0 + r + 1) * k]);
    let mut sums = [[0i32; 16]; R];
    // SAFETY: avx2 is enabled for the caller; every weight load reads 16 bytes of group `g` of
    // this panel, in bounds by the assert above.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 4]; R];
        for g in 0..kg {
            let b: [__m256i; 4] = core::array::from_fn(|quad| {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(
                    w.as_ptr().add(base + g * 64 + quad * 16) as *const _
                ))
            });
            for r in 0..R {
                let bytes = group(rows[r], g);
                let a16 = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(bytes));
                let a = _mm256_broadcastq_epi64(a16);
                for quad in 0..4 {
                    acc[r][quad] = _mm256_add_epi32(acc[r][quad], _mm256_madd_epi16(b[quad], a));
                }
            }
        }
        for r in 0..R {
            // Lanes hold (column, k-pair) sums: fold pairs, then restore column order.
            let lo = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(acc[r][0], acc[r][1]));
            let hi = _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(acc[r][2], acc[r][3]));
            _mm256_storeu_si256(sums[r].as_mut_ptr() as *mut _, lo);
            _mm256_storeu_si256(sums[r].as_mut_ptr().add(8) as *mut _, hi);
        }
    }
    let col0 = panel * 16;
    for (r, s) in sums.iter().enumerate() {
        let i = i0 + r;
        for (c, &acc) in s.iter().enumerate().take((n - col0).min(16)) {
            let j = col0 + c;
            out[i * n + j] = reference::dequantize(
                acc,
                p.a_scales[i],
                p.w.scales[j],
                p.bias.map_or(0.0, |b| b[j]),
            );
        }
    }
}

crate::kernel_test_suite!(avx2_suite, &AVX2, available());
