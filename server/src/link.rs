//! The server loop for one byte stream (a socket connection, a serial line), written against
//! `embedded-io` `Read`/`Write` and `core` only, so the same code serves a bare-metal UART.
//!
//! It reads chunks, rebuilds frames and JSON lines ([`Accumulator`]), answers each message with
//! exactly one reply, and recovers from anything damaged at the next delimiter. Inference goes
//! through a [`Backend`]: the worker pool on Linux, a session of its own on bare metal. It
//! allocates nothing: its buffers are lent by the caller.

use crate::jsonl;
use crate::metrics::Metrics;
use crate::reply::{self, Failure, Gauges, Out, ServerInfo};
pub use crate::request::{InferJob, JobExtra};
use crate::request::{Kind, RawId, ReplyTo};
use bertq_protocol::{
    decode_frame, decode_request, Accumulator, EntityOptions, ErrorCode, HealthReply, InferOptions,
    Item, MessageKind, RequestBody,
};
use bertq_runtime::Model;
use embedded_io::{Error as _, ErrorKind, Read, Write};

/// What the loop needs from its environment.
pub trait Env {
    /// Microseconds since the server started (monotonic).
    fn now_us(&self) -> u64;
    /// The server is shutting down: finish the current request and return.
    fn stopping(&self) -> bool;
    /// A client asked the device to stop: `true` if this server honours that (the firmware:
    /// the loop replies, then returns [`LinkEnd::Shutdown`]); servers with an operating
    /// system refuse (they are stopped by signals).
    fn accepts_shutdown(&self) -> bool {
        false
    }
    /// Called after every reply sent; `ok`: the request succeeded (servers that evict
    /// connections which never completed a request watch this).
    fn replied(&self, ok: bool) {
        let _ = ok;
    }
}

/// Runs inferences and writes their replies.
pub trait Backend {
    /// Runs `job` and writes its reply (success or failure) into `out`; returns the failure's
    /// code if it failed.
    fn infer(&mut self, job: &InferJob<'_>, out: &mut Out<'_>) -> Result<(), Failure>;
    fn queue_depth(&self) -> u32;
    fn in_flight(&self) -> u32;
}

/// What every link of a server shares (read-only but for the atomic metrics).
#[derive(Debug, Clone, Copy)]
pub struct Shared<'m, 'a> {
    /// `None` on a device whose model could not be loaded: every inference is then refused with
    /// `model_unavailable` and `info` says why.
    pub model: Option<&'m Model<'a>>,
    pub info: ServerInfo<'m>,
    pub metrics: &'m Metrics,
}

/// The reply format used for messages whose own format cannot be known (garbage, a stalled
/// partial message) before any message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Binary,
    Json,
}

#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// A message started but not finished within this time (counted from its first byte, not
    /// reset by later ones) is dropped with a `timeout` error.
    pub stall_timeout_us: u64,
    /// Close the link after a stall (sockets) or keep listening (a serial line).
    pub close_on_stall: bool,
    /// Close the link after this long without a byte (sockets); `None`: never (a serial line).
    pub idle_timeout_us: Option<u64>,
    pub default_format: Format,
    /// Close the link if no request has succeeded this long after it started (sockets: a
    /// connection that sends nothing, or dribbles, cannot hold a slot); `None`: never.
    pub first_request_timeout_us: Option<u64>,
    /// The shared secret a connection must present (`token` in JSON, [`RequestBody::Auth`] in
    /// frames) before anything else is answered; `None`: no authentication.
    pub token: Option<&'static str>,
}

/// Why [`serve_link`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEnd {
    /// The peer closed the stream.
    Closed,
    /// No byte for the idle timeout.
    Idle,
    /// Half a message and then nothing for the stall timeout.
    Stalled,
    /// The server is shutting down.
    Stopped,
    /// No request succeeded within [`LinkConfig::first_request_timeout_us`].
    NoRequest,
    /// A request came without the right token (answered `unauthorized`).
    Unauthorized,
    /// A client asked the device to stop, and it was answered.
    Shutdown,
    Read(ErrorKind),
    Write(ErrorKind),
}

/// Serves one stream until it closes, fails, idles, stalls (if so configured) or the server
/// stops. `acc`'s capacity is the largest message accepted; `out` must hold the largest reply
/// (see [`reply::reply_capacity`]).
pub fn serve_link<T, B, E>(
    io: &mut T,
    shared: &Shared<'_, '_>,
    backend: &mut B,
    env: &E,
    acc: &mut Accumulator<&mut [u8]>,
    out: &mut Out<'_>,
    cfg: &LinkConfig,
) -> LinkEnd
where
    T: Read + Write,
    B: Backend,
    E: Env,
{
    let mut chunk = [0u8; 1024];
    let started_at = env.now_us();
    let mut last_byte = started_at;
    // When the message in progress started (its first byte's chunk).
    let mut message_start = started_at;
    let mut succeeded = false;
    let mut auth = Auth {
        token: cfg.token,
        ok: cfg.token.is_none(),
    };
    let mut format = cfg.default_format;
    // When the server stops, the bytes already received are still read and answered once
    // (requests with `shutting_down`), so that no request goes unanswered.
    let mut drained = false;
    loop {
        if env.stopping() {
            if drained {
                return LinkEnd::Stopped;
            }
            drained = true;
        }
        let now = env.now_us();
        if !succeeded
            && cfg
                .first_request_timeout_us
                .is_some_and(|t| now.saturating_sub(started_at) > t)
        {
            return LinkEnd::NoRequest;
        }
        // A message that keeps arriving a byte at a time is still cut off.
        if acc.in_message() && now.saturating_sub(message_start) > cfg.stall_timeout_us {
            if let Err(e) = stalled(io, shared, acc, out, format) {
                return LinkEnd::Write(e);
            }
            if cfg.close_on_stall {
                return LinkEnd::Stalled;
            }
            last_byte = env.now_us();
        }
        let n = match io.read(&mut chunk) {
            Ok(0) => return LinkEnd::Closed,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::TimedOut => {
                if drained {
                    return LinkEnd::Stopped;
                }
                let idle = env.now_us().saturating_sub(last_byte);
                if !acc.in_message() && cfg.idle_timeout_us.is_some_and(|t| idle > t) {
                    return LinkEnd::Idle;
                }
                continue;
            }
            Err(e) => return LinkEnd::Read(e.kind()),
        };
        last_byte = env.now_us();
        let was_in_message = acc.in_message();
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            let (item, r) = acc.feed(rest);
            rest = r;
            let Some(item) = item else { continue };
            let started = env.now_us();
            // The next message starts in this chunk, if at all.
            message_start = started;
            out.clear();
            let done = handle(item, shared, backend, env, out, &mut format, &mut auth);
            if let Err(e) = send(io, out) {
                return LinkEnd::Write(e);
            }
            shared.metrics.record_request(done.error);
            if done.inference && done.error.is_none() {
                shared
                    .metrics
                    .record_inference(env.now_us().saturating_sub(started));
            }
            env.replied(done.error.is_none());
            succeeded |= done.error.is_none();
            if done.damaged_frame {
                acc.after_damaged_frame();
            }
            if done.shutdown {
                return LinkEnd::Shutdown;
            }
            if done.close {
                return LinkEnd::Unauthorized;
            }
        }
        if !was_in_message && acc.in_message() {
            message_start = last_byte;
        }
    }
}

/// The connection's authentication state.
struct Auth {
    token: Option<&'static str>,
    ok: bool,
}

impl Auth {
    /// Compares a presented token with the server's in time independent of where they differ.
    fn check(&mut self, presented: &[u8]) -> bool {
        let Some(token) = self.token else {
            return true;
        };
        let t = token.as_bytes();
        let mut diff = u8::from(t.len() != presented.len());
        for (i, &b) in t.iter().enumerate() {
            diff |= b ^ presented.get(i).copied().unwrap_or(!b);
        }
        self.ok = diff == 0;
        self.ok
    }
}

/// The message in progress took longer than the stall timeout: answer `timeout`, drop it.
fn stalled<T: Write>(
    io: &mut T,
    shared: &Shared<'_, '_>,
    acc: &mut Accumulator<&mut [u8]>,
    out: &mut Out<'_>,
    format: Format,
) -> Result<(), ErrorKind> {
    let to = match (acc.partial(), format) {
        (Some(MessageKind::Frame), _) | (None, Format::Binary) => ReplyTo::Binary(0),
        (Some(MessageKind::Line), _) | (None, Format::Json) => ReplyTo::Json(RawId::NULL),
    };
    acc.reset();
    out.clear();
    reply::write_error(
        to,
        ErrorCode::Timeout,
        "half a message arrived and the rest did not come in time; it was discarded",
        out,
    );
    shared.metrics.record_request(Some(ErrorCode::Timeout));
    send(io, out)
}

fn send<T: Write>(io: &mut T, out: &Out<'_>) -> Result<(), ErrorKind> {
    if out.bytes().is_empty() {
        return Ok(());
    }
    io.write_all(out.bytes()).map_err(|e| e.kind())?;
    io.flush().map_err(|e| e.kind())
}

/// What answering one message did.
#[derive(Debug, Clone, Copy, Default)]
struct Handled {
    /// The error code, if it failed.
    error: Option<ErrorCode>,
    /// It was an inference.
    inference: bool,
    /// It was an accepted shutdown request: the loop ends once the reply is sent.
    shutdown: bool,
    /// A missing or wrong token: the connection is closed once the reply is sent.
    close: bool,
    /// A frame that did not decode (see [`Accumulator::after_damaged_frame`]).
    damaged_frame: bool,
}

/// Answers one message into `out`.
#[allow(clippy::too_many_arguments)]
fn handle<B: Backend, E: Env>(
    item: Item<'_>,
    shared: &Shared<'_, '_>,
    backend: &mut B,
    env: &E,
    out: &mut Out<'_>,
    format: &mut Format,
    auth: &mut Auth,
) -> Handled {
    let fail = |out: &mut Out<'_>, to: ReplyTo, f: Failure| {
        reply::write_error(to, f.code, &f.message, out);
        Handled {
            error: Some(f.code),
            ..Handled::default()
        }
    };
    let unauthorized = |out: &mut Out<'_>, to: ReplyTo| {
        let message = "this server requires a token (--token-file): send it first, as a \
                       \"token\" field or an auth message; the connection is closed";
        reply::write_error(to, ErrorCode::Unauthorized, message, out);
        Handled {
            error: Some(ErrorCode::Unauthorized),
            close: true,
            ..Handled::default()
        }
    };
    match item {
        Item::TooLong(kind) => {
            let to = match kind {
                MessageKind::Frame => ReplyTo::Binary(0),
                MessageKind::Line => ReplyTo::Json(RawId::NULL),
            };
            let f = Failure::new(
                ErrorCode::FrameTooLarge,
                format_args!(
                    "the message is longer than the {} bytes this server accepts; \
                     it was skipped up to the next delimiter",
                    shared.info.max_frame
                ),
            );
            fail(out, to, f)
        }
        Item::Garbage => {
            let to = match format {
                Format::Binary => ReplyTo::Binary(0),
                Format::Json => ReplyTo::Json(RawId::NULL),
            };
            let f = Failure::plain(
                ErrorCode::BadFrame,
                "bytes that start neither a frame nor a JSON object were skipped",
            );
            fail(out, to, f)
        }
        Item::Frame(frame) => {
            *format = Format::Binary;
            let message = match decode_frame(frame) {
                Ok(m) => m,
                Err(e) => {
                    let f = Failure::new(e.code(), format_args!("{e}"));
                    return Handled {
                        damaged_frame: true,
                        ..fail(out, ReplyTo::Binary(0), f)
                    };
                }
            };
            let request = match decode_request(message) {
                Ok(r) => r,
                Err(d) => {
                    return fail(out, ReplyTo::Binary(d.id), Failure::plain(d.code, d.detail))
                }
            };
            let to = ReplyTo::Binary(request.id);
            if let RequestBody::Auth(token) = request.body {
                if !auth.check(token.as_bytes()) {
                    return unauthorized(out, to);
                }
            } else if !auth.ok {
                return unauthorized(out, to);
            }
            let none = JobExtra::None;
            let mut entities = EntityOptions::default();
            let (kind, text, options, extra) = match request.body {
                RequestBody::Infer(r) => (Kind::Infer, r.text, r.options, none),
                RequestBody::InferEntities(r) => {
                    entities = r.entities;
                    let extra = r.stride.map_or(none, JobExtra::Stride);
                    (Kind::Infer, r.text, r.options, extra)
                }
                RequestBody::InferStride(r) => {
                    (Kind::Infer, r.text, r.options, JobExtra::Stride(r.stride))
                }
                RequestBody::Answer(r) => {
                    let extra = JobExtra::Answer {
                        question: r.question,
                        options: r.options,
                    };
                    (Kind::Infer, r.context, InferOptions::default(), extra)
                }
                RequestBody::Info => (Kind::Info, "", InferOptions::default(), none),
                RequestBody::Health => (Kind::Health, "", InferOptions::default(), none),
                RequestBody::Metrics => (Kind::Metrics, "", InferOptions::default(), none),
                RequestBody::Shutdown => (Kind::Shutdown, "", InferOptions::default(), none),
                RequestBody::Auth(_) => (Kind::Auth, "", InferOptions::default(), none),
            };
            let job = InferJob {
                to,
                text,
                options,
                extra,
                entities,
            };
            dispatch(kind, job, shared, backend, env, out)
        }
        Item::Line(line) => {
            *format = Format::Json;
            match jsonl::parse(line) {
                Ok(r) => {
                    let to = ReplyTo::Json(r.id);
                    let presented = match r.token {
                        Some(t) => auth.check(t),
                        None => auth.ok,
                    };
                    if !presented {
                        return unauthorized(out, to);
                    }
                    let job = InferJob {
                        to: ReplyTo::Json(r.id),
                        text: r.text,
                        options: r.options,
                        extra: r.extra,
                        entities: r.entities,
                    };
                    dispatch(r.kind, job, shared, backend, env, out)
                }
                Err(e) => fail(out, ReplyTo::Json(e.id), Failure::plain(e.code, e.message)),
            }
        }
    }
}

fn dispatch<B: Backend, E: Env>(
    kind: Kind,
    job: InferJob<'_>,
    shared: &Shared<'_, '_>,
    backend: &mut B,
    env: &E,
    out: &mut Out<'_>,
) -> Handled {
    let to = job.to;
    let health = |ok: bool| HealthReply {
        ok,
        uptime_ms: env.now_us() / 1000,
        queue_depth: backend.queue_depth(),
        in_flight: backend.in_flight(),
    };
    let result = match kind {
        Kind::Infer => {
            if env.stopping() {
                Err(Failure::plain(
                    ErrorCode::ShuttingDown,
                    "the server is shutting down",
                ))
            } else if shared.model.is_none() {
                Err(Failure::plain(
                    ErrorCode::ModelUnavailable,
                    "this device has no usable model: see the info reply's model_error",
                ))
            } else {
                backend.infer(&job, out)
            }
        }
        Kind::Info => reply::write_info(shared.model, &shared.info, to, out),
        Kind::Health | Kind::Auth => reply::write_health(&health(!env.stopping()), to, out),
        Kind::Shutdown => {
            if env.accepts_shutdown() {
                reply::write_health(&health(false), to, out)
            } else {
                Err(Failure::plain(
                    ErrorCode::Unsupported,
                    "shutdown is for bare-metal devices; stop this server with SIGTERM",
                ))
            }
        }
        Kind::Metrics => reply::write_metrics(
            shared.metrics,
            &Gauges {
                uptime_ms: env.now_us() / 1000,
                queue_depth: backend.queue_depth(),
                queue_capacity: shared.info.queue_capacity,
                in_flight: backend.in_flight(),
            },
            to,
            out,
        ),
    };
    let inference = kind == Kind::Infer;
    match result {
        Ok(()) => Handled {
            error: None,
            inference,
            shutdown: kind == Kind::Shutdown,
            ..Handled::default()
        },
        Err(f) => {
            out.clear();
            reply::write_error(to, f.code, &f.message, out);
            Handled {
                error: Some(f.code),
                inference,
                ..Handled::default()
            }
        }
    }
}
