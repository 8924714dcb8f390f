//! AVX2 int8 GEMM for x86 CPUs without VNNI (AVX2 laptops, Zen 1-3 servers, x86 gateways).
//!
//! # Why it is exact, and why it widens to i16
//!
//! Both operands are int8 in `[-127, 127]` (`reference::quantize_value` clamps activations
//! and the quantizer's weights to that range). AVX2 has two integer multiply-adds:
//!
//! - `vpmaddubsw` (u8 x i8, pairs summed into a **saturating** i16): with the `+128` encoding
//!   of the VNNI table, a pair reaches `255 * 127 * 2 = 64770 > 32767` and saturates, so it is
//!   not exact. The sign trick (`|a|` as the u8 operand, `vpsignb` moving `a`'s sign onto the
//!   weight) bounds a pair by `127 * 127 * 2 = 32258` and is exact, but then every 32 MACs cost
//!   `vpsignb` + `vpmaddubsw` + `vpmaddwd` (with ones, to reach i32) + `vpaddd`: two multiply
//!   uops, as many as widening, plus one more ALU uop. AVX2 cores issue both multiplies on
//!   the same two ports (Haswell to Comet Lake: p0/p1; Zen 1-3: measured on Zen 3, 2 per
//!   cycle for either or a mix), so it cannot be faster; implemented and tested bit-exact
//!   (commit "avx2: 6x8 register-blocked ..." on branch `avx2`), it measured 5-15 % slower
//!   (BENCHMARKS.md) and was removed. It also needs weights in `[-127, 127]` (`vpsignb`
//!   cannot negate -128), which widening does not.
//! - `vpmaddwd` (i16 x i16, pairs summed into an i32, never saturating except for
//!   `-32768 * -32768 * 2`, impossible from int8): products are at most `127 * 127`, each lane
//!   gains at most `2 * 16129` per instruction, and the i32 accumulators wrap exactly as the
//!   reference's i32 sums do. This is the default: the weights are widened once per load
//!   (`vpmovsxbw`, shared by all rows of the tile), the activations once per row block into a
//!   stack buffer of i16 rows, so the inner loop is one broadcast load per row and a
//!   `vpmaddwd` + `vpaddd` per 16 MACs.
//!
//! # Layout and blocking
//!
//! Weights in [`Layout::K4N16`] (the model files' default, no repacking): 32 bytes of a k-group
//! are 8 columns x 4 k; widened as two 16-byte halves they meet a broadcast of the activation
//! quadruple `[a0 a1 a2 a3] x 4` and give each column two pair sums (k0+k1, k2+k3), folded at
//! the end with `vphaddd`. Micro-kernel: 6 rows x 8 columns = 12 ymm accumulators + 2 weight
//! registers + 1 broadcast (15 of the 16 ymm registers); per k-group 2 widening loads, 6
//! broadcast loads, 12 `vpmaddwd`, 12 `vpaddd` for 192 MACs. Columns are processed in blocks
//! that keep their weights in L2 while every row block passes.

use crate::kernels::reference;
use crate::kernels::{GemmI8, Kernels, Layout, MatMut};
use core::arch::x86_64::*;

pub static AVX2: Kernels = Kernels {
    name: "avx2",
    native_layout: Layout::K4N16,
    unsigned_activations: false,
    quantize_rows,
    gemm_i8,
    gemm_f32: ops::gemm_f32,
    softmax: ops::softmax,
    activate: ops::activate,
    attention: ops::attention,
    add_layer_norm: ops::add_layer_norm,
};

vector_ops!("avx2,fma", crate::kernels::x86_64::f32gemm::gemm_nn_fma);

#[cfg(feature = "std")]
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(not(feature = "std"))]
pub fn available() -> bool {
    cfg!(all(target_feature = "avx2", target_feature = "fma"))
}

fn quantize_rows(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool) {
    // SAFETY: this table is only selected (and only tested) when `available()` holds.
    unsafe { quantize_rows_avx2(x, cols, q, scales, max_known) }
}

/// `max |row|`, starting from 0 (as `vector::max_abs`).
#[target_feature(enable = "avx2,fma")]
#[inline]
fn max_abs(row: &[f32]) -> f32 {
    let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX));
    let mut m = _mm256_setzero_ps();
    let (chunks, tail) = row.as_chunks::<8>();
    for c in chunks {
        // SAFETY: `c` is 8 floats.
        let v = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        // `maxps` returns its second operand when either is NaN: NaN lanes keep `m`.
        m = _mm256_max_ps(_mm256_and_ps(v, abs_mask), m);
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), m) };
    tail.iter()
        .chain(&lanes)
        .fold(0.0f32, |a, &v| a.max(v.abs()))
}

/// `vector::quantize_rows` in AVX2, 32 values per step: identical values and scales (the
/// maximum is exact in any order, NaN lanes are skipped as `f32::max` skips them; rounding is
/// the same truncation of `y +- 0.5`, NaN gives 0 as the saturating cast does; the tail runs
/// the scalar code itself).
#[target_feature(enable = "avx2,fma")]
fn quantize_rows_avx2(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool) {
    if cols == 0 {
        return;
    }
    let full = cols / 32 * 32;
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
        *scale = max / 127.0;
        let inv = 127.0 / max;
        let vinv = _mm256_set1_ps(inv);
        let half = _mm256_set1_ps(0.5);
        let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
        let (lo, hi) = (_mm256_set1_epi32(-127), _mm256_set1_epi32(127));
        let convert = |v: __m256| {
            let y = _mm256_mul_ps(v, vinv);
            let r = _mm256_add_ps(y, _mm256_or_ps(half, _mm256_and_ps(y, sign)));
            let ordered = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
            let i = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(r), lo), hi);
            _mm256_and_si256(i, ordered)
        };
        let mut c = 0;
        while c < full {
            // SAFETY: `row[c..c + 32]` and `qrow[c..c + 32]` are in bounds (`c + 32 <= full`).
            unsafe {
                let p = row.as_ptr().add(c);
                let a = convert(_mm256_loadu_ps(p));
                let b = convert(_mm256_loadu_ps(p.add(8)));
                let d = convert(_mm256_loadu_ps(p.add(16)));
                let e = convert(_mm256_loadu_ps(p.add(24)));
                // packs work per 128-bit lane: [a0 b0 a1 b1], then [ab0 de0 ab1 de1] by dwords.
                let ab = _mm256_packs_epi32(a, b);
                let de = _mm256_packs_epi32(d, e);
                let bytes = _mm256_packs_epi16(ab, de);
                let ordered =
                    _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256(qrow.as_mut_ptr().add(c) as *mut _, ordered);
            }
            c += 32;
        }
        for (d, &v) in qrow[full..].iter_mut().zip(&row[full..]) {
            *d = reference::quantize_value(v * inv);
        }
    }
}

/// Rows per micro-kernel tile.
const MR: usize = 6;
/// Longest `k` whose widened activations fit the stack buffer (`MR * KMAX` i16, 18 KiB);
/// longer rows take the same kernel with activations widened on the fly.
const KMAX: usize = 1536;
/// Weight bytes per column block (kept in L2 while every row block of `a` passes).
const BLOCK_BYTES: usize = 192 * 1024;

fn gemm_i8(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    if p.w.layout == Layout::K4N16 {
        check(p, out);
        // SAFETY: this table is only selected (and only tested) when `available()` holds;
        // `check` established every bound the kernel relies on.
        unsafe { gemm_k4n16(p, out) }
    } else {
        reference::gemm_i8(p, out)
    }
}

/// The bounds every unchecked access below relies on.
fn check(p: &GemmI8<'_>, out: &MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let padded = Layout::K4N16
        .packed_len(n, k)
        .expect("matrix size overflows");
    assert!(p.w.data.len() >= padded, "packed weights too short");
    assert!(p.a.len() >= m * k && p.a_scales.len() >= m);
    assert!(
        out.rows() >= m && out.cols() >= n,
        "output smaller than [m, n]"
    );
    assert!(p.w.scales.len() >= n && p.bias.is_none_or(|b| b.len() >= n));
}

/// Columns per block: a multiple of 16 (whole panels) whose weights take about `BLOCK_BYTES`.
fn column_block(k: usize) -> usize {
    let kp = k.next_multiple_of(4).max(4);
    (BLOCK_BYTES / (16 * kp)).max(1) * 16
}

#[target_feature(enable = "avx2")]
unsafe fn gemm_k4n16(p: &GemmI8<'_>, out: &mut MatMut<'_>) {
    let (m, n, k) = (p.m, p.w.n, p.w.k);
    let kg = k.div_ceil(4);
    let nb = column_block(k);
    // Activations of one row block widened to i16, row `r` at `r * KMAX`.
    let mut abuf = [0i16; MR * KMAX];
    let widen_ok = kg * 4 <= KMAX;
    let mut j0 = 0;
    while j0 < n {
        let j1 = (j0 + nb).min(n);
        let mut i = 0;
        while i < m {
            // Balanced blocks (8 rows: 4 + 4, not 6 + 2): a short block amortizes the weight
            // loads and widening over fewer rows.
            let rows = (m - i).div_ceil((m - i).div_ceil(MR));
            if widen_ok {
                widen_rows(p, i, rows, kg, &mut abuf);
            }
            // SAFETY: avx2 is enabled here; `check` (caller) bounds every access.
            unsafe {
                match rows {
                    6 => block::<6>(p, out, &abuf, widen_ok, i, j0, j1),
                    5 => block::<5>(p, out, &abuf, widen_ok, i, j0, j1),
                    4 => block::<4>(p, out, &abuf, widen_ok, i, j0, j1),
                    3 => block::<3>(p, out, &abuf, widen_ok, i, j0, j1),
                    2 => block::<2>(p, out, &abuf, widen_ok, i, j0, j1),
                    _ => block::<1>(p, out, &abuf, widen_ok, i, j0, j1),
                }
            }
            i += rows;
        }
        j0 = j1;
    }
}

/// Widens rows `i0..i0 + rows` of `a` into `buf[r * KMAX + c] = a[i0 + r][c]` for
/// `c < 4 kg` (zero past `k`, where the packed weights are zero too).
#[target_feature(enable = "avx2")]
fn widen_rows(p: &GemmI8<'_>, i0: usize, rows: usize, kg: usize, buf: &mut [i16]) {
    let k = p.w.k;
    for r in 0..rows {
        let row = &p.a[(i0 + r) * k..(i0 + r + 1) * k];
        let dst = &mut buf[r * KMAX..r * KMAX + kg * 4];
        let mut c = 0;
        while c + 16 <= k {
            // SAFETY: avx2 is enabled for this function; `row[c..c + 16]` and `dst[c..c + 16]`
            // are in bounds (`c + 16 <= k <= 4 kg`).
            unsafe {
                let wide = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.as_ptr().add(c) as *const _));
                _mm256_storeu_si256(dst.as_mut_ptr().add(c) as *mut _, wide);
            }
            c += 16;
        }
        for (c, d) in dst.iter_mut().enumerate().skip(c) {
            *d = row.get(c).map_or(0, |&x| x as i16);
        }
    }
}

/// Activation bytes `4g..4g+4` of a row as one little-endian i32, zero-completed past the end.
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

/// [`tile_widened`] as a function pointer.
type WidenedTile<const R: usize> =
    unsafe fn(&GemmI8<'_>, &[i16], usize, usize) -> [[__m256i; 2]; R];

/// Rows `i0..i0 + R` times columns `j0..j1` (a multiple of 16 from `j0`, or `n`).
#[inline(always)]
unsafe fn block<const R: usize>(
    p: &GemmI8<'_>,
    out: &mut MatMut<'_>,
    abuf: &[i16],
    widened: bool,
    i0: usize,
    j0: usize,
    j1: usize,
) {
    let kg = p.w.k.div_ceil(4);
    // Called through an opaque pointer: inlined here (even with `#[inline(never)]`), LLVM
    // spilled 5 of the 12 accumulators around the loop; on its own the loop keeps them all.
    let widened_tile: WidenedTile<R> = core::hint::black_box(tile_widened::<R>);
    let mut j = j0;
    while j < j1 {
        // SAFETY: avx2 is enabled for the caller; `check` bounds the accesses.
        let acc = unsafe {
            if widened {
                widened_tile(p, abuf, j, kg)
            } else {
                tile_on_the_fly::<R>(p, i0, j, kg)
            }
        };
        // SAFETY: as above.
        unsafe { store::<R>(p, out, acc, i0, j) };
        j += 8;
    }
}

/// Weights of columns `j..j + 8` (half a K4N16 panel), k-group `g`: two 16-byte halves, each
/// 4 columns x 4 k, widened to i16.
#[inline(always)]
unsafe fn weights(w: *const i8, j: usize, kg: usize, g: usize) -> [__m256i; 2] {
    let at = (j / 16) * kg * 64 + g * 64 + (j % 16) * 4;
    // SAFETY: `at + 32 <= packed_len` for `j < n`, `g < kg` (see `check`).
    unsafe {
        [
            _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(at) as *const _)),
            _mm256_cvtepi8_epi16(_mm_loadu_si128(w.add(at + 16) as *const _)),
        ]
    }
}

/// Accumulators of an `R x 8` tile from the widened activation buffer.
#[target_feature(enable = "avx2")]
unsafe fn tile_widened<const R: usize>(
    p: &GemmI8<'_>,
    abuf: &[i16],
    j: usize,
    kg: usize,
) -> [[__m256i; 2]; R] {
    let w = p.w.data.as_ptr();
    assert!(R <= MR && kg * 4 <= KMAX && abuf.len() >= MR * KMAX);
    let a = abuf.as_ptr();
    // SAFETY: weight loads as in `weights`; activation loads read 4 i16 at `r * KMAX + 4g`,
    // inside `abuf` (asserted above).
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for g in 0..kg {
            let b = weights(w, j, kg, g);
            for (r, acc) in acc.iter_mut().enumerate() {
                let q = core::ptr::read_unaligned(a.add(r * KMAX + 4 * g) as *const i64);
                let x = _mm256_set1_epi64x(q);
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(b[0], x));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(b[1], x));
            }
        }
        acc
    }
}

/// [`tile_widened`] for rows longer than the buffer: each quadruple broadcast and widened here.
// Not inlined: a function of its own keeps all 15 vector registers for the loop (inlined
// into the driver, LLVM spilled 5 accumulators).
#[inline(never)]
#[target_feature(enable = "avx2")]
unsafe fn tile_on_the_fly<const R: usize>(
    p: &GemmI8<'_>,
    i0: usize,
    j: usize,
    kg: usize,
) -> [[__m256i; 2]; R] {
    let k = p.w.k;
    let w = p.w.data.as_ptr();
    let rows: [&[i8]; R] = core::array::from_fn(|r| &p.a[(i0 + r) * k..(i0 + r + 1) * k]);
    let full = k / 4;
    // SAFETY: weight loads as in `weights`; activation reads inside each row (`g < full`).
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for g in 0..kg {
            let b = weights(w, j, kg, g);
            for (r, acc) in acc.iter_mut().enumerate() {
                let bytes = if g < full {
                    core::ptr::read_unaligned(rows[r].as_ptr().add(4 * g) as *const i32)
                } else {
                    group(rows[r], g)
                };
                let x = _mm256_cvtepi8_epi16(_mm_set1_epi32(bytes));
                acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(b[0], x));
                acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(b[1], x));
            }
        }
        acc
    }
}

/// Folds the pair sums of each row (lanes `(column, k-pair)`) into 8 column sums in order.
#[inline(always)]
unsafe fn fold(acc: [__m256i; 2]) -> __m256i {
    // hadd: [c0 c1 c4 c5 | c2 c3 c6 c7]; the permute restores [c0 .. c7].
    // SAFETY: avx2 is enabled for every caller (register-only operations).
    unsafe { _mm256_permute4x64_epi64::<0xD8>(_mm256_hadd_epi32(acc[0], acc[1])) }
}

/// The output step of an `R x 8` tile of exact i32 sums (`lanes` = column `j + lane`),
/// identical in rounding to `reference::dequantize`: `sum as f32 * (a_scale * w_scale) + bias`
/// as separate multiply, multiply, add (no FMA).
#[inline(always)]
unsafe fn store_sums<const R: usize>(
    p: &GemmI8<'_>,
    out: &mut MatMut<'_>,
    sums: [__m256i; R],
    i0: usize,
    j: usize,
) {
    let n = p.w.n;
    let valid = (n - j).min(8);
    // SAFETY: avx2 is enabled for the caller; full-width loads/stores only when `j + 8 <= n`
    // (scales, bias and each output row hold `n` entries, see `check`).
    unsafe {
        if valid == 8 {
            let sw = _mm256_loadu_ps(p.w.scales.as_ptr().add(j));
            let bias = match p.bias {
                Some(b) => _mm256_loadu_ps(b.as_ptr().add(j)),
                None => _mm256_setzero_ps(),
            };
            for (r, s) in sums.iter().enumerate() {
                let scale = _mm256_mul_ps(_mm256_set1_ps(p.a_scales[i0 + r]), sw);
                let v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(*s), scale), bias);
                _mm256_storeu_ps(out.row(i0 + r).as_mut_ptr().add(j), v);
            }
        } else {
            for (r, s) in sums.iter().enumerate() {
                let mut lanes = [0i32; 8];
                _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, *s);
                let i = i0 + r;
                for (c, &acc) in lanes.iter().enumerate().take(valid) {
                    out.row(i)[j + c] = reference::dequantize(
                        acc,
                        p.a_scales[i],
                        p.w.scales[j + c],
                        p.bias.map_or(0.0, |b| b[j + c]),
                    );
                }
            }
        }
    }
}

#[inline(always)]
unsafe fn store<const R: usize>(
    p: &GemmI8<'_>,
    out: &mut MatMut<'_>,
    acc: [[__m256i; 2]; R],
    i0: usize,
    j: usize,
) {
    // SAFETY: avx2 is enabled for the caller.
    unsafe {
        let sums = core::array::from_fn(|r| fold(acc[r]));
        store_sums::<R>(p, out, sums, i0, j)
    }
}

crate::kernel_test_suite!(avx2_suite, &AVX2, available());
