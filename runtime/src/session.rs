//! A session: all working memory for one model at a chosen maximum sequence length, sized once.
//! [`Session::run`] then tokenizes, runs the encoder and decodes the head without allocating.
//!
//! On `no_std` the caller supplies the memory ([`SessionMemory`], sized by [`MemorySizes`]);
//! with `std`, [`Session::with_owned_memory`] allocates it once.

use crate::heads::question_answering::{self as qa, QaOptions};
use crate::heads::token_classification::{self, DecodeInput};
use crate::heads::{self, Aggregation, Entity, Head, ScoreFunction};
use crate::kernels::{self, Kernels};
use crate::model::bert::Exec;
use crate::model::{Model, Precision, Scratch};
use crate::parallel::{Parallel, Sequential};
use crate::tokenizer::{Encoded, Token, TokenizerError};
use core::fmt;

/// How much memory of each kind a session needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySizes {
    pub tokens: usize,
    pub f32s: usize,
    pub i8s: usize,
    pub entities: usize,
    pub indices: usize,
}

/// The largest session memory [`MemorySizes::checked`] accepts: 16 GiB on 64-bit targets (a
/// model a board can run needs a few hundred MiB at most), `isize::MAX` on 32-bit ones.
pub const MAX_SESSION_BYTES: usize = if usize::BITS >= 64 {
    1 << 34
} else {
    isize::MAX as usize
};

impl MemorySizes {
    /// Memory for one thread.
    pub fn for_model(model: &Model<'_>, max_seq: usize) -> Self {
        Self::for_model_threads(model, max_seq, 1)
    }

    /// Memory for `threads` threads (each needs its own attention-score buffer).
    pub fn for_model_threads(model: &Model<'_>, max_seq: usize, threads: usize) -> Self {
        Self::for_model_input(model, max_seq, max_seq.saturating_sub(2), threads)
    }

    /// Memory for inputs of up to `max_input` content tokens (question + context for question
    /// answering) run in windows of `max_seq` tokens (see [`Session::with_input_limit`]).
    ///
    /// Beyond the one-window sizes: the whole encoding (`max_input + 4` tokens) plus one window
    /// of `max_seq` tokens, and `2 * (max_input + max_seq)` entities, which hold every window's
    /// entities (or answer candidates) before they are merged: enough for any stride up to half
    /// a window (strides above that are refused with [`RunError::TooManyWindows`] once the
    /// windows' entities could exceed it).
    ///
    /// Sizes that do not fit in `usize` saturate (no memory fits them); [`MemorySizes::checked`]
    /// reports them instead.
    pub fn for_model_input(
        model: &Model<'_>,
        max_seq: usize,
        max_input: usize,
        threads: usize,
    ) -> Self {
        Self::compute(model, max_seq, max_input, threads).unwrap_or(MemorySizes {
            tokens: usize::MAX,
            f32s: usize::MAX,
            i8s: usize::MAX,
            entities: usize::MAX,
            indices: usize::MAX,
        })
    }

    /// [`MemorySizes::for_model_input`] with every size computed in checked arithmetic: an
    /// overflow, or a total above [`MAX_SESSION_BYTES`], is [`SessionError::TooLarge`].
    pub fn checked(
        model: &Model<'_>,
        max_seq: usize,
        max_input: usize,
        threads: usize,
    ) -> Result<Self, SessionError> {
        let sizes = Self::compute(model, max_seq, max_input, threads);
        match sizes.and_then(|s| s.checked_bytes()) {
            Some(bytes) if bytes <= MAX_SESSION_BYTES => sizes.ok_or(SessionError::TooLarge {
                bytes: None,
                max: MAX_SESSION_BYTES,
            }),
            bytes => Err(SessionError::TooLarge {
                bytes,
                max: MAX_SESSION_BYTES,
            }),
        }
    }

    fn compute(
        model: &Model<'_>,
        max_seq: usize,
        max_input: usize,
        threads: usize,
    ) -> Option<Self> {
        let c = model.config();
        let labels = model.labels.len();
        let max_input = max_input.max(max_seq.saturating_sub(2));
        let windowed = max_input > max_seq.saturating_sub(2)
            || matches!(model.head, Head::QuestionAnswering { .. });
        let (tokens, mut entities) = if windowed {
            (
                max_input.checked_add(4)?.checked_add(max_seq)?,
                max_input.checked_add(max_seq)?.checked_mul(2)?,
            )
        } else {
            (max_seq, max_seq)
        };
        if model.pii.is_some() && matches!(model.head, Head::TokenClassification { .. }) {
            // Room for the recognizers' spans beside the model's (`crate::pii`).
            entities = entities.checked_mul(3)?;
        }
        let head = model.head.output_len(c, max_seq);
        Some(MemorySizes {
            tokens,
            f32s: Scratch::f32_len_checked(c, max_seq, threads)?.checked_add(head)?,
            i8s: Scratch::i8_len_checked(c, max_seq, threads)?,
            entities,
            indices: model.head.index_len(labels),
        })
    }

    /// The bytes [`SessionMemory::from_bytes`] needs for these sizes in a block that starts on
    /// any 4-byte boundary (every buffer's alignment; the padding between them is at most 3
    /// bytes each). `None` on overflow.
    pub fn bytes_in_block(&self) -> Option<usize> {
        let parts = [
            self.f32s.checked_mul(4)?,
            self.tokens.checked_mul(core::mem::size_of::<Token>())?,
            self.entities.checked_mul(core::mem::size_of::<Entity>())?,
            self.indices.checked_mul(4)?,
            self.i8s,
        ];
        parts
            .iter()
            .try_fold(0usize, |sum, &p| sum.checked_add(p)?.checked_add(3))
    }

    /// Total bytes (saturating).
    pub fn bytes(&self) -> usize {
        self.checked_bytes().unwrap_or(usize::MAX)
    }

    /// Total bytes, `None` on overflow.
    pub fn checked_bytes(&self) -> Option<usize> {
        let parts = [
            self.tokens.checked_mul(core::mem::size_of::<Token>())?,
            self.f32s.checked_mul(4)?,
            self.i8s,
            self.entities.checked_mul(core::mem::size_of::<Entity>())?,
            self.indices.checked_mul(4)?,
        ];
        parts.iter().try_fold(0usize, |a, &b| a.checked_add(b))
    }
}

/// Caller-provided working memory (e.g. static arrays on bare metal).
#[derive(Debug)]
pub struct SessionMemory<'m> {
    pub tokens: &'m mut [Token],
    pub f32s: &'m mut [f32],
    pub i8s: &'m mut [i8],
    pub entities: &'m mut [Entity],
    pub indices: &'m mut [u32],
}

impl<'m> SessionMemory<'m> {
    /// Carves the five buffers out of one block of bytes (a static arena on bare metal, memory
    /// handed over through the C API), each aligned for its type. `None` if the block is too
    /// small for `sizes` (see [`MemorySizes::bytes_in_block`]).
    pub fn from_bytes(block: &'m mut [u8], sizes: &MemorySizes) -> Option<Self> {
        fn take<'b, T: bytemuck::Pod>(rest: &mut &'b mut [u8], n: usize) -> Option<&'b mut [T]> {
            let block = core::mem::take(rest);
            let pad = block.as_ptr().align_offset(core::mem::align_of::<T>());
            let len = n.checked_mul(core::mem::size_of::<T>())?;
            let (head, tail) = block.get_mut(pad..)?.split_at_mut_checked(len)?;
            *rest = tail;
            bytemuck::try_cast_slice_mut(head).ok()
        }
        let mut rest = block;
        Some(SessionMemory {
            f32s: take(&mut rest, sizes.f32s)?,
            tokens: take(&mut rest, sizes.tokens)?,
            entities: take(&mut rest, sizes.entities)?,
            indices: take(&mut rest, sizes.indices)?,
            i8s: take(&mut rest, sizes.i8s)?,
        })
    }

    fn fits(&self, s: &MemorySizes) -> bool {
        self.tokens.len() >= s.tokens
            && self.f32s.len() >= s.f32s
            && self.i8s.len() >= s.i8s
            && self.entities.len() >= s.entities
            && self.indices.len() >= s.indices
    }
}

/// Where a session's memory lives: borrowed ([`SessionMemory`]) or owned ([`OwnedMemory`]).
pub trait Storage {
    fn memory(&mut self) -> SessionMemory<'_>;
}

impl Storage for SessionMemory<'_> {
    fn memory(&mut self) -> SessionMemory<'_> {
        SessionMemory {
            tokens: self.tokens,
            f32s: self.f32s,
            i8s: self.i8s,
            entities: self.entities,
            indices: self.indices,
        }
    }
}

/// Session memory allocated once, at session creation.
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct OwnedMemory {
    tokens: Vec<Token>,
    f32s: Vec<f32>,
    i8s: Vec<i8>,
    entities: Vec<Entity>,
    indices: Vec<u32>,
}

#[cfg(feature = "std")]
impl OwnedMemory {
    /// Allocates `s` (aborts if the allocator fails, like `vec!`; [`OwnedMemory::try_new`]
    /// reports it instead).
    pub fn new(s: &MemorySizes) -> Self {
        OwnedMemory {
            tokens: vec![Token::default(); s.tokens],
            f32s: vec![0.0; s.f32s],
            i8s: vec![0; s.i8s],
            entities: vec![Entity::default(); s.entities],
            indices: vec![0; s.indices],
        }
    }

    /// Allocates `s`, or [`SessionError::OutOfMemory`] if the allocator refuses (a memory
    /// limit, an impossible size): never aborts.
    pub fn try_new(s: &MemorySizes) -> Result<Self, SessionError> {
        let oom = SessionError::OutOfMemory {
            bytes: s.checked_bytes(),
        };
        Ok(OwnedMemory {
            tokens: try_filled(s.tokens, Token::default()).ok_or(oom)?,
            f32s: try_zeroed(s.f32s).ok_or(oom)?,
            i8s: try_zeroed(s.i8s).ok_or(oom)?,
            entities: try_filled(s.entities, Entity::default()).ok_or(oom)?,
            indices: try_zeroed(s.indices).ok_or(oom)?,
        })
    }
}

/// `vec![value; n]`, `None` if the allocation fails.
#[cfg(feature = "std")]
fn try_filled<T: Clone>(n: usize, value: T) -> Option<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).ok()?;
    v.resize(n, value);
    Some(v)
}

/// `vec![0; n]` for plain numbers, `None` if the allocation fails. Zeroed by the allocator
/// (pages of a large buffer are only touched when a run uses them, as with `vec!`).
#[cfg(feature = "std")]
fn try_zeroed<T: bytemuck::Zeroable>(n: usize) -> Option<Vec<T>> {
    use std::alloc::{alloc_zeroed, Layout};
    if n == 0 || core::mem::size_of::<T>() == 0 {
        let mut v = Vec::new();
        v.resize_with(n, T::zeroed);
        return Some(v);
    }
    let layout = Layout::array::<T>(n).ok()?;
    // SAFETY: the layout has a non-zero size (n > 0, T not zero-sized).
    let ptr = unsafe { alloc_zeroed(layout) }.cast::<T>();
    if ptr.is_null() {
        return None;
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `[T; n]` (so a
    // capacity of `n`), and all-zero bytes are a valid `T` (`Zeroable`), so all `n` elements
    // are initialised.
    Some(unsafe { Vec::from_raw_parts(ptr, n, n) })
}

#[cfg(feature = "std")]
impl Storage for OwnedMemory {
    fn memory(&mut self) -> SessionMemory<'_> {
        SessionMemory {
            tokens: &mut self.tokens,
            f32s: &mut self.f32s,
            i8s: &mut self.i8s,
            entities: &mut self.entities,
            indices: &mut self.indices,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// The maximum sequence length must be at least 2 (`[CLS]` and `[SEP]`) and at most the model's.
    BadMaxSequence { requested: usize, max: usize },
    /// The supplied memory is smaller than [`MemorySizes::for_model`] asks for.
    MemoryTooSmall,
    /// The operating system refused to start a worker thread.
    ThreadSpawn,
    /// The session would need more memory than [`MAX_SESSION_BYTES`] (`bytes`: `None` when the
    /// size does not even fit in `usize`).
    TooLarge { bytes: Option<usize>, max: usize },
    /// The allocator refused the session's memory (`bytes` of it).
    OutOfMemory { bytes: Option<usize> },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::BadMaxSequence { requested, max } => write!(
                f,
                "maximum sequence length {requested} is out of range (2..={max} for this model)"
            ),
            SessionError::MemoryTooSmall => write!(f, "session memory is too small for this model"),
            SessionError::ThreadSpawn => write!(f, "could not start worker threads"),
            SessionError::TooLarge {
                bytes: Some(bytes),
                max,
            } => write!(
                f,
                "a session would need {} MiB of memory, more than the {} MiB allowed; use a \
                 smaller --max-length, --max-input-tokens or --threads",
                bytes >> 20,
                max >> 20
            ),
            SessionError::TooLarge { bytes: None, .. } => write!(
                f,
                "a session's memory size overflows; use a smaller --max-length, \
                 --max-input-tokens or --threads"
            ),
            SessionError::OutOfMemory { bytes } => match bytes {
                Some(b) => write!(f, "could not allocate {} MiB of session memory", b >> 20),
                None => write!(f, "could not allocate the session's memory"),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    Tokenizer(TokenizerError),
    /// Ids out of the vocabulary, token types out of range, or a sequence longer than the session.
    InvalidInput,
    /// Fill-mask: the text has no `[MASK]` token, or more than `max`.
    Masks {
        found: usize,
        max: usize,
    },
    /// The input needs `tokens` content tokens; the session was made for at most `max`
    /// ([`Session::with_input_limit`]). Never cut silently.
    TooLong {
        tokens: usize,
        max: usize,
    },
    /// A stride must be smaller than the window it slides (`max` is the largest allowed).
    BadStride {
        stride: usize,
        max: usize,
    },
    /// Aggregation `none` with a stride: like Hugging Face, windows need entity aggregation.
    StrideNeedsAggregation,
    /// Windowing would produce more entities or answer candidates than the session holds
    /// (a stride above half the window on a long input, or a large `top_k`).
    TooManyWindows {
        windows: usize,
        max: usize,
    },
    /// Question answering: the question leaves no room for the context in a window.
    QuestionTooLong {
        tokens: usize,
        max: usize,
    },
    /// Question answering: an empty question or context, or `top_k` / `max_answer_len` of 0.
    BadQuestion,
    /// The call does not fit the model's task (question answering needs `run_qa`; `run_qa`
    /// needs a question-answering model).
    WrongTask,
    /// Aggregation `pii` or `compat` on a model without a PII profile.
    NoPiiProfile,
    /// The recognizers found more spans than the session's `max` entity slots.
    TooManySpans {
        max: usize,
    },
    /// A text pair or a question needs token type 1, and the model has only `available` token
    /// types (`type_vocab_size`; PyTorch fails with an index error on such input).
    TokenTypes {
        needed: u32,
        available: u32,
    },
    /// A windowed run needs room for content tokens: windows of `max_seq` tokens hold none.
    WindowTooSmall {
        max_seq: usize,
    },
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Tokenizer(e) => write!(f, "tokenizer: {e}"),
            RunError::InvalidInput => write!(
                f,
                "invalid input: token ids or types out of range, or too many tokens for the session"
            ),
            RunError::Masks { found, max } => write!(
                f,
                "fill-mask needs 1 to {max} [MASK] tokens in the text, found {found}"
            ),
            RunError::TooLong { tokens, max } => write!(
                f,
                "input of {tokens} tokens is longer than the session's limit of {max} tokens"
            ),
            RunError::BadStride { stride, max } => {
                write!(
                    f,
                    "stride {stride} is too large for the window (at most {max})"
                )
            }
            RunError::StrideNeedsAggregation => write!(
                f,
                "a stride needs an aggregation strategy other than `none` (as in Hugging Face)"
            ),
            RunError::TooManyWindows { windows, max } => write!(
                f,
                "{windows} windows would need more than the session's {max} result slots; \
                 use a smaller stride or top_k"
            ),
            RunError::QuestionTooLong { tokens, max } => write!(
                f,
                "question of {tokens} tokens leaves no room for the context (at most {max})"
            ),
            RunError::BadQuestion => write!(
                f,
                "question and context must not be empty; top_k and max_answer_len must be >= 1"
            ),
            RunError::WrongTask => write!(
                f,
                "request does not match the model's task (question answering takes a question \
                 and a context, other tasks a text)"
            ),
            RunError::NoPiiProfile => write!(
                f,
                "aggregation pii and compat need a model with a PII profile \
                 (bertq-quantize --pii-profile)"
            ),
            RunError::TooManySpans { max } => write!(
                f,
                "the text has more PII spans than the session's {max} entity slots"
            ),
            RunError::TokenTypes { needed, available } => write!(
                f,
                "this input needs {needed} token types (a text pair or a question) and the model \
                 has {available} (type_vocab_size)"
            ),
            RunError::WindowTooSmall { max_seq } => write!(
                f,
                "windows of {max_seq} tokens leave no room for text after [CLS] and [SEP]; \
                 use a larger maximum length"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for RunError {}
#[cfg(feature = "std")]
impl std::error::Error for SessionError {}

/// Decoding options of [`Session::run_with`], as Hugging Face's pipelines name them.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions<'a> {
    /// Token classification: how tokens become entities (default `simple`).
    pub aggregation: Aggregation,
    /// Token classification: entity groups (or tags, with `none`) to drop (default `["O"]`).
    pub ignore_labels: &'a [&'a str],
    /// Sequence classification: softmax, sigmoid or none; `None` = the model's default
    /// (sigmoid for multi-label or single-output models, else softmax), like the pipeline.
    pub function_to_apply: Option<ScoreFunction>,
    /// Fill-mask: candidates per mask (default 5, as the pipeline; at most
    /// [`heads::fill_mask::MAX_TOP_K`] and the vocabulary size).
    pub top_k: usize,
    /// Token classification: Hugging Face's `stride`. `None` (default): a text longer than the
    /// session is truncated and `Output::encoded.truncated` says so (the pipeline's default).
    /// `Some(s)`: the whole text is tokenized (up to the session's input limit, else
    /// [`RunError::TooLong`]) and run in windows of `max_seq` tokens overlapping by `s` tokens,
    /// entities merged across windows as the pipeline merges them.
    pub stride: Option<usize>,
    /// Token classification: the lowest entity score kept (`None`: keep all; aggregation `pii`
    /// defaults to its profile's). With `compat`, the package's per-token threshold (default
    /// 0.5): tokens below it end a span.
    pub threshold: Option<f32>,
}

impl<'a> RunOptions<'a> {
    /// The defaults with the model's own aggregation ([`Model::default_aggregation`]: `pii`
    /// for models with a PII profile).
    pub fn for_model(model: &Model<'_>) -> Self {
        RunOptions {
            aggregation: model.default_aggregation(),
            ..RunOptions::default()
        }
    }
}

impl Default for RunOptions<'_> {
    fn default() -> Self {
        RunOptions {
            aggregation: Aggregation::Simple,
            ignore_labels: &["O"],
            function_to_apply: None,
            top_k: 5,
            stride: None,
            threshold: None,
        }
    }
}

/// What the head produced.
#[derive(Debug)]
pub enum TaskOutput<'s> {
    /// Scores per label (softmax, or sigmoid for multi-label) and label ids by descending score.
    Classification {
        scores: &'s [f32],
        ranking: &'s [u32],
    },
    /// Entities in text order.
    Entities(&'s [Entity]),
    /// The pooled (and, if configured, normalised) sentence embedding.
    Embedding(&'s [f32]),
    /// Fill-mask: for mask `m` (in text order, at token `positions[m]`), the `top_k` most likely
    /// tokens `ids[m * top_k..][..top_k]` with their probabilities `scores[..]`, best first.
    FillMask {
        top_k: usize,
        positions: &'s [u32],
        ids: &'s [u32],
        scores: &'s [f32],
    },
    /// Question answering: answers best first, each an [`Entity`] whose `score`, `start`/`end`
    /// (characters) and `byte_start`/`byte_end` locate the answer in the context (`label` is 0,
    /// `index` the start token in its window). The empty answer (`handle_impossible_answer`)
    /// is `start == end == 0`.
    Answers(&'s [Entity]),
}

/// The result of [`Session::run`], borrowing the session's memory.
#[derive(Debug)]
pub struct Output<'s> {
    /// The tokens of the text (with offsets), as fed to the model.
    pub tokens: &'s [Token],
    /// Token counts, and whether the text was truncated to fit the session.
    pub encoded: Encoded,
    pub task: TaskOutput<'s>,
}

/// The session's thread pool field (a macro so that it borrows only that field).
#[cfg(feature = "std")]
macro_rules! pool_field {
    ($s:expr) => {
        $s.pool.as_ref()
    };
}
#[cfg(not(feature = "std"))]
macro_rules! pool_field {
    ($s:expr) => {
        None::<&Sequential>
    };
}

/// The `Exec` of a session: its kernels, precision and threads (a macro, like `pool_field!`, so
/// that it borrows only those fields while the session's memory is borrowed mutably).
macro_rules! exec_of {
    ($s:expr) => {
        Exec {
            kernels: $s.kernels,
            precision: $s.precision,
            par: parallel_of(pool_field!($s), $s.external),
        }
    };
}

/// The session's own thread pool (std), else the workers it was given, else one thread.
#[cfg(feature = "std")]
fn parallel_of(
    pool: Option<&crate::parallel::ThreadPool>,
    external: Option<External>,
) -> &dyn Parallel {
    match (pool, external) {
        (Some(p), _) => p,
        (None, Some(e)) => e.0,
        (None, None) => &Sequential,
    }
}

#[cfg(not(feature = "std"))]
fn parallel_of(_: Option<&Sequential>, external: Option<External>) -> &'static dyn Parallel {
    match external {
        Some(e) => e.0,
        None => &Sequential,
    }
}

/// Workers a session was given ([`Session::set_parallel`]): the firmware's other cores.
#[derive(Clone, Copy)]
struct External(&'static dyn Parallel);

impl fmt::Debug for External {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "External({} parts)", self.0.parts())
    }
}

/// A model plus preallocated memory for sequences of up to `max_seq` tokens.
#[derive(Debug)]
pub struct Session<'m, 'a, S: Storage> {
    model: &'m Model<'a>,
    storage: S,
    max_seq: usize,
    /// Content tokens of the longest input run in windows (at least `max_seq - 2`).
    max_input: usize,
    kernels: &'static Kernels,
    precision: Precision,
    #[cfg(feature = "std")]
    pool: Option<crate::parallel::ThreadPool>,
    external: Option<External>,
}

#[cfg(feature = "std")]
impl<'m, 'a> Session<'m, 'a, OwnedMemory> {
    /// Allocates the session's memory (the only allocation a session ever makes).
    pub fn with_owned_memory(model: &'m Model<'a>, max_seq: usize) -> Result<Self, SessionError> {
        Self::with_threads(model, max_seq, 1)
    }

    /// A session whose runs are split over `threads` threads, created here, once. Memory and
    /// threads are the only allocations; `run` allocates nothing.
    pub fn with_threads(
        model: &'m Model<'a>,
        max_seq: usize,
        threads: usize,
    ) -> Result<Self, SessionError> {
        Self::with_input_limit(model, max_seq, max_seq.saturating_sub(2), threads)
    }

    /// A session whose windowed runs (token classification with a stride, question answering)
    /// take inputs of up to `max_input` content tokens ([`MemorySizes::for_model_input`]).
    pub fn with_input_limit(
        model: &'m Model<'a>,
        max_seq: usize,
        max_input: usize,
        threads: usize,
    ) -> Result<Self, SessionError> {
        let threads = threads.max(1);
        let max = model.max_sequence_length();
        if max_seq < 2 || max_seq > max {
            return Err(SessionError::BadMaxSequence {
                requested: max_seq,
                max,
            });
        }
        let sizes = MemorySizes::checked(model, max_seq, max_input, threads)?;
        let mut session =
            Self::new_with_input(model, max_seq, max_input, OwnedMemory::try_new(&sizes)?)?;
        if threads > 1 {
            let pool =
                crate::parallel::ThreadPool::new(threads).map_err(|_| SessionError::ThreadSpawn)?;
            session.pool = Some(pool);
        }
        Ok(session)
    }
}

impl<'m, 'a, S: Storage> Session<'m, 'a, S> {
    pub fn new(model: &'m Model<'a>, max_seq: usize, storage: S) -> Result<Self, SessionError> {
        Self::new_with_input(model, max_seq, max_seq.saturating_sub(2), storage)
    }

    /// [`Session::new`] for windowed inputs of up to `max_input` content tokens; `storage` must
    /// fit [`MemorySizes::for_model_input`].
    pub fn new_with_input(
        model: &'m Model<'a>,
        max_seq: usize,
        max_input: usize,
        storage: S,
    ) -> Result<Self, SessionError> {
        Self::new_with_kernels(model, max_seq, max_input, storage, kernels::select())
    }

    /// [`Session::new_with_input`] with a kernel table chosen by the caller instead of
    /// [`kernels::select`] (which reads `BERTQ_KERNELS` with `std`): for embedders that must not
    /// read the environment (the C library) or that pick a table themselves.
    pub fn new_with_kernels(
        model: &'m Model<'a>,
        max_seq: usize,
        max_input: usize,
        mut storage: S,
        kernels: &'static Kernels,
    ) -> Result<Self, SessionError> {
        let max = model.max_sequence_length();
        if max_seq < 2 || max_seq > max {
            return Err(SessionError::BadMaxSequence {
                requested: max_seq,
                max,
            });
        }
        let max_input = max_input.max(max_seq - 2);
        if !storage
            .memory()
            .fits(&MemorySizes::for_model_input(model, max_seq, max_input, 1))
        {
            return Err(SessionError::MemoryTooSmall);
        }
        Ok(Session {
            model,
            storage,
            max_seq,
            max_input,
            kernels,
            precision: Precision::Int8,
            #[cfg(feature = "std")]
            pool: None,
            external: None,
        })
    }

    /// Splits runs over `parallel` (e.g. the firmware's other cores), whose every part needs its
    /// own attention buffer: the storage must fit [`MemorySizes::for_model_input`] for
    /// `parallel.parts()` threads. Results are bit-identical to one thread (work is split by rows
    /// and heads, never inside a sum).
    pub fn set_parallel(&mut self, parallel: &'static dyn Parallel) -> Result<(), SessionError> {
        let sizes = MemorySizes::for_model_input(
            self.model,
            self.max_seq,
            self.max_input,
            parallel.parts(),
        );
        if !self.storage.memory().fits(&sizes) {
            return Err(SessionError::MemoryTooSmall);
        }
        self.external = Some(External(parallel));
        Ok(())
    }

    /// Threads a run is split over.
    pub fn threads(&self) -> usize {
        self.parallel().parts()
    }

    fn parallel(&self) -> &dyn Parallel {
        parallel_of(pool_field!(self), self.external)
    }

    pub fn model(&self) -> &'m Model<'a> {
        self.model
    }
    pub fn max_seq(&self) -> usize {
        self.max_seq
    }
    /// Content tokens of the longest input a windowed run takes.
    pub fn max_input(&self) -> usize {
        self.max_input
    }
    pub fn kernels(&self) -> &'static Kernels {
        self.kernels
    }
    pub fn precision(&self) -> Precision {
        self.precision
    }
    /// `Precision::F32` runs the same model code with f32 activations (verification reference).
    pub fn set_precision(&mut self, p: Precision) {
        self.precision = p;
    }
    /// Overrides the kernel table (to compare implementations in one binary).
    pub fn set_kernels(&mut self, k: &'static Kernels) {
        self.kernels = k;
    }

    /// Runs the encoder on token ids; returns the last hidden states `[ids.len(), hidden]`.
    pub fn run_ids(
        &mut self,
        ids: &[u32],
        token_types: Option<&[u32]>,
    ) -> Result<&[f32], RunError> {
        let model = self.model;
        if ids.is_empty() || !model.encoder.check_input(ids, token_types, self.max_seq) {
            return Err(RunError::InvalidInput);
        }
        let c = model.config();
        let exec = exec_of!(self);
        let parts = exec.par.parts();
        let mem = self.storage.memory();
        let (scratch_f32, _) = mem
            .f32s
            .split_at_mut(Scratch::f32_len(c, self.max_seq, parts));
        let mut scratch = Scratch::carve(c, ids.len(), parts, scratch_f32, mem.i8s)
            .ok_or(RunError::InvalidInput)?;
        let input = |t: usize| (ids[t], token_types.map_or(0, |tt| tt[t]));
        model.encoder.forward(&exec, ids.len(), input, &mut scratch);
        let n = ids.len() * c.hidden_size as usize;
        Ok(&scratch.hidden[..n])
    }

    /// [`Session::run_ids`] showing `observe(layer, linear, x)` every Linear's input (see
    /// [`crate::model::bert::Encoder::forward_observed`]): activation calibration.
    pub fn run_ids_observed(
        &mut self,
        ids: &[u32],
        token_types: Option<&[u32]>,
        observe: &mut dyn FnMut(usize, usize, &[f32]),
    ) -> Result<&[f32], RunError> {
        let model = self.model;
        if ids.is_empty() || !model.encoder.check_input(ids, token_types, self.max_seq) {
            return Err(RunError::InvalidInput);
        }
        let c = model.config();
        let exec = exec_of!(self);
        let parts = exec.par.parts();
        let mem = self.storage.memory();
        let (scratch_f32, _) = mem
            .f32s
            .split_at_mut(Scratch::f32_len(c, self.max_seq, parts));
        let mut scratch = Scratch::carve(c, ids.len(), parts, scratch_f32, mem.i8s)
            .ok_or(RunError::InvalidInput)?;
        let input = |t: usize| (ids[t], token_types.map_or(0, |tt| tt[t]));
        model
            .encoder
            .forward_observed(&exec, ids.len(), input, &mut scratch, Some(observe));
        let n = ids.len() * c.hidden_size as usize;
        Ok(&scratch.hidden[..n])
    }

    /// Tokenizes `text`, runs the model and decodes the task output with the default options.
    /// Allocates nothing. Texts longer than the session are truncated; `Output::encoded.truncated`
    /// says so.
    pub fn run(&mut self, text: &str) -> Result<Output<'_>, RunError> {
        self.run_with(text, &RunOptions::default())
    }

    /// [`Session::run`] with decoding options.
    pub fn run_with(
        &mut self,
        text: &str,
        options: &RunOptions<'_>,
    ) -> Result<Output<'_>, RunError> {
        if matches!(options.aggregation, Aggregation::Pii | Aggregation::Compat)
            && matches!(self.model.head, Head::TokenClassification { .. })
            && self.model.pii.is_none()
        {
            return Err(RunError::NoPiiProfile);
        }
        if let (Some(stride), Head::TokenClassification { .. }) = (options.stride, self.model.head)
        {
            return self.run_windows(text, options, stride);
        }
        let max_seq = self.max_seq;
        let tokenizer = &self.model.tokenizer;
        let exec = exec_of!(self);
        let mem = self.storage.memory();
        let encoded = tokenizer
            .encode(text, &mut mem.tokens[..max_seq])
            .map_err(RunError::Tokenizer)?;
        infer(
            self.model,
            &exec,
            max_seq,
            mem,
            encoded,
            encoded.len,
            text,
            options,
        )
    }

    /// Token classification over the whole text in overlapping windows (Hugging Face's
    /// `stride`): `tokenizers`' overflowing windows of `max_seq - 2` content tokens, each window
    /// decoded on its own (aggregation, `ignore_labels`), then all entities ordered by start and
    /// overlapping ones resolved as `aggregate_overlapping_entities` does (the longer wins, on
    /// equal length the higher score, else the earlier).
    fn run_windows(
        &mut self,
        text: &str,
        options: &RunOptions<'_>,
        stride: usize,
    ) -> Result<Output<'_>, RunError> {
        let (model, max_seq, max_input) = (self.model, self.max_seq, self.max_input);
        if options.aggregation == Aggregation::None {
            return Err(RunError::StrideNeedsAggregation);
        }
        if stride >= max_seq {
            return Err(RunError::BadStride {
                stride,
                max: max_seq - 1,
            });
        }
        let Head::TokenClassification { classifier } = model.head else {
            return Err(RunError::WrongTask);
        };
        let exec = exec_of!(self);
        let SessionMemory {
            tokens,
            f32s,
            i8s,
            entities,
            indices,
        } = self.storage.memory();
        let (all, rest) = tokens.split_at_mut(max_input + 2);
        let enc = model
            .tokenizer
            .encode(text, all)
            .map_err(RunError::Tokenizer)?;
        if enc.truncated {
            return Err(RunError::TooLong {
                tokens: enc.total - 2,
                max: max_input,
            });
        }
        if enc.len <= max_seq {
            let mem = SessionMemory {
                tokens: all,
                f32s,
                i8s,
                entities,
                indices,
            };
            return infer(model, &exec, max_seq, mem, enc, enc.len, text, options);
        }
        // Only sessions made for long inputs get here: they have a window buffer after `all`.
        let window = max_seq - 2;
        if window == 0 {
            return Err(RunError::WindowTooSmall { max_seq });
        }
        if stride >= window {
            return Err(RunError::BadStride {
                stride,
                max: window - 1,
            });
        }
        let content_len = enc.len - 2;
        let count = qa::windows(content_len, window, stride).count();
        if count * window > entities.len() {
            return Err(RunError::TooManyWindows {
                windows: count,
                max: entities.len(),
            });
        }
        let win = rest.get_mut(2..2 + max_seq).ok_or(RunError::InvalidInput)?;
        let c = model.config();
        let h = c.hidden_size as usize;
        let n = classifier.n;
        let parts = exec.par.parts();
        let (scratch_f32, head_out) = f32s.split_at_mut(Scratch::f32_len(c, max_seq, parts));
        let mut found = 0;
        for (a, b) in qa::windows(content_len, window, stride) {
            let seq = b - a + 2;
            win[0] = all[0];
            win[1..seq - 1].copy_from_slice(&all[1 + a..1 + b]);
            win[seq - 1] = all[enc.len - 1];
            let mut scratch = Scratch::carve(c, seq, parts, &mut *scratch_f32, &mut *i8s)
                .ok_or(RunError::InvalidInput)?;
            model
                .encoder
                .forward(&exec, seq, |t| (win[t].id, 0), &mut scratch);
            let (logits, row) = head_out.split_at_mut(seq * n);
            heads::token_logits(
                exec.kernels,
                &classifier,
                &scratch.hidden[..seq * h],
                seq,
                logits,
            );
            let input = DecodeInput {
                text,
                tokens: &win[..seq],
                tokenizer: &model.tokenizer,
                labels: &model.labels,
            };
            found += decode_entities(
                &input,
                logits,
                n,
                options,
                model,
                row,
                &mut entities[found..],
            );
        }
        let merged = token_classification::merge_overlapping(&mut entities[..found]);
        let merged = finish_spans(model, text, text.len(), options, entities, merged)?;
        Ok(Output {
            tokens: &all[..enc.len],
            encoded: enc,
            task: TaskOutput::Entities(&entities[..merged]),
        })
    }

    /// Extractive question answering (`BertForQuestionAnswering`) with the semantics of Hugging
    /// Face's `question-answering` pipeline ([`heads::question_answering`]): `[CLS] question
    /// [SEP] context-window [SEP]` windows of `max_seq` tokens (`only_second` truncation with
    /// `doc_stride` overlap), the best spans of every window widened to words and merged by
    /// text. Answer offsets are into `context`. Allocates nothing.
    pub fn run_qa(
        &mut self,
        question: &str,
        context: &str,
        options: &QaOptions,
    ) -> Result<Output<'_>, RunError> {
        let (model, max_seq, max_input) = (self.model, self.max_seq, self.max_input);
        let Head::QuestionAnswering { qa_outputs } = model.head else {
            return Err(RunError::WrongTask);
        };
        model.encoder.check_token_types(2)?;
        if question.is_empty()
            || context.is_empty()
            || options.top_k == 0
            || options.max_answer_len == 0
        {
            return Err(RunError::BadQuestion);
        }
        let stride = options
            .doc_stride
            .unwrap_or(qa::default_doc_stride(max_seq));
        if stride > max_seq {
            return Err(RunError::BadStride {
                stride,
                max: max_seq,
            });
        }
        let exec = exec_of!(self);
        let SessionMemory {
            tokens,
            f32s,
            i8s,
            entities,
            ..
        } = self.storage.memory();
        let (all, rest) = tokens.split_at_mut(max_input + 4);
        let eq = model
            .tokenizer
            .encode(question, all)
            .map_err(RunError::Tokenizer)?;
        let q = eq.len - 2;
        let too_long = |context_total: usize| RunError::TooLong {
            tokens: q + context_total,
            max: max_input,
        };
        if eq.truncated || q + 2 > max_input {
            return Err(too_long(0));
        }
        let ec = model
            .tokenizer
            .encode(context, &mut all[eq.len..])
            .map_err(RunError::Tokenizer)?;
        let ctx_len = ec.len - 2;
        if ec.truncated || q + ctx_len > max_input {
            return Err(too_long(ec.total - 2));
        }
        // `tokenizers`' only_second truncation: the context gets what the question leaves.
        let total = q + ctx_len + 3;
        let window = if total <= max_seq {
            ctx_len
        } else {
            let remove = total - max_seq;
            if ctx_len <= remove {
                return Err(RunError::QuestionTooLong {
                    tokens: q,
                    max: max_seq.saturating_sub(4),
                });
            }
            let window = ctx_len - remove;
            if stride >= window {
                return Err(RunError::BadStride {
                    stride,
                    max: window - 1,
                });
            }
            window
        };
        let keep = options.candidates();
        let count = qa::windows(ctx_len, window, stride).count();
        if count * keep + 1 > entities.len() {
            return Err(RunError::TooManyWindows {
                windows: count,
                max: entities.len(),
            });
        }
        let win = rest.get_mut(..max_seq).ok_or(RunError::InvalidInput)?;
        let (cls, sep) = (all[0], all[eq.len - 1]);
        let context_tokens = eq.len + 1;
        let c = model.config();
        let h = c.hidden_size as usize;
        let parts = exec.par.parts();
        let (scratch_f32, head_out) = f32s.split_at_mut(Scratch::f32_len(c, max_seq, parts));
        let mut min_null = 1_000_000f32;
        let mut found = 0;
        for (a, b) in qa::windows(ctx_len, window, stride) {
            let first = q + 2;
            let seq = first + (b - a) + 1;
            win[0] = cls;
            win[1..=q].copy_from_slice(&all[1..=q]);
            win[q + 1] = sep;
            win[first..seq - 1].copy_from_slice(&all[context_tokens + a..context_tokens + b]);
            win[seq - 1] = sep;
            let mut scratch = Scratch::carve(c, seq, parts, &mut *scratch_f32, &mut *i8s)
                .ok_or(RunError::InvalidInput)?;
            model.encoder.forward(
                &exec,
                seq,
                |t| (win[t].id, u32::from(t >= first)),
                &mut scratch,
            );
            let (logits, probs) = head_out.split_at_mut(2 * seq);
            heads::token_logits(
                exec.kernels,
                &qa_outputs,
                &scratch.hidden[..seq * h],
                seq,
                logits,
            );
            let span = (first, seq - 1);
            let cands =
                qa::window_candidates(logits, probs, seq, span, options.max_answer_len, keep);
            min_null = min_null.min(cands.null_score);
            for &(score, s, e) in &cands.spans[..cands.len] {
                let mut answer = qa::word_span(&win[..seq], span, s as usize, e as usize);
                answer.score = score;
                found = qa::add_answer(context, entities, found, answer);
            }
        }
        if options.handle_impossible_answer {
            if let Some(slot) = entities.get_mut(found) {
                *slot = Entity {
                    score: min_null,
                    ..Entity::default()
                };
                found += 1;
            }
        }
        qa::sort_answers(&mut entities[..found]);
        let answers = found.min(options.top_k.min(qa::MAX_TOP_K));
        let len = eq.len + ec.len;
        Ok(Output {
            tokens: &all[..len],
            encoded: Encoded {
                len,
                total: len,
                truncated: false,
            },
            task: TaskOutput::Answers(&entities[..answers]),
        })
    }

    /// Runs a text pair (`[CLS] a [SEP] b [SEP]`, token types 0 then 1), e.g. for pair
    /// classification; `longest_first` truncation to the session's length, reported in
    /// `Output::encoded`. Entity offsets of the second text are relative to `b`.
    pub fn run_pair(
        &mut self,
        a: &str,
        b: &str,
        options: &RunOptions<'_>,
    ) -> Result<Output<'_>, RunError> {
        let max_seq = self.max_seq;
        self.model.encoder.check_token_types(2)?;
        let tokenizer = &self.model.tokenizer;
        let exec = exec_of!(self);
        let mem = self.storage.memory();
        let pair = tokenizer
            .encode_pair(a, b, &mut mem.tokens[..max_seq])
            .map_err(RunError::Tokenizer)?;
        let encoded = Encoded {
            len: pair.len,
            total: pair.total,
            truncated: pair.truncated,
        };
        infer(
            self.model,
            &exec,
            max_seq,
            mem,
            encoded,
            pair.first_len,
            a,
            options,
        )
    }

    /// Runs the model and its head on token ids that are already tokenized (e.g. a benchmark's
    /// synthetic input). Offsets are zero; entities then carry no text positions.
    pub fn run_token_ids(&mut self, ids: &[u32]) -> Result<Output<'_>, RunError> {
        let model = self.model;
        if ids.is_empty() || !model.encoder.check_input(ids, None, self.max_seq) {
            return Err(RunError::InvalidInput);
        }
        let mem = self.storage.memory();
        for (t, &id) in mem.tokens.iter_mut().zip(ids) {
            *t = Token {
                id,
                word: 0,
                ..Token::default()
            };
        }
        let encoded = Encoded {
            len: ids.len(),
            total: ids.len(),
            truncated: false,
        };
        let exec = exec_of!(self);
        let len = encoded.len;
        let options = RunOptions::default();
        infer(model, &exec, self.max_seq, mem, encoded, len, "", &options)
    }
}

/// Encoder and head over the first `encoded.len` tokens in `mem`.
/// Tokens from `first_len` on have token type 1 (the second text of a pair).
#[allow(clippy::too_many_arguments)]
fn infer<'s>(
    model: &Model<'_>,
    exec: &Exec<'_>,
    max_seq: usize,
    mem: SessionMemory<'s>,
    encoded: Encoded,
    first_len: usize,
    text: &str,
    options: &RunOptions<'_>,
) -> Result<Output<'s>, RunError> {
    let kernels = exec.kernels;
    let parts = exec.par.parts();
    let c = model.config();
    let h = c.hidden_size as usize;
    let SessionMemory {
        tokens,
        f32s,
        i8s,
        entities,
        indices,
    } = mem;
    let seq = encoded.len;
    let tokens = &tokens[..seq];
    let (scratch_f32, head_out) = f32s.split_at_mut(Scratch::f32_len(c, max_seq, parts));
    let mut scratch =
        Scratch::carve(c, seq, parts, scratch_f32, i8s).ok_or(RunError::InvalidInput)?;
    // Ids come from the vocabulary (checked against the embedding table at load) or were checked
    // by the caller, and `seq <= max_seq <= max_position_embeddings`.
    model.encoder.forward(
        exec,
        seq,
        |t| (tokens[t].id, u32::from(t >= first_len)),
        &mut scratch,
    );
    let hidden = &scratch.hidden[..seq * h];
    let task = match model.head {
        Head::Embedding { pooling, normalize } => {
            heads::pool_embedding(hidden, h, pooling, normalize, head_out);
            TaskOutput::Embedding(&head_out[..h])
        }
        Head::SequenceClassification {
            pooler,
            classifier,
            multi_label,
        } => {
            let function = options
                .function_to_apply
                .unwrap_or(ScoreFunction::default_for(multi_label, classifier.n));
            let scores = heads::classify(kernels, &pooler, &classifier, function, hidden, head_out);
            let ranking = &mut indices[..scores.len()];
            heads::rank(scores, ranking);
            TaskOutput::Classification { scores, ranking }
        }
        Head::PooledClassification {
            pooling,
            normalize,
            classifier,
        } => {
            let function = options
                .function_to_apply
                .unwrap_or(ScoreFunction::default_for(false, classifier.n));
            let scores = heads::classify_pooled(
                kernels,
                pooling,
                normalize,
                &classifier,
                function,
                hidden,
                head_out,
            );
            let ranking = &mut indices[..scores.len()];
            heads::rank(scores, ranking);
            TaskOutput::Classification { scores, ranking }
        }
        Head::TokenClassification { classifier } => {
            let n = classifier.n;
            let (logits, scratch) = head_out.split_at_mut(seq * n);
            heads::token_logits(kernels, &classifier, hidden, seq, logits);
            let input = DecodeInput {
                text,
                tokens,
                tokenizer: &model.tokenizer,
                labels: &model.labels,
            };
            let count = decode_entities(&input, logits, n, options, model, scratch, entities);
            // A truncated text: the recognizers see what the model saw.
            let covered = if encoded.truncated {
                tokens
                    .iter()
                    .map(|t| t.byte_end as usize)
                    .max()
                    .unwrap_or(0)
            } else {
                text.len()
            };
            let count = finish_spans(
                model,
                text,
                covered.min(text.len()),
                options,
                entities,
                count,
            )?;
            TaskOutput::Entities(&entities[..count])
        }
        Head::FillMask(head) => {
            let mask_id = model.tokenizer.settings().mask_id;
            let found = heads::fill_mask::count_masks(tokens, mask_id);
            let max = heads::fill_mask::MAX_MASKS;
            if found == 0 || found > max {
                return Err(RunError::Masks { found, max });
            }
            let p = heads::fill_mask::predict(
                kernels,
                &head,
                c.activation,
                hidden,
                tokens,
                mask_id,
                options.top_k,
                head_out,
                indices,
            );
            let n = p.masks * p.top_k;
            let (ids, positions) = indices.split_at(max * heads::fill_mask::MAX_TOP_K);
            let scores_at = h + head.vocab;
            TaskOutput::FillMask {
                top_k: p.top_k,
                positions: &positions[..p.masks],
                ids: &ids[..n],
                scores: &head_out[scores_at..scores_at + n],
            }
        }
        Head::QuestionAnswering { .. } => return Err(RunError::WrongTask),
    };
    Ok(Output {
        tokens,
        encoded,
        task,
    })
}

/// Token classification of one window into `out`: Hugging Face's aggregations (then
/// `options.threshold`), or token predictions joined into spans for bertq's span modes
/// ([`crate::pii::join_tokens`]). Returns the number of entities written.
fn decode_entities(
    input: &DecodeInput<'_>,
    logits: &mut [f32],
    n: usize,
    options: &RunOptions<'_>,
    model: &Model<'_>,
    scratch: &mut [f32],
    out: &mut [Entity],
) -> usize {
    let agg = options.aggregation;
    let count =
        token_classification::decode(input, logits, n, agg, options.ignore_labels, scratch, out);
    let count = match agg {
        Aggregation::Compat => {
            let threshold = options.threshold.unwrap_or(0.5);
            let rule = crate::pii::JoinRule::Package { threshold };
            return crate::pii::join_tokens(input.text, input.labels, out, count, rule);
        }
        Aggregation::Span | Aggregation::Pii => {
            if let (Aggregation::Pii, Some(p)) = (agg, model.pii.as_ref()) {
                for (from, to) in p.splits() {
                    crate::pii::split_continuations(input.text, input.labels, from, to, out, count);
                }
            }
            crate::pii::join_tokens(
                input.text,
                input.labels,
                out,
                count,
                crate::pii::JoinRule::Span,
            )
        }
        _ => count,
    };
    let threshold = match (agg, options.threshold, model.pii) {
        (_, Some(t), _) => t,
        (Aggregation::Pii, None, Some(p)) => p.threshold(),
        _ => return count,
    };
    crate::pii::keep_above(out, count, threshold)
}

/// The `pii` and `compat` aggregations after the model's spans are known: recognizers over
/// `text[..covered]` and the merge ([`crate::pii::recognize_and_merge`]).
fn finish_spans(
    model: &Model<'_>,
    text: &str,
    covered: usize,
    options: &RunOptions<'_>,
    entities: &mut [Entity],
    count: usize,
) -> Result<usize, RunError> {
    let pipeline = match options.aggregation {
        Aggregation::Pii => crate::pii::Pipeline::Pii,
        Aggregation::Compat => crate::pii::Pipeline::Compat,
        _ => return Ok(count),
    };
    let profile = model.pii.as_ref().ok_or(RunError::NoPiiProfile)?;
    let text = text.get(..covered).unwrap_or(text);
    let count =
        crate::pii::recognize_and_merge(text, &model.labels, profile, pipeline, entities, count)
            .map_err(|o| RunError::TooManySpans { max: o.max })?;
    Ok(match pipeline {
        crate::pii::Pipeline::Pii => crate::pii::keep_near(&model.labels, profile, entities, count),
        crate::pii::Pipeline::Compat => count,
    })
}

#[cfg(test)]
mod memory_tests {
    use super::*;

    #[test]
    fn session_memory_is_carved_from_any_block_that_is_large_enough() {
        let sizes = MemorySizes {
            tokens: 7,
            f32s: 13,
            i8s: 5,
            entities: 3,
            indices: 2,
        };
        let need = sizes.bytes_in_block().unwrap();
        assert!(need >= sizes.bytes());
        let mut words = [0u64; 64];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        // Every start offset modulo 8: the buffers are aligned inside the block.
        for offset in 0..8 {
            let block = &mut bytes[offset..offset + need];
            let m = SessionMemory::from_bytes(block, &sizes).expect("fits");
            assert!(m.fits(&sizes));
            assert_eq!(m.f32s.as_ptr() as usize % 4, 0);
            assert_eq!(m.entities.as_ptr() as usize % 4, 0);
        }
        // An aligned block one byte short of the unpadded total cannot hold it.
        assert!(SessionMemory::from_bytes(&mut bytes[..sizes.bytes() - 1], &sizes).is_none());
        let huge = MemorySizes {
            f32s: usize::MAX / 2,
            ..sizes
        };
        assert_eq!(huge.bytes_in_block(), None);
        assert!(SessionMemory::from_bytes(bytes, &huge).is_none());
    }
}
