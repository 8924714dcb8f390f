//! `bertq client`: the host side. Queries a server over a Unix socket, TCP or a serial line
//! with the binary protocol, and prints JSON: inference results exactly as `bertq run` prints
//! them (one line per text), `info`, `health` and `metrics` as JSON objects.
//!
//! Replies are matched by id; stale replies (to requests that timed out) are skipped. On a
//! serial line a request that times out or is answered with an unattributable error (id 0: the
//! frame was damaged on the way) is sent again, up to `--retries` times.

use crate::serve::io::FdIo;
use bertq_protocol::{
    decode_frame, decode_response, encode_frame, max_encoded_len, Accumulator, Aggregation,
    AnswerOptions, AnswerRequest, EntityOptions, EntityRequest, ErrorCode, InferOptions,
    InferRequest, Item, Request, RequestBody, Response, ResponseBody, StrideRequest, TaskResult,
};
use bertq_runtime::heads::json;
use embedded_io::{Error as _, ErrorKind, Read, Write};
use std::fs::File;
use std::io::{BufRead, IsTerminal};
use std::net::TcpStream;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of `bertq client`.
#[derive(clap::Args, Debug, Clone)]
pub struct ClientArgs {
    /// The server's Unix socket.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["tcp", "serial"])]
    pub unix: Option<PathBuf>,
    /// The server's TCP address: PORT (loopback), localhost:PORT or ADDR:PORT.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "serial")]
    pub tcp: Option<String>,
    /// A serial line to the device, e.g. /dev/ttyUSB0.
    #[arg(long, value_name = "DEV")]
    pub serial: Option<PathBuf>,
    /// Baud rate of the serial line.
    #[arg(long, default_value_t = 115200)]
    pub baud: u32,
    /// Print the server's model and settings.
    #[arg(long, conflicts_with_all = ["health", "metrics", "shutdown"])]
    pub info: bool,
    /// Print whether the server is up.
    #[arg(long, conflicts_with_all = ["metrics", "shutdown"])]
    pub health: bool,
    /// Print the server's counters and latency percentiles.
    #[arg(long, conflicts_with = "shutdown")]
    pub metrics: bool,
    /// Stop a bare-metal device (it answers, then halts; under QEMU it exits with status 0).
    /// `bertq serve` refuses: stop it with SIGTERM.
    #[arg(long)]
    pub shutdown: bool,
    /// Labels to return for classification models (0: all).
    #[arg(long, default_value_t = 1)]
    pub top_k: u16,
    /// Entity grouping for token classification: Hugging Face's none, simple, first, average
    /// or max, bertq's span, pii or compat, or default (the model's: pii with a PII profile,
    /// else simple).
    #[arg(long, default_value = "default")]
    pub aggregation: String,
    /// Token classification: the lowest entity score kept (default: the aggregation's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Token classification: print the text with every entity replaced by `[TYPE]`.
    #[arg(long, conflicts_with = "question")]
    pub redact: bool,
    /// Ask the server to reject texts longer than its maximum length instead of truncating.
    #[arg(long)]
    pub reject_long: bool,
    /// Seconds to wait for each reply.
    #[arg(long, default_value_t = 30.0)]
    pub timeout: f64,
    /// Times a request is sent again after a timeout or a damaged frame (default: 2 on a serial
    /// line, 0 on sockets).
    #[arg(long)]
    pub retries: Option<u32>,
    /// Print the whole reply (`{"id","result","tokens","truncated"}`) instead of the result.
    #[arg(long)]
    pub full: bool,
    /// Token classification: run the whole text in windows sharing this many tokens.
    #[arg(long, conflicts_with = "question")]
    pub stride: Option<u16>,
    /// Question answering: the question; the texts are its contexts.
    #[arg(long)]
    pub question: Option<String>,
    /// Question answering: context tokens shared by consecutive windows.
    #[arg(long, requires = "question")]
    pub doc_stride: Option<u16>,
    /// Question answering: the longest answer in tokens.
    #[arg(long, default_value_t = 15)]
    pub max_answer_len: u16,
    /// Question answering: also consider the empty answer.
    #[arg(long)]
    pub handle_impossible_answer: bool,
    /// The server's shared secret (`bertq serve --token-file`), sent first.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Texts to process; with none, lines are read from stdin (interactively on a terminal).
    pub texts: Vec<String>,
}

/// A connection to a server.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    Serial(File),
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            Stream::Tcp(s) => s.as_fd(),
            Stream::Serial(s) => s.as_fd(),
        }
    }
}

impl std::io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            Stream::Serial(s) => s.read(buf),
        }
    }
}

impl std::io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Serial(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    Io(String),
    /// The server closed the connection.
    Closed,
    /// No reply within the timeout (after the retries).
    Timeout,
    /// The reply could not be decoded, or was not of the kind asked for.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Closed => write!(f, "the server closed the connection"),
            ClientError::Timeout => write!(f, "no reply in time"),
            ClientError::Protocol(e) => write!(f, "bad reply: {e}"),
        }
    }
}

/// An error reply from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub id: u32,
    pub code: ErrorCode,
    pub message: String,
}

impl RemoteError {
    /// `{"id", "error", "error_type"}` as the JSON Lines protocol writes it.
    pub fn json(&self) -> String {
        serde_json::json!({"id": self.id, "error": self.message, "error_type": self.code.name()})
            .to_string()
    }
}

/// The result of an inference, printed as `bertq run` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inference {
    pub id: u32,
    /// The result value: entities, labels or the embedding, as JSON.
    pub json: String,
    /// The redacted text, when the request asked for it.
    pub redacted: Option<String>,
    pub tokens: u32,
    pub total_tokens: u32,
    pub truncated: bool,
}

/// A client over any stream with the binary protocol.
#[derive(Debug)]
pub struct Client {
    io: FdIo<Stream>,
    acc: Accumulator<Vec<u8>>,
    frame: Vec<u8>,
    reply: Vec<u8>,
    next_id: u32,
    timeout: Duration,
    retries: u32,
    /// Replies skipped: damaged frames, stale ids, JSON lines.
    pub skipped: u64,
    /// Bytes on the wire of the last request and its reply (delimiters included).
    pub last_request_bytes: usize,
    pub last_reply_bytes: usize,
}

const TICK: Duration = Duration::from_millis(20);

impl Client {
    pub fn new(stream: Stream, timeout: Duration, retries: u32) -> Result<Client, ClientError> {
        let io_err = |e: std::io::Error| ClientError::Io(e.to_string());
        match &stream {
            Stream::Unix(s) => s.set_nonblocking(true).map_err(io_err)?,
            Stream::Tcp(s) => {
                s.set_nonblocking(true).map_err(io_err)?;
                s.set_nodelay(true).map_err(io_err)?;
            }
            Stream::Serial(_) => {}
        }
        Ok(Client {
            io: FdIo::new(stream, TICK, timeout.max(Duration::from_secs(1))),
            acc: Accumulator::new(vec![0u8; 4 << 20]),
            frame: Vec::new(),
            reply: Vec::new(),
            next_id: 1,
            timeout,
            retries,
            skipped: 0,
            last_request_bytes: 0,
            last_reply_bytes: 0,
        })
    }

    pub fn connect_unix(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let s = UnixStream::connect(path)
            .map_err(|e| ClientError::Io(format!("{}: {e}", path.display())))?;
        Client::new(Stream::Unix(s), timeout, 0)
    }

    pub fn connect_tcp(addr: &str, timeout: Duration) -> Result<Client, ClientError> {
        let a = crate::serve::tcp::parse_addr(addr).map_err(ClientError::Io)?;
        let s = TcpStream::connect_timeout(&a, timeout)
            .map_err(|e| ClientError::Io(format!("{a}: {e}")))?;
        Client::new(Stream::Tcp(s), timeout, 0)
    }

    pub fn open_serial(path: &Path, baud: u32, timeout: Duration) -> Result<Client, ClientError> {
        let f = crate::serve::serial::open(path, baud).map_err(ClientError::Io)?;
        Client::new(Stream::Serial(f), timeout, 2)
    }

    pub fn set_retries(&mut self, retries: u32) {
        self.retries = retries;
    }

    pub fn stream(&self) -> &Stream {
        self.io.get_ref()
    }

    /// Sends `body` and hands its reply to `f`. An error reply is a reply (`ResponseBody::Error`);
    /// `Err` means there was none.
    pub fn call<R>(
        &mut self,
        body: RequestBody<'_>,
        f: impl FnOnce(Response<'_>) -> R,
    ) -> Result<R, ClientError> {
        let id = self.next_id;
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        let text_len = match &body {
            RequestBody::Infer(r) => r.text.len(),
            RequestBody::InferStride(r) => r.text.len(),
            RequestBody::InferEntities(r) => r.text.len() + 16,
            RequestBody::Answer(r) => r.question.len() + r.context.len() + 16,
            RequestBody::Auth(t) => t.len(),
            _ => 0,
        };
        self.frame.resize(max_encoded_len(text_len + 64), 0);
        let n = encode_frame(&Request { id, body }, &mut self.frame)
            .map_err(|e| ClientError::Protocol(format!("encoding the request: {e}")))?;
        self.last_request_bytes = n;
        let mut attempt = 0;
        loop {
            self.io
                .write_all(&self.frame[..n])
                .map_err(|e| ClientError::Io(format!("sending: {:?}", e.kind())))?;
            match self.wait_for(id)? {
                Waited::Reply => break,
                Waited::Retry(_) if attempt < self.retries => attempt += 1,
                Waited::Retry(Some((code, message))) => {
                    return Ok(f(Response {
                        id: 0,
                        body: ResponseBody::Error(bertq_protocol::ErrorReply {
                            code,
                            message: &message,
                        }),
                    }))
                }
                Waited::Retry(None) => return Err(ClientError::Timeout),
            }
        }
        let msg =
            decode_frame(&mut self.reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
        let resp = decode_response(msg).map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(f(resp))
    }

    /// Reads until the reply to `id` is complete (copied to `self.reply`), an unattributable
    /// error arrives, or the timeout passes.
    fn wait_for(&mut self, id: u32) -> Result<Waited, ClientError> {
        let deadline = Instant::now() + self.timeout;
        let mut chunk = [0u8; 4096];
        loop {
            if Instant::now() >= deadline {
                return Ok(Waited::Retry(None));
            }
            let n = match self.io.read(&mut chunk) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                Err(e) => return Err(ClientError::Io(format!("receiving: {:?}", e.kind()))),
            };
            let mut rest = &chunk[..n];
            while !rest.is_empty() {
                let (item, r) = self.acc.feed(rest);
                rest = r;
                let Some(Item::Frame(frame)) = item else {
                    if item.is_some() {
                        self.skipped += 1;
                    }
                    continue;
                };
                self.reply.clear();
                self.reply.extend_from_slice(frame);
                let mut scratch = self.reply.clone();
                let verdict = match decode_frame(&mut scratch).map(decode_response) {
                    Ok(Ok(r)) if r.id == id => None,
                    Ok(Ok(Response {
                        id: 0,
                        body: ResponseBody::Error(e),
                    })) => Some(Some((e.code, e.message.to_string()))),
                    _ => Some(None),
                };
                match verdict {
                    None => {
                        self.last_reply_bytes = self.reply.len() + 2;
                        // Anything after our reply belongs to no pending request.
                        self.acc.reset();
                        return Ok(Waited::Reply);
                    }
                    Some(Some(anonymous)) => return Ok(Waited::Retry(Some(anonymous))),
                    Some(None) => self.skipped += 1,
                }
            }
        }
    }

    /// Runs an inference; `Ok(Err(..))` is an error reply from the server.
    pub fn infer(
        &mut self,
        text: &str,
        options: InferOptions,
    ) -> Result<Result<Inference, RemoteError>, ClientError> {
        let body = RequestBody::Infer(InferRequest { text, options });
        self.run(body, options.aggregation == Aggregation::None)
    }

    /// Token classification of a long text in windows sharing `stride` tokens.
    pub fn infer_stride(
        &mut self,
        text: &str,
        options: InferOptions,
        stride: u16,
    ) -> Result<Result<Inference, RemoteError>, ClientError> {
        let body = RequestBody::InferStride(StrideRequest {
            text,
            options,
            stride,
        });
        self.run(body, options.aggregation == Aggregation::None)
    }

    /// Token classification with entity options (minimum score, redaction) and an optional
    /// stride.
    pub fn infer_entities(
        &mut self,
        text: &str,
        options: InferOptions,
        stride: Option<u16>,
        entities: EntityOptions,
    ) -> Result<Result<Inference, RemoteError>, ClientError> {
        let body = RequestBody::InferEntities(EntityRequest {
            text,
            options,
            stride,
            entities,
        });
        self.run(body, options.aggregation == Aggregation::None)
    }

    /// Question answering about `context`.
    pub fn answer(
        &mut self,
        question: &str,
        context: &str,
        options: AnswerOptions,
    ) -> Result<Result<Inference, RemoteError>, ClientError> {
        let body = RequestBody::Answer(AnswerRequest {
            question,
            context,
            options,
        });
        self.run(body, false)
    }

    /// An inference request; `tokens`: entities are tokens (aggregation `none`).
    fn run(
        &mut self,
        body: RequestBody<'_>,
        tokens: bool,
    ) -> Result<Result<Inference, RemoteError>, ClientError> {
        self.call(body, |r| match r.body {
            ResponseBody::Infer(i) => {
                let mut s = String::new();
                let _ = write_result(&mut s, &i.result, tokens);
                let redacted = match &i.result {
                    TaskResult::Redacted(t) => Some(t.to_string()),
                    _ => None,
                };
                Ok(Ok(Inference {
                    id: r.id,
                    json: s,
                    redacted,
                    tokens: i.tokens,
                    total_tokens: i.total_tokens,
                    truncated: i.truncated,
                }))
            }
            ResponseBody::Error(e) => Ok(Err(RemoteError {
                id: r.id,
                code: e.code,
                message: e.message.to_string(),
            })),
            other => Err(ClientError::Protocol(format!(
                "expected an inference, got {other:?}"
            ))),
        })?
    }

    /// `info`, `health` or `metrics` as a JSON value (an error reply as `{"error", ...}`).
    pub fn query(&mut self, body: RequestBody<'_>) -> Result<serde_json::Value, ClientError> {
        self.call(body, |r| reply_json(&r))
    }

    /// Presents a server's token (`bertq serve --token-file`): first, before any request.
    pub fn authenticate(&mut self, token: &str) -> Result<(), ClientError> {
        let v = self.query(RequestBody::Auth(token))?;
        match v.get("error") {
            Some(e) => Err(ClientError::Protocol(format!("authentication failed: {e}"))),
            None => Ok(()),
        }
    }
}

enum Waited {
    Reply,
    /// Retry (or give up): an unattributable error, or a timeout (`None`).
    Retry(Option<(ErrorCode, String)>),
}

/// The result value as `bertq run` prints it (`tokens`: entities are tokens, aggregation
/// `none`).
fn write_result(s: &mut String, r: &TaskResult<'_>, tokens: bool) -> std::fmt::Result {
    match r {
        TaskResult::Entities(es) => {
            s.push('[');
            for (i, e) in es.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                if tokens {
                    let (g, sc, idx) = (e.entity_group, e.score, e.index);
                    json::write_token_entity(s, g, sc, idx, e.word, e.start, e.end)?;
                } else {
                    json::write_entity(s, e.entity_group, e.score, e.word, e.start, e.end)?;
                }
            }
            s.push(']');
        }
        TaskResult::Labels(ls) => {
            s.push('[');
            for (i, l) in ls.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                json::write_label_score(s, l.label, l.score)?;
            }
            s.push(']');
        }
        TaskResult::Embedding(v) => {
            let v: Vec<f32> = v.iter().collect();
            json::write_f32_array(s, &v)?;
        }
        // The fill-mask pipeline's shape: one mask a list, several a list of lists.
        TaskResult::FillMask(candidates) => {
            let masks = candidates.iter().map(|c| c.mask).max().map_or(0, |m| m + 1);
            if masks != 1 {
                s.push('[');
            }
            for m in 0..masks {
                if m > 0 {
                    s.push(',');
                }
                s.push('[');
                for (r, c) in candidates.iter().filter(|c| c.mask == m).enumerate() {
                    if r > 0 {
                        s.push(',');
                    }
                    s.push_str("{\"score\":");
                    json::write_f32(s, c.score)?;
                    s.push_str(&format!(",\"token\":{},\"token_str\":", c.token));
                    json::write_str(s, &c.token_str.to_string())?;
                    s.push_str(",\"sequence\":");
                    json::write_str(s, &c.sequence.to_string())?;
                    s.push('}');
                }
                s.push(']');
            }
            if masks != 1 {
                s.push(']');
            }
        }
        TaskResult::Redacted(t) => json::write_str(s, &t.to_string())?,
        // The pipeline's shape: one answer as an object, several as a list.
        TaskResult::Answers(answers) => {
            let one = answers.len() == 1;
            if !one {
                s.push('[');
            }
            for (i, a) in answers.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                json::write_answer(s, a.score, a.start, a.end, a.answer)?;
            }
            if !one {
                s.push(']');
            }
        }
    }
    Ok(())
}

/// Any reply as JSON.
pub fn reply_json(r: &Response<'_>) -> serde_json::Value {
    use serde_json::json;
    match &r.body {
        ResponseBody::Infer(i) => {
            let mut s = String::new();
            let _ = write_result(&mut s, &i.result, false);
            let result: serde_json::Value = serde_json::from_str(&s).unwrap_or_default();
            json!({"id": r.id, "result": result, "tokens": i.tokens, "truncated": i.truncated})
        }
        ResponseBody::Info(i) => {
            let mut v = json!({
            "model": i.model,
            "task": crate::serve::reply::pipeline_name(i.task),
            "task_detail": format!("{:?}", i.task),
            "labels": i.labels.iter().collect::<Vec<_>>(),
            "max_sequence_length": i.max_sequence_length,
            "kernels": i.kernels,
            "version": i.version,
            "protocol_version": i.protocol_version,
            "workers": i.workers,
            "queue_capacity": i.queue_capacity,
            "max_frame": i.max_frame,
            });
            // Only firmware reports a device.
            if let Some(d) = i.device {
                v["device"] = json!({
                    "board": d.board,
                    "ram_bytes": d.ram_bytes,
                    "arena_bytes": d.arena_bytes,
                    "arena_used": d.arena_used,
                    "arena_max_seq": d.arena_max_seq,
                    "cores": d.cores,
                    "model_source": d.model_source,
                    "model_error": d.model_error,
                });
            }
            v
        }
        ResponseBody::Health(h) => json!({
            "ok": h.ok, "uptime_ms": h.uptime_ms, "queue_depth": h.queue_depth, "in_flight": h.in_flight,
        }),
        ResponseBody::Metrics(m) => {
            let errors: serde_json::Map<String, serde_json::Value> = m
                .errors
                .iter()
                .map(|e| (e.code.name().to_string(), e.count.into()))
                .collect();
            let buckets: Vec<serde_json::Value> = m
                .latency_buckets
                .iter()
                .enumerate()
                .filter(|(_, c)| *c > 0)
                .map(|(i, c)| json!({"le_us": bertq_protocol::histogram_bucket_upper_us(i), "count": c}))
                .collect();
            json!({
                "uptime_ms": m.uptime_ms,
                "requests": m.requests,
                "inferences": m.inferences,
                "errors": errors,
                "latency_us": {"p50": m.latency_p50_us, "p90": m.latency_p90_us, "p99": m.latency_p99_us},
                "latency_histogram": buckets,
                "queue_depth": m.queue_depth,
                "queue_capacity": m.queue_capacity,
                "max_queue_depth": m.max_queue_depth,
                "in_flight": m.in_flight,
                "connections": m.connections,
                "connections_rejected": m.connections_rejected,
            })
        }
        ResponseBody::Error(e) => {
            json!({"id": r.id, "error": e.message, "error_type": e.code.name()})
        }
    }
}

/// `bertq client`.
pub fn main(args: &ClientArgs) -> Result<(), String> {
    let timeout = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or("--timeout must be a positive number of seconds")?;
    let mut client = match (&args.unix, &args.tcp, &args.serial) {
        (Some(p), _, _) => Client::connect_unix(p, timeout),
        (_, Some(a), _) => Client::connect_tcp(a, timeout),
        (_, _, Some(d)) => Client::open_serial(d, args.baud, timeout),
        _ => return Err("client: give --unix PATH, --tcp ADDR:PORT or --serial DEV".into()),
    }
    .map_err(|e| e.to_string())?;
    if let Some(r) = args.retries {
        client.set_retries(r);
    }
    if let Some(path) = &args.token_file {
        let token = crate::serve::read_token(path)?;
        client.authenticate(token).map_err(|e| e.to_string())?;
    }
    let query = if args.info {
        Some(RequestBody::Info)
    } else if args.health {
        Some(RequestBody::Health)
    } else if args.metrics {
        Some(RequestBody::Metrics)
    } else if args.shutdown {
        Some(RequestBody::Shutdown)
    } else {
        None
    };
    if let Some(body) = query {
        let v = client.query(body).map_err(|e| e.to_string())?;
        println!("{v}");
        return if v.get("error").is_some() {
            Err("the server answered with an error".into())
        } else {
            Ok(())
        };
    }
    let options = InferOptions {
        top_k: args.top_k,
        aggregation: Aggregation::from_name(&args.aggregation).ok_or_else(|| {
            format!(
                "--aggregation {}: expected none, simple, first, average, max, span, pii, \
                 compat or default",
                args.aggregation
            )
        })?,
        truncate: !args.reject_long,
    };
    if args.threshold.is_some_and(|t| !(0.0..=1.0).contains(&t)) {
        return Err("--threshold must be a score from 0 to 1".into());
    }
    let entity_options = EntityOptions {
        threshold: args.threshold,
        redact: args.redact,
    };
    let mut failed = 0usize;
    // Prints the reply; true if it was an error.
    let process = |client: &mut Client, text: &str| -> Result<bool, String> {
        let reply = match (&args.question, args.stride) {
            (Some(q), _) => {
                let o = AnswerOptions {
                    top_k: args.top_k,
                    doc_stride: args.doc_stride,
                    max_answer_len: args.max_answer_len,
                    handle_impossible_answer: args.handle_impossible_answer,
                };
                client.answer(q, text, o)
            }
            (None, stride) if entity_options != EntityOptions::default() => {
                client.infer_entities(text, options, stride, entity_options)
            }
            (None, Some(stride)) => client.infer_stride(text, options, stride),
            (None, None) => client.infer(text, options),
        };
        match reply.map_err(|e| e.to_string())? {
            Ok(r) => {
                if r.truncated {
                    eprintln!(
                        "bertq: warning: text truncated to {} of {} tokens (the server's maximum)",
                        r.tokens, r.total_tokens
                    );
                }
                if args.full {
                    println!(
                        "{{\"id\":{},\"result\":{},\"tokens\":{},\"truncated\":{}}}",
                        r.id, r.json, r.tokens, r.truncated
                    );
                } else if let Some(t) = &r.redacted {
                    println!("{t}");
                } else {
                    println!("{}", r.json);
                }
                Ok(false)
            }
            Err(e) => {
                eprintln!("bertq: error: {} ({})", e.message, e.code.name());
                println!("{}", e.json());
                Ok(true)
            }
        }
    };
    if !args.texts.is_empty() {
        for t in &args.texts {
            failed += process(&mut client, t)? as usize;
        }
    } else {
        let stdin = std::io::stdin();
        let interactive = stdin.is_terminal();
        let mut stdin = stdin.lock();
        let mut line = Vec::new();
        loop {
            if interactive {
                eprint!("bertq> ");
            }
            line.clear();
            if stdin
                .read_until(b'\n', &mut line)
                .map_err(|e| format!("stdin: {e}"))?
                == 0
            {
                break;
            }
            let bytes = line.strip_suffix(b"\n").unwrap_or(&line);
            let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
            let Ok(text) = std::str::from_utf8(bytes) else {
                eprintln!("bertq: error: the line is not valid UTF-8");
                println!(
                    "{}",
                    serde_json::json!({"error": "invalid UTF-8", "error_type": "invalid_utf8"})
                );
                failed += 1;
                continue;
            };
            if interactive {
                let q = match text.trim() {
                    ":info" => Some(RequestBody::Info),
                    ":health" => Some(RequestBody::Health),
                    ":metrics" => Some(RequestBody::Metrics),
                    ":quit" | ":q" => break,
                    _ => None,
                };
                if let Some(body) = q {
                    let v = client.query(body).map_err(|e| e.to_string())?;
                    println!("{v:#}");
                    continue;
                }
            }
            failed += process(&mut client, text)? as usize;
        }
    }
    if failed > 0 {
        return Err(format!("{failed} request(s) failed"));
    }
    Ok(())
}
