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
