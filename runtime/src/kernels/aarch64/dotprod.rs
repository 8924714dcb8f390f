//! SDOT int8 GEMM (ARMv8.2 dot product: Cortex-A55/A76, Raspberry Pi 5, RK3588).
//!
//! Weights in [`Layout::K4N16`]: a 16-byte register of a k-group is 4 columns x 4 k, exactly the
//! operand of `sdot vACC.4s, vW.16b, vA.4b[lane]`, which adds to each column lane the dot product
//! of its 4 k with the 4 activation bytes in `lane`. So activations need no packing: one 16-byte
//! load of a row holds 4 k-groups, one per lane.
//!
//! Micro-kernel (an `asm!` loop, the SDOT intrinsics being unstable): 4 rows x 16 columns, 16
//! accumulators, 8 activation and 8 weight registers; per 32 k: one `LDP` per row, 8 `LD1` (x4)
//! of weights, 128 `SDOT` (2048 MACs) and 2 loop instructions: 14.4 MACs per instruction (13.8
//! with a 16-byte `LDR` per row and 16 k per iteration, as an odd last step runs). Rows left
//! over (1-3) use a generic intrinsics step (SDOT through a one-instruction `asm!`). The k tail
//! (k % 16) runs one more step over zero-padded copies of the rows' and the panel's tails. A
//! full tile's output step is `asm!` too (`store4x16`).

use super::gemm::{gemm, sizes_ok, tile_asm, Acc, Block, MicroKernel};
use super::has_dotprod;
use crate::kernels::{reference, GemmI8, Kernels, Layout, MatMut};
use core::arch::aarch64::*;
use core::arch::asm;

pub static DOTPROD: Kernels = Kernels {
    name: "dotprod",
    native_layout: Layout::K4N16,
    unsigned_activations: false,
    quantize_rows: super::quantize_rows,
    gemm_i8,
    gemm_f32: super::float::gemm_f32,
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
    // SAFETY: forwarded; this function has the dot product instructions.
    unsafe { gemm::<Sdot>(p, out) }
}

/// The SDOT micro-kernel: 4 rows x 16 columns; `acc[4 r + q]` holds columns `4 q..4 q + 4` of
/// row `r`.
struct Sdot;

// SAFETY: `kloop` reads `16 steps` bytes per row and `256 steps` per panel, `store` writes the
// tile's rows and `nv` columns (the contracts of `kloop4`, `step` and `store4x16`).
unsafe impl MicroKernel for Sdot {
    const LAYOUT: Layout = Layout::K4N16;
    const ROWS: usize = 4;

    #[inline(always)]
    unsafe fn kloop(
        acc: &mut Acc,
        a: [*const i8; 4],
        rows: usize,
        b: [*const i8; 2],
        _panels: usize,
        steps: usize,
    ) {
        // SAFETY: forwarded from the caller (one K4N16 panel per block; dotprod present).
        unsafe {
            match rows {
                4 => kloop4(acc, a, b[0], steps),
                3 => steps_of::<3>(acc, a, b[0], steps),
                2 => steps_of::<2>(acc, a, b[0], steps),
                _ => steps_of::<1>(acc, a, b[0], steps),
            }
        }
    }

    #[inline(always)]
    unsafe fn store(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize) {
        // SAFETY: rows `i0..i0 + rows` and the block's columns exist (caller).
        unsafe {
            if rows == 4 && block.nv == 16 {
                return store4x16(acc, block, i0);
            }
            for r in 0..rows {
                let sums = [acc[4 * r], acc[4 * r + 1], acc[4 * r + 2], acc[4 * r + 3]];
                block.store_row::<4>(i0 + r, &sums);
            }
        }
    }
}

/// `steps` x 16 k of rows `a[..R]` (the leftover rows of a block) with the intrinsics step.
///
/// # Safety
/// `16 steps` readable bytes at each `a[..R]`, `256 steps` at `b`; only inlined into a
/// `dotprod` function.
#[inline(always)]
unsafe fn steps_of<const R: usize>(acc: &mut Acc, a: [*const i8; 4], b: *const i8, steps: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        for s in 0..steps {
            step::<R>(acc, &a.map(|p| p.add(16 * s)), b.add(256 * s));
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
unsafe fn step<const R: usize>(acc: &mut Acc, a: &[*const i8; 4], b: *const i8) {
    // SAFETY: the reads stay inside the ranges the caller guarantees; SDOT is available.
    unsafe {
        let x: [int8x16_t; R] = core::array::from_fn(|r| vld1q_s8(a[r]));
        macro_rules! group {
            ($g:literal) => {
                let w = vld1q_s8_x4(b.add(64 * $g));
                for r in 0..R {
                    sdot!(acc[4 * r], w.0, x[r], $g);
                    sdot!(acc[4 * r + 1], w.1, x[r], $g);
                    sdot!(acc[4 * r + 2], w.2, x[r], $g);
                    sdot!(acc[4 * r + 3], w.3, x[r], $g);
                }
            };
        }
        group!(0);
        group!(1);
        group!(2);
        group!(3);
    }
}

/// One k-group of the 4 x 16 tile: lane `$lane` of the rows in registers `$r` times the
/// group's 4 column quads in registers `$w`, into the accumulators v16-v31 (row `r` column quad
/// `q` in `v(16 + 4 r + q)`).
macro_rules! sdot_group {
    ([$w0:literal, $w1:literal, $w2:literal, $w3:literal],
     [$r0:literal, $r1:literal, $r2:literal, $r3:literal], $lane:literal) => {
        concat!(
            "sdot v16.4s, v",
            $w0,
            ".16b, v",
            $r0,
            ".4b[",
            $lane,
            "]\n",
            "sdot v17.4s, v",
            $w1,
            ".16b, v",
            $r0,
            ".4b[",
            $lane,
            "]\n",
            "sdot v18.4s, v",
            $w2,
            ".16b, v",
            $r0,
            ".4b[",
            $lane,
            "]\n",
            "sdot v19.4s, v",
            $w3,
            ".16b, v",
            $r0,
            ".4b[",
            $lane,
            "]\n",
            "sdot v20.4s, v",
            $w0,
            ".16b, v",
            $r1,
            ".4b[",
            $lane,
            "]\n",
            "sdot v21.4s, v",
            $w1,
            ".16b, v",
            $r1,
            ".4b[",
            $lane,
            "]\n",
            "sdot v22.4s, v",
            $w2,
            ".16b, v",
            $r1,
            ".4b[",
            $lane,
            "]\n",
            "sdot v23.4s, v",
            $w3,
            ".16b, v",
            $r1,
            ".4b[",
            $lane,
            "]\n",
            "sdot v24.4s, v",
            $w0,
            ".16b, v",
            $r2,
            ".4b[",
            $lane,
            "]\n",
            "sdot v25.4s, v",
            $w1,
            ".16b, v",
            $r2,
            ".4b[",
            $lane,
            "]\n",
            "sdot v26.4s, v",
            $w2,
            ".16b, v",
            $r2,
            ".4b[",
            $lane,
            "]\n",
            "sdot v27.4s, v",
            $w3,
            ".16b, v",
            $r2,
            ".4b[",
            $lane,
            "]\n",
            "sdot v28.4s, v",
            $w0,
            ".16b, v",
            $r3,
            ".4b[",
            $lane,
            "]\n",
            "sdot v29.4s, v",
            $w1,
            ".16b, v",
            $r3,
            ".4b[",
            $lane,
            "]\n",
            "sdot v30.4s, v",
            $w2,
            ".16b, v",
            $r3,
            ".4b[",
            $lane,
            "]\n",
            "sdot v31.4s, v",
            $w3,
            ".16b, v",
            $r3,
            ".4b[",
            $lane,
            "]\n",
        )
    };
}

/// 16 k of the 4 x 16 tile with the rows' 16 bytes already in registers `$r`: the 4 k-groups'
/// weights into v4-v7 / v8-v11 alternately, so that a group loads while the one before it
/// multiplies. 4 `LD1` (x4), 64 `SDOT`.
macro_rules! sdot_16k {
    ($r:tt) => {
        concat!(
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64\n",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64\n",
            sdot_group!([4, 5, 6, 7], $r, 0),
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64\n",
            sdot_group!([8, 9, 10, 11], $r, 1),
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64\n",
            sdot_group!([4, 5, 6, 7], $r, 2),
            sdot_group!([8, 9, 10, 11], $r, 3),
        )
    };
}

/// `steps >= 1` x 16 k of 4 rows x 16 columns, all in registers: row `r` column quad `q`
/// accumulates in `v(16 + 4 r + q)`. Steps go in pairs: one `LDP` per row loads 32 k (into
/// v0-v3 and v12-v15), then two [`sdot_16k`]: per 32 k, 4 `LDP`, 8 `LD1` (x4), 128 `SDOT` and
/// 2 loop instructions (142 for 2048 MACs: 14.4 MACs per instruction; one step at a time,
/// 74 for 1024). An odd last step loads its rows with `LDR`.
///
/// # Safety
/// `16 steps` readable bytes at each `a[r]`, `256 steps` at `b`; only inlined into a
/// `dotprod` function.
#[inline(always)]
unsafe fn kloop4(acc: &mut Acc, a: [*const i8; 4], b: *const i8, steps: usize) {
    let pairs = steps / 2;
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers: `32
    // pairs` bytes of each row and `512 pairs` of the panel, then the odd step's 16 and 256
    // after them); writes only the declared registers; SDOT is available.
    unsafe {
        if pairs > 0 {
            tile_asm!(
                inout acc,
                options(nostack, readonly),
                "2:",
                "ldp q0, q12, [{a0}], #32",
                "ldp q1, q13, [{a1}], #32",
                "ldp q2, q14, [{a2}], #32",
                "ldp q3, q15, [{a3}], #32",
                sdot_16k!([0, 1, 2, 3]),
                sdot_16k!([12, 13, 14, 15]),
                "subs {n}, {n}, #1",
                "b.ne 2b",
                a0 = inout(reg) a[0] => _,
                a1 = inout(reg) a[1] => _,
                a2 = inout(reg) a[2] => _,
                a3 = inout(reg) a[3] => _,
                b = inout(reg) b => _,
                n = inout(reg) pairs => _,
            );
        }
        if steps % 2 == 1 {
            let a = a.map(|p| p.add(32 * pairs));
            tile_asm!(
                inout acc,
                options(nostack, readonly),
                "ldr q0, [{a0}]",
                "ldr q1, [{a1}]",
                "ldr q2, [{a2}]",
                "ldr q3, [{a3}]",
                sdot_16k!([0, 1, 2, 3]),
                a0 = in(reg) a[0],
                a1 = in(reg) a[1],
                a2 = in(reg) a[2],
                a3 = in(reg) a[3],
                b = inout(reg) b.add(512 * pairs) => _,
            );
        }
    }
}

/// The output step of a full 4 x 16 tile straight from the registers of [`kloop4`]: per row
/// and column quad `SCVTF`, `FMUL` by `a_scale * w_scale` (one `FMUL` by element), `FADD` of the
/// bias (no FMLA), then one `ST1` (x4) per row.
///
/// # Safety
/// Rows `i0..i0 + 4` and the block's 16 columns exist.
#[inline(always)]
unsafe fn store4x16(acc: &Acc, block: &Block<'_>, i0: usize) {
    // SAFETY: reads the 16 scales and biases of `c` and the row scales `i0..`, writes 16 floats
    // of each output row (rows and columns in range: caller); only declared registers change.
    unsafe {
        let (out, stride) = block.raw.out_row(i0, block.j0);
        tile_asm!(
            in acc,
            options(nostack),
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
            scale = in(reg) block.cols.scale.as_ptr(),
            bias = in(reg) block.cols.bias.as_ptr(),
            asc = in(reg) block.raw.a_scales(i0),
            out = inout(reg) out => _,
            stride = in(reg) stride,
        );
    }
}
