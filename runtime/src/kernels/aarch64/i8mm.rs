//! SMMLA int8 GEMM (ARMv8.6 i8mm: Neoverse V1/V2, Cortex-A710+, Graviton3/4).
//!
//! `smmla vACC.4s, vA.16b, vW.16b` multiplies a 2x8 activation tile (two rows, 8 k) by an 8x2
//! weight tile (two columns, 8 k) into a 2x2 i32 tile `[r0c0 r0c1 r1c0 r1c1]`: 32 MACs. In
//! [`Layout::K8N8`] each 16 bytes of a k-group already are such a weight tile. The activation
//! tile is built without packing by structure loads from the row-major rows: `LD4R` of 32 bytes
//! of row 0 fills both halves of 4 registers (one k-group each), `LD4` (lane 1) of row 1 replaces
//! their upper halves, so 2 instructions give 4 tiles covering 32 k.
//!
//! Micro-kernel (an `asm!` loop, the SMMLA intrinsics being unstable): 4 rows (2 row pairs) x
//! 16 columns (2 panels), 16 accumulators, 8 activation and 8 weight registers; per 32 k: 4
//! activation loads, 8 `LD1` (x4) of weights, 64 `SMMLA` (2048 MACs) and 2 loop instructions:
//! 26 MACs per instruction. A 4 x 8 variant takes an odd last panel; 1-3 leftover rows run as
//! 2 rows (1 pair) or 4 with an odd row paired with itself (2 rows use an intrinsics step). The
//! k tail (k % 32) runs one more step over zero-padded copies. The output step de-interleaves
//! the 2x2 tiles with `UZP1/UZP2`; for a full tile it is `asm!` too (`store4x16`).
//!
//! Activations are read in place (no packing buffer): the structure loads cost 2 instructions
//! per 4 tiles, as little as loading a packed copy would, and need no K blocking.
//!
//! K4N16 weights (the quantizer's default, shared with SDOT and VNNI) run SMMLA too, repacked
//! in registers: two consecutive k-groups of a panel hold, per 16-byte register, 4 columns x
//! k 0-3 and the same 4 columns x k 4-7, and `ZIP1`/`ZIP2` on 32-bit lanes turn them into the
//! 8x2 tiles of columns (0, 1) and (2, 3). Per 16 k of 4 rows x 16 columns: 4 activation loads
//! (`LD2R` + `LD2`), 4 `LD1` (x4), 16 `ZIP`, 32 `SMMLA` (1024 MACs), 2 loop instructions: 17.7
//! MACs per instruction against SDOT's 13.8, with no memory and no file change, so an i8mm core
//! gains from any model file ([`kloop_k4n16`]). K8N8 weights remain the fastest (26): `bertq`
//! converts a K4N16 file to them at load (`Model::repacked`); this path serves the programs
//! that keep the file's layout (the C API, the firmware, `BERTQ_REPACK=0`).
//! Other layouts go to the reference.

use super::gemm::{gemm, sizes_ok, tile_asm, Acc, Block, MicroKernel};
use super::has_i8mm;
use crate::kernels::{reference, GemmI8, Kernels, Layout, MatMut};
use core::arch::aarch64::*;
use core::arch::asm;

pub static I8MM: Kernels = Kernels {
    name: "i8mm",
    native_layout: Layout::K8N8,
    unsigned_activations: false,
    quantize_rows: super::quantize_rows,
    gemm_i8,
    gemm_f32: super::float::gemm_f32,
    softmax: super::ops::softmax,
    activate: super::ops::activate,
    attention: super::ops::attention,
    add_layer_norm: super::ops::add_layer_norm,
};

crate::kernel_test_suite!(i8mm_suite, &super::I8MM, super::has_i8mm());

fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    match p.w.layout {
        Layout::K8N8 => gemm_k8n8(p, out),
        Layout::K4N16 => gemm_k4n16(p, out),
        Layout::RowMajor => reference::gemm_i8(p, out),
    }
}

/// The K4N16 GEMM with SMMLA (tiles zipped in registers) when this CPU has it, else SDOT/NEON.
/// A single row (`m = 1`, or the last of `4 q + 1`) goes to SDOT: SMMLA works on two row pairs,
/// and one row padded to four costs about three times the SDOT row.
fn gemm_k4n16(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout != Layout::K4N16 || !sizes_ok(p, out) || !has_i8mm() || p.m == 1 {
        return super::dotprod::gemm_k4n16(p, out);
    }
    let (m, k) = (p.m, p.w.k);
    let head = if m % 4 == 1 { m - 1 } else { m };
    let (mut out_head, mut out_last) = out.split_rows(head);
    let part = |rows: core::ops::Range<usize>| GemmI8 {
        m: rows.len(),
        a: &p.a[rows.start * k..rows.end * k],
        a_scales: &p.a_scales[rows.clone()],
        ..*p
    };
    // SAFETY: the CPU has i8mm (checked); `part` keeps rows `0..head` of sizes that passed
    // `sizes_ok`, so they pass it too.
    unsafe { gemm_k4n16_smmla(&part(0..head), &mut out_head) }
    if head < m {
        super::dotprod::gemm_k4n16(&part(head..m), &mut out_last);
    }
}

/// # Safety
/// The CPU must support `i8mm`; `p` and `out` must pass [`sizes_ok`] with layout K4N16.
#[target_feature(enable = "i8mm")]
unsafe fn gemm_k4n16_smmla(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    // SAFETY: forwarded; this function has the SMMLA instructions.
    unsafe { gemm::<SmmlaK4N16>(p, out) }
}

/// The K8N8 GEMM with SMMLA when this CPU has it, else the reference.
fn gemm_k8n8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout == Layout::K8N8 && sizes_ok(p, out) && has_i8mm() {
        // SAFETY: the CPU has i8mm (checked) and the sizes were checked.
        unsafe { gemm_k8n8_smmla(p, out) }
    } else {
        reference::gemm_i8(p, out)
    }
}

/// # Safety
/// The CPU must support `i8mm`; `p` and `out` must pass [`sizes_ok`] with layout K8N8.
#[target_feature(enable = "i8mm")]
unsafe fn gemm_k8n8_smmla(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    // SAFETY: forwarded; this function has the SMMLA instructions.
    unsafe { gemm::<SmmlaK8N8>(p, out) }
}

/// The SMMLA micro-kernel on K8N8 panels: 4 rows (2 pairs) x 16 columns (2 panels of 8, or 1
/// in the last block); pair `pr`'s 2x2 tile of columns `2 t`, `2 t + 1` is
/// `acc[4 panels pr + t]`. Up to 2 rows run as one pair with the intrinsics step; a third row
/// is paired with itself.
struct SmmlaK8N8;

// SAFETY: `kloop` reads `32 steps` bytes per row and `256 steps` per panel, `store` writes the
// tile's rows and `nv` columns (the contracts of the loops, `step` and `store_pairs`).
unsafe impl MicroKernel for SmmlaK8N8 {
    const LAYOUT: Layout = Layout::K8N8;
    const ROWS: usize = 4;

    #[inline(always)]
    unsafe fn kloop(
        acc: &mut Acc,
        a: [*const i8; 4],
        rows: usize,
        b: [*const i8; 2],
        panels: usize,
        steps: usize,
    ) {
        // SAFETY: forwarded from the caller; i8mm is present.
        unsafe {
            match (rows > 2, panels == 2) {
                (true, true) => kloop_4x16(acc, a, b, steps),
                (true, false) => kloop_4x8(acc, a, b[0], steps),
                (false, true) => pair_steps::<2>(acc, a, b, steps),
                (false, false) => pair_steps::<1>(acc, a, b, steps),
            }
        }
    }

    #[inline(always)]
    unsafe fn store(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize) {
        // SAFETY: rows `i0..i0 + rows` and the block's columns exist (caller).
        unsafe {
            if block.panels == 2 {
                if rows == 4 && block.nv == 16 {
                    return store4x16(acc, block, i0);
                }
                store_pairs::<4>(acc, block, i0, rows);
            } else {
                store_pairs::<2>(acc, block, i0, rows);
            }
        }
    }
}

/// `steps` x 32 k of the row pair `(a[0], a[1])` x `NP` panels with the intrinsics step.
///
/// # Safety
/// `32 steps` readable bytes at `a[0]` and `a[1]`, `256 steps` at `b[..NP]`; only inlined
/// into an `i8mm` function.
#[inline(always)]
unsafe fn pair_steps<const NP: usize>(
    acc: &mut Acc,
    a: [*const i8; 4],
    b: [*const i8; 2],
    steps: usize,
) {
    // SAFETY: forwarded from the caller.
    unsafe {
        for s in 0..steps {
            step::<NP>(
                acc,
                a[0].add(32 * s),
                a[1].add(32 * s),
                b.map(|p| p.add(256 * s)),
            );
        }
    }
}

/// The SMMLA micro-kernel on K4N16 panels (the default file layout), tiles zipped in registers
/// ([`kloop_k4n16`]): 4 rows (2 pairs, a third row paired with itself, 2 rows computed twice)
/// x 16 columns; pair `pr`'s tile of columns `2 t`, `2 t + 1` is `acc[8 pr + t]`.
struct SmmlaK4N16;

// SAFETY: `kloop` reads `16 steps` bytes per row and `256 steps` per panel, `store` writes the
// tile's rows and `nv` columns (the contracts of `kloop_k4n16` and `store_pairs`).
unsafe impl MicroKernel for SmmlaK4N16 {
    const LAYOUT: Layout = Layout::K4N16;
    const ROWS: usize = 4;

    #[inline(always)]
    unsafe fn kloop(
        acc: &mut Acc,
        a: [*const i8; 4],
        _rows: usize,
        b: [*const i8; 2],
        _panels: usize,
        steps: usize,
    ) {
        // SAFETY: forwarded from the caller; i8mm is present. Rows past `rows` repeat the
        // last, so the two pairs are always real rows.
        unsafe { kloop_k4n16(acc, a, b[0], steps) }
    }

    #[inline(always)]
    unsafe fn store(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize) {
        // SAFETY: rows `i0..i0 + rows` and the block's columns exist (caller).
        unsafe {
            if rows == 4 && block.nv == 16 {
                return store4x16(acc, block, i0);
            }
            store_pairs::<4>(acc, block, i0, rows);
        }
    }
}

/// Output rows `i0..i0 + rows` from the 2x2 tiles of `V` column quads: pair `pr`'s tile of
/// columns `2 t`, `2 t + 1` in `acc[2 V pr + t]`, row `2 pr` its low half, `2 pr + 1` its high.
///
/// # Safety
/// Rows `i0..i0 + rows` and the block's `nv <= 4 V` columns exist.
#[inline(always)]
unsafe fn store_pairs<const V: usize>(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize) {
    // SAFETY: NEON is baseline; rows and columns in range (caller).
    unsafe {
        let s = |v: int32x4_t| vreinterpretq_s64_s32(v);
        for pr in 0..rows.div_ceil(2) {
            let tile = |t: usize| s(acc[2 * V * pr + t]);
            let low = |x: usize| vreinterpretq_s32_s64(vuzp1q_s64(tile(2 * x), tile(2 * x + 1)));
            let high = |x: usize| vreinterpretq_s32_s64(vuzp2q_s64(tile(2 * x), tile(2 * x + 1)));
            let zero = vdupq_n_s32(0);
            let sums = [
                core::array::from_fn(|x| if x < V { low(x) } else { zero }),
                core::array::from_fn(|x| if x < V { high(x) } else { zero }),
            ];
            for (h, sums) in sums.iter().enumerate() {
                if 2 * pr + h < rows {
                    block.store_row::<V>(i0 + 2 * pr + h, sums);
                }
            }
        }
    }
}

/// `acc (2x2) += a (2 rows x 8 k) * w (2 columns x 8 k)^T`.
macro_rules! smmla {
    ($acc:expr, $a:expr, $w:expr) => {
        asm!(
            "smmla {acc:v}.4s, {a:v}.16b, {w:v}.16b",
            acc = inout(vreg) $acc,
            a = in(vreg) $a,
            w = in(vreg) $w,
            options(pure, nomem, nostack, preserves_flags),
        )
    };
}

/// 32 k of one row pair `(a0, a1)` x `NP` panels: `acc[4 np + c]` is the 2x2 tile of columns
/// `8 np + 2 c`, `8 np + 2 c + 1`.
///
/// # Safety
/// 32 readable bytes at `a0` and `a1`, 256 at `b[..NP]`; only inlined into an `i8mm` function.
#[inline(always)]
unsafe fn step<const NP: usize>(acc: &mut Acc, a0: *const i8, a1: *const i8, b: [*const i8; 2]) {
    // SAFETY: the reads stay inside the ranges the caller guarantees; SMMLA is available.
    unsafe {
        let t = vld4q_dup_s64(a0 as *const i64);
        let t = vld4q_lane_s64::<1>(a1 as *const i64, t);
        let x = [t.0, t.1, t.2, t.3].map(|v| vreinterpretq_s8_s64(v));
        macro_rules! group {
            ($np:literal, $g:literal) => {
                let w = vld1q_s8_x4(b[$np].add(64 * $g));
                smmla!(acc[4 * $np], x[$g], w.0);
                smmla!(acc[4 * $np + 1], x[$g], w.1);
                smmla!(acc[4 * $np + 2], x[$g], w.2);
                smmla!(acc[4 * $np + 3], x[$g], w.3);
            };
        }
        group!(0, 0);
        group!(0, 1);
        group!(0, 2);
        group!(0, 3);
        if NP == 2 {
            group!(1, 0);
            group!(1, 1);
            group!(1, 2);
            group!(1, 3);
        }
    }
}

/// `steps` x 32 k of 2 row pairs x 2 panels, all in registers: `LD4R` + `LD4` (lane 1) build
/// the 4 k-group tiles of pair `pr` in v(4pr)..v(4pr+3), panel `np`'s group goes to
/// v(8+4np)..v(11+4np), and `acc[pr][4 np + c]` lives in `v(16 + 8 pr + 4 np + c)`. Per 32 k:
/// 4 + 8 loads, 64 SMMLA, 2 loop.
///
/// # Safety
/// `32 steps` readable bytes at each `a[r]`, `256 steps` at each panel pointer, `steps >= 1`;
/// only inlined into an `i8mm` function.
#[inline(always)]
unsafe fn kloop_4x16(acc: &mut Acc, a: [*const i8; 4], b: [*const i8; 2], steps: usize) {
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers); writes
    // only the declared registers; SMMLA is available.
    unsafe {
        tile_asm!(
            inout acc,
            options(nostack, readonly),
            "2:",
            "ld4r {{v0.2d, v1.2d, v2.2d, v3.2d}}, [{a0}], #32",
            "ld4 {{v0.d, v1.d, v2.d, v3.d}}[1], [{a1}], #32",
            "ld4r {{v4.2d, v5.2d, v6.2d, v7.2d}}, [{a2}], #32",
            "ld4 {{v4.d, v5.d, v6.d, v7.d}}[1], [{a3}], #32",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "ld1 {{v12.16b-v15.16b}}, [{b1}], #64",
            "smmla v16.4s, v0.16b, v8.16b",
            "smmla v17.4s, v0.16b, v9.16b",
            "smmla v18.4s, v0.16b, v10.16b",
            "smmla v19.4s, v0.16b, v11.16b",
            "smmla v24.4s, v4.16b, v8.16b",
            "smmla v25.4s, v4.16b, v9.16b",
            "smmla v26.4s, v4.16b, v10.16b",
            "smmla v27.4s, v4.16b, v11.16b",
            "smmla v20.4s, v0.16b, v12.16b",
            "smmla v21.4s, v0.16b, v13.16b",
            "smmla v22.4s, v0.16b, v14.16b",
            "smmla v23.4s, v0.16b, v15.16b",
            "smmla v28.4s, v4.16b, v12.16b",
            "smmla v29.4s, v4.16b, v13.16b",
            "smmla v30.4s, v4.16b, v14.16b",
            "smmla v31.4s, v4.16b, v15.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "ld1 {{v12.16b-v15.16b}}, [{b1}], #64",
            "smmla v16.4s, v1.16b, v8.16b",
            "smmla v17.4s, v1.16b, v9.16b",
            "smmla v18.4s, v1.16b, v10.16b",
            "smmla v19.4s, v1.16b, v11.16b",
            "smmla v24.4s, v5.16b, v8.16b",
            "smmla v25.4s, v5.16b, v9.16b",
            "smmla v26.4s, v5.16b, v10.16b",
            "smmla v27.4s, v5.16b, v11.16b",
            "smmla v20.4s, v1.16b, v12.16b",
            "smmla v21.4s, v1.16b, v13.16b",
            "smmla v22.4s, v1.16b, v14.16b",
            "smmla v23.4s, v1.16b, v15.16b",
            "smmla v28.4s, v5.16b, v12.16b",
            "smmla v29.4s, v5.16b, v13.16b",
            "smmla v30.4s, v5.16b, v14.16b",
            "smmla v31.4s, v5.16b, v15.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "ld1 {{v12.16b-v15.16b}}, [{b1}], #64",
            "smmla v16.4s, v2.16b, v8.16b",
            "smmla v17.4s, v2.16b, v9.16b",
            "smmla v18.4s, v2.16b, v10.16b",
            "smmla v19.4s, v2.16b, v11.16b",
            "smmla v24.4s, v6.16b, v8.16b",
            "smmla v25.4s, v6.16b, v9.16b",
            "smmla v26.4s, v6.16b, v10.16b",
            "smmla v27.4s, v6.16b, v11.16b",
            "smmla v20.4s, v2.16b, v12.16b",
            "smmla v21.4s, v2.16b, v13.16b",
            "smmla v22.4s, v2.16b, v14.16b",
            "smmla v23.4s, v2.16b, v15.16b",
            "smmla v28.4s, v6.16b, v12.16b",
            "smmla v29.4s, v6.16b, v13.16b",
            "smmla v30.4s, v6.16b, v14.16b",
            "smmla v31.4s, v6.16b, v15.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "ld1 {{v12.16b-v15.16b}}, [{b1}], #64",
            "smmla v16.4s, v3.16b, v8.16b",
            "smmla v17.4s, v3.16b, v9.16b",
            "smmla v18.4s, v3.16b, v10.16b",
            "smmla v19.4s, v3.16b, v11.16b",
            "smmla v24.4s, v7.16b, v8.16b",
            "smmla v25.4s, v7.16b, v9.16b",
            "smmla v26.4s, v7.16b, v10.16b",
            "smmla v27.4s, v7.16b, v11.16b",
            "smmla v20.4s, v3.16b, v12.16b",
            "smmla v21.4s, v3.16b, v13.16b",
            "smmla v22.4s, v3.16b, v14.16b",
            "smmla v23.4s, v3.16b, v15.16b",
            "smmla v28.4s, v7.16b, v12.16b",
            "smmla v29.4s, v7.16b, v13.16b",
            "smmla v30.4s, v7.16b, v14.16b",
            "smmla v31.4s, v7.16b, v15.16b",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b0 = inout(reg) b[0] => _,
            b1 = inout(reg) b[1] => _,
            n = inout(reg) steps => _,
        );
    }
}

/// `steps` x 32 k of 2 row pairs x 1 panel (the last, odd panel): as [`kloop_4x16`] with
/// `acc[pr][c]` in `v(16 + 4 pr + c)`.
///
/// # Safety
/// `32 steps` readable bytes at each `a[r]`, `256 steps` at each panel pointer, `steps >= 1`;
/// only inlined into an `i8mm` function.
#[inline(always)]
unsafe fn kloop_4x8(acc: &mut Acc, a: [*const i8; 4], b: *const i8, steps: usize) {
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers); writes
    // only the declared registers; SMMLA is available.
    unsafe {
        tile_asm!(
            inout acc,
            options(nostack, readonly),
            "2:",
            "ld4r {{v0.2d, v1.2d, v2.2d, v3.2d}}, [{a0}], #32",
            "ld4 {{v0.d, v1.d, v2.d, v3.d}}[1], [{a1}], #32",
            "ld4r {{v4.2d, v5.2d, v6.2d, v7.2d}}, [{a2}], #32",
            "ld4 {{v4.d, v5.d, v6.d, v7.d}}[1], [{a3}], #32",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "smmla v16.4s, v0.16b, v8.16b",
            "smmla v17.4s, v0.16b, v9.16b",
            "smmla v18.4s, v0.16b, v10.16b",
            "smmla v19.4s, v0.16b, v11.16b",
            "smmla v20.4s, v4.16b, v8.16b",
            "smmla v21.4s, v4.16b, v9.16b",
            "smmla v22.4s, v4.16b, v10.16b",
            "smmla v23.4s, v4.16b, v11.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "smmla v16.4s, v1.16b, v8.16b",
            "smmla v17.4s, v1.16b, v9.16b",
            "smmla v18.4s, v1.16b, v10.16b",
            "smmla v19.4s, v1.16b, v11.16b",
            "smmla v20.4s, v5.16b, v8.16b",
            "smmla v21.4s, v5.16b, v9.16b",
            "smmla v22.4s, v5.16b, v10.16b",
            "smmla v23.4s, v5.16b, v11.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "smmla v16.4s, v2.16b, v8.16b",
            "smmla v17.4s, v2.16b, v9.16b",
            "smmla v18.4s, v2.16b, v10.16b",
            "smmla v19.4s, v2.16b, v11.16b",
            "smmla v20.4s, v6.16b, v8.16b",
            "smmla v21.4s, v6.16b, v9.16b",
            "smmla v22.4s, v6.16b, v10.16b",
            "smmla v23.4s, v6.16b, v11.16b",
            "ld1 {{v8.16b-v11.16b}}, [{b0}], #64",
            "smmla v16.4s, v3.16b, v8.16b",
            "smmla v17.4s, v3.16b, v9.16b",
            "smmla v18.4s, v3.16b, v10.16b",
            "smmla v19.4s, v3.16b, v11.16b",
            "smmla v20.4s, v7.16b, v8.16b",
            "smmla v21.4s, v7.16b, v9.16b",
            "smmla v22.4s, v7.16b, v10.16b",
            "smmla v23.4s, v7.16b, v11.16b",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b0 = inout(reg) b => _,
            n = inout(reg) steps => _,
        );
    }
}

/// `steps` x 16 k of 2 row pairs x one K4N16 panel (16 columns). `LD2R` + `LD2` (lane 1) put
/// rows `(a0, a1)` k 0-7 in v0 and k 8-15 in v1 (v2, v3 for `(a2, a3)`); each 8 k, the panel's
/// two k-groups (v4-v7: 4 columns x k 0-3 each, v8-v11: k 4-7) are zipped per column quad into
/// the 8x2 tiles of columns `(4q, 4q+1)` (`ZIP1`) and `(4q+2, 4q+3)` (`ZIP2`) in v12-v15, and
/// `acc[pr][t]` (columns `2t`, `2t+1`) lives in `v(16 + 8 pr + t)`, as in [`kloop_4x16`].
///
/// # Safety
/// `16 steps` readable bytes at each `a[r]`, `256 steps` at `b`, `steps >= 1`; only inlined into
/// an `i8mm` function.
#[inline(always)]
unsafe fn kloop_k4n16(acc: &mut Acc, a: [*const i8; 4], b: *const i8, steps: usize) {
    // SAFETY: reads only the ranges the caller guarantees (post-incremented pointers); writes
    // only the declared registers; SMMLA is available.
    unsafe {
        tile_asm!(
            inout acc,
            options(nostack, readonly),
            "2:",
            "ld2r {{v0.2d, v1.2d}}, [{a0}], #16",
            "ld2 {{v0.d, v1.d}}[1], [{a1}], #16",
            "ld2r {{v2.2d, v3.2d}}, [{a2}], #16",
            "ld2 {{v2.d, v3.d}}[1], [{a3}], #16",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "zip1 v12.4s, v4.4s, v8.4s",
            "zip2 v13.4s, v4.4s, v8.4s",
            "zip1 v14.4s, v5.4s, v9.4s",
            "zip2 v15.4s, v5.4s, v9.4s",
            "smmla v16.4s, v0.16b, v12.16b",
            "smmla v17.4s, v0.16b, v13.16b",
            "smmla v18.4s, v0.16b, v14.16b",
            "smmla v19.4s, v0.16b, v15.16b",
            "smmla v24.4s, v2.16b, v12.16b",
            "smmla v25.4s, v2.16b, v13.16b",
            "smmla v26.4s, v2.16b, v14.16b",
            "smmla v27.4s, v2.16b, v15.16b",
            "zip1 v12.4s, v6.4s, v10.4s",
            "zip2 v13.4s, v6.4s, v10.4s",
            "zip1 v14.4s, v7.4s, v11.4s",
            "zip2 v15.4s, v7.4s, v11.4s",
            "smmla v20.4s, v0.16b, v12.16b",
            "smmla v21.4s, v0.16b, v13.16b",
            "smmla v22.4s, v0.16b, v14.16b",
            "smmla v23.4s, v0.16b, v15.16b",
            "smmla v28.4s, v2.16b, v12.16b",
            "smmla v29.4s, v2.16b, v13.16b",
            "smmla v30.4s, v2.16b, v14.16b",
            "smmla v31.4s, v2.16b, v15.16b",
            "ld1 {{v4.16b-v7.16b}}, [{b}], #64",
            "ld1 {{v8.16b-v11.16b}}, [{b}], #64",
            "zip1 v12.4s, v4.4s, v8.4s",
            "zip2 v13.4s, v4.4s, v8.4s",
            "zip1 v14.4s, v5.4s, v9.4s",
            "zip2 v15.4s, v5.4s, v9.4s",
            "smmla v16.4s, v1.16b, v12.16b",
            "smmla v17.4s, v1.16b, v13.16b",
            "smmla v18.4s, v1.16b, v14.16b",
            "smmla v19.4s, v1.16b, v15.16b",
            "smmla v24.4s, v3.16b, v12.16b",
            "smmla v25.4s, v3.16b, v13.16b",
            "smmla v26.4s, v3.16b, v14.16b",
            "smmla v27.4s, v3.16b, v15.16b",
            "zip1 v12.4s, v6.4s, v10.4s",
            "zip2 v13.4s, v6.4s, v10.4s",
            "zip1 v14.4s, v7.4s, v11.4s",
            "zip2 v15.4s, v7.4s, v11.4s",
            "smmla v20.4s, v1.16b, v12.16b",
            "smmla v21.4s, v1.16b, v13.16b",
            "smmla v22.4s, v1.16b, v14.16b",
            "smmla v23.4s, v1.16b, v15.16b",
            "smmla v28.4s, v3.16b, v12.16b",
            "smmla v29.4s, v3.16b, v13.16b",
            "smmla v30.4s, v3.16b, v14.16b",
            "smmla v31.4s, v3.16b, v15.16b",
            "subs {n}, {n}, #1",
            "b.ne 2b",
            a0 = inout(reg) a[0] => _,
            a1 = inout(reg) a[1] => _,
            a2 = inout(reg) a[2] => _,
            a3 = inout(reg) a[3] => _,
            b = inout(reg) b => _,
            n = inout(reg) steps => _,
        );
    }
}

/// The output step of a full 4 x 16 tile straight from the registers of [`kloop_4x16`]:
/// per row and column quad `UZP1`/`UZP2` (row 2pr / 2pr+1 of the 2x2 tiles), `SCVTF`, `FMUL` by
/// `a_scale * w_scale`, `FADD` of the bias (no FMLA), then one `ST1` (x4) per row.
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
            "uzp1 v8.2d, v16.2d, v17.2d",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[0]",
            "uzp1 v9.2d, v18.2d, v19.2d",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[0]",
            "uzp1 v10.2d, v20.2d, v21.2d",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[0]",
            "uzp1 v11.2d, v22.2d, v23.2d",
            "scvtf v11.4s, v11.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[1]",
            "uzp2 v8.2d, v16.2d, v17.2d",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[1]",
            "uzp2 v9.2d, v18.2d, v19.2d",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[1]",
            "uzp2 v10.2d, v20.2d, v21.2d",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[1]",
            "uzp2 v11.2d, v22.2d, v23.2d",
            "scvtf v11.4s, v11.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[2]",
            "uzp1 v8.2d, v24.2d, v25.2d",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[2]",
            "uzp1 v9.2d, v26.2d, v27.2d",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[2]",
            "uzp1 v10.2d, v28.2d, v29.2d",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[2]",
            "uzp1 v11.2d, v30.2d, v31.2d",
            "scvtf v11.4s, v11.4s",
            "fmul v11.4s, v11.4s, v12.4s",
            "fadd v11.4s, v11.4s, v7.4s",
            "st1 {{v8.4s-v11.4s}}, [{out}], {stride}",
            "fmul v12.4s, v0.4s, v15.s[3]",
            "uzp2 v8.2d, v24.2d, v25.2d",
            "scvtf v8.4s, v8.4s",
            "fmul v8.4s, v8.4s, v12.4s",
            "fadd v8.4s, v8.4s, v4.4s",
            "fmul v12.4s, v1.4s, v15.s[3]",
            "uzp2 v9.2d, v26.2d, v27.2d",
            "scvtf v9.4s, v9.4s",
            "fmul v9.4s, v9.4s, v12.4s",
            "fadd v9.4s, v9.4s, v5.4s",
            "fmul v12.4s, v2.4s, v15.s[3]",
            "uzp2 v10.2d, v28.2d, v29.2d",
            "scvtf v10.4s, v10.4s",
            "fmul v10.4s, v10.4s, v12.4s",
            "fadd v10.4s, v10.4s, v6.4s",
            "fmul v12.4s, v3.4s, v15.s[3]",
            "uzp2 v11.2d, v30.2d, v31.2d",
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
