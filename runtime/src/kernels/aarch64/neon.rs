//! ARMv8.0 NEON int8 GEMM (no dot product: Cortex-A53/A72, Raspberry Pi 3/4).
//!
//! Weights in [`Layout::K4N16`]: 16 bytes of a k-group are 4 columns x 4 k. `LD2R` broadcasts
//! the activations of two k-groups, `[a0 a1 a2 a3] x 4` each, so lane by lane they meet the
//! weights: `SMULL` (columns 0-1 of the quad) / `SMULL2` (columns 2-3) multiply one group,
//! `SMLAL` / `SMLAL2` add the next group's products in i16 (two products of `[-127, 127]` values
//! are at most 32258: exact), and `SADALP` widens pairs into the i32 accumulators. Each i32 lane
//! then holds a partial sum of one column; one `ADDP` per 4 columns finishes them.
//!
//! Micro-kernel (an `asm!` loop, so that the count is exact): 2 rows x 16 columns, 16
//! accumulators + 4 activation + 8 weight + 4 product registers; per 16 k: 4 `LD2R`, 4 `LD1`
//! (x4), 96 SMULL/SMLAL/SADALP and 2 loop instructions for 512 MACs (4.8 MACs per instruction;
//! the mix bounds any ARMv8.0 kernel at 16 MACs per 3 instructions). A RowMajor kernel (16-k
//! vectors of one row and one column) needs the same SMULL/SMLAL2/SADALP per 16 MACs plus one
//! load per column, so K4N16 (shared with SDOT) is also the better layout here. A leftover row
//! uses an intrinsics step; the k tail (k % 16) one more step over zero-padded copies; a full
//! tile's output step is `asm!` too (`store2x16`).

use super::gemm::{gemm, sizes_ok, tile_asm, Acc, Block, MicroKernel};
use crate::kernels::{reference, GemmI8, Kernels, Layout, MatMut};
use core::arch::aarch64::*;

pub static NEON: Kernels = Kernels {
    name: "neon",
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

crate::kernel_test_suite!(neon_suite, &super::NEON, true);

fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout == Layout::K4N16 {
        gemm_k4n16(p, out)
    } else {
        reference::gemm_i8(p, out)
    }
}

/// The K4N16 GEMM with ARMv8.0 instructions only (also the fallback of the other tables).
pub(crate) fn gemm_k4n16(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout != Layout::K4N16 || !sizes_ok(p, out) {
        return reference::gemm_i8(p, out);
    }
    // SAFETY: the sizes and layout were checked just above; NEON is baseline.
    unsafe { gemm::<Neon>(p, out) }
}

/// The ARMv8.0 micro-kernel: 2 rows x 16 columns; `acc[8 r + 2 q + h]` holds two partial sums
/// of each of columns `4 q + 2 h`, `4 q + 2 h + 1` of row `r`.
struct Neon;

// SAFETY: `kloop` reads `16 steps` bytes per row and `256 steps` per panel, `store` writes the
// tile's rows and `nv` columns (the contracts of `kloop2`, `step` and `store2x16`).
unsafe impl MicroKernel for Neon {
    const LAYOUT: Layout = Layout::K4N16;
    const ROWS: usize = 2;

    #[inline(always)]
    unsafe fn kloop(
        acc: &mut Acc,
        a: [*const i8; 4],
        rows: usize,
        b: [*const i8; 2],
        _panels: usize,
        steps: usize,
    ) {
        // SAFETY: forwarded from the caller (one K4N16 panel per block).
        unsafe {
            if rows == 2 {
                kloop2(acc, [a[0], a[1]], b[0], steps);
            } else {
                for s in 0..steps {
                    step(acc, a[0].add(16 * s), b[0].add(256 * s));
                }
            }
        }
    }

    #[inline(always)]
    unsafe fn store(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize) {
        // SAFETY: rows `i0..i0 + rows` and the block's columns exist (caller).
        unsafe {
            if rows == 2 && block.nv == 16 {
                return store2x16(acc, block, i0);
            }
            for r in 0..rows {
                let t = 8 * r;
                let sums = [
                    vpaddq_s32(acc[t], acc[t + 1]),
                    vpaddq_s32(acc[t + 2], acc[t + 3]),
                    vpaddq_s32(acc[t + 4], acc[t + 5]),
                    vpaddq_s32(acc[t + 6], acc[t + 7]),
                ];
                block.store_row::<4>(i0 + r, &sums);
            }
        }
    }
}

/// 16 k of one row x 16 columns (a leftover row) into `acc[..8]`.
///
/// # Safety
/// 16 readable bytes at `a`, 256 at `b`.
#[inline(always)]
unsafe fn step(acc: &mut Acc, a: *const i8, b: *const i8) {
    // SAFETY: the reads stay inside the ranges the caller guarantees.
    unsafe {
        for half in 0..2 {
            let g0 = vld1q_s8_x4(b.add(128 * half));
            let g1 = vld1q_s8_x4(b.add(128 * half + 64));
            let w0 = [g0.0, g0.1, g0.2, g0.3];
            let w1 = [g1.0, g1.1, g1.2, g1.3];
            let x = vld2q_dup_s32(a.add(8 * half) as *const i32);
            let (x0, x1) = (vreinterpretq_s8_s32(x.0), vreinterpretq_s8_s32(x.1));
            for q in 0..4 {
                let lo = vmull_s8(vget_low_s8(x0), vget_low_s8(w0[q]));
                let lo = vmlal_s8(lo, vget_low_s8(x1), vget_low_s8(w1[q]));
                let hi = vmull_high_s8(x0, w0[q]);
                let hi = vmlal_high_s8(hi, x1, w1[q]);
                acc[2 * q] = vpadalq_s16(acc[2 * q], lo);
                acc[2 * q + 1] = vpadalq_s16(acc[2 * q + 1], hi);
            }
        }
    }
}

/// `steps >= 1` x 16 k of 2 rows x 16 columns, all in registers: per 8 k, `LD2R` puts two
/// activation groups of row `r` in v(2r), v(2r+1), two weight groups go to v4-v7 and v8-v11,
/// products to v12-v15, and row `r` column quad `q` half `h` accumulates in
/// `v(16 + 8 r + 2 q + h)`. Per 16 k: 4 `LD2R`, 4 `LD1`, 96 SMULL/SMLAL/SADALP, 2 loop.
///
/// # Safety
/// `16 steps` readable bytes at `a[0]` and `a[1]`, `256 steps` at `b`.
#[inline(always)]
unsafe fn kloop2(acc: &mut Acc, a: [*const i8; 2], b: *const i8, steps: usize) {
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers); writes
    // only the declared registers.
    unsafe {
        tile_asm!(
            inout acc,
            options(nostack, readonly),
            "2:",
            "ld2r {{v0.4s, v1.4s}}, [{a0}], #8",
            "ld2r {{v2.4s, v3.4s}}, [{a1}], #8",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "smull  v12.8h, v0.8b, v4.8b",
            "smull  v14.8h, v2.8b, v4.8b",
            "smull2 v13.8h, v0.16b, v4.16b",
            "smull2 v15.8h, v2.16b, v4.16b",
            "smlal  v12.8h, v1.8b, v8.8b",
            "smlal  v14.8h, v3.8b, v8.8b",
            "smlal2 v13.8h, v1.16b, v8.16b",
            "smlal2 v15.8h, v3.16b, v8.16b",
            "sadalp v16.4s, v12.8h",
            "sadalp v24.4s, v14.8h",
            "sadalp v17.4s, v13.8h",
            "sadalp v25.4s, v15.8h",
            "smull  v12.8h, v0.8b, v5.8b",
            "smull  v14.8h, v2.8b, v5.8b",
            "smull2 v13.8h, v0.16b, v5.16b",
            "smull2 v15.8h, v2.16b, v5.16b",
            "smlal  v12.8h, v1.8b, v9.8b",
            "smlal  v14.8h, v3.8b, v9.8b",
            "smlal2 v13.8h, v1.16b, v9.16b",
            "smlal2 v15.8h, v3.16b, v9.16b",
            "sadalp v18.4s, v12.8h",
            "sadalp v26.4s, v14.8h",
            "sadalp v19.4s, v13.8h",
            "sadalp v27.4s, v15.8h",
            "smull  v12.8h, v0.8b, v6.8b",
            "smull  v14.8h, v2.8b, v6.8b",
            "smull2 v13.8h, v0.16b, v6.16b",
            "smull2 v15.8h, v2.16b, v6.16b",
            "smlal  v12.8h, v1.8b, v10.8b",
            "smlal  v14.8h, v3.8b, v10.8b",
            "smlal2 v13.8h, v1.16b, v10.16b",
            "smlal2 v15.8h, v3.16b, v10.16b",
            "sadalp v20.4s, v12.8h",
            "sadalp v28.4s, v14.8h",
            "sadalp v21.4s, v13.8h",
            "sadalp v29.4s, v15.8h",
            "smull  v12.8h, v0.8b, v7.8b",
            "smull  v14.8h, v2.8b, v7.8b",
            "smull2 v13.8h, v0.16b, v7.16b",
            "smull2 v15.8h, v2.16b, v7.16b",
            "smlal  v12.8h, v1.8b, v11.8b",
            "smlal  v14.8h, v3.8b, v11.8b",
            "smlal2 v13.8h, v1.16b, v11.16b",
            "smlal2 v15.8h, v3.16b, v11.16b",
            "sadalp v22.4s, v12.8h",
            "sadalp v30.4s, v14.8h",
            "sadalp v23.4s, v13.8h",
            "sadalp v31.4s, v15.8h",
            "ld2r {{v0.4s, v1.4s}}, [{a0}], #8",
            "ld2r {{v2.4s, v3.4s}}, [{a1}], #8",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "smull  v12.8h, v0.8b, v4.8b",
            "smull  v14.8h, v2.8b, v4.8b",
            "smull2 v13.8h, v0.16b, v4.16b",
            "smull2 v15.8h, v2.16b, v4.16b",
            "smlal  v12.8h, v1.8b, v8.8b",
            "smlal  v14.8h, v3.8b, v8.8b",
            "smlal2 v13.8h, v1.16b, v8.16b",
            "smlal2 v15.8h, v3.16b, v8.16b",
            "sadalp v16.4s, v12.8h",
            "sadalp v24.4s, v14.8h",
            "sadalp v17.4s, v13.8h",
            "sadalp v25.4s, v15.8h",
            "smull  v12.8h, v0.8b, v5.8b",
            "smull  v14.8h, v2.8b, v5.8b",
            "smull2 v13.8h, v0.16b, v5.16b",
            "smull2 v15.8h, v2.16b, v5.16b",
            "smlal  v12.8h, v1.8b, v9.8b",
            "smlal  v14.8h, v3.8b, v9.8b",
            "smlal2 v13.8h, v1.16b, v9.16b",
            "smlal2 v15.8h, v3.16b, v9.16b",
            "sadalp v18.4s, v12.8h",
            "sadalp v26.4s, v14.8h",
            "sadalp v19.4s, v13.8h",
            "sadalp v27.4s, v15.8h",
            "smull  v12.8h, v0.8b, v6.8b",
            "smull  v14.8h, v2.8b, v6.8b",
            "smull2 v13.8h, v0.16b, v6.16b",
            "smull2 v15.8h, v2.16b, v6.16b",
            "smlal  v12.8h, v1.8b, v10.8b",
            "smlal  v14.8h, v3.8b, v10.8b",
            "smlal2 v13.8h, v1.16b, v10.16b",
            "smlal2 v15.8h, v3.16b, v10.16b",
            "sadalp v20.4s, v12.8h",
            "sadalp v28.4s, v14.8h",
            "sadalp v21.4s, v13.8h",
            "sadalp v29.4s, v15.8h",
            "smull  v12.8h, v0.8b, v7.8b",
            "smull  v14.8h, v2.8b, v7.8b",
            "smull2 v13.8h, v0.16b, v7.16b",
            "smull2 v15.8h, v2.16b, v7.16b",
            "smlal  v12.8h, v1.8b, v11.8b",
            "smlal  v14.8h, v3.8b, v11.8b",
            "smlal2 v13.8h, v1.16b, v11.16b",
            "smlal2 v15.8h, v3.16b, v11.16b",
            "sadalp v22.4s, v12.8h",
            "sadalp v30.4s, v14.8h",
            "sadalp v23.4s, v13.8h",
            "sadalp v31.4s, v15.8h",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            b = inout(reg) b => _,
            n = inout(reg) steps => _,
        );
    }
}

/// The output step of a full 2 x 16 tile straight from the registers of [`kloop2`]: per row
/// and column quad `ADDP` (the two partial sums of each column), `SCVTF`, `FMUL` by
/// `a_scale * w_scale`, `FADD` of the bias (no FMLA), then one `ST1` (x4) per row.
///
/// # Safety
/// Rows `i0..i0 + 2` and the block's 16 columns exist.
#[inline(always)]
unsafe fn store2x16(acc: &Acc, block: &Block<'_>, i0: usize) {
    // SAFETY: reads the 16 scales and biases of `c` and the row scales `i0..`, writes 16 floats
    // of each output row (rows and columns in range: caller); only declared registers change.
    unsafe {
        let (out, stride) = block.raw.out_row(i0, block.j0);
        tile_asm!(
            in acc,
            options(nostack),
            "ld1 {{v0.4s-v3.4s}}, [{scale}]",
            "ld1 {{v4.4s-v7.4s}}, [{bias}]",
            "ld1 {{v15.2s}}, [{asc}]",
            "fmul v12.4s, v0.4s, v15.s[0]",
            "addp v8.4s, v16.4s, v17.4s",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[0]",
            "addp v9.4s, v18.4s, v19.4s",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[0]",
            "addp v10.4s, v20.4s, v21.4s",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[0]",
            "addp v11.4s, v22.4s, v23.4s",
            "scvtf v11.4s, v11.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[1]",
            "addp v8.4s, v24.4s, v25.4s",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[1]",
            "addp v9.4s, v26.4s, v27.4s",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[1]",
            "addp v10.4s, v28.4s, v29.4s",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[1]",
            "addp v11.4s, v30.4s, v31.4s",
            "scvtf v11.4s, v11.4s",
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
