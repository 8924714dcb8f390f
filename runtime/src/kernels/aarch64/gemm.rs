//! The one int8 GEMM driver of the aarch64 tables, and what its micro-kernels share.
//!
//! [`gemm`] walks the output in blocks of 16 columns (one K4N16 panel, or two K8N8 panels) and
//! `ROWS` rows, copies the k tail of each panel into a zero-padded buffer once, and calls the
//! table's [`MicroKernel`] for the products and the output step of each tile. A micro-kernel is
//! only what differs per instruction set: the register tile's k loop (`asm!`) and how its
//! accumulators become output rows (MLAS plugs its kernels into one driver the same way).
//! Rows are read in place from the row-major activations (no packing), so the driver needs no
//! k blocking: one 16-column block of weights (16 k bytes: 24 KiB at BERT's widest k = 1536)
//! stays in L1/L2 while every row block streams past it.

use crate::kernels::{GemmI8, Layout, MatMut};
use core::arch::aarch64::*;

/// A tile's 16 accumulator registers. In every `asm!` loop and full-tile store `acc[t]` lives
/// in `v(16 + t)` ([`tile_asm`]); what `t` means (which rows and columns) is the
/// micro-kernel's.
pub(crate) type Acc = [int32x4_t; 16];

/// `asm!` over a tile's accumulators: `acc[t]` bound to `v(16 + t)` (`inout` for a k loop,
/// `in` for an output step) and v0-v15 free for the kernel. Written once here so that every
/// micro-kernel binds the same registers.
macro_rules! tile_asm {
    (@bind $dir:ident $acc:ident, options($($opt:ident),*), $($body:tt)*) => {
        core::arch::asm!(
            $($body)*
            $dir("v16") $acc[0], $dir("v17") $acc[1], $dir("v18") $acc[2], $dir("v19") $acc[3],
            $dir("v20") $acc[4], $dir("v21") $acc[5], $dir("v22") $acc[6], $dir("v23") $acc[7],
            $dir("v24") $acc[8], $dir("v25") $acc[9], $dir("v26") $acc[10],
            $dir("v27") $acc[11], $dir("v28") $acc[12], $dir("v29") $acc[13],
            $dir("v30") $acc[14], $dir("v31") $acc[15],
            out("v0") _, out("v1") _, out("v2") _, out("v3") _, out("v4") _, out("v5") _,
            out("v6") _, out("v7") _, out("v8") _, out("v9") _, out("v10") _, out("v11") _,
            out("v12") _, out("v13") _, out("v14") _, out("v15") _,
            options($($opt),*),
        )
    };
    (inout $acc:ident, $($rest:tt)*) => { tile_asm!(@bind inout $acc, $($rest)*) };
    (in $acc:ident, $($rest:tt)*) => { tile_asm!(@bind in $acc, $($rest)*) };
}
pub(crate) use tile_asm;

/// What one instruction set contributes to [`gemm`]: a register tile of up to `ROWS` rows x
/// one 16-column block.
///
/// # Safety
/// An implementation's `kloop` reads only the bytes its contract grants and its `store` writes
/// only the output elements of its rows and the block's `nv` columns: the driver's memory
/// safety rests on that.
pub(crate) unsafe trait MicroKernel {
    /// The weight layout the k loop reads.
    const LAYOUT: Layout;
    /// Rows of a full tile (at most 4).
    const ROWS: usize;
    /// k per step: a step reads `K_STEP` bytes of each row and 4 k-groups (256 bytes) of each
    /// panel.
    const K_STEP: usize = 4 * Self::LAYOUT.tile().1;

    /// `steps` steps of the rows at `a[..rows]` times the block's panels `b[..panels]`,
    /// added to `acc`. `a[r]` for `r >= rows` repeats the last row (a kernel may compute it
    /// and must not store it).
    ///
    /// # Safety
    /// `K_STEP * steps` readable bytes at each `a[r]` and `256 * steps` at each `b[..panels]`;
    /// `1 <= rows <= ROWS`, `steps >= 1`; the CPU has the kernel's instructions (the caller
    /// is compiled with them).
    unsafe fn kloop(
        acc: &mut Acc,
        a: [*const i8; 4],
        rows: usize,
        b: [*const i8; 2],
        panels: usize,
        steps: usize,
    );

    /// Writes rows `i0..i0 + rows` of the block (columns `j0..j0 + nv`) from `acc`.
    ///
    /// # Safety
    /// `i0 + rows <= m`, `1 <= rows <= ROWS`; `acc` as [`MicroKernel::kloop`] left it.
    unsafe fn store(acc: &Acc, block: &Block<'_>, i0: usize, rows: usize);
}

/// One block of 16 output columns: its panels, their zero-padded k tails, scales and biases.
pub(crate) struct Block<'a> {
    pub(crate) raw: &'a Raw,
    /// First output column.
    pub(crate) j0: usize,
    /// Columns to store (`<= 16`; fewer in the last block).
    pub(crate) nv: usize,
    pub(crate) cols: Cols,
    /// The panels' first bytes (the second repeats the first when the block has one panel).
    b: [*const i8; 2],
    /// Panels in the block: 1, or 2 for K8N8's 8-column panels.
    pub(crate) panels: usize,
    /// Full k steps.
    steps: usize,
    /// The k groups past the full steps, copied into zeroed 256-byte buffers, one per panel
    /// (the second is the first's when the block has one panel).
    b_tail: Option<[*const i8; 2]>,
    _tails: core::marker::PhantomData<&'a [i8; 256]>,
}

/// The GEMM `p` (layout `K::LAYOUT`) into `out`, tile by tile with `K`.
///
/// # Safety
/// `p` and `out` pass [`sizes_ok`], `p.w.layout == K::LAYOUT`, and the CPU has `K`'s
/// instructions: call it only from a function compiled with them (`#[target_feature]`), into
/// which it and the kernel's `asm!` are inlined.
#[inline(always)]
pub(crate) unsafe fn gemm<K: MicroKernel>(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let (panel_cols, group_k) = K::LAYOUT.tile();
    debug_assert!(p.w.layout == K::LAYOUT && 16 % panel_cols == 0);
    // A k-group of a panel is 64 bytes in both layouts (16 x 4, 8 x 8).
    let panel_bytes = k.div_ceil(group_k) * 64;
    let steps = k / K::K_STEP;
    let has_tail = steps * K::K_STEP < k;
    let panels = n.div_ceil(panel_cols);
    // SAFETY: the sizes were checked (contract).
    let raw = unsafe { Raw::new(p, out) };
    let mut panel = 0;
    while panel < panels {
        let np = (16 / panel_cols).min(panels - panel);
        let j0 = panel * panel_cols;
        // Panel `panel + q` (the last one again when the block has one).
        let data = |q: usize| {
            let start = (panel + q.min(np - 1)) * panel_bytes;
            &p.w.data[start..start + panel_bytes]
        };
        let tail0: Option<[i8; 256]> = has_tail.then(|| padded(&data(0)[256 * steps..]));
        let tail1: Option<[i8; 256]> =
            (has_tail && np == 2).then(|| padded(&data(1)[256 * steps..]));
        let block = Block {
            raw: &raw,
            j0,
            nv: (n - j0).min(16),
            cols: Cols::load(p, j0),
            b: [data(0).as_ptr(), data(1).as_ptr()],
            panels: np,
            steps,
            b_tail: tail0
                .as_ref()
                .map(|t0| [t0.as_ptr(), tail1.as_ref().unwrap_or(t0).as_ptr()]),
            _tails: core::marker::PhantomData,
        };
        let mut i = 0;
        // SAFETY: every tile's rows are below m; the CPU has K's instructions (contract).
        unsafe {
            while i + K::ROWS <= m {
                tile::<K>(&block, i, K::ROWS);
                i += K::ROWS;
            }
            // The leftover rows with their count known at compile time (ROWS <= 4).
            match m - i {
                1 => tile::<K>(&block, i, 1),
                2 if K::ROWS > 2 => tile::<K>(&block, i, 2),
                3 if K::ROWS > 3 => tile::<K>(&block, i, 3),
                _ => {}
            }
        }
        panel += np;
    }
}

/// Rows `i0..i0 + rows` of one block: the full k steps in place, the k tail over zero-padded
/// copies of the rows' and panels' tails (the padding adds 0), then the kernel's output step.
///
/// # Safety
/// `1 <= rows <= K::ROWS`, `i0 + rows <= m`; as [`gemm`].
#[inline(always)]
unsafe fn tile<K: MicroKernel>(block: &Block<'_>, i0: usize, rows: usize) {
    // SAFETY: NEON is baseline; zeroing registers only.
    let mut acc: Acc = unsafe { [vdupq_n_s32(0); 16] };
    let row = |r: usize| i0 + r.min(rows - 1);
    // SAFETY: rows `row(r) < m`; `steps = k / K_STEP` steps read the first `K_STEP steps` bytes
    // of each row and the first `256 steps` bytes of each panel (`4 steps` of its k-groups);
    // the tail step reads 32-byte and 256-byte stack buffers; `rows <= ROWS` (contract).
    unsafe {
        if block.steps > 0 {
            let a = core::array::from_fn(|r| block.raw.row(row(r)));
            K::kloop(&mut acc, a, rows, block.b, block.panels, block.steps);
        }
        if let Some(b_tail) = block.b_tail {
            let tails: [[i8; 32]; 4] = core::array::from_fn(|r| match r < rows {
                true => block.raw.row_tail(i0 + r, K::K_STEP * block.steps),
                false => [0; 32],
            });
            let a = core::array::from_fn(|r| tails[r.min(rows - 1)].as_ptr());
            K::kloop(&mut acc, a, rows, b_tail, block.panels, 1);
        }
        K::store(&acc, block, i0, rows);
    }
}

impl Block<'_> {
    /// Output row `i` from `sums[q]`, the exact i32 sums of columns `j0 + 4 q..j0 + 4 q + 4`
    /// (`q < V`): the output step of every tile that is not a full one.
    ///
    /// # Safety
    /// `i < m`; `nv <= 4 V`.
    #[inline(always)]
    pub(crate) unsafe fn store_row<const V: usize>(&self, i: usize, sums: &[int32x4_t; 4]) {
        // SAFETY: forwarded (the block's columns `j0..j0 + nv` exist).
        unsafe { self.raw.store::<V>(i, self.j0, self.nv, sums, &self.cols) }
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
    /// `acc as f32 * (a_scale * w_scale) + bias` ([`crate::kernels::reference::dequantize`],
    /// in that order, no fused multiply-add).
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
