//! Writing replies into fixed buffers, as binary frames or JSON lines, without allocating.

use crate::metrics::Metrics;
pub use crate::request::ReplyTo;
use bertq_protocol::{
    encode_frame, Aggregation, Answer, DeviceInfo, Entity, EntityOptions, ErrorCode, ErrorCount,
    ErrorReply, HealthReply, InferOptions, InferReply, InfoReply, LabelScore, MaskCandidate,
    MetricsReply, Response, ResponseBody, Seq, Task, TaskResult, Text, HISTOGRAM_BUCKETS, VERSION,
};
use bertq_runtime::format::TaskHead;
use bertq_runtime::heads::{fill_mask, json};
use bertq_runtime::{Model, Output, TaskOutput};
use core::fmt::{self, Write};

/// A reply being written into a fixed buffer.
#[derive(Debug)]
pub struct Out<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> Out<'b> {
    pub fn new(buf: &'b mut [u8]) -> Self {
        Out { buf, len: 0 }
    }
    pub fn clear(&mut self) {
        self.len = 0;
    }
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }
    /// Replaces the contents with a frame holding `msg`.
    pub fn frame<T: serde::Serialize>(&mut self, msg: &T) -> Result<(), Failure> {
        self.len = 0;
        self.len = encode_frame(msg, self.buf).map_err(|_| Failure::too_large())?;
        Ok(())
    }
    /// Replaces the contents with what `f` writes, or fails if it does not fit.
    fn text(&mut self, f: impl FnOnce(&mut Self) -> fmt::Result) -> Result<(), Failure> {
        self.len = 0;
        f(self).map_err(|_| Failure::too_large())
    }
    pub fn extend(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        let end = self.len + bytes.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or_else(Failure::too_large)?
            .copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

impl Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// The longest error message kept.
pub const MESSAGE_LEN: usize = 200;

/// A request that failed: its code and a message for people.
#[derive(Debug, Clone)]
pub struct Failure {
    pub code: ErrorCode,
    pub message: heapless::String<MESSAGE_LEN>,
}

impl Failure {
    pub fn new(code: ErrorCode, message: fmt::Arguments<'_>) -> Self {
        let mut m = heapless::String::new();
        // A message longer than the buffer is cut: the code still says what happened.
        let _ = m.write_fmt(message);
        Failure { code, message: m }
    }
    pub fn plain(code: ErrorCode, message: &str) -> Self {
        Failure::new(code, format_args!("{message}"))
    }
    fn too_large() -> Self {
        Failure::plain(
            ErrorCode::Internal,
            "the reply is larger than the server's reply buffer",
        )
    }
}

/// The largest reply any request can produce for this model, text length and sequence length
/// (`max_seq`: the most tokens a request may have, windowed inputs included): JSON escapes at
/// most 6 bytes per text byte, entities are disjoint spans of the text. Question answers are
/// assumed to fit the same room (a reply that does not is a `FrameTooLarge` error).
pub fn reply_capacity(model: &Model<'_>, max_seq: usize, max_text: usize) -> usize {
    let labels = model.labels.len();
    let label_len = model.labels.iter().map(str::len).max().unwrap_or(0);
    let hidden = model.config().hidden_size as usize;
    let entities = 6 * max_text + max_seq * (6 * label_len + 120);
    let classes = labels * (6 * label_len + 48);
    let embedding = hidden * 18;
    let info = labels * (6 * label_len + 4) + 1024;
    let metrics = 64 * 24 + HISTOGRAM_BUCKETS * 12 + 1024;
    4096 + entities.max(classes).max(embedding).max(info).max(metrics)
}

/// The runtime's aggregation for a request's (`default`: the model's own).
pub fn aggregation_for(model: &Model<'_>, a: Aggregation) -> bertq_runtime::Aggregation {
    use bertq_runtime::Aggregation as R;
    match a {
        Aggregation::Simple => R::Simple,
        Aggregation::None => R::None,
        Aggregation::First => R::First,
        Aggregation::Average => R::Average,
        Aggregation::Max => R::Max,
        Aggregation::Span => R::Span,
        Aggregation::Pii => R::Pii,
        Aggregation::Compat => R::Compat,
        Aggregation::ModelDefault => model.default_aggregation(),
    }
}

/// The reply to an inference, from the session's output. Refuses truncated texts when the
/// request asked to reject them. `entities.redact`: token classification answers with the
/// redacted text.
#[allow(clippy::too_many_arguments)]
pub fn write_infer(
    model: &Model<'_>,
    max_seq: usize,
    text: &str,
    output: &Output<'_>,
    to: ReplyTo,
    options: &InferOptions,
    entities: &EntityOptions,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let enc = output.encoded;
    if enc.truncated && !options.truncate {
        return Err(Failure::new(
            ErrorCode::TextTooLong,
            format_args!(
                "the text is {} tokens, more than the {max_seq} this server accepts \
                 (send truncate: true to cut it)",
                enc.total
            ),
        ));
    }
    // With aggregation `none` entities are tokens, named by their full tag.
    let tokens = options.aggregation == Aggregation::None;
    let aggregation = aggregation_for(model, options.aggregation);
    let name = |e: &bertq_runtime::heads::Entity| model.entity_type(e, aggregation);
    let redact = entities.redact && matches!(output.task, TaskOutput::Entities(_));
    let redacted = |_: usize, f: &mut fmt::Formatter<'_>| {
        let TaskOutput::Entities(es) = &output.task else {
            return Ok(());
        };
        bertq_runtime::pii::write_redacted(f, text, es, &name)
    };
    let top = |ranking: &[u32]| match options.top_k {
        0 => ranking.len(),
        k => (k as usize).min(ranking.len()),
    };
    match to {
        ReplyTo::Binary(id) => {
            let reply = |result| Response {
                id,
                body: ResponseBody::Infer(InferReply {
                    tokens: enc.len as u32,
                    total_tokens: enc.total as u32,
                    truncated: enc.truncated,
                    result,
                }),
            };
            match &output.task {
                TaskOutput::Entities(_) if redact => {
                    out.frame(&reply(TaskResult::Redacted(Text::Written {
                        write: &redacted,
                        index: 0,
                    })))
                }
                TaskOutput::Entities(es) => {
                    let get = |i: usize| {
                        let e = &es[i];
                        Entity {
                            entity_group: name(e),
                            score: e.score,
                            word: text
                                .get(e.byte_start as usize..e.byte_end as usize)
                                .unwrap_or(""),
                            start: e.start,
                            end: e.end,
                            index: if tokens { e.index } else { 0 },
                        }
                    };
                    out.frame(&reply(TaskResult::Entities(Seq::Map {
                        len: es.len(),
                        get: &get,
                    })))
                }
                TaskOutput::Classification { scores, ranking } => {
                    let get = |i: usize| {
                        let id = ranking[i] as usize;
                        LabelScore {
                            label: model.labels.get(id).unwrap_or(""),
                            score: scores.get(id).copied().unwrap_or(f32::NAN),
                        }
                    };
                    out.frame(&reply(TaskResult::Labels(Seq::Map {
                        len: top(ranking),
                        get: &get,
                    })))
                }
                TaskOutput::Embedding(v) => out.frame(&reply(TaskResult::Embedding(Seq::Slice(v)))),
                // Refused above.
                TaskOutput::Answers(answers) => {
                    let get = |i: usize| {
                        let a = &answers[i];
                        Answer {
                            score: a.score,
                            start: a.start,
                            end: a.end,
                            answer: text
                                .get(a.byte_start as usize..a.byte_end as usize)
                                .unwrap_or(""),
                        }
                    };
                    out.frame(&reply(TaskResult::Answers(Seq::Map {
                        len: answers.len(),
                        get: &get,
                    })))
                }
                TaskOutput::FillMask {
                    top_k,
                    positions,
                    ids,
                    scores,
                } => {
                    let (vocab, settings) = (model.tokenizer.vocab(), model.tokenizer.settings());
                    let (top_k, single) = ((*top_k).max(1), positions.len() == 1);
                    // The strings are written while the frame is encoded: no buffer.
                    let token_str = |i: usize, f: &mut fmt::Formatter<'_>| {
                        let id = ids.get(i).copied().unwrap_or(0);
                        fill_mask::write_decoded(f, vocab, core::iter::once(id), false)
                    };
                    let sequence = |i: usize, f: &mut fmt::Formatter<'_>| {
                        let id = ids.get(i).copied().unwrap_or(0);
                        let at = positions.get(i / top_k).copied().unwrap_or(0) as usize;
                        let seq = fill_mask::sequence_ids(output.tokens, settings, at, id, single);
                        fill_mask::write_decoded(f, vocab, seq, false)
                    };
                    let get = |i: usize| MaskCandidate {
                        mask: (i / top_k) as u16,
                        score: scores.get(i).copied().unwrap_or(f32::NAN),
                        token: ids.get(i).copied().unwrap_or(0),
                        token_str: Text::Written {
                            write: &token_str,
                            index: i,
                        },
                        sequence: Text::Written {
                            write: &sequence,
                            index: i,
                        },
                    };
                    out.frame(&reply(TaskResult::FillMask(Seq::Map {
                        len: ids.len(),
                        get: &get,
                    })))
                }
            }
        }
        ReplyTo::Json(id) => out.text(|w| {
            write!(w, "{{\"id\":{},\"result\":", id.as_str())?;
            match &output.task {
                TaskOutput::Entities(es) if redact => {
                    w.write_char('"')?;
                    let mut escaped = JsonEscape(w);
                    bertq_runtime::pii::write_redacted(&mut escaped, text, es, &name)?;
                    w.write_char('"')?;
                }
                task => {
                    // The result exactly as `bertq run` prints it (the same writer); `top_k` 0
                    // is all.
                    let top_k = match task {
                        TaskOutput::Classification { ranking, .. } => top(ranking),
                        _ => 0,
                    };
                    json::write_output(w, model, text, output, top_k, aggregation)?;
                }
            }
            writeln!(
                w,
                ",\"tokens\":{},\"truncated\":{}}}",
                enc.len, enc.truncated
            )
        }),
    }
}

/// Escapes what is written through it as the inside of a JSON string.
struct JsonEscape<'w, W: Write>(&'w mut W);

impl<W: Write> Write for JsonEscape<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        json::write_str_content(self.0, s)
    }
}

/// An error reply.
pub fn write_error(to: ReplyTo, code: ErrorCode, message: &str, out: &mut Out<'_>) {
    let written = match to {
        ReplyTo::Binary(id) => out.frame(&Response {
            id,
            body: ResponseBody::Error(ErrorReply { code, message }),
        }),
        ReplyTo::Json(id) => out.text(|w| {
            write!(w, "{{\"id\":{},\"error\":", id.as_str())?;
            json::write_str(w, message)?;
            w.write_str(",\"error_type\":")?;
            json::write_str(w, code.name())?;
            w.write_str("}\n")
        }),
    };
    if written.is_err() {
        // Only a buffer smaller than any sane configuration gets here: send nothing rather
        // than half a reply.
        out.clear();
    }
}

/// What `info` reports besides the model.
#[derive(Debug, Clone, Copy)]
pub struct ServerInfo<'a> {
    pub max_seq: usize,
    pub kernels: &'a str,
    pub workers: u16,
    pub queue_capacity: u32,
    pub max_frame: usize,
    /// Bare-metal firmware only: board, memory, model source and error.
    pub device: Option<DeviceInfo<'a>>,
}

fn task_of(model: &Model<'_>) -> Task {
    match model.task() {
        TaskHead::TokenClassification => Task::TokenClassification,
        TaskHead::SequenceClassification { multi_label } => {
            Task::SequenceClassification { multi_label }
        }
        TaskHead::PooledClassification { .. } => {
            Task::SequenceClassification { multi_label: false }
        }
        TaskHead::Embedding { .. } => Task::Embedding {
            dimension: model.config().hidden_size,
        },
        TaskHead::QuestionAnswering => Task::QuestionAnswering,
        TaskHead::FillMask => Task::FillMask,
    }
}

/// The Hugging Face pipeline name of the model's task.
pub fn pipeline_name(task: Task) -> &'static str {
    match task {
        Task::TokenClassification => "token-classification",
        Task::SequenceClassification { .. } => "text-classification",
        Task::Embedding { .. } => "feature-extraction",
        Task::QuestionAnswering => "question-answering",
        Task::FillMask => "fill-mask",
        Task::Unavailable => "unavailable",
    }
}

pub fn write_info(
    model: Option<&Model<'_>>,
    info: &ServerInfo<'_>,
    to: ReplyTo,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let task = model.map_or(Task::Unavailable, task_of);
    let name = model.map_or("", |m| m.name());
    let labels = model.map(|m| &m.labels);
    let label_count = labels.map_or(0, |l| l.len());
    let version = env!("CARGO_PKG_VERSION");
    match to {
        ReplyTo::Binary(id) => {
            let get = |i: usize| labels.and_then(|l| l.get(i)).unwrap_or("");
            out.frame(&Response {
                id,
                body: ResponseBody::Info(InfoReply {
                    model: name,
                    task,
                    labels: Seq::Map {
                        len: label_count,
                        get: &get,
                    },
                    max_sequence_length: info.max_seq as u32,
                    kernels: info.kernels,
                    version,
                    protocol_version: VERSION,
                    workers: info.workers,
                    queue_capacity: info.queue_capacity,
                    max_frame: info.max_frame as u32,
                    device: info.device,
                }),
            })
        }
        ReplyTo::Json(id) => out.text(|w| {
            write!(w, "{{\"id\":{},\"result\":{{\"model\":", id.as_str())?;
            json::write_str(w, name)?;
            write!(w, ",\"task\":\"{}\"", pipeline_name(task))?;
            if let Task::SequenceClassification { multi_label } = task {
                write!(w, ",\"multi_label\":{multi_label}")?;
            }
            if let Task::Embedding { dimension } = task {
                write!(w, ",\"dimension\":{dimension}")?;
            }
            w.write_str(",\"labels\":[")?;
            for (i, l) in labels.into_iter().flat_map(|l| l.iter()).enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                json::write_str(w, l)?;
            }
            write!(w, "],\"max_sequence_length\":{},\"kernels\":", info.max_seq)?;
            json::write_str(w, info.kernels)?;
            write!(
                w,
                ",\"version\":\"{version}\",\"protocol_version\":{VERSION},\"workers\":{},\
                 \"queue_capacity\":{},\"max_frame\":{}",
                info.workers, info.queue_capacity, info.max_frame
            )?;
            if let Some(d) = &info.device {
                write_device_json(w, d)?;
            }
            w.write_str("}}\n")
        }),
    }
}

/// `,"device":{...}` of a JSON `info` reply.
fn write_device_json(w: &mut Out<'_>, d: &DeviceInfo<'_>) -> fmt::Result {
    w.write_str(",\"device\":{\"board\":")?;
    json::write_str(w, d.board)?;
    write!(
        w,
        ",\"ram_bytes\":{},\"arena_bytes\":{},\"arena_used\":{},\"arena_max_seq\":{},\
         \"cores\":{},\"model_source\":",
        d.ram_bytes, d.arena_bytes, d.arena_used, d.arena_max_seq, d.cores
    )?;
    json::write_str(w, d.model_source)?;
    w.write_str(",\"model_error\":")?;
    match d.model_error {
        Some(e) => json::write_str(w, e)?,
        None => w.write_str("null")?,
    }
    w.write_char('}')
}

pub fn write_health(h: &HealthReply, to: ReplyTo, out: &mut Out<'_>) -> Result<(), Failure> {
    match to {
        ReplyTo::Binary(id) => out.frame(&Response {
            id,
            body: ResponseBody::Health(*h),
        }),
        ReplyTo::Json(id) => out.text(|w| {
            writeln!(
                w,
                "{{\"id\":{},\"result\":{{\"ok\":{},\"uptime_ms\":{},\"queue_depth\":{},\"in_flight\":{}}}}}",
                id.as_str(),
                h.ok,
                h.uptime_ms,
                h.queue_depth,
                h.in_flight
            )
        }),
    }
}

/// Live values that metrics report beside the counters.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub uptime_ms: u64,
    pub queue_depth: u32,
    pub queue_capacity: u32,
    pub in_flight: u32,
}

pub fn write_metrics(
    m: &Metrics,
    g: &Gauges,
    to: ReplyTo,
    out: &mut Out<'_>,
) -> Result<(), Failure> {
    let (p50, p90, p99) = (
        m.latency_quantile_us(0.5),
        m.latency_quantile_us(0.9),
        m.latency_quantile_us(0.99),
    );
    // Codes with a count, in code order.
    let mut codes = [ErrorCount {
        code: ErrorCode::Internal,
        count: 0,
    }; ErrorCode::ALL.len()];
    let mut n = 0;
    for code in ErrorCode::ALL {
        let count = m.errors(code);
        if count > 0 {
            codes[n] = ErrorCount { code, count };
            n += 1;
        }
    }
    let codes = &codes[..n];
    match to {
        ReplyTo::Binary(id) => {
            let bucket = |i: usize| m.bucket(i);
            out.frame(&Response {
                id,
                body: ResponseBody::Metrics(MetricsReply {
                    uptime_ms: g.uptime_ms,
                    requests: m.requests(),
                    inferences: m.inferences(),
                    errors: Seq::Slice(codes),
                    latency_p50_us: p50,
                    latency_p90_us: p90,
                    latency_p99_us: p99,
                    latency_buckets: Seq::Map {
                        len: HISTOGRAM_BUCKETS,
                        get: &bucket,
                    },
                    queue_depth: g.queue_depth,
                    queue_capacity: g.queue_capacity,
                    max_queue_depth: m.max_queue_depth(),
                    in_flight: g.in_flight,
                    connections: m.connections(),
                    connections_rejected: m.connections_rejected(),
                }),
            })
        }
        ReplyTo::Json(id) => out.text(|w| {
            write!(
                w,
                "{{\"id\":{},\"result\":{{\"uptime_ms\":{},\"requests\":{},\"inferences\":{},\"errors\":{{",
                id.as_str(),
                g.uptime_ms,
                m.requests(),
                m.inferences()
            )?;
            for (i, c) in codes.iter().enumerate() {
                if i > 0 {
                    w.write_char(',')?;
                }
                write!(w, "\"{}\":{}", c.code.name(), c.count)?;
            }
            writeln!(
                w,
                "}},\"latency_us\":{{\"p50\":{p50},\"p90\":{p90},\"p99\":{p99}}},\
                 \"queue_depth\":{},\"queue_capacity\":{},\"max_queue_depth\":{},\"in_flight\":{},\
                 \"connections\":{},\"connections_rejected\":{}}}}}",
                g.queue_depth,
                g.queue_capacity,
                m.max_queue_depth(),
                g.in_flight,
                m.connections(),
                m.connections_rejected()
            )
        }),
    }
}
