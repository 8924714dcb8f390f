//! AVX-512 VNNI int8 GEMM: `vpdpbusd` multiplies 4 unsigned activation bytes by 4 signed weight
//! bytes and adds them into one i32 lane, 64 MACs per instruction.
//!
//! Weights in [`Layout::K4N16`]: one 64-byte load is 16 output columns x 4 k, exactly one
//! `vpdpbusd` operand. Activations are stored as `q + 128` (u8) by this table's
//! `quantize_rows`; the `+128` is removed at the end with the weights' row sums:
//! `sum (q + 128) w = sum q w + 128 sum w`.
//!
//! Micro-kernel: up to 8 rows x 32 columns (two panels), 16 zmm accumulators; per k-group 2
//! weight loads, 8 broadcast loads, 16 `vpdpbusd`.

use crate::kernels::reference;
use crate::kernels::{GemmI8, Kernels, Layout, MatMut};
use core::arch::x86_64::*;

pub static AVX512VNNI: Kernels = TABLE;

/// The table as a constant, so that the AMX table can reuse everything but the GEMM.
pub(super) const TABLE: Kernels = Kernels {
    name: "avx512vnni",
    native_layout: Layout::K4N16,
    unsigned_activations: true,
    quantize_rows,
    gemm_i8,
    gemm_f32: ops::gemm_f32,
    softmax: ops::softmax,
    activate: ops::activate,
    attention: ops::attention,
    add_layer_norm: ops::add_layer_norm,
};

vector_ops!(
    "avx512f,avx512bw,avx512vl,fma",
    crate::kernels::x86_64::f32gemm::gemm_nn_avx512
);

/// Whether this CPU can run the table.
#[cfg(feature = "std")]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512vl")
        && std::arch::is_x86_feature_detected!("avx512vnni")
        && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(feature = "std"))]
pub fn available() -> bool {
    cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl",
        target_feature = "avx512vnni",
        target_feature = "fma"
    ))
}

fn quantize_rows(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool) {
    // SAFETY: this table is only selected (and only tested) when `available()` holds.
    unsafe { quantize_rows_avx512(x, cols, q, scales, max_known) }
}

/// `vector::quantize_rows` + the `+128` encoding, in AVX-512: identical values and scales (the
/// maximum is exact in any order; rounding is the same truncation of `y +- 0.5`).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn quantize_rows_avx512(
    x: &[f32],
    cols: usize,
    q: &mut [i8],
    scales: &mut [f32],
    max_known: bool,
) {
    if cols == 0 {
        return;
    }
    let full = cols / 16;
    let tail = cols % 16;
    let tail_mask: __mmask16 = ((1u32 << tail) - 1) as u16;
    for ((row, qrow), scale) in x
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(scales)
    {
        // SAFETY: every load/store covers `row[16c..16c+16]` for c < full, or the masked tail,
        // inside the row (masked-off lanes are not accessed).
        unsafe {
            let max = if max_known {
                *scale
            } else {
                max_abs(row, full, tail_mask)
            };
            if max == 0.0 || !max.is_finite() {
                *scale = 0.0;
                qrow.fill(0x80u8 as i8); // zero in the +128 encoding
                continue;
            }
            *scale = max / 127.0;
            let inv = _mm512_set1_ps(127.0 / max);
            // 0.5 with y's sign, by integer bit operations: the float forms (`_mm512_or_ps`)
            // need AVX-512 DQ and would not inline here.
            let half = _mm512_set1_epi32(0.5f32.to_bits() as i32);
            let sign = _mm512_set1_epi32(i32::MIN);
            let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
            let offset = _mm512_set1_epi32(128);
            let convert = |v: __m512| {
                let y = _mm512_mul_ps(v, inv);
                let signed_half =
                    _mm512_or_si512(half, _mm512_and_si512(_mm512_castps_si512(y), sign));
                let r = _mm512_add_ps(y, _mm512_castsi512_ps(signed_half));
                let i = _mm512_min_epi32(_mm512_max_epi32(_mm512_cvttps_epi32(r), lo), hi);
                _mm512_add_epi32(i, offset)
            };
            for c in 0..full {
                let v = convert(_mm512_loadu_ps(row.as_ptr().add(16 * c)));
                _mm512_mask_cvtepi32_storeu_epi8(
                    qrow.as_mut_ptr().add(16 * c) as *mut _,
                    0xffff,
                    v,
                );
            }
            if tail > 0 {
                let v = convert(_mm512_maskz_loadu_ps(
                    tail_mask,
                    row.as_ptr().add(16 * full),
                ));
                _mm512_mask_cvtepi32_storeu_epi8(
                    qrow.as_mut_ptr().add(16 * full) as *mut _,
                    tail_mask,
                    v,
                );
            }
        }
    }
}

/// `max |row|` (`full` 16-float chunks, then the `tail_mask` lanes), starting from 0.
///
/// # Safety
/// `row` holds `16 full` floats plus the tail lanes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
unsafe fn max_abs(row: &[f32], full: usize, tail_mask: __mmask16) -> f32 {
    // SAFETY: every load covers `row[16c..16c+16]` for c < full, or the masked tail, inside the
    // row (masked-off lanes are not accessed).
    unsafe {
        // Four independent maxima: one chain would wait on `vmaxps`'s latency per vector.
        let abs_at = |c: usize| _mm512_abs_ps(_mm512_loadu_ps(row.as_ptr().add(16 * c)));
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut c = 0;
        while c + 4 <= full {
            for (j, a) in acc.iter_mut().enumerate() {
                *a = _mm512_max_ps(*a, abs_at(c + j));
            }
            c += 4;
        }
        while c < full {
            acc[0] = _mm512_max_ps(acc[0], abs_at(c));
            c += 1;
        }
        let mut m = _mm512_max_ps(_mm512_max_ps(acc[0], acc[1]), _mm512_max_ps(acc[2], acc[3]));
        if tail_mask != 0 {
            let v = _mm512_maskz_loadu_ps(tail_mask, row.as_ptr().add(16 * full));
            m = _mm512_max_ps(m, _mm512_abs_ps(v));
        }
        _mm512_reduce_max_ps(m)
    }
}

pub(super) fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
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
unsafe fn gemm_k4n16(p: &GemmI8<'_>, sums: &[i32], out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let kg = k.div_ceil(4);
    let panels = n.div_ceil(16);
    let mut panel = 0;
    while panel < panels {
        let np = (panels - panel).min(2);
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(8);
            // SAFETY: same target features as this function; bounds are established by the
            // caller's shapes and checked in `tile`.
            unsafe {
                match (rows, np) {
                    (8, 2) => tile::<8, 2>(p, sums, out, i, panel, kg),
                    (8, _) => tile::<8, 1>(p, sums, out, i, panel, kg),
                    (7, 2) => tile::<7, 2>(p, sums, out, i, panel, kg),
                    (7, _) => tile::<7, 1>(p, sums, out, i, panel, kg),
                    (6, 2) => tile::<6, 2>(p, sums, out, i, panel, kg),
                    (6, _) => tile::<6, 1>(p, sums, out, i, panel, kg),
                    (5, 2) => tile::<5, 2>(p, sums, out, i, panel, kg),
                    (5, _) => tile::<5, 1>(p, sums, out, i, panel, kg),
                    (4, 2) => tile::<4, 2>(p, sums, out, i, panel, kg),
                    (4, _) => tile::<4, 1>(p, sums, out, i, panel, kg),
                    (3, 2) => tile::<3, 2>(p, sums, out, i, panel, kg),
                    (3, _) => tile::<3, 1>(p, sums, out, i, panel, kg),
                    (2, 2) => tile::<2, 2>(p, sums, out, i, panel, kg),
                    (2, _) => tile::<2, 1>(p, sums, out, i, panel, kg),
                    (1, 2) => tile::<1, 2>(p, sums, out, i, panel, kg),
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
    out: &mut MatMut<'_>,
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
                let dst = out.row(i0 + r)[col0..].as_mut_ptr();
                _mm512_mask_storeu_ps(dst, mask, v);
            }
        }
    }
}

crate::kernel_test_suite!(avx512vnni_suite, &AVX512VNNI, available());
