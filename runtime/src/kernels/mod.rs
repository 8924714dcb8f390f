//! Matrix kernels behind one table.
//!
//! The model calls kernels only through [`Kernels`], so SIMD implementations plug in beside the
//! portable [`reference`](mod@reference) without touching the model. [`select`] is the single dispatch point.
//! Weights arrive in the layout the quantizer packed them in ([`pack`]); a kernel takes its fast
//! path when the layout is its native one and otherwise defers to the reference, so any model
//! runs correctly on any CPU.

/// The kernel test suite (see `testing.rs`), defined here so that every ISA module can invoke
/// it; it expands to nothing outside `cfg(test)`.
/// Expands the suite for one kernel table. `$available` is evaluated at run time: tests of a
/// table the CPU cannot run pass vacuously and say so (the qemu matrix covers every table).
#[macro_export]
macro_rules! kernel_test_suite {
    ($name:ident, $kernels:expr, $available:expr) => {
        #[cfg(test)]
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::kernels::testing::{
                check_gemm, check_gemm_columns, check_quantize, check_row_max, Rng, LAYOUTS,
            };
            use $crate::kernels::Kernels;

            fn table() -> Option<&'static Kernels> {
                if $available {
                    Some($kernels)
                } else {
                    std::println!(
                        "skipped: this CPU lacks the features of {}",
                        stringify!($name)
                    );
                    None
                }
            }

            #[test]
            fn every_small_shape() {
                let Some(t) = table() else { return };
                let mut rng = Rng(1);
                for layout in LAYOUTS {
                    for m in 1..=17 {
                        for n in 1..=17 {
                            for k in 1..=17 {
                                check_gemm(t, layout, m, n, k, &mut rng);
                            }
                        }
                    }
                }
            }

            #[test]
            fn column_blocks_write_through_the_row_stride() {
                let Some(t) = table() else { return };
                let mut rng = Rng(4);
                let shapes = [
                    (1, 17, 5),
                    (3, 33, 40),
                    (7, 64, 64),
                    (17, 100, 33),
                    (20, 384, 384),
                    (24, 1536, 384),
                    (32, 384, 1536),
                ];
                for layout in LAYOUTS {
                    for &(m, n, k) in &shapes {
                        check_gemm_columns(t, layout, m, n, k, &mut rng);
                    }
                }
            }

            #[test]
            fn powers_of_two_and_bert_shapes() {
                let Some(t) = table() else { return };
                let mut rng = Rng(2);
                let mut shapes = std::vec::Vec::new();
                for p in 0..=8 {
                    let d = 1usize << p;
                    shapes.extend([(d, d, d), (d, 64, 32), (3, d, 40), (5, 24, d)]);
                }
                shapes.extend([
                    (43, 500, 401),
                    (8, 384, 384),
                    (13, 1536, 384),
                    (9, 384, 1536),
                    (32, 48, 4096),
                ]);
                for layout in LAYOUTS {
                    for &(m, n, k) in &shapes {
                        check_gemm(t, layout, m, n, k, &mut rng);
                    }
                }
            }

            #[test]
            fn random_shapes() {
                let Some(t) = table() else { return };
                let mut rng = Rng(3);
                for _ in 0..60 {
                    let (m, n, k) = (1 + rng.below(40), 1 + rng.below(80), 1 + rng.below(300));
                    let layout = LAYOUTS[rng.below(3)];
                    check_gemm(t, layout, m, n, k, &mut rng);
                }
            }

            #[test]
            fn quantize_rows_matches_reference() {
                let Some(t) = table() else { return };
                let mut rng = Rng(4);
                for (rows, cols) in [
                    (1, 1),
                    (3, 7),
                    (2, 16),
                    (5, 33),
                    (4, 384),
                    (2, 1536),
                    (7, 100),
                ] {
                    check_quantize(t, rows, cols, &mut rng);
                }
            }

            #[test]
            fn row_maxima_noted_on_the_way_are_the_rows_maxima() {
                let Some(t) = table() else { return };
                let mut rng = Rng(5);
                for (rows, cols) in [(1, 1), (3, 7), (2, 16), (5, 33), (4, 384), (2, 1536)] {
                    check_row_max(t, rows, cols, &mut rng);
                }
            }
        }
    };
}

pub mod pack;
pub mod reference;
pub mod vector;
#[cfg(test)]
#[macro_use]
pub(crate) mod testing;
#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use pack::Layout;

use crate::format::Activation;

/// An int8 weight matrix `[n, k]` (row `j` holds the weights of output `j`) in `layout`, with
/// one scale per row: `w[j][i] ≈ data[layout.index(k, j, i)] * scales[j]`.
#[derive(Debug, Clone, Copy)]
pub struct PackedI8<'a> {
    pub layout: Layout,
    pub data: &'a [i8],
    pub scales: &'a [f32],
    /// `sum_i w[j][i]` per row, for kernels with unsigned activations (present for packed layouts).
    pub row_sums: Option<&'a [i32]>,
    pub n: usize,
    pub k: usize,
}

impl<'a> PackedI8<'a> {
    /// The int8 value of `w[row][col]`.
    #[inline]
    pub fn at(&self, row: usize, col: usize) -> i8 {
        self.data[self.layout.index(self.k, row, col)]
    }

    /// Rows `rows` of the matrix (output columns of a GEMM) as a matrix of their own: a
    /// contiguous run of whole panels, so any kernel runs on it unchanged. `None` unless
    /// `rows.start` is a multiple of the layout's panel height and `rows` is inside `0..n`.
    pub fn rows(&self, rows: core::ops::Range<usize>) -> Option<PackedI8<'a>> {
        let (nr, _) = self.layout.tile();
        if rows.start > rows.end || rows.end > self.n || !rows.start.is_multiple_of(nr) {
            return None;
        }
        let n = rows.end - rows.start;
        let start = self.layout.packed_len(rows.start, self.k)?;
        let len = self.layout.packed_len(n, self.k)?;
        Some(PackedI8 {
            layout: self.layout,
            data: self.data.get(start..start.checked_add(len)?)?,
            scales: self.scales.get(rows.clone())?,
            row_sums: match self.row_sums {
                Some(s) => Some(s.get(rows)?),
                None => None,
            },
            n,
            k: self.k,
        })
    }
}

/// A weight matrix `[n, k]` as stored in the file.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    I8(PackedI8<'a>),
    F32(&'a [f32]),
    /// IEEE half-precision bits, row-major: a layer kept in floating point at half the bytes of
    /// f32. Widened to f32 on the fly by `gemm_f32`, so the weights stay in the file's bytes.
    F16(&'a [u16]),
}

/// `out[m][n] = bias[n] + a_scales[m] * w.scales[n] * sum_k a[m][k] * w[n][k]`: int8 operands,
/// exact i32 accumulation. `a` is row-major `[m, k]`, encoded as the same table's
/// `quantize_rows` wrote it (see [`Kernels::unsigned_activations`]). The output is a
/// [`MatMut`] of at least `m` rows and `n` columns.
///
/// Every implementation must produce bit-identical outputs: the exact i32 sum, then
/// [`reference::dequantize`] (`acc as f32 * (a_scale * w_scale) + bias`, no fused multiply-add).
#[derive(Debug, Clone, Copy)]
pub struct GemmI8<'a> {
    pub m: usize,
    pub a: &'a [i8],
    pub a_scales: &'a [f32],
    pub w: PackedI8<'a>,
    pub bias: Option<&'a [f32]>,
}

/// Where a GEMM writes: `rows` rows of `cols` floats, row `i` starting `i * ldc` elements after
/// the first. It may be a block of columns of a wider matrix whose other columns another thread
/// writes at the same time (a column split), so it hands out only its own elements: one row at
/// a time, or a raw pointer with the stride for the kernels' stores.
#[derive(Debug)]
pub struct MatMut<'a> {
    ptr: core::ptr::NonNull<f32>,
    rows: usize,
    cols: usize,
    ldc: usize,
    _borrow: core::marker::PhantomData<&'a mut [f32]>,
}

impl<'a> MatMut<'a> {
    /// The contiguous `[rows, cols]` matrix at the start of `out`. Panics if `out` is shorter.
    pub fn new(out: &'a mut [f32], rows: usize, cols: usize) -> MatMut<'a> {
        Self::strided(out, rows, cols, cols)
    }

    /// A view of `rows` rows of `cols` elements, `ldc >= cols` apart, from `ptr`.
    ///
    /// # Safety
    /// For `'a`, every element `ptr + i * ldc + j` (`i < rows`, `j < cols`) must be valid for
    /// reads and writes and accessed by nobody else; the elements between rows may be used by
    /// others.
    pub unsafe fn from_raw_parts(ptr: *mut f32, rows: usize, cols: usize, ldc: usize) -> Self {
        debug_assert!(ldc >= cols);
        MatMut {
            // SAFETY: the caller passes a valid pointer; a dangling one is only allowed for an
            // empty view, and `NonNull::dangling` stands in for a null one then.
            ptr: core::ptr::NonNull::new(ptr).unwrap_or(core::ptr::NonNull::dangling()),
            rows,
            cols,
            ldc,
            _borrow: core::marker::PhantomData,
        }
    }

    /// The `[rows, cols]` matrix at the start of `out` with rows `ldc` elements apart. Panics if
    /// `ldc < cols` or `out` is shorter than `(rows - 1) ldc + cols`.
    pub fn strided(out: &'a mut [f32], rows: usize, cols: usize, ldc: usize) -> MatMut<'a> {
        assert!(ldc >= cols, "row stride {ldc} below {cols} columns");
        let len = match rows {
            0 => 0,
            _ => (rows - 1)
                .checked_mul(ldc)
                .and_then(|x| x.checked_add(cols))
                .expect("matrix size overflows"),
        };
        let out = &mut out[..len];
        // SAFETY: every element `i ldc + j` (`i < rows`, `j < cols`) is below `len`, inside
        // `out`, which this view borrows exclusively for `'a`.
        unsafe { MatMut::from_raw_parts(out.as_mut_ptr(), rows, cols, ldc) }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Elements from one row's start to the next's.
    pub fn ldc(&self) -> usize {
        self.ldc
    }

    /// Row `i` (`cols` elements). Panics if `i >= rows`.
    pub fn row(&mut self, i: usize) -> &mut [f32] {
        assert!(i < self.rows, "row {i} of a {}-row output", self.rows);
        // SAFETY: row `i < rows` is `cols` elements the view owns (constructor contract), and
        // `&mut self` keeps any other row or pointer from being used meanwhile.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(i * self.ldc), self.cols) }
    }

    /// Element `[0][0]`. Writes through it must stay inside the view: columns `< cols` of
    /// rows `< rows`, `ldc` apart.
    pub fn as_mut_ptr(&mut self) -> *mut f32 {
        self.ptr.as_ptr()
    }

    /// Columns `..at` and `at..` as two views (`at <= cols`).
    pub fn split_cols(&mut self, at: usize) -> (MatMut<'_>, MatMut<'_>) {
        assert!(at <= self.cols);
        // SAFETY: the two views cover disjoint columns of this one's rows, which `&mut self`
        // lends them. With rows, `ptr + at` (`at <= cols`) and each of its rows' starts lie
        // inside this view's span or one past its last element; without, the view may be
        // dangling and so is the second.
        unsafe {
            let second = if self.rows == 0 {
                core::ptr::NonNull::dangling().as_ptr()
            } else {
                self.ptr.as_ptr().add(at)
            };
            (
                MatMut::from_raw_parts(self.ptr.as_ptr(), self.rows, at, self.ldc),
                MatMut::from_raw_parts(second, self.rows, self.cols - at, self.ldc),
            )
        }
    }

    /// Rows `..at` and `at..` as two views (`at <= rows`).
    pub fn split_rows(&mut self, at: usize) -> (MatMut<'_>, MatMut<'_>) {
        assert!(at <= self.rows);
        // SAFETY: the two views cover disjoint rows of this one, which `&mut self` lends them.
        unsafe {
            let second = if at == self.rows {
                core::ptr::NonNull::dangling().as_ptr()
            } else {
                self.ptr.as_ptr().add(at * self.ldc)
            };
            (
                MatMut::from_raw_parts(self.ptr.as_ptr(), at, self.cols, self.ldc),
                MatMut::from_raw_parts(second, self.rows - at, self.cols, self.ldc),
            )
        }
    }
}

/// `out[m][n] = bias[n] + sum_k a[m][k] * w[n][k]` with f32 activations (int8 weights are
/// dequantised on the fly): the reference path and the small f32 head layers.
#[derive(Debug, Clone, Copy)]
pub struct GemmF32<'a> {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: &'a [f32],
    pub w: Weights<'a>,
    pub bias: Option<&'a [f32]>,
}

/// The kernel table: one function per operation, chosen once.
#[derive(Debug, Clone, Copy)]
pub struct Kernels {
    /// Name of the implementation, shown by `bertq info`.
    pub name: &'static str,
    /// The weight layout whose fast path this table has (the quantizer's `--pack` target).
    pub native_layout: Layout,
    /// Activations are stored as `q + 128` (u8 bits) instead of `q` (x86 VNNI multiplies u8 by i8).
    pub unsigned_activations: bool,
    /// Symmetric dynamic quantization of each row of `x` (`cols` wide) to int8, one scale per row.
    /// `max_known`: `scales` already holds each row's `max |x|`, noted by the step that wrote `x`
    /// (`activate` or `add_layer_norm` with `row_max`), so the row is read once, not twice.
    pub quantize_rows: QuantizeRows,
    pub gemm_i8: fn(p: &GemmI8<'_>, out: &mut MatMut<'_>),
    pub gemm_f32: fn(p: &GemmF32<'_>, out: &mut [f32]),
    /// Softmax of one row in place.
    pub softmax: fn(x: &mut [f32]),
    /// The feed-forward activation in place, on rows `cols` wide; with `row_max`, each row's
    /// `max |x|` afterwards (for `quantize_rows`).
    pub activate: fn(act: Activation, x: &mut [f32], cols: usize, row_max: Option<&mut [f32]>),
    /// Multi-head attention of one layer, for a range of heads, with a private scores buffer.
    pub attention:
        fn(a: &vector::Attention<'_>, heads: core::ops::Range<usize>, scores: &mut [f32]),
    /// `x = LayerNorm(x + residual)` row by row; with `row_max`, each row's `max |x|` afterwards.
    pub add_layer_norm: AddLayerNorm,
}

/// `fn(x, cols, q, scales, max_known)`: see [`Kernels::quantize_rows`].
pub type QuantizeRows =
    fn(x: &[f32], cols: usize, q: &mut [i8], scales: &mut [f32], max_known: bool);

/// `fn(x, residual, gamma, beta, eps, row_max)`: `x = LayerNorm(x + residual)` row by row.
pub type AddLayerNorm = fn(
    x: &mut [f32],
    residual: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    row_max: Option<&mut [f32]>,
);

/// The portable scalar kernels.
pub static REFERENCE: Kernels = Kernels {
    name: "reference",
    native_layout: Layout::RowMajor,
    unsigned_activations: false,
    quantize_rows: reference::quantize_rows,
    gemm_i8: reference::gemm_i8,
    gemm_f32: reference::gemm_f32,
    softmax: reference::softmax,
    activate: reference::activate,
    attention: reference::attention,
    add_layer_norm: reference::add_layer_norm,
};

/// The environment variable that forces a kernel table by name (e.g. `BERTQ_KERNELS=avx2`), so
/// one binary can compare every path this CPU supports.
pub const OVERRIDE_ENV: &str = "BERTQ_KERNELS";

/// Picks the kernels for this CPU: the single dispatch point. Honours [`OVERRIDE_ENV`] (std)
/// when it names a table this CPU supports; otherwise the fastest available.
pub fn select() -> &'static Kernels {
    #[cfg(feature = "std")]
    if let Some(k) = std::env::var(OVERRIDE_ENV).ok().and_then(|n| by_name(&n)) {
        return k;
    }
    best()
}

/// The fastest table this CPU supports (runtime detection with `std`, target features without).
pub fn best() -> &'static Kernels {
    #[cfg(target_arch = "x86_64")]
    return x86_64::best();
    #[cfg(target_arch = "aarch64")]
    return aarch64::best();
    #[allow(unreachable_code)]
    &REFERENCE
}

/// A table by name (`reference`, `avx2`, `avx512vnni`, `amx`, `neon`, `dotprod`, `i8mm`), if
/// this CPU supports it.
pub fn by_name(name: &str) -> Option<&'static Kernels> {
    if name == REFERENCE.name {
        return Some(&REFERENCE);
    }
    #[cfg(target_arch = "x86_64")]
    return x86_64::by_name(name);
    #[cfg(target_arch = "aarch64")]
    return aarch64::by_name(name);
    #[allow(unreachable_code)]
    None
}

/// Names of every table compiled into this build (supported by this CPU or not).
pub const ALL_NAMES: &[&str] = &[
    "reference",
    "avx2",
    "avx512vnni",
    "amx",
    "neon",
    "dotprod",
    "i8mm",
];
