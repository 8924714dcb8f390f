//! x86-64 kernel tables: AVX2, AVX-512 VNNI, and AMX (AVX-512 VNNI with AMX tile GEMMs).

/// Compiles the portable vector kernels ([`super::vector`]) for a table's target features:
/// defines `softmax`, `activate`, `attention`, `add_layer_norm`, `gemm_f32` and
/// `quantize_rows_signed`.
/// Only expand it in a module whose table is selected solely when those features are present.
macro_rules! vector_ops {
    ($features:literal, $gemm_nn:path) => {
        mod ops {
            use crate::format::Activation;
            use crate::kernels::vector;
            use crate::kernels::x86_64::f32gemm::madd;

            #[target_feature(enable = $features)]
            unsafe fn softmax_impl(x: &mut [f32]) {
                vector::softmax(x, madd)
            }
            pub fn softmax(x: &mut [f32]) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { softmax_impl(x) }
            }

            #[target_feature(enable = $features)]
            unsafe fn activate_impl(
                act: Activation,
                x: &mut [f32],
                cols: usize,
                row_max: Option<&mut [f32]>,
            ) {
                vector::activate_rows(act, x, cols, row_max, madd)
            }
            pub fn activate(
                act: Activation,
                x: &mut [f32],
                cols: usize,
                row_max: Option<&mut [f32]>,
            ) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { activate_impl(act, x, cols, row_max) }
            }

            #[target_feature(enable = $features)]
            unsafe fn attention_impl(
                a: &vector::Attention<'_>,
                heads: core::ops::Range<usize>,
                scores: &mut [f32],
            ) {
                vector::attention(
                    a,
                    heads,
                    scores,
                    |row| vector::softmax(row, madd),
                    |m, n, k, x, y, out, alpha| {
                        // SAFETY: this closure runs inside `attention_impl`, whose target features
                        // ($features) are those `$gemm_nn` needs.
                        unsafe { $gemm_nn(m, n, k, x, y, out, alpha) }
                    },
                )
            }
            pub fn attention(
                a: &vector::Attention<'_>,
                heads: core::ops::Range<usize>,
                scores: &mut [f32],
            ) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { attention_impl(a, heads, scores) }
            }

            #[target_feature(enable = $features)]
            unsafe fn add_layer_norm_impl(
                x: &mut [f32],
                residual: Option<&[f32]>,
                gamma: &[f32],
                beta: &[f32],
                eps: f32,
                row_max: Option<&mut [f32]>,
            ) {
                vector::add_layer_norm(x, residual, gamma, beta, eps, row_max, madd)
            }
            pub fn add_layer_norm(
                x: &mut [f32],
                residual: Option<&[f32]>,
                gamma: &[f32],
                beta: &[f32],
                eps: f32,
                row_max: Option<&mut [f32]>,
            ) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { add_layer_norm_impl(x, residual, gamma, beta, eps, row_max) }
            }

            #[target_feature(enable = $features)]
            unsafe fn gemm_f32_impl(p: &crate::kernels::GemmF32<'_>, out: &mut [f32]) {
                crate::kernels::reference::gemm_f32_inline(p, out)
            }
            fn gemm_f32_portable(p: &crate::kernels::GemmF32<'_>, out: &mut [f32]) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { gemm_f32_impl(p, out) }
            }
            /// f32 / f16 weights: the FMA kernel when the CPU also has F16C; int8 weights (the
            /// reference precision) and CPUs without it: the portable code.
            pub fn gemm_f32(p: &crate::kernels::GemmF32<'_>, out: &mut [f32]) {
                crate::kernels::x86_64::f32gemm::gemm_f32_fma(p, out, gemm_f32_portable)
            }

            #[target_feature(enable = $features)]
            unsafe fn quantize_rows_impl<const OFFSET: bool>(
                x: &[f32],
                cols: usize,
                q: &mut [i8],
                scales: &mut [f32],
                max_known: bool,
            ) {
                vector::quantize_rows(x, cols, q, scales, max_known);
                if OFFSET {
                    for v in q.iter_mut() {
                        *v = (*v as u8 ^ 0x80) as i8;
                    }
                }
            }
            #[allow(dead_code)]
            pub fn quantize_rows_signed(
                x: &[f32],
                cols: usize,
                q: &mut [i8],
                scales: &mut [f32],
                max_known: bool,
            ) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { quantize_rows_impl::<false>(x, cols, q, scales, max_known) }
            }
            #[allow(dead_code)]
            pub fn quantize_rows_unsigned(
                x: &[f32],
                cols: usize,
                q: &mut [i8],
                scales: &mut [f32],
                max_known: bool,
            ) {
                // SAFETY: the table using this is only selected when its features are present.
                unsafe { quantize_rows_impl::<true>(x, cols, q, scales, max_known) }
            }
        }
    };
}

pub mod amx;
pub mod avx2;
pub mod avx512vnni;
pub mod f32gemm;

use super::Kernels;

/// The fastest table this CPU supports.
pub fn best() -> &'static Kernels {
    if amx::available() {
        &amx::AMX
    } else if avx512vnni::available() {
        &avx512vnni::AVX512VNNI
    } else if avx2::available() {
        &avx2::AVX2
    } else {
        &super::REFERENCE
    }
}

/// A table by name, if this CPU supports it.
pub fn by_name(name: &str) -> Option<&'static Kernels> {
    match name {
        "amx" if amx::available() => Some(&amx::AMX),
        "avx512vnni" if avx512vnni::available() => Some(&avx512vnni::AVX512VNNI),
        "avx2" if avx2::available() => Some(&avx2::AVX2),
        _ => None,
    }
}
