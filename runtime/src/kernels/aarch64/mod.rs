//! aarch64 kernel tables: [`NEON`] (ARMv8.0: Cortex-A53/A72, Raspberry Pi 3/4), [`DOTPROD`]
//! (SDOT: Cortex-A55/A76, Pi 5, RK3588) and [`I8MM`] (SMMLA: Neoverse V1/V2, Cortex-A710+).
//!
//! - NEON and DOTPROD take K4N16 weights; I8MM takes K8N8, and K4N16 too (its tiles zipped in
//!   registers, so the default model file runs SMMLA on an i8mm core); every other layout goes
//!   to the reference (see [`super::pack`]).
//! - All three run one GEMM driver ([`gemm::gemm`]: blocks of 16 columns, row tiles, zero-padded
//!   k tails) with a micro-kernel each (`Neon`, `Sdot`, `SmmlaK8N8`, `SmmlaK4N16`: the `asm!`
//!   k loop and the output step of a register tile). They share the NEON activation quantizer
//!   [`quantize_rows`] (bit-identical to the reference) and the output arithmetic
//!   (`acc as f32 * (a_scale * w_scale) + bias`, a separate multiply and add: no FMLA).
//! - SDOT and SMMLA are written with `asm!` (their intrinsics are unstable) inside functions
//!   compiled with `#[target_feature(enable = "dotprod" / "i8mm")]`. The table wrappers check
//!   [`has_dotprod`] / [`has_i8mm`] (a cached load with `std`, a constant without) before calling
//!   them and otherwise fall back to a kernel this CPU can run, so the public tables are sound to
//!   call anywhere; [`best`] and [`by_name`] only hand out tables the CPU supports.
//!
//! NEON intrinsics are `unsafe fn` on older compilers (the MSRV) and safe ones on newer, so the
//! kernels keep them inside `unsafe` blocks and allow `unused_unsafe`.
#![allow(unused_unsafe)]

pub mod dotprod;
pub mod float;
pub(crate) mod gemm;
pub mod i8mm;
pub mod neon;

pub use dotprod::DOTPROD;
pub use i8mm::I8MM;
pub use neon::NEON;

use super::{reference, Kernels};
use core::arch::aarch64::*;

/// Whether this CPU executes SDOT (runtime detection: the OS's with `std`, the ID registers
/// without; always true when the build enables the feature).
#[inline]
pub fn has_dotprod() -> bool {
    #[cfg(feature = "std")]
    return std::arch::is_aarch64_feature_detected!("dotprod");
    #[cfg(not(feature = "std"))]
    return cfg!(target_feature = "dotprod") || id_registers::features().dotprod;
}

/// Whether this CPU executes SMMLA (and SDOT, which the I8MM table also uses).
#[inline]
pub fn has_i8mm() -> bool {
    #[cfg(feature = "std")]
    return std::arch::is_aarch64_feature_detected!("i8mm") && has_dotprod();
    #[cfg(not(feature = "std"))]
    return (cfg!(target_feature = "i8mm") || id_registers::features().i8mm) && has_dotprod();
}

/// CPU features from the ID registers, for builds without an OS to ask (bare metal: one image
/// runs on a Cortex-A53 and on a Neoverse core). Read once and cached.
#[cfg(not(feature = "std"))]
pub mod id_registers {
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};

    /// The features the kernels care about.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Features {
        /// `ID_AA64ISAR0_EL1.DP` (bits 47:44) is at least 1: SDOT/UDOT.
        pub dotprod: bool,
        /// `ID_AA64ISAR1_EL1.I8MM` (bits 55:52) is at least 1: SMMLA/UMMLA.
        pub i8mm: bool,
    }

    const KNOWN: u8 = 1;
    const DOTPROD: u8 = 2;
    const I8MM: u8 = 4;
    /// `KNOWN | DOTPROD? | I8MM?` once read; 0 before.
    static CACHE: AtomicU8 = AtomicU8::new(0);

    /// The decoded fields of the two ID register values.
    pub fn decode(isar0: u64, isar1: u64) -> Features {
        Features {
            dotprod: (isar0 >> 44) & 0xf >= 1,
            i8mm: (isar1 >> 52) & 0xf >= 1,
        }
    }

    /// This CPU's features.
    pub fn features() -> Features {
        let mut bits = CACHE.load(Relaxed);
        if bits & KNOWN == 0 {
            let (isar0, isar1): (u64, u64);
            // SAFETY: reading the ID registers has no side effects and touches no memory. They
            // are readable at EL1 (the firmware); at EL0 under Linux the kernel emulates the read.
            unsafe {
                core::arch::asm!(
                    "mrs {0}, ID_AA64ISAR0_EL1",
                    "mrs {1}, ID_AA64ISAR1_EL1",
                    out(reg) isar0,
                    out(reg) isar1,
                    options(nomem, nostack, preserves_flags)
                );
            }
            let f = decode(isar0, isar1);
            bits = KNOWN | if f.dotprod { DOTPROD } else { 0 } | if f.i8mm { I8MM } else { 0 };
            // Racing first calls store the same value.
            CACHE.store(bits, Relaxed);
        }
        Features {
            dotprod: bits & DOTPROD != 0,
            i8mm: bits & I8MM != 0,
        }
    }
}

/// The fastest aarch64 table this CPU supports: I8MM, else DOTPROD, else NEON.
pub fn best() -> &'static Kernels {
    if has_i8mm() {
        &I8MM
    } else if has_dotprod() {
        &DOTPROD
    } else {
        &NEON
    }
}

/// The table called `name` (`"neon"`, `"dotprod"`, `"i8mm"`) if this CPU supports it.
pub fn by_name(name: &str) -> Option<&'static Kernels> {
    match name {
        "neon" => Some(&NEON),
        "dotprod" if has_dotprod() => Some(&DOTPROD),
        "i8mm" if has_i8mm() => Some(&I8MM),
        _ => None,
    }
}

/// Symmetric per-row int8 quantization with NEON, bit-identical to
/// [`reference::quantize_rows`]: the same max (FMAXNM, like `f32::max`, is order-independent on
/// magnitudes), scale, `127 / max`, and `(v * inv + copysign(0.5, v * inv))` truncated.
///
/// The clamp to `[-127, 127]` is implicit: `|v| <= max` and `inv` is `127 / max` rounded, so
/// `|v * inv| < 127.0001` and the rounded result fits; a truncating narrow is exact. Only when
/// `127 / max` overflows (max below ~4e-37) the clamp matters: those rows take the reference.
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
            *scale = 0.0;
            qrow.fill(0);
            continue;
        }
        let inv = 127.0 / max;
        if !inv.is_finite() {
            *scale = max;
            reference::quantize_rows(row, cols, qrow, core::slice::from_mut(scale), true);
            continue;
        }
        *scale = max / 127.0;
        quantize_row(row, inv, qrow);
    }
}

/// `max |x|`, starting from 0 like the reference's fold.
#[inline(always)]
fn max_abs(x: &[f32]) -> f32 {
    let mut chunks = x.chunks_exact(16);
    // SAFETY: each chunk holds 16 floats.
    let mut max = unsafe {
        let mut m = [vdupq_n_f32(0.0); 4];
        for c in &mut chunks {
            let v = vld1q_f32_x4(c.as_ptr());
            m[0] = vmaxnmq_f32(m[0], vabsq_f32(v.0));
            m[1] = vmaxnmq_f32(m[1], vabsq_f32(v.1));
            m[2] = vmaxnmq_f32(m[2], vabsq_f32(v.2));
            m[3] = vmaxnmq_f32(m[3], vabsq_f32(v.3));
        }
        vmaxnmvq_f32(vmaxnmq_f32(
            vmaxnmq_f32(m[0], m[1]),
            vmaxnmq_f32(m[2], m[3]),
        ))
    };
    for &v in chunks.remainder() {
        max = max.max(v.abs());
    }
    max
}

#[inline(always)]
fn quantize_row(row: &[f32], inv: f32, q: &mut [i8]) {
    let mut xs = row.chunks_exact(16);
    let mut qs = q.chunks_exact_mut(16);
    // SAFETY: each chunk pair is 16 floats in and 16 bytes out.
    unsafe {
        let vinv = vdupq_n_f32(inv);
        let half = vdupq_n_f32(0.5);
        let sign = vdupq_n_u32(0x8000_0000);
        let round = |v: float32x4_t| {
            let t = vmulq_f32(v, vinv);
            // t + copysign(0.5, t), with the sign taken from v (the same as t's: inv > 0), so
            // that v's register can be overwritten (BIF, no copy). Equal to the reference's
            // `t >= 0 ? 0.5 : -0.5` except for t = -0.0 and NaN, which truncate to 0 either way.
            vreinterpretq_s16_s32(vcvtq_s32_f32(vaddq_f32(t, vbslq_f32(sign, v, half))))
        };
        for (x, d) in (&mut xs).zip(&mut qs) {
            let v = vld1q_f32_x4(x.as_ptr());
            let lo = vuzp1q_s16(round(v.0), round(v.1));
            let hi = vuzp1q_s16(round(v.2), round(v.3));
            let b = vuzp1q_s8(vreinterpretq_s8_s16(lo), vreinterpretq_s8_s16(hi));
            vst1q_s8(d.as_mut_ptr(), b);
        }
    }
    for (d, &v) in qs.into_remainder().iter_mut().zip(xs.remainder()) {
        *d = reference::quantize_value(v * inv);
    }
}

/// The float kernels of every aarch64 table: the portable vector code, which LLVM vectorises
/// with NEON (part of the aarch64 baseline, so no target feature is needed).
pub(crate) mod ops {
    use crate::format::Activation;
    use crate::kernels::vector;

    pub fn softmax(x: &mut [f32]) {
        super::float::softmax(x)
    }

    pub fn activate(act: Activation, x: &mut [f32], cols: usize, row_max: Option<&mut [f32]>) {
        vector::activate_rows(act, x, cols, row_max, madd)
    }

    pub fn attention(
        a: &vector::Attention<'_>,
        heads: core::ops::Range<usize>,
        scores: &mut [f32],
    ) {
        vector::attention(
            a,
            heads,
            scores,
            super::float::softmax,
            |m, n, k, x, y, out, alpha| super::float::gemm_nn(m, n, k, x, y, out, alpha, madd),
        )
    }

    /// `x * y + z` rounded once, as every aarch64 core computes it (FMLA), with or without
    /// `std` (`f32::mul_add` is FMLA, ARMv8.0 baseline; libm's `fmaf` would be a software
    /// routine): the bare-metal firmware then answers bit for bit what `bertq` does on Linux.
    #[inline(always)]
    fn madd(x: f32, y: f32, z: f32) -> f32 {
        #[cfg(feature = "std")]
        return x.mul_add(y, z);
        // `core` has no `f32::mul_add` on stable: the NEON intrinsic is the same `llvm.fma`.
        #[cfg(not(feature = "std"))]
        return {
            use core::arch::aarch64::{vdup_n_f32, vfma_f32, vget_lane_f32};
            // SAFETY: NEON is part of the aarch64 baseline; the intrinsics only compute.
            unsafe { vget_lane_f32::<0>(vfma_f32(vdup_n_f32(z), vdup_n_f32(x), vdup_n_f32(y))) }
        };
    }

    pub fn add_layer_norm(
        x: &mut [f32],
        residual: Option<&[f32]>,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        row_max: Option<&mut [f32]>,
    ) {
        vector::add_layer_norm(x, residual, gamma, beta, eps, row_max, madd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_names() {
        assert_eq!(NEON.name, "neon");
        assert_eq!(by_name("neon").map(|k| k.name), Some("neon"));
        assert_eq!(by_name("dotprod").is_some(), has_dotprod());
        assert_eq!(by_name("i8mm").is_some(), has_i8mm());
        assert!(by_name("avx2").is_none());
        let expected = if has_i8mm() {
            "i8mm"
        } else if has_dotprod() {
            "dotprod"
        } else {
            "neon"
        };
        assert_eq!(best().name, expected);
    }

    #[test]
    fn quantize_tiny_and_odd_rows() {
        // Rows whose max is so small that 127 / max overflows, values near .5 boundaries, NaN.
        let rows: [[f32; 17]; 4] = [
            [
                1e-38, -1e-38, 5e-39, 0.0, 1e-45, -3e-39, 1e-38, 0.0, 1e-40, 0.0, 0.0, 0.0, 0.0,
                0.0, 0.0, 0.0, 1e-38,
            ],
            [
                0.499_999_97,
                1.0,
                -1.0,
                0.5,
                -0.5,
                126.5,
                -126.5,
                127.0,
                3.0,
                1.5,
                -2.5,
                0.0,
                -0.0,
                1e-3,
                2.0,
                7.0,
                9.0,
            ],
            [
                f32::NAN,
                1.0,
                -3.0,
                2.0,
                f32::NAN,
                0.25,
                0.75,
                -0.75,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
                1.0,
            ],
            [
                f32::INFINITY,
                1.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
                0.0,
            ],
        ];
        let x: std::vec::Vec<f32> = rows.iter().flatten().copied().collect();
        for cols in [17, 16, 4, 1] {
            let r = x.len() / cols;
            let (mut q0, mut s0) = (std::vec![0i8; r * cols], std::vec![0f32; r]);
            let (mut q1, mut s1) = (std::vec![0i8; r * cols], std::vec![0f32; r]);
            reference::quantize_rows(&x[..r * cols], cols, &mut q0, &mut s0, false);
            quantize_rows(&x[..r * cols], cols, &mut q1, &mut s1, false);
            assert_eq!(q0, q1, "cols {cols}");
            assert_eq!(
                s0.iter().map(|s| s.to_bits()).collect::<std::vec::Vec<_>>(),
                s1.iter().map(|s| s.to_bits()).collect::<std::vec::Vec<_>>()
            );
        }
    }
}
