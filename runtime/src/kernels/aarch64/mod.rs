//! aarch64 kernel tables: [`NEON`] (ARMv8.0: Cortex-A53/A72, Raspberry Pi 3/4), [`DOTPROD`]
//! (SDOT: Cortex-A55/A76, Pi 5, RK3588) and [`I8MM`] (SMMLA: Neoverse V1/V2, Cortex-A710+).
//!
//! - NEON and DOTPROD take K4N16 weights; I8MM takes K8N8, and K4N16 too (its tiles zipped in
//!   registers, so the default model file runs SMMLA on an i8mm core); every other layout goes
//!   to the reference (see [`super::pack`]).
//! - All three share the NEON activation quantizer [`quantize_rows`] (bit-identical to the
//!   reference) and the output step `Raw::store` (`acc as f32 * (a_scale * w_scale) + bias`, a
//!   separate multiply and add: no FMLA).
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
pub mod i8mm;
pub mod neon;

pub use dotprod::DOTPROD;
pub use i8mm::I8MM;
pub use neon::NEON;

use super::{reference, GemmI8, Kernels, MatMut};
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

/// Whether every slice of `p` and `out` is long enough for an `[m, n, k]` GEMM in `p.w.layout`.
/// The kernels read through raw pointers only after this holds (else they call the reference,
/// which reports the bad input exactly as it would anywhere else).
pub(crate) fn sizes_ok(p: &GemmI8<'_>, out: &MatMut<'_>) -> bool {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let (Some(mk), Some(wlen)) = (m.checked_mul(k), p.w.layout.packed_len(n, k)) else {
        return false;
    };
    p.a.len() >= mk
        && p.a_scales.len() >= m
        && out.rows() >= m
        && out.cols() >= n
        && p.w.data.len() >= wlen
        && p.w.scales.len() >= n
        && p.bias.is_none_or(|b| b.len() >= n)
}

/// Weight scales and biases of 16 consecutive output columns (zero past `n`; `+0.0` without a
/// bias, as the reference adds).
pub(crate) struct Cols {
    pub(crate) scale: [f32; 16],
    pub(crate) bias: [f32; 16],
}

impl Cols {
    #[inline(always)]
    pub(crate) fn load(p: &GemmI8<'_>, j0: usize) -> Cols {
        let nv = (p.w.n - j0).min(16);
        let mut c = Cols {
            scale: [0.0; 16],
            bias: [0.0; 16],
        };
        c.scale[..nv].copy_from_slice(&p.w.scales[j0..j0 + nv]);
        if let Some(bias) = p.bias {
            c.bias[..nv].copy_from_slice(&bias[j0..j0 + nv]);
        }
        c
    }
}

/// Raw views of a GEMM whose sizes passed [`sizes_ok`], so that the per-tile code indexes
/// activations, scales and outputs without bounds checks.
pub(crate) struct Raw {
    a: *const i8,
    a_scales: *const f32,
    out: *mut f32,
    /// Output row stride (elements).
    ldc: usize,
    k: usize,
}

impl Raw {
    /// # Safety
    /// `p` and `out` must pass [`sizes_ok`] (`Raw` only reads rows `< p.m`, writes columns `< n`
    /// of output rows `< m`).
    #[inline(always)]
    pub(crate) unsafe fn new(p: &GemmI8<'_>, out: &mut MatMut<'_>) -> Raw {
        Raw {
            a: p.a.as_ptr(),
            a_scales: p.a_scales.as_ptr(),
            out: out.as_mut_ptr(),
            ldc: out.ldc(),
            k: p.w.k,
        }
    }

    /// Activation row `i` (`k` bytes).
    ///
    /// # Safety
    /// `i < m`.
    #[inline(always)]
    pub(crate) unsafe fn row(&self, i: usize) -> *const i8 {
        // SAFETY: row `i < m` starts inside `a` (sizes_ok: `a.len() >= m k`).
        unsafe { self.a.add(i * self.k) }
    }

    /// Where row `i` of the output starts (column `j0`), and the output row stride in bytes.
    ///
    /// # Safety
    /// `i < m`, `j0 < n`.
    #[inline(always)]
    pub(crate) unsafe fn out_row(&self, i: usize, j0: usize) -> (*mut f32, usize) {
        // SAFETY: row `i < m` of the output view (sizes_ok), column `j0 < n`.
        (unsafe { self.out.add(i * self.ldc + j0) }, 4 * self.ldc)
    }

    /// The activation scales from row `i` on.
    ///
    /// # Safety
    /// `i < m`.
    #[inline(always)]
    pub(crate) unsafe fn a_scales(&self, i: usize) -> *const f32 {
        // SAFETY: `i < m <= a_scales.len()`.
        unsafe { self.a_scales.add(i) }
    }

    /// Bytes `from..k` of row `i`, zero-padded to `N` (the k tail, `k - from <= N`).
    ///
    /// # Safety
    /// `i < m`, `from <= k`.
    #[inline(always)]
    pub(crate) unsafe fn row_tail<const N: usize>(&self, i: usize, from: usize) -> [i8; N] {
        // SAFETY: bytes `from..k` of row `i < m` are inside `a`.
        padded(unsafe { core::slice::from_raw_parts(self.row(i).add(from), self.k - from) })
    }

    /// The output step for row `i`, columns `j0..j0 + nv`: the exact i32 sums of columns
    /// `j0 + 4v..j0 + 4v + 4` in `acc[v]` (`v < V`, `nv <= 4 V`) become
    /// `acc as f32 * (a_scale * w_scale) + bias` ([`reference::dequantize`], in that order, no
    /// fused multiply-add).
    ///
    /// # Safety
    /// `i < m`, `j0 + nv <= n`, `nv <= 4 V <= 16`.
    #[inline(always)]
    pub(crate) unsafe fn store<const V: usize>(
        &self,
        i: usize,
        j0: usize,
        nv: usize,
        acc: &[int32x4_t; 4],
        c: &Cols,
    ) {
        // SAFETY: `out[i ldc + j0..i ldc + j0 + nv]` is inside row `i < m` of the output view
        // (sizes_ok: at least `m` rows of `n` columns),
        // `a_scales[i]` inside `a_scales`; the full-width stores write exactly `nv = 4 V` floats.
        unsafe {
            let a_scale = *self.a_scales.add(i);
            let out = self.out.add(i * self.ldc + j0);
            let mut r = [vdupq_n_f32(0.0); 4];
            for v in 0..V {
                let scale = vmulq_n_f32(vld1q_f32(c.scale.as_ptr().add(4 * v)), a_scale);
                let bias = vld1q_f32(c.bias.as_ptr().add(4 * v));
                r[v] = vaddq_f32(vmulq_f32(vcvtq_f32_s32(acc[v]), scale), bias);
            }
            if nv == 4 * V {
                for (v, rv) in r.iter().enumerate().take(V) {
                    vst1q_f32(out.add(4 * v), *rv);
                }
            } else {
                let mut tmp = [0.0f32; 16];
                vst1q_f32_x4(tmp.as_mut_ptr(), float32x4x4_t(r[0], r[1], r[2], r[3]));
                core::ptr::copy_nonoverlapping(tmp.as_ptr(), out, nv.min(16));
            }
        }
    }
}

/// Copies `src` into a zeroed `N`-byte buffer (the k tail of a row or of a weight panel, so
/// that one more full step reads zeros, never past the end of the real data).
#[inline(always)]
pub(crate) fn padded<const N: usize>(src: &[i8]) -> [i8; N] {
    let mut buf = [0i8; N];
    let len = src.len().min(N);
    buf[..len].copy_from_slice(&src[..len]);
    buf
}

/// Symmetric per-row int8 quantization with NEON, bit-identical to
/// [`reference::quantize_rows`]: the same max (FMAXNM, like `f32::max`, is order-independent on
/// magnitudes), scale, `127 / max`, and `(v * inv + copysign(0.5, v * inv))` truncated.
///
/// The clamp to `[-127, 127]` is implicit: `|v| <= max` and `inv` is `127 / max` rounded, so
/// `|v * inv| < 127.0001` and the rounded result fits; a truncating narrow is exact. Only when
/// `127 / max` overflows (max below ~4e-37) the clamp matters: those rows take the reference.
pub fn quantize_rows(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32]) {
    if cols == 0 {
        return;
    }
    for ((row, qrow), scale) in x
        .chunks_exact(cols)
        .zip(q.chunks_exact_mut(cols))
        .zip(scales)
    {
        let max = max_abs(row);
        if max == 0.0 || !max.is_finite() {
            *scale = 0.0;
            qrow.fill(0);
            continue;
        }
        let inv = 127.0 / max;
        if !inv.is_finite() {
            reference::quantize_rows(row, cols, qrow, core::slice::from_mut(scale));
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

    pub fn activate(act: Activation, x: &mut [f32]) {
        vector::activate(act, x, madd)
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
            |m, n, k, x, y, out, ldc, alpha| {
                super::float::gemm_nn(m, n, k, x, y, out, ldc, alpha, madd)
            },
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
    ) {
        vector::add_layer_norm(x, residual, gamma, beta, eps, madd)
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
            reference::quantize_rows(&x[..r * cols], cols, &mut q0, &mut s0);
            quantize_rows(&x[..r * cols], cols, &mut q1, &mut s1);
            assert_eq!(q0, q1, "cols {cols}");
            assert_eq!(
                s0.iter().map(|s| s.to_bits()).collect::<std::vec::Vec<_>>(),
                s1.iter().map(|s| s.to_bits()).collect::<std::vec::Vec<_>>()
            );
        }
    }
}
