//! Weight layouts: how an int8 `[n, k]` matrix is ordered in the file so that a kernel streams
//! it with plain sequential loads. The quantizer packs once, offline; a program whose kernel
//! table prefers another layout can convert the weights once at load into memory it owns
//! ([`repack`], [`crate::Model::repacked`]), e.g. K4N16 to K8N8 for an i8mm core.
//!
//! - [`Layout::RowMajor`]: `w[r][c]` at `r * k + c`.
//! - [`Layout::K4N16`]: for SDOT (aarch64 dot product) and VNNI (x86 `vpdpbusd`), which both
//!   reduce 4 consecutive k into one i32 lane. Panels of 16 output rows; in each panel, k-group
//!   `g` holds 64 bytes: `w[16p + c][4g + j]` at byte `64 (p * kg + g) + 4c + j`.
//!   `k` is zero-padded to a multiple of 4, `n` to a multiple of 16.
//! - [`Layout::K8N8`]: for i8mm `SMMLA` (2x8 by 8x2 tiles). Panels of 8 output rows; k-group `g`
//!   holds 64 bytes: `w[8p + 2q + r][8g + j]` at byte `64 (p * kg + g) + 16q + 8r + j`.
//!   `k` is zero-padded to a multiple of 8, `n` to a multiple of 8.

pub use crate::format::Layout;

impl Layout {
    /// `(rows per panel, k per group)`; `(1, 1)` for row-major.
    pub const fn tile(self) -> (usize, usize) {
        match self {
            Layout::RowMajor => (1, 1),
            Layout::K4N16 => (16, 4),
            Layout::K8N8 => (8, 8),
        }
    }

    /// Bytes of a packed `[n, k]` matrix (with padding), or `None` on overflow.
    pub fn packed_len(self, n: usize, k: usize) -> Option<usize> {
        let (nr, kr) = self.tile();
        n.checked_next_multiple_of(nr)?
            .checked_mul(k.checked_next_multiple_of(kr)?)
    }

    /// How many consecutive `k` of one row the layout stores side by side (a whole row for
    /// row-major): [`repack`] copies runs of this length.
    const fn k_run(self) -> usize {
        match self {
            Layout::RowMajor => usize::MAX,
            Layout::K4N16 => 4,
            Layout::K8N8 => 8,
        }
    }

    /// Position of logical element `[row, col]` in the packed data.
    #[inline]
    pub fn index(self, k: usize, row: usize, col: usize) -> usize {
        self.row_base(k, row) + self.col_offset(col)
    }

    /// The part of [`Layout::index`] that depends on the row only (every layout's index is
    /// this plus [`Layout::col_offset`]).
    #[inline]
    fn row_base(self, k: usize, row: usize) -> usize {
        match self {
            Layout::RowMajor => row * k,
            Layout::K4N16 => {
                let (p, c) = (row / 16, row % 16);
                64 * p * k.div_ceil(4) + 4 * c
            }
            Layout::K8N8 => {
                let (p, rr) = (row / 8, row % 8);
                let (q, r) = (rr / 2, rr % 2);
                64 * p * k.div_ceil(8) + 16 * q + 8 * r
            }
        }
    }

    /// The part of [`Layout::index`] that depends on the column only.
    #[inline]
    fn col_offset(self, col: usize) -> usize {
        match self {
            Layout::RowMajor => col,
            Layout::K4N16 => 64 * (col / 4) + col % 4,
            Layout::K8N8 => 64 * (col / 8) + col % 8,
        }
    }
}

/// Copies an `[n, k]` int8 matrix from layout `from` (`src`) into layout `to` (`dst`),
/// zero-filling `dst`'s padding. Copies runs of consecutive `k` (4 or 8 bytes between the
/// packed layouts), so converting a whole model takes milliseconds. `false`, with nothing
/// promised about `dst`, when a buffer is shorter than its layout's
/// [`packed_len`](Layout::packed_len).
pub fn repack(from: Layout, src: &[i8], to: Layout, dst: &mut [i8], n: usize, k: usize) -> bool {
    let (Some(src_len), Some(dst_len)) = (from.packed_len(n, k), to.packed_len(n, k)) else {
        return false;
    };
    let (Some(src), Some(dst)) = (src.get(..src_len), dst.get_mut(..dst_len)) else {
        return false;
    };
    dst.fill(0);
    let run = from.k_run().min(to.k_run()).min(k.max(1));
    for row in 0..n {
        let (src_row, dst_row) = (from.row_base(k, row), to.row_base(k, row));
        for col in (0..k).step_by(run) {
            let len = run.min(k - col);
            let (s, d) = (src_row + from.col_offset(col), dst_row + to.col_offset(col));
            // Both indices are below the packed lengths checked above (`index` maps the
            // logical matrix into them); `get` keeps a wrong layout table from panicking.
            let (Some(s), Some(d)) = (src.get(s..s + len), dst.get_mut(d..d + len)) else {
                return false;
            };
            // A copy of a length known here is a register move; of any length, a call.
            match len {
                4 => d[..4].copy_from_slice(&s[..4]),
                8 => d[..8].copy_from_slice(&s[..8]),
                _ => d.copy_from_slice(s),
            }
        }
    }
    true
}

/// What [`check_packed`] found wrong with a packed matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackedError {
    /// Shorter than its layout's [`packed_len`](Layout::packed_len) (or fewer sums than rows).
    Short,
    /// A padding byte (past `k` in a row, or in a row past `n`) is not zero.
    Padding,
    /// A stored row sum is not the sum of its row.
    RowSum,
}

/// Checks that `data` is a well-formed `[n, k]` matrix in `layout`: long enough, every padding
/// byte zero, and (when given) `sums[j]` the sum of row `j`. The kernels rely on both: VNNI's
/// unsigned activations are corrected with the row sums, and every kernel's k tail meets the
/// padding. A file with a valid checksum can still carry wrong values; `Model::load` checks
/// with this so that such a file is an error, not different numbers on x86 than on ARM. One
/// pass over the weights, no allocation.
pub fn check_packed(
    layout: Layout,
    data: &[i8],
    n: usize,
    k: usize,
    sums: Option<&[i32]>,
) -> Result<(), PackedError> {
    let Some(len) = layout.packed_len(n, k) else {
        return Err(PackedError::Short);
    };
    let (Some(data), true) = (data.get(..len), sums.is_none_or(|s| s.len() >= n)) else {
        return Err(PackedError::Short);
    };
    if len == 0 {
        return Ok(());
    }
    // In every layout a panel is `nr` rows x `kp` k in groups of `kr` k, and in each group row
    // `r` of the panel holds bytes `r kr..(r + 1) kr` (K8N8: `16 q + 8 r = 8 (2 q + r)`); a
    // row-major row is one panel of one group.
    let (nr, kr) = match layout {
        Layout::RowMajor => (1, k),
        _ => layout.tile(),
    };
    let kp = k.next_multiple_of(kr);
    let pad = kp - k;
    for (p, panel) in data.chunks_exact(nr * kp).enumerate() {
        let mut acc = [0i32; 16];
        if layout == Layout::RowMajor {
            acc[0] = panel.iter().fold(0i32, |s, &v| s.wrapping_add(v as i32));
        } else {
            // Byte position by byte position over the 64-byte groups (what vectorises), then
            // each row's `kr` positions. Sums of 256 groups fit an i16 lane exactly (256 x 127
            // and 256 x -128), and the i16 widening add vectorises in baseline SSE2 too.
            let mut lanes = [0i32; 64];
            for groups in panel.as_chunks::<64>().0.chunks(256) {
                let mut lanes16 = [0i16; 64];
                for group in groups {
                    for (l, &v) in lanes16.iter_mut().zip(group) {
                        *l = l.wrapping_add(v as i16);
                    }
                }
                for (l, &v) in lanes.iter_mut().zip(&lanes16) {
                    *l = l.wrapping_add(v as i32);
                }
            }
            for (a, row) in acc.iter_mut().zip(lanes.chunks_exact(kr)) {
                *a = row.iter().fold(0i32, |s, &v| s.wrapping_add(v));
            }
        }
        // Padding: the k past `k` at the end of each row's last group...
        let last = &panel[panel.len() - nr * kr..];
        if pad > 0
            && last
                .chunks_exact(kr)
                .any(|run| run[kr - pad..].iter().any(|&v| v != 0))
        {
            return Err(PackedError::Padding);
        }
        for (r, &sum) in acc[..nr].iter().enumerate() {
            let row = p * nr + r;
            if row >= n {
                // ...and whole rows past `n` (the last panel's).
                let mut runs = panel.chunks_exact(kr).skip(r).step_by(nr);
                if runs.any(|run| run.iter().any(|&v| v != 0)) {
                    return Err(PackedError::Padding);
                }
            } else if sums.is_some_and(|s| s[row] != sum) {
                return Err(PackedError::RowSum);
            }
        }
    }
    Ok(())
}

/// Packs a row-major `[n, k]` int8 matrix into `layout` (padding with zeros).
#[cfg(feature = "std")]
pub fn pack(layout: Layout, w: &[i8], n: usize, k: usize) -> Vec<i8> {
    let len = layout.packed_len(n, k).expect("matrix size overflows");
    let mut out = vec![0i8; len];
    for r in 0..n {
        for c in 0..k {
            out[layout.index(k, r, c)] = w[r * k + c];
        }
    }
    out
}

/// Per-row sums of a row-major `[n, k]` int8 matrix: the correction term for kernels that
/// compute with unsigned activations (`(a + 128) . w = a . w + 128 * sum(w)`, x86 VNNI).
#[cfg(feature = "std")]
pub fn row_sums(w: &[i8], n: usize, k: usize) -> Vec<i32> {
    (0..n)
        .map(|r| w[r * k..(r + 1) * k].iter().map(|&x| x as i32).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repack_between_any_two_layouts_equals_packing_the_rows() {
        const ALL: [Layout; 3] = [Layout::RowMajor, Layout::K4N16, Layout::K8N8];
        for (n, k) in [
            (1, 1),
            (16, 4),
            (17, 5),
            (33, 43),
            (8, 8),
            (24, 72),
            (3, 12),
        ] {
            let w: Vec<i8> = (0..n * k).map(|i| (i * 37 % 251) as i8).collect();
            for from in ALL {
                let src = pack(from, &w, n, k);
                for to in ALL {
                    // Garbage in the destination: padding must come out zero.
                    let mut dst = vec![0x55i8; to.packed_len(n, k).unwrap() + 3];
                    assert!(repack(from, &src, to, &mut dst, n, k));
                    let want = pack(to, &w, n, k);
                    assert_eq!(&dst[..want.len()], &want[..], "{from:?} -> {to:?} {n}x{k}");
                    let short = to.packed_len(n, k).unwrap() - 1;
                    assert!(!repack(from, &src, to, &mut dst[..short], n, k));
                    assert!(!repack(from, &src[..src.len() - 1], to, &mut dst, n, k));
                }
            }
        }
    }

    #[test]
    fn check_packed_finds_wrong_sums_nonzero_padding_and_short_data() {
        for layout in [Layout::RowMajor, Layout::K4N16, Layout::K8N8] {
            for (n, k) in [
                (1, 1),
                (16, 4),
                (17, 5),
                (33, 43),
                (8, 8),
                (24, 72),
                (3, 12),
            ] {
                let w: Vec<i8> = (0..n * k).map(|i| (i * 37 % 251) as i8).collect();
                let sums = row_sums(&w, n, k);
                let packed = pack(layout, &w, n, k);
                let check = |d: &[i8], s: Option<&[i32]>| check_packed(layout, d, n, k, s);
                assert_eq!(check(&packed, Some(&sums)), Ok(()), "{layout:?} {n}x{k}");
                assert_eq!(check(&packed, None), Ok(()));
                // Every real element counts in its row's sum; every other byte is padding.
                let mut real = vec![false; packed.len()];
                for r in 0..n {
                    for c in 0..k {
                        real[layout.index(k, r, c)] = true;
                        let mut bad = sums.clone();
                        bad[r] = bad[r].wrapping_add(1);
                        assert_eq!(check(&packed, Some(&bad)), Err(PackedError::RowSum));
                    }
                }
                for (i, &is_real) in real.iter().enumerate() {
                    let mut d = packed.clone();
                    d[i] = d[i].wrapping_add(1);
                    let want = if is_real {
                        PackedError::RowSum
                    } else {
                        PackedError::Padding
                    };
                    assert_eq!(
                        check(&d, Some(&sums)),
                        Err(want),
                        "{layout:?} {n}x{k} byte {i}"
                    );
                    if !is_real {
                        assert_eq!(check(&d, None), Err(PackedError::Padding));
                    }
                }
                let short = &packed[..packed.len() - 1];
                assert_eq!(check(short, Some(&sums)), Err(PackedError::Short));
                assert_eq!(
                    check(&packed, Some(&sums[..n - 1])),
                    Err(PackedError::Short)
                );
            }
        }
    }

    #[test]
    fn index_is_a_bijection_into_the_padded_buffer() {
        for layout in [Layout::RowMajor, Layout::K4N16, Layout::K8N8] {
            for (n, k) in [(1, 1), (16, 4), (17, 5), (33, 43), (8, 8)] {
                let len = layout.packed_len(n, k).unwrap();
                let mut seen = vec![false; len];
                for r in 0..n {
                    for c in 0..k {
                        let i = layout.index(k, r, c);
                        assert!(i < len && !seen[i], "{layout:?} {n}x{k} [{r},{c}]");
                        seen[i] = true;
                    }
                }
            }
        }
    }
}
