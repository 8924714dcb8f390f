//! SDOT int8 GEMM (ARMv8.2 dot product: Cortex-A55/A76, Raspberry Pi 5, RK3588).
//!
//! Weights in [`Layout::K4N16`]: a 16-byte register of a k-group is 4 columns x 4 k, exactly the
//! operand of `sdot vACC.4s, vW.16b, vA.4b[lane]`, which adds to each column lane the dot product
//! of its 4 k with the 4 activation bytes in `lane`. So activations need no packing: one 16-byte
//! load of a row holds 4 k-groups, one per lane.
//!
//! Micro-kernel (an `asm!` loop, the SDOT intrinsics being unstable): 4 rows x 16 columns, 16
//! accumulators, 4 activation and 8 weight registers; per 16 k: 4 row loads, 4 `LD1` (x4) of
//! weights, 64 `SDOT` (1024 MACs) and 2 loop instructions: 13.8 MACs per instruction. Rows left
//! over (1-3) use a generic intrinsics step (SDOT through a one-instruction `asm!`). The k tail
//! (k % 16) runs one more step over zero-padded copies of the rows' and the panel's tails. A
//! full tile's output step is `asm!` too (`store4x16`).

use super::{has_dotprod, padded, sizes_ok, Cols, Raw};
use crate::kernels::{reference, GemmI8, Kernels, Layout, MatMut};
use core::arch::aarch64::*;
use core::arch::asm;

pub static DOTPROD: Kernels = Kernels {
    name: "dotprod",
    native_layout: Layout::K4N16,
    unsigned_activations: false,
    quantize_rows: super::quantize_rows,
    gemm_i8,
    gemm_f32: reference::gemm_f32,
    softmax: super::ops::softmax,
    activate: super::ops::activate,
    attention: super::ops::attention,
    add_layer_norm: super::ops::add_layer_norm,
};

crate::kernel_test_suite!(
    dotprod_suite,
    &super::DOTPROD,
    std::arch::is_aarch64_feature_detected!("dotprod")
);

fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout == Layout::K4N16 {
        gemm_k4n16(p, out)
    } else {
        reference::gemm_i8(p, out)
    }
}

/// The K4N16 GEMM with SDOT when this CPU has it, else with ARMv8.0 NEON (same results).
pub(crate) fn gemm_k4n16(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout != Layout::K4N16 || !sizes_ok(p, out) {
        return reference::gemm_i8(p, out);
    }
    if has_dotprod() {
        // SAFETY: the CPU has the dot product instructions (checked just above).
        unsafe { gemm_k4n16_sdot(p, out) }
    } else {
        super::neon::gemm_k4n16(p, out)
    }
}

/// # Safety
/// The CPU must support `dotprod`; `p` and `out` must pass [`sizes_ok`] with layout K4N16.
#[target_feature(enable = "dotprod")]
unsafe fn gemm_k4n16_sdot(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let kg = k.div_ceil(4);
    let steps = k / 16;
    let tail_groups = kg - 4 * steps;
    // SAFETY: the sizes were checked (contract).
    let raw = unsafe { Raw::new(p, out) };
    for (panel, j0) in (0..n).step_by(16).enumerate() {
        let base = panel * kg * 64;
        let panel_data = &p.w.data[base..base + kg * 64];
        let b_tail: Option<[i8; 256]> =
            (tail_groups > 0).then(|| padded(&panel_data[256 * steps..]));
        let t = Tile {
            raw: &raw,
            j0,
            nv: (n - j0).min(16),
            cols: Cols::load(p, j0),
            b: panel_data.as_ptr(),
            steps,
            b_tail: b_tail.as_ref(),
        };
        let mut i = 0;
        // SAFETY: dotprod is present (contract); every row passed is below m.
        unsafe {
            while i + 4 <= m {
                t.rows::<4>(i);
                i += 4;
            }
            match m - i {
                3 => t.rows::<3>(i),
                2 => t.rows::<2>(i),
                1 => t.rows::<1>(i),
                _ => {}
            }
        }
    }
}

/// One 16-column panel: `steps` full 16-k steps from `b`, then the zero-padded k tail.
struct Tile<'a> {
    raw: &'a Raw,
    j0: usize,
    nv: usize,
    cols: Cols,
    b: *const i8,
    steps: usize,
    b_tail: Option<&'a [i8; 256]>,
}

impl Tile<'_> {
    /// Rows `i0..i0 + R` of the panel.
    ///
    /// # Safety
    /// Only inlined into a `dotprod` function (it emits SDOT); `i0 + R <= m`.
    #[inline(always)]
    unsafe fn rows<const R: usize>(&self, i0: usize) {
        // SAFETY: NEON is baseline; zeroing registers only.
        let mut acc = unsafe { [[vdupq_n_s32(0); 4]; 4] };
        // SAFETY: rows `i0..i0 + R` exist; `steps = k / 16` steps read the first `16 steps`
        // bytes of each row and the first `256 steps` bytes of the panel (`4 steps <= kg` groups
        // of 64 bytes); the tail step reads 16-byte and 256-byte stack buffers (zero past k, so
        // the padding adds 0); dotprod is present (caller).
        unsafe {
            if self.steps > 0 {
                let a = core::array::from_fn(|r| self.raw.row(i0 + r.min(R - 1)));
                kloop::<R>(&mut acc, a, self.b, self.steps);
            }
            if let Some(b_tail) = self.b_tail {
                let tails: [[i8; 16]; R] =
                    core::array::from_fn(|r| self.raw.row_tail(i0 + r, 16 * self.steps));
                let a = core::array::from_fn(|r| tails[r.min(R - 1)].as_ptr());
                kloop::<R>(&mut acc, a, b_tail.as_ptr(), 1);
            }
            if R == 4 && self.nv == 16 {
                store4x16(&acc, self.raw, i0, self.j0, &self.cols);
            } else {
                for (r, acc) in acc.iter().enumerate().take(R) {
                    self.raw
                        .store::<4>(i0 + r, self.j0, self.nv, acc, &self.cols);
                }
            }
        }
    }
}

/// `steps` x 16 k of rows `a[..R]` x 16 columns into `acc[..R]`: the `asm!` loop for 4 rows,
/// the intrinsics step for fewer.
///
/// # Safety
/// `16 steps` readable bytes at each `a[..R]`, `256 steps` at `b`; only inlined into a
/// `dotprod` function.
#[inline(always)]
unsafe fn kloop<const R: usize>(
    acc: &mut [[int32x4_t; 4]; 4],
    a: [*const i8; 4],
    b: *const i8,
    steps: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if R == 4 {
            if steps > 0 {
                kloop4(acc, a, b, steps);
            }
        } else {
            for s in 0..steps {
                step::<R>(acc, &a.map(|p| p.add(16 * s)), b.add(256 * s));
            }
        }
    }
}

/// `acc += w (4 columns x 4 k) . a.4b[lane]` per column lane.
macro_rules! sdot {
    ($acc:expr, $w:expr, $a:expr, $lane:literal) => {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {a:v}.4b[{lane}]",
            acc = inout(vreg) $acc,
            w = in(vreg) $w,
            a = in(vreg) $a,
            lane = const $lane,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
}

/// 16 k of rows `a[..R]` x 16 columns (the leftover rows): `acc[r][q]` holds columns
/// `4 q..4 q + 4` of row `r`.
///
/// # Safety
/// 16 readable bytes at each `a[r]`, 256 at `b`; only inlined into a `dotprod` function.
#[inline(always)]
unsafe fn step<const R: usize>(acc: &mut [[int32x4_t; 4]; 4], a: &[*const i8; 4], b: *const i8) {
    // SAFETY: the reads stay inside the ranges the caller guarantees; SDOT is available.
    unsafe {
        let x: [int8x16_t; R] = core::array::from_fn(|r| vld1q_s8(a[r]));
        macro_rules! group {
            ($g:literal) => {
                let w = vld1q_s8_x4(b.add(64 * $g));
                for r in 0..R {
                    sdot!(acc[r][0], w.0, x[r], $g);
                    sdot!(acc[r][1], w.1, x[r], $g);
                    sdot!(acc[r][2], w.2, x[r], $g);
                    sdot!(acc[r][3], w.3, x[r], $g);
                }
            };
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
    }
}

/// `steps >= 1` x 16 k of 4 rows x 16 columns, all in registers: rows in v0-v3, weight groups in
/// v4-v7 / v8-v11 (alternating, so a group loads while the previous one multiplies), row `r`
/// column quad `q` accumulating in `v(16 + 4 r + q)`. Per 16 k: 4 + 4 loads, 64 SDOT, 2 loop.
///
/// # Safety
/// `16 steps` readable bytes at each `a[r]`, `256 steps` at `b`; only inlined into a
/// `dotprod` function.
#[inline(always)]
unsafe fn kloop4(acc: &mut [[int32x4_t; 4]; 4], a: [*const i8; 4], b: *const i8, steps: usize) {
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers); writes
    // only the declared registers; SDOT is available.
    unsafe {
        asm!(
            "2:",
            "ldr q0, [{a0}], #16",
            "ldr q1, [{a1}], #16",
            "ldr q2, [{a2}], #16",
            "ldr q3, [{a3}], #16",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "sdot v16.4s, v4.16b, v0.4b[0]",
            "sdot v17.4s, v5.16b, v0.4b[0]",
            "sdot v18.4s, v6.16b, v0.4b[0]",
            "sdot v19.4s, v7.16b, v0.4b[0]",
            "sdot v20.4s, v4.16b, v1.4b[0]",
            "sdot v21.4s, v5.16b, v1.4b[0]",
            "sdot v22.4s, v6.16b, v1.4b[0]",
            "sdot v23.4s, v7.16b, v1.4b[0]",
            "sdot v24.4s, v4.16b, v2.4b[0]",
            "sdot v25.4s, v5.16b, v2.4b[0]",
            "sdot v26.4s, v6.16b, v2.4b[0]",
            "sdot v27.4s, v7.16b, v2.4b[0]",
            "sdot v28.4s, v4.16b, v3.4b[0]",
            "sdot v29.4s, v5.16b, v3.4b[0]",
            "sdot v30.4s, v6.16b, v3.4b[0]",
            "sdot v31.4s, v7.16b, v3.4b[0]",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "sdot v16.4s, v8.16b, v0.4b[1]",
            "sdot v17.4s, v9.16b, v0.4b[1]",
            "sdot v18.4s, v10.16b, v0.4b[1]",
            "sdot v19.4s, v11.16b, v0.4b[1]",
            "sdot v20.4s, v8.16b, v1.4b[1]",
            "sdot v21.4s, v9.16b, v1.4b[1]",
            "sdot v22.4s, v10.16b, v1.4b[1]",
            "sdot v23.4s, v11.16b, v1.4b[1]",
            "sdot v24.4s, v8.16b, v2.4b[1]",
            "sdot v25.4s, v9.16b, v2.4b[1]",
            "sdot v26.4s, v10.16b, v2.4b[1]",
            "sdot v27.4s, v11.16b, v2.4b[1]",
            "sdot v28.4s, v8.16b, v3.4b[1]",
            "sdot v29.4s, v9.16b, v3.4b[1]",
            "sdot v30.4s, v10.16b, v3.4b[1]",
            "sdot v31.4s, v11.16b, v3.4b[1]",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "sdot v16.4s, v4.16b, v0.4b[2]",
            "sdot v17.4s, v5.16b, v0.4b[2]",
            "sdot v18.4s, v6.16b, v0.4b[2]",
            "sdot v19.4s, v7.16b, v0.4b[2]",
            "sdot v20.4s, v4.16b, v1.4b[2]",
            "sdot v21.4s, v5.16b, v1.4b[2]",
            "sdot v22.4s, v6.16b, v1.4b[2]",
            "sdot v23.4s, v7.16b, v1.4b[2]",
            "sdot v24.4s, v4.16b, v2.4b[2]",
            "sdot v25.4s, v5.16b, v2.4b[2]",
            "sdot v26.4s, v6.16b, v2.4b[2]",
            "sdot v27.4s, v7.16b, v2.4b[2]",
            "sdot v28.4s, v4.16b, v3.4b[2]",
            "sdot v29.4s, v5.16b, v3.4b[2]",
            "sdot v30.4s, v6.16b, v3.4b[2]",
            "sdot v31.4s, v7.16b, v3.4b[2]",
            "sdot v16.4s, v8.16b, v0.4b[3]",
            "sdot v17.4s, v9.16b, v0.4b[3]",
            "sdot v18.4s, v10.16b, v0.4b[3]",
            "sdot v19.4s, v11.16b, v0.4b[3]",
            "sdot v20.4s, v8.16b, v1.4b[3]",
            "sdot v21.4s, v9.16b, v1.4b[3]",
            "sdot v22.4s, v10.16b, v1.4b[3]",
            "sdot v23.4s, v11.16b, v1.4b[3]",
            "sdot v24.4s, v8.16b, v2.4b[3]",
            "sdot v25.4s, v9.16b, v2.4b[3]",
            "sdot v26.4s, v10.16b, v2.4b[3]",
            "sdot v27.4s, v11.16b, v2.4b[3]",
            "sdot v28.4s, v8.16b, v3.4b[3]",
            "sdot v29.4s, v9.16b, v3.4b[3]",
            "sdot v30.4s, v10.16b, v3.4b[3]",
            "sdot v31.4s, v11.16b, v3.4b[3]",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b = inout(reg) b => _,
            n = inout(reg) steps => _,
            inout("v16") acc[0][0],
            inout("v17") acc[0][1],
            inout("v18") acc[0][2],
            inout("v19") acc[0][3],
            inout("v20") acc[1][0],
            inout("v21") acc[1][1],
            inout("v22") acc[1][2],
            inout("v23") acc[1][3],
            inout("v24") acc[2][0],
            inout("v25") acc[2][1],
            inout("v26") acc[2][2],
            inout("v27") acc[2][3],
            inout("v28") acc[3][0],
            inout("v29") acc[3][1],
            inout("v30") acc[3][2],
            inout("v31") acc[3][3],
            out("v0") _,
            out("v1") _,
            out("v2") _,
            out("v3") _,
            out("v4") _,
            out("v5") _,
            out("v6") _,
            out("v7") _,
            out("v8") _,
            out("v9") _,
            out("v10") _,
            out("v11") _,
            options(nostack, readonly),
        );
    }
}

/// The output step of a full 4 x 16 tile straight from the registers of [`kloop4`]: per row
/// and column quad `SCVTF`, `FMUL` by `a_scale * w_scale` (one `FMUL` by element), `FADD` of the
/// bias (no FMLA), then one `ST1` (x4) per row.
///
/// # Safety
/// Rows `i0..i0 + 4` and columns `j0..j0 + 16` exist.
#[inline(always)]
unsafe fn store4x16(acc: &[[int32x4_t; 4]; 4], raw: &Raw, i0: usize, j0: usize, c: &Cols) {
    // SAFETY: reads the 16 scales and biases of `c` and the row scales `i0..`, writes 16 floats
    // of each output row (rows and columns in range: caller); only declared registers change.
    unsafe {
        let (out, stride) = raw.out_row(i0, j0);
        asm!(
            "ld1 {{v0.4s-v3.4s}}, [{scale}]",
            "ld1 {{v4.4s-v7.4s}}, [{bias}]",
            "ld1 {{v15.4s}}, [{asc}]",
            "fmul v12.4s, v0.4s, v15.s[0]",
            "scvtf v8.4s, v16.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[0]",
            "scvtf v9.4s, v17.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[0]",
            "scvtf v10.4s, v18.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[0]",
            "scvtf v11.4s, v19.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[1]",
            "scvtf v8.4s, v20.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[1]",
            "scvtf v9.4s, v21.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[1]",
            "scvtf v10.4s, v22.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[1]",
            "scvtf v11.4s, v23.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[2]",
            "scvtf v8.4s, v24.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[2]",
            "scvtf v9.4s, v25.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[2]",
            "scvtf v10.4s, v26.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[2]",
            "scvtf v11.4s, v27.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[3]",
            "scvtf v8.4s, v28.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[3]",
            "scvtf v9.4s, v29.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[3]",
            "scvtf v10.4s, v30.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[3]",
            "scvtf v11.4s, v31.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            scale = in(reg) c.scale.as_ptr(),
            bias = in(reg) c.bias.as_ptr(),
            asc = in(reg) raw.a_scales(i0),
            out = inout(reg) out => _,
            stride = in(reg) stride,
            in("v16") acc[0][0],
            in("v17") acc[0][1],
            in("v18") acc[0][2],
            in("v19") acc[0][3],
            in("v20") acc[1][0],
            in("v21") acc[1][1],
            in("v22") acc[1][2],
            in("v23") acc[1][3],
            in("v24") acc[2][0],
            in("v25") acc[2][1],
            in("v26") acc[2][2],
            in("v27") acc[2][3],
            in("v28") acc[3][0],
            in("v29") acc[3][1],
            in("v30") acc[3][2],
            in("v31") acc[3][3],
            out("v0") _,
            out("v1") _,
            out("v2") _,
            out("v3") _,
            out("v4") _,
            out("v5") _,
            out("v6") _,
            out("v7") _,
            out("v8") _,
            out("v9") _,
            out("v10") _,
            out("v11") _,
            out("v12") _,
            out("v13") _,
            out("v14") _,
            out("v15") _,
            options(nostack),
        );
    }
}
