//! AVX-512 VNNI int8 GEMM: `vpdpbusd` multiplies 4 unsigned activation bytes by 4 signed weight
//! bytes and adds them into one i32 lane, 64 MACs per instruction.
//!
//! Weights in [`Layout::K4N16`]: one 64-byte load is 16 output columns x 4 k, exactly one
//! `vpdpbusd` operand. Activations are stored as `q + 128` (u8) by this table's
//! `quantize_rows`; the `+128` is removed at the end with the weights' row sums:
//! `sum (q + 128) w = sum q w + 128 sum w`.
//!
//! Micro-kernel: up to 4 rows x 32 columns (two panels), 8 zmm accumulators; per k-group 2 weight
//! loads, 4 broadcast loads, 8 `vpdpbusd`.

use crate::kernels::reference;
use crate::kernels::{GemmI8, Kernels, Layout};
use core::arch::x86_64::*;

pub static AVX512VNNI: Kernels = Kernels {
    name: "avx512vnni",
    native_layout: Layout::K4N16,
    unsigned_activations: true,
    quantize_rows: ops::quantize_rows_unsigned,
    gemm_i8,
    gemm_f32: reference::gemm_f32,
    softmax: ops::softmax,
    activate: ops::activate,
    attention: ops::attention,
    add_layer_norm: ops::add_layer_norm,
};

vector_ops!("avx512f,avx512bw,avx512vl");

/// Whether this CPU can run the table.
#[cfg(feature = "std")]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vnni")
}

#[cfg(not(feature = "std"))]
pub fn available() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vnni"
    ))
}

fn gemm_i8(p: &GemmI8<'_>, out: &mut [f32]) {
    match (p.w.layout, p.w.row_sums) {
        (Layout::K4N16, Some(sums)) if sums.len() >= p.w.n => {
            // SAFETY: this table is only selected (and only tested) when `available()` holds,
            // so the CPU supports avx512f/bw/vnni.
            unsafe { gemm_k4n16(p, sums, out) }
        }
        _ => reference::gemm_i8_unsigned(p, out),
    }
}

/// Reads activation bytes `4g..4g+4` of a row as one little-endian i32; the last, partial group
/// is completed with zeros (they meet zero-padded weights).
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

#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn gemm_k4n16(p: &GemmI8<'_>, sums: &[i32], out: &mut [f32]) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let kg = k.div_ceil(4);
    let panels = n.div_ceil(16);
    let mut panel = 0;
    while panel < panels {
        let np = (panels - panel).min(2);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(4);
            // SAFETY: same target features as this function; bounds are established by the
            // caller's shapes and checked in `tile`.
            unsafe {
                match (rows, np) {
                    (4, 2) => tile::<4, 2>(p, sums, out, i, panel, kg),
                    (4, _) => tile::<4, 1>(p, sums, out, i, panel, kg),
                    (3, 2) => tile::<3, 2>(p, sums, out, i, panel, kg),
                    (3, _) => tile::<3, 1>(p, sums, out, i, panel, kg),
                    (2, 2) => tile::<2, 2>(p, sums, out, i, panel, kg),
                    (2, _) => tile::<2, 1>(p, sums, out, i, panel, kg),
                    (_, 2) => tile::<1, 2>(p, sums, out, i, panel, kg),
                    (_, _) => tile::<1, 1>(p, sums, out, i, panel, kg),
                }
            }
            i += rows;
        }
        panel += np;
    }
}

/// `R` rows starting at `i0` times `P` panels starting at `panel0`.
#[inline(always)]
unsafe fn tile<const R: usize, const P: usize>(
    p: &GemmI8<'_>,
    sums: &[i32],
    out: &mut [f32],
    i0: usize,
    panel0: usize,
    kg: usize,
) {
    let (n, k) = (p.w.n, p.w.k);
    let w = p.w.data;
    let panel_bytes = kg * 64;
    // Bounds of everything the unchecked loads below touch.
    assert!(w.len() >= (panel0 + P) * panel_bytes && p.a.len() >= (i0 + R) * k);
    let rows: [&[i8]; R] = core::array::from_fn(|r| &p.a[(i0 + r) * k..(i0 + r + 1) * k]);
    let full = k / 4;
    // SAFETY: avx512f is enabled for the caller; all pointers are in bounds by the assert above
    // (panel `panel0 + q` spans `panel_bytes` bytes, group `g < kg` is 64 of them).
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); P]; R];
        for g in 0..kg {
            let b: [__m512i; P] = core::array::from_fn(|q| {
                _mm512_loadu_si512(w.as_ptr().add((panel0 + q) * panel_bytes + g * 64) as *const _)
            });
            for r in 0..R {
                let bytes = if g < full {
                    core::ptr::read_unaligned(rows[r].as_ptr().add(4 * g) as *const i32)
                } else {
                    group(rows[r], g)
                };
                let a = _mm512_set1_epi32(bytes);
                for q in 0..P {
                    acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], a, b[q]);
                }
            }
        }
        // Output step, identical in rounding to `reference::dequantize`.
        #[allow(clippy::needless_range_loop)] // `q` indexes the accumulators and the panels
        for q in 0..P {
            let col0 = (panel0 + q) * 16;
            let valid = (n - col0).min(16);
            let mask: __mmask16 = if valid == 16 {
                0xffff
            } else {
                (1u16 << valid) - 1
            };
            let sw = _mm512_maskz_loadu_ps(mask, p.w.scales.as_ptr().add(col0));
            let bias = match p.bias {
                Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col0)),
                None => _mm512_setzero_ps(),
            };
            let offset =
                _mm512_slli_epi32::<7>(_mm512_maskz_loadu_epi32(mask, sums.as_ptr().add(col0)));
            for r in 0..R {
                let exact = _mm512_sub_epi32(acc[r][q], offset);
                let scale = _mm512_mul_ps(_mm512_set1_ps(p.a_scales[i0 + r]), sw);
                let v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale), bias);
                let dst = out[(i0 + r) * n + col0..].as_mut_ptr();
                _mm512_mask_storeu_ps(dst, mask, v);
            }
        }
    }
}

crate::kernel_test_suite!(avx512vnni_suite, &AVX512VNNI, available());
