//! AMX (Advanced Matrix Extensions: Xeon Sapphire Rapids and later) int8 GEMM. `tdpbusd`
//! multiplies a tile of up to 16 rows x 64 unsigned activation bytes by a 16 x 64 tile of signed
//! weights (16 k-groups x 16 columns x 4) into a 16 x 16 i32 tile: up to 16,384 MACs per
//! instruction, against 64 for AVX-512 VNNI's `vpdpbusd`.
//!
//! The weights need no layout of their own: a [`Layout::K4N16`] panel *is* a column of AMX B
//! tiles (k-group `g` of a panel is 64 bytes = one B-tile row, and consecutive groups are
//! consecutive rows, 64 bytes apart). Activations are the AVX-512 VNNI table's `q + 128` bytes,
//! loaded straight from the `[m, k]` matrix with a row stride of `k`, and the `+128` is removed
//! with the weights' row sums exactly as there. Everything else (quantization, softmax, LayerNorm,
//! attention) is the AVX-512 VNNI table's.
//!
//! Blocking: 2 row blocks (32 rows) x 2 panels (32 columns): tmm0-3 accumulate, tmm4-5 hold the
//! activation tiles, tmm6-7 the weight tiles; per 64 k, 4 tile loads and 4 `tdpbusd`. Shapes AMX
//! does not cover (k not a multiple of 64, other layouts) and fewer than 16 rows go to the
//! AVX-512 VNNI kernel.
//!
//! Linux hands out AMX state only on request (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, process-wide),
//! so the table needs `std` and Linux; without them it is never selected.

use super::avx512vnni;
use crate::kernels::{GemmI8, Kernels, Layout, MatMut};
use core::arch::asm;
use core::arch::x86_64::*;

pub static AMX: Kernels = Kernels {
    name: "amx",
    gemm_i8,
    ..avx512vnni::TABLE
};

/// Whether this CPU and OS can run the table (AVX-512 VNNI for the rest of the table, AMX-TILE
/// and AMX-INT8 by CPUID, and the kernel's permission for the tile data state, requested once).
#[cfg(all(feature = "std", target_os = "linux"))]
pub fn available() -> bool {
    static PERMITTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    avx512vnni::available() && *PERMITTED.get_or_init(|| cpu_has_amx_int8() && request_tile_data())
}

#[cfg(not(all(feature = "std", target_os = "linux")))]
pub fn available() -> bool {
    false
}

/// CPUID leaf 7: EDX bit 24 is AMX-TILE, bit 25 AMX-INT8.
#[cfg(all(feature = "std", target_os = "linux"))]
fn cpu_has_amx_int8() -> bool {
    // CPUID leaf 7 exists on every x86-64 CPU with AVX-512 (checked first by the caller).
    let leaf7 = __cpuid_count(7, 0);
    leaf7.edx & (1 << 24) != 0 && leaf7.edx & (1 << 25) != 0
}

/// `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`: asks Linux (5.16+) to let this process
/// use the AMX tile data; returns whether it agreed.
#[cfg(all(feature = "std", target_os = "linux"))]
fn request_tile_data() -> bool {
    const SYS_ARCH_PRCTL: isize = 158;
    const ARCH_REQ_XCOMP_PERM: usize = 0x1023;
    const XFEATURE_XTILEDATA: usize = 18;
    let ret: isize;
    // SAFETY: a plain Linux x86-64 system call; it reads no memory and only changes which
    // register state the kernel lets this process use. `syscall` clobbers rcx and r11.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") SYS_ARCH_PRCTL => ret,
            in("rdi") ARCH_REQ_XCOMP_PERM,
            in("rsi") XFEATURE_XTILEDATA,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret == 0
}

fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    match (p.w.layout, p.w.row_sums) {
        // Below a full tile of rows (short inputs), AVX-512 VNNI is as fast or faster: the
        // tile set-up and stores are not paid back.
        (Layout::K4N16, Some(sums))
            if m >= 16
                && k % 64 == 0
                && k > 0
                && sums.len() >= n
                && p.a.len() >= m * k
                && p.a_scales.len() >= m
                && out.rows() >= m
                && out.cols() >= n
                && p.w.data.len() >= n.div_ceil(16) * k * 16
                && p.w.scales.len() >= n
                && p.bias.is_none_or(|b| b.len() >= n) =>
        {
            // SAFETY: the table is only selected when `available()` holds (AMX permitted, AVX-512
            // present), and the shapes and lengths the kernel relies on were checked just above.
            unsafe { gemm_amx(p, sums, out) }
        }
        _ => avx512vnni::gemm_i8(p, out),
    }
}

/// The 64-byte tile configuration `ldtilecfg` reads (palette 1).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    /// Bytes per row of each tile register.
    colsb: [u16; 16],
    /// Rows of each tile register.
    rows: [u8; 16],
}

impl TileConfig {
    /// tmm0/1 (accumulators) and tmm4 (activations) of the first row block have `rows0` rows,
    /// tmm2/3 and tmm5 of the second `rows1`; tmm6/7 (weights) are 16 k-groups of 64 bytes.
    fn new(rows0: usize, rows1: usize) -> Self {
        let mut c = TileConfig {
            palette: 1,
            start_row: 0,
            reserved: [0; 14],
            colsb: [0; 16],
            rows: [0; 16],
        };
        for (tile, rows) in [
            (0, rows0),
            (1, rows0),
            (4, rows0),
            (2, rows1),
            (3, rows1),
            (5, rows1),
        ] {
            c.colsb[tile] = 64;
            c.rows[tile] = rows as u8;
        }
        for tile in [6, 7] {
            c.colsb[tile] = 64;
            c.rows[tile] = 16;
        }
        c
    }
}

/// # Safety
/// AMX must be permitted and AVX-512 present; `k % 64 == 0` and every slice long enough for
/// `[m, k]` activations, `n` columns of K4N16 weights and a `[m, n]` output (see `gemm_i8`).
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn gemm_amx(p: &GemmI8<'_>, sums: &[i32], out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let panels = n.div_ceil(16);
    let panel_bytes = k * 16; // k / 4 groups of 64 bytes
    let a = p.a.as_ptr();
    let w = p.w.data.as_ptr();
    // Accumulator tiles are stored here for the output step: [tile][row][column].
    let mut acc = Accumulators([[[0i32; 16]; 16]; 4]);
    let mut configured = (usize::MAX, usize::MAX);
    let mut i0 = 0;
    while i0 < m {
        let rows0 = (m - i0).min(16);
        let rows1 = (m - i0 - rows0).min(16);
        if configured != (rows0, rows1) {
            let config = TileConfig::new(rows0, rows1.max(1));
            // SAFETY: `config` is a valid palette-1 configuration (rows <= 16, 64 bytes per row).
            unsafe { asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly)) };
            configured = (rows0, rows1);
        }
        let mut panel = 0;
        while panel < panels {
            let two_panels = panel + 1 < panels;
            let two_blocks = rows1 > 0;
            // SAFETY: (every tile instruction in this block) tile shapes come from the
            // configuration just loaded; activation tile loads read rows `i0 .. i0 + rows` (< m)
            // at columns `kb * 64 .. + 64` (< k) with stride k; weight tile loads read 16 groups
            // of 64 bytes of panels `panel`, `panel + 1` (< panels); all inside the slices
            // `gemm_i8` checked; the stores write the 4 KiB of `acc`.
            unsafe {
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for kb in 0..k / 64 {
                    let a0 = a.add(i0 * k + kb * 64);
                    let b0 = w.add(panel * panel_bytes + kb * 1024);
                    asm!("tileloadd tmm4, [{a} + {s} * 1]", a = in(reg) a0, s = in(reg) k,
                        options(nostack, readonly));
                    asm!("tileloadd tmm6, [{b} + {s} * 1]", b = in(reg) b0, s = in(reg) 64usize,
                        options(nostack, readonly));
                    asm!("tdpbusd tmm0, tmm4, tmm6", options(nostack, nomem));
                    if two_panels {
                        asm!("tileloadd tmm7, [{b} + {s} * 1]", b = in(reg) b0.add(panel_bytes),
                            s = in(reg) 64usize, options(nostack, readonly));
                        asm!("tdpbusd tmm1, tmm4, tmm7", options(nostack, nomem));
                    }
                    if two_blocks {
                        asm!("tileloadd tmm5, [{a} + {s} * 1]", a = in(reg) a0.add(16 * k),
                            s = in(reg) k, options(nostack, readonly));
                        asm!("tdpbusd tmm2, tmm5, tmm6", options(nostack, nomem));
                        if two_panels {
                            asm!("tdpbusd tmm3, tmm5, tmm7", options(nostack, nomem));
                        }
                    }
                }
                let base = acc.0.as_mut_ptr();
                asm!("tilestored [{c} + {s} * 1], tmm0", c = in(reg) base, s = in(reg) 64usize,
                    options(nostack));
                asm!("tilestored [{c} + {s} * 1], tmm1", c = in(reg) base.add(1), s = in(reg) 64usize,
                    options(nostack));
                asm!("tilestored [{c} + {s} * 1], tmm2", c = in(reg) base.add(2), s = in(reg) 64usize,
                    options(nostack));
                asm!("tilestored [{c} + {s} * 1], tmm3", c = in(reg) base.add(3), s = in(reg) 64usize,
                    options(nostack));
            }
            for (block, rows) in [(0, rows0), (1, rows1)] {
                for q in 0..if two_panels { 2 } else { 1 } {
                    // SAFETY: avx512f/bw are enabled here; `dequantize` stays inside the row
                    // block and the panel's valid columns.
                    unsafe {
                        dequantize(
                            p,
                            sums,
                            out,
                            &acc.0[2 * block + q],
                            i0 + 16 * block,
                            rows,
                            panel + q,
                        )
                    };
                }
            }
            panel += if two_panels { 2 } else { 1 };
        }
        i0 += rows0 + rows1;
    }
    // SAFETY: releases the tile state this function configured (nothing else holds it).
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

#[repr(C, align(64))]
struct Accumulators([[[i32; 16]; 16]; 4]);

/// The output step for one accumulator tile (`rows` rows from `i0`, the 16 columns of `panel`),
/// identical in rounding to `reference::dequantize` and the AVX-512 VNNI kernel.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn dequantize(
    p: &GemmI8<'_>,
    sums: &[i32],
    out: &mut MatMut<'_>,
    tile: &[[i32; 16]; 16],
    i0: usize,
    rows: usize,
    panel: usize,
) {
    let n = p.w.n;
    let col0 = panel * 16;
    let valid = (n - col0).min(16);
    let mask: __mmask16 = if valid == 16 {
        0xffff
    } else {
        (1u16 << valid) - 1
    };
    // SAFETY: masked loads/stores touch columns `col0 .. col0 + valid` (< n) of rows `< m`,
    // inside `scales`, `bias`, `sums` and `out` (lengths checked by `gemm_i8`).
    unsafe {
        let sw = _mm512_maskz_loadu_ps(mask, p.w.scales.as_ptr().add(col0));
        let bias = match p.bias {
            Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(col0)),
            None => _mm512_setzero_ps(),
        };
        let offset =
            _mm512_slli_epi32::<7>(_mm512_maskz_loadu_epi32(mask, sums.as_ptr().add(col0)));
        for (r, acc) in tile.iter().enumerate().take(rows) {
            let exact = _mm512_sub_epi32(_mm512_loadu_si512(acc.as_ptr() as *const _), offset);
            let scale = _mm512_mul_ps(_mm512_set1_ps(p.a_scales[i0 + r]), sw);
            let v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(exact), scale), bias);
            _mm512_mask_storeu_ps(out.row(i0 + r)[col0..].as_mut_ptr(), mask, v);
        }
    }
}

crate::kernel_test_suite!(amx_suite, &AMX, available());

#[cfg(test)]
mod amx_shapes {
    use super::*;
    use crate::kernels::testing::{check_gemm, Rng};

    /// Row and column tails in every combination of AMX's 2 x 2 tile blocking.
    #[test]
    fn tails_of_the_tile_blocking() {
        if !available() {
            std::println!("skipped: no AMX");
            return;
        }
        let mut rng = Rng(7);
        for m in [1, 15, 16, 17, 31, 32, 33, 48, 50, 128] {
            for n in [1, 16, 17, 32, 33, 48, 100] {
                for k in [64, 128, 384] {
                    check_gemm(&AMX, Layout::K4N16, m, n, k, &mut rng);
                }
            }
        }
    }
}
