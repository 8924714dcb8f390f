//! `bertq serve`: a long-lived server on Unix sockets, TCP and serial lines at once.
//!
//! Threads (all created at start, none per request or connection):
//! - `workers` inference threads, each with its own session (memory allocated once, warmed up
//!   before the server reports ready), popping jobs from one bounded queue ([`worker::Pool`]);
//! - `max_connections` link threads that each serve one socket connection at a time with the
//!   shared loop ([`link::serve_link`]), plus one link thread per serial line;
//! - one acceptor per listener, which hands connections to idle link threads (or closes them
//!   with a `busy` line when all are taken);
//! - the calling thread, which waits for SIGTERM/SIGINT (or [`Control::stop`]) and then shuts
//!   down: stop accepting, let every link finish its current request, drain the queue, remove
//!   the socket files.
//!
//! Each link answers its requests in order; clients still match replies by id (the protocol
//! allows a server to reorder them). A full queue answers `busy` immediately. Per connection:
//! a message started and not finished within the stall timeout is dropped with a `timeout`
//! error and the connection closed; a connection idle for the idle timeout is closed; a client
//! that stops reading its replies is dropped after the write timeout.

// Failures carry their message inline (a fixed-capacity string): boxing them, as these lints
// suggest, would allocate on the error path, which must not allocate either.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod io;
pub mod serial;
pub mod tcp;
pub mod unix;
pub mod worker;

// The protocol loop and its parts are the no_std crate shared with the firmware.
pub use bertq_server::{backend, jsonl, link, metrics, reply};

use bertq_protocol::{Accumulator, DEFAULT_MAX_FRAME};
use bertq_runtime::kernels::Kernels;
use bertq_runtime::{Model, Session};
use link::{Env, Format, LinkConfig, LinkEnd, Shared};
use metrics::Metrics;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use reply::{Out, ServerInfo};
use std::collections::VecDeque;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use worker::{Pool, PoolBackend};

/// `--max-input-tokens`: the longest windowed input a worker's session is sized for.
pub const DEFAULT_MAX_INPUT_TOKENS: usize = 1024;

/// The options of `bertq serve` (besides the model).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Listen on a Unix domain socket at PATH (repeatable).
    #[arg(long, value_name = "PATH")]
    pub unix: Vec<PathBuf>,
    /// Permissions of the Unix socket files, in octal.
    #[arg(long, default_value = "660", value_name = "OCTAL")]
    pub socket_mode: String,
    /// Listen on TCP: PORT (loopback), localhost:PORT, or ADDR:PORT (repeatable). Addresses
    /// other than loopback must be given explicitly and are logged.
    #[arg(long, value_name = "ADDR:PORT")]
    pub tcp: Vec<String>,
    /// Serve a serial line, e.g. /dev/ttyAMA0 (repeatable).
    #[arg(long, value_name = "DEV")]
    pub serial: Vec<PathBuf>,
    /// Baud rate of the serial lines.
    #[arg(long, default_value_t = 115200)]
    pub baud: u32,
    /// Inference workers, each with its own session (default: the CPU count, at most 4).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Requests that may wait for a worker; more get an immediate `busy` error.
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Socket connections served at once; more are closed with a `busy` line.
    #[arg(long, default_value_t = 32)]
    pub max_connections: usize,
    /// Maximum tokens per text (default: the model's maximum).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// The longest input, in tokens, that stride requests (token classification) and questions
    /// (question answering) run in windows; every worker's memory is sized for it at start.
    #[arg(long, default_value_t = DEFAULT_MAX_INPUT_TOKENS)]
    pub max_input_tokens: usize,
    /// Largest frame or JSON line accepted, in bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME)]
    pub max_frame: usize,
    /// Seconds a started message may take to arrive completely.
    #[arg(long, default_value_t = 10.0)]
    pub stall_timeout: f64,
    /// Seconds without a byte after which a socket connection is closed.
    #[arg(long, default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// Seconds a reply may wait for a client that does not read.
    #[arg(long, default_value_t = 10.0)]
    pub write_timeout: f64,
    /// Seconds a new socket connection has to complete its first request; it is closed
    /// otherwise (a connection that sends nothing, or a byte at a time, cannot hold a slot).
    #[arg(long, default_value_t = 10.0)]
    pub first_request_timeout: f64,
    /// TCP connections one client address may hold at once.
    #[arg(long, default_value_t = 8)]
    pub max_per_peer: usize,
    /// A file holding a shared secret that every socket connection must present before its
    /// first request (JSON: a "token" field; frames: an Auth message). Required to listen on a
    /// TCP address other than loopback.
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Log connections and their ends to stderr.
    #[arg(long)]
    pub verbose: bool,
}

/// Everything the server needs, resolved.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub unix: Vec<PathBuf>,
    pub socket_mode: u32,
    pub tcp: Vec<SocketAddr>,
    pub serial: Vec<PathBuf>,
    pub baud: u32,
    pub workers: usize,
    pub queue: usize,
    pub max_connections: usize,
    pub max_seq: Option<usize>,
    /// Content tokens of the longest windowed input (stride requests, questions).
    pub max_input: usize,
    pub max_frame: usize,
    pub stall_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    /// A socket connection that has not completed a request this long after connecting is
    /// closed.
    pub first_request_timeout: Duration,
    /// TCP connections per client address.
    pub max_per_peer: usize,
    /// The shared secret socket connections must present (`--token-file`).
    pub token: Option<&'static str>,
    pub kernels: &'static Kernels,
    pub verbose: bool,
    /// Called first on every thread the server starts (tests use it to watch allocations).
    pub on_thread_start: Option<fn()>,
}

fn seconds(name: &str, s: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s)
        .ok()
        .filter(|d| !d.is_zero() && d.as_secs() <= 7 * 24 * 3600)
        .ok_or_else(|| format!("--{name} must be a positive number of seconds, at most a week"))
}

impl ServeConfig {
    /// Defaults for everything but the transports.
    pub fn new(kernels: &'static Kernels) -> Self {
        ServeConfig {
            unix: Vec::new(),
            socket_mode: 0o660,
            tcp: Vec::new(),
            serial: Vec::new(),
            baud: 115200,
            workers: default_workers(),
            queue: 16,
            max_connections: 32,
            max_seq: None,
            max_input: DEFAULT_MAX_INPUT_TOKENS,
            max_frame: DEFAULT_MAX_FRAME,
            stall_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(10),
            first_request_timeout: Duration::from_secs(10),
            max_per_peer: 8,
            token: None,
            kernels,
            verbose: false,
            on_thread_start: None,
        }
    }

    pub fn from_args(args: &ServeArgs, kernels: &'static Kernels) -> Result<Self, String> {
        let mode = u32::from_str_radix(&args.socket_mode, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                format!(
                    "--socket-mode {}: expected octal like 660",
                    args.socket_mode
                )
            })?;
        let tcp = args
            .tcp
            .iter()
            .map(|s| tcp::parse_addr(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ServeConfig {
            unix: args.unix.clone(),
            socket_mode: mode,
            tcp,
            serial: args.serial.clone(),
            baud: args.baud,
            workers: args.workers.unwrap_or_else(default_workers),
            queue: args.queue,
            max_connections: args.max_connections,
            max_seq: args.max_length,
            max_input: args.max_input_tokens,
            max_frame: args.max_frame,
            stall_timeout: seconds("stall-timeout", args.stall_timeout)?,
            idle_timeout: seconds("idle-timeout", args.idle_timeout)?,
            write_timeout: seconds("write-timeout", args.write_timeout)?,
            first_request_timeout: seconds("first-request-timeout", args.first_request_timeout)?,
            max_per_peer: args.max_per_peer,
            token: args.token_file.as_deref().map(read_token).transpose()?,
            kernels,
            verbose: args.verbose,
            on_thread_start: None,
        })
    }
}

/// The longest token accepted from `--token-file`.
pub const MAX_TOKEN_LEN: usize = 256;

/// Reads the shared secret: the file's first line, printable ASCII without spaces, quotes or
/// backslashes (it is compared verbatim with what clients send), 16 to 256 bytes. Kept for the
/// life of the process.
pub fn read_token(path: &std::path::Path) -> Result<&'static str, String> {
    let err = |why: &str| format!("--token-file {}: {why}", path.display());
    let meta = std::fs::metadata(path).map_err(|e| err(&e.to_string()))?;
    if meta.len() > 4096 {
        return Err(err("larger than 4096 bytes"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(&e.to_string()))?;
    let token = text.lines().next().unwrap_or("").trim();
    if token.len() < 16 || token.len() > MAX_TOKEN_LEN {
        return Err(err(
            "the token must be 16 to 256 characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
    {
        return Err(err(
            "the token must be printable ASCII without spaces, quotes or backslashes",
        ));
    }
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o004 != 0 {
            eprintln!(
                "bertq: warning: {} is readable by every user; chmod o-r it",
                path.display()
            );
        }
    }
    Ok(Box::leak(token.to_string().into_boxed_str()))
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Starting and stopping a server: the stop flag (set by SIGTERM/SIGINT or [`Control::stop`]),
/// a self-pipe that wakes the threads blocked in `poll(2)`, and the ready signal.
#[derive(Debug)]
pub struct Control {
    stop: Arc<AtomicBool>,
    wake_rx: UnixStream,
    wake_tx: UnixStream,
    ready: Mutex<bool>,
    ready_cv: Condvar,
    start: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Control {
    pub fn new() -> Result<Control, String> {
        let (wake_rx, wake_tx) = UnixStream::pair().map_err(|e| format!("self-pipe: {e}"))?;
        wake_tx
            .set_nonblocking(true)
            .map_err(|e| format!("self-pipe: {e}"))?;
        Ok(Control {
            stop: Arc::new(AtomicBool::new(false)),
            wake_rx,
            wake_tx,
            ready: Mutex::new(false),
            ready_cv: Condvar::new(),
            start: Instant::now(),
        })
    }

    /// SIGTERM and SIGINT start a graceful shutdown; a second one exits at once.
    pub fn handle_signals(&self) -> Result<(), String> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        for sig in [SIGTERM, SIGINT] {
            let err = |e: std::io::Error| format!("signal {sig}: {e}");
            signal_hook::flag::register_conditional_shutdown(sig, 1, Arc::clone(&self.stop))
                .map_err(err)?;
            signal_hook::flag::register(sig, Arc::clone(&self.stop)).map_err(err)?;
            let tx = self.wake_tx.try_clone().map_err(err)?;
            signal_hook::low_level::pipe::register(sig, tx).map_err(err)?;
        }
        Ok(())
    }

    /// Starts a graceful shutdown.
    pub fn stop(&self) {
        self.stop.store(true, SeqCst);
        let _ = (&self.wake_tx).write(&[1]);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(SeqCst)
    }

    /// Waits until the server is ready (listening, workers warmed up); false on timeout.
    pub fn wait_ready(&self, timeout: Duration) -> bool {
        let g = lock(&self.ready);
        let (g, _) = self
            .ready_cv
            .wait_timeout_while(g, timeout, |r| !*r)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *g
    }

    fn set_ready(&self) {
        *lock(&self.ready) = true;
        self.ready_cv.notify_all();
    }

    /// Blocks until `fd` is readable or the server is stopping; true if readable.
    fn wait_readable<F: AsFd>(&self, fd: &F) -> bool {
        loop {
            if self.stopping() {
                return false;
            }
            let mut fds = [
                PollFd::new(fd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN),
            ];
            match nix::poll::poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {
                    let ready = fds[0].revents().is_some_and(|r| !r.is_empty());
                    if self.stopping() {
                        return false;
                    }
                    if ready {
                        return true;
                    }
                }
                Err(nix::errno::Errno::EINTR) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn wait_stop(&self) {
        while !self.stopping() {
            let mut fds = [PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN)];
            let _ = nix::poll::poll(&mut fds, PollTimeout::from(1000u16));
        }
    }
}

struct StdEnv<'c> {
    control: &'c Control,
    /// Set once the link's current connection has completed a request (socket links).
    proven: Option<&'c AtomicBool>,
}

impl Env for StdEnv<'_> {
    fn now_us(&self) -> u64 {
        self.control.start.elapsed().as_micros() as u64
    }
    fn stopping(&self) -> bool {
        self.control.stopping()
    }
    fn replied(&self, ok: bool) {
        if let (true, Some(p)) = (ok, self.proven) {
            p.store(true, SeqCst);
        }
    }
}

/// An accepted connection.
#[derive(Debug)]
enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn try_clone(&self) -> Option<Conn> {
        match self {
            Conn::Unix(c) => c.try_clone().ok().map(Conn::Unix),
            Conn::Tcp(c) => c.try_clone().ok().map(Conn::Tcp),
        }
    }
    /// Ends the connection for whoever serves it (its reads see end of stream).
    fn shutdown(&self) {
        let _ = match self {
            Conn::Unix(c) => c.shutdown(std::net::Shutdown::Both),
            Conn::Tcp(c) => c.shutdown(std::net::Shutdown::Both),
        };
    }
}

/// A connection waiting for a link thread.
struct Waiting {
    conn: Conn,
    peer: Option<IpAddr>,
}

/// A link thread's current connection.
struct Slot {
    peer: Option<IpAddr>,
    since: Instant,
    /// A second handle on the socket, to end it when its slot is given to a new client.
    handle: Option<Conn>,
    evicted: bool,
}

/// A connection only replaces one that has not completed a request when that one has had
/// this long to do it (a burst of new connections cannot evict each other at once).
const EVICT_AFTER: Duration = Duration::from_secs(1);

/// Connections waiting for a link thread, and what every link thread is serving. Capacity
/// fixed at start: never reallocates.
struct Handoff {
    state: Mutex<HandoffState>,
    cv: Condvar,
    max: usize,
    max_per_peer: usize,
    /// Per link: its connection has completed a request (set by the link, lock-free).
    proven: Vec<AtomicBool>,
}

struct HandoffState {
    pending: VecDeque<Waiting>,
    active: usize,
    slots: Vec<Option<Slot>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    /// Every link serves a client that has completed a request.
    Full,
    /// Its address already holds `--max-per-peer` connections.
    PerPeer,
}

impl Handoff {
    fn new(max: usize, max_per_peer: usize) -> Handoff {
        Handoff {
            state: Mutex::new(HandoffState {
                pending: VecDeque::with_capacity(max.max(1)),
                active: 0,
                slots: (0..max).map(|_| None).collect(),
            }),
            cv: Condvar::new(),
            max,
            max_per_peer,
            proven: (0..max).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn offer(&self, conn: Conn, peer: Option<IpAddr>) -> Result<(), (Conn, Refused)> {
        let mut s = lock(&self.state);
        if let Some(ip) = peer {
            let held = s.pending.iter().filter(|w| w.peer == Some(ip)).count()
                + s.slots
                    .iter()
                    .flatten()
                    .filter(|t| t.peer == Some(ip))
                    .count();
            if held >= self.max_per_peer {
                return Err((conn, Refused::PerPeer));
            }
        }
        if s.pending.len() == s.pending.capacity() {
            return Err((conn, Refused::Full));
        }
        if s.active + s.pending.len() >= self.max {
            // Full: the new client takes the slot of the oldest connection that has not
            // completed a request in its time, if there is one.
            let now = Instant::now();
            let victim = s
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.as_ref().map(|t| (i, t)))
                .filter(|(i, t)| {
                    !t.evicted
                        && !self.proven[*i].load(SeqCst)
                        && now.duration_since(t.since) >= EVICT_AFTER
                })
                .min_by_key(|(_, t)| t.since)
                .map(|(i, _)| i);
            let evicting = s.slots.iter().flatten().filter(|t| t.evicted).count();
            match victim {
                Some(i) if s.active + s.pending.len() < self.max + evicting + 1 => {
                    if let Some(t) = s.slots[i].as_mut() {
                        t.evicted = true;
                        if let Some(h) = &t.handle {
                            h.shutdown();
                        }
                    }
                }
                _ => return Err((conn, Refused::Full)),
            }
        }
        s.pending.push_back(Waiting { conn, peer });
        drop(s);
        self.cv.notify_one();
        Ok(())
    }

    fn take(&self, control: &Control, link: usize) -> Option<Conn> {
        let mut s = lock(&self.state);
        loop {
            if control.stopping() {
                return None;
            }
            if let Some(w) = s.pending.pop_front() {
                s.active += 1;
                self.proven[link].store(false, SeqCst);
                s.slots[link] = Some(Slot {
                    peer: w.peer,
                    since: Instant::now(),
                    handle: w.conn.try_clone(),
                    evicted: false,
                });
                return Some(w.conn);
            }
            s = self
                .cv
                .wait_timeout(s, Duration::from_millis(250))
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
    }

    fn done(&self, link: usize) {
        let mut s = lock(&self.state);
        s.active = s.active.saturating_sub(1);
        s.slots[link] = None;
    }
}

/// Removes the socket files it holds when dropped: on every way out of [`run`], a panic
/// included.
struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            if let Err(e) = unix::remove(p) {
                eprintln!("bertq: warning: removing {}: {e}", p.display());
            }
        }
    }
}

enum Listener {
    Unix(PathBuf, UnixListener),
    Tcp(SocketAddr, TcpListener),
}

impl Listener {
    fn describe(&self) -> String {
        match self {
            Listener::Unix(p, _) => format!("unix:{}", p.display()),
            Listener::Tcp(a, _) => format!("tcp:{a}"),
        }
    }
}

/// A summary of a finished server run.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub requests: u64,
    pub inferences: u64,
}

/// `bertq serve`: resolves the options, handles signals, serves until stopped.
pub fn main(model: &Model<'_>, args: &ServeArgs, kernels: &'static Kernels) -> Result<(), String> {
    let cfg = ServeConfig::from_args(args, kernels)?;
    let control = Control::new()?;
    control.handle_signals()?;
    let s = run(model, &cfg, &control)?;
    eprintln!(
        "bertq: stopped after {} requests ({} inferences)",
        s.requests, s.inferences
    );
    Ok(())
}

/// Runs a server until `control` stops it (the caller handles signals, if any).
pub fn run(model: &Model<'_>, cfg: &ServeConfig, control: &Control) -> Result<Summary, String> {
    if cfg.unix.is_empty() && cfg.tcp.is_empty() && cfg.serial.is_empty() {
        return Err(
            "serve: give at least one of --unix PATH, --tcp ADDR:PORT, --serial DEV".into(),
        );
    }
    // Everything below is allocated up front: keep it within what a board can hold.
    let limits = [
        ("--workers", cfg.workers, 1, 256),
        ("--queue", cfg.queue, 1, 65536),
        ("--max-connections", cfg.max_connections, 1, 4096),
        ("--max-frame", cfg.max_frame, 64, 16 << 20),
        (
            "--max-input-tokens",
            cfg.max_input,
            1,
            crate::MAX_INPUT_TOKENS,
        ),
        ("--max-per-peer", cfg.max_per_peer, 1, 4096),
    ];
    for (name, value, lo, hi) in limits {
        if !(lo..=hi).contains(&value) {
            return Err(format!(
                "serve: {name} {value} is out of range ({lo}..={hi})"
            ));
        }
    }
    if let Some(a) = cfg.tcp.iter().find(|a| !a.ip().is_loopback()) {
        if cfg.token.is_none() {
            return Err(format!(
                "serve: --tcp {a} is not a loopback address: give --token-file FILE (a shared \
                 secret every client must send) to serve it"
            ));
        }
    }
    let c = model.config();
    if model.task() == bertq_runtime::format::TaskHead::QuestionAnswering && c.type_vocab_size < 2 {
        return Err(format!(
            "serve: this question-answering model has {} token type(s) (type_vocab_size): a \
             question and its context need 2",
            c.type_vocab_size
        ));
    }
    let max_seq = crate::session_length(model, cfg.max_seq)?;
    let max_reply = reply::reply_capacity(
        model,
        max_seq.max(cfg.max_input.min(cfg.max_frame)),
        cfg.max_frame,
    );
    let metrics = Metrics::new();
    let links = cfg.max_connections + cfg.serial.len();
    let pool = Pool::new(links, cfg.queue, cfg.max_frame, max_reply);
    let info = ServerInfo {
        max_seq,
        kernels: cfg.kernels.name,
        workers: cfg.workers.min(u16::MAX as usize) as u16,
        queue_capacity: cfg.queue as u32,
        max_frame: cfg.max_frame,
        device: None,
    };
    let shared = Shared {
        model: Some(model),
        info,
        metrics: &metrics,
    };

    // Open everything before starting threads, so that errors are reported at once.
    let mut listeners = Vec::new();
    let mut bound_paths = SocketFiles(Vec::new());
    let mut result = Ok(());
    for p in &cfg.unix {
        match unix::bind(p, cfg.socket_mode) {
            Ok(l) => {
                bound_paths.0.push(p.clone());
                listeners.push(Listener::Unix(p.clone(), l));
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() {
        for a in &cfg.tcp {
            match tcp::bind(*a) {
                Ok(l) => {
                    let addr = l.local_addr().unwrap_or(*a);
                    listeners.push(Listener::Tcp(addr, l));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    let mut serials = Vec::new();
    if result.is_ok() {
        for p in &cfg.serial {
            match serial::open(p, cfg.baud) {
                Ok(f) => serials.push((p.clone(), f)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    result?;

    let handoff = Handoff::new(cfg.max_connections, cfg.max_per_peer);
    let env = StdEnv {
        control,
        proven: None,
    };
    let tick = Duration::from_millis(100);
    let socket_link = LinkConfig {
        stall_timeout_us: cfg.stall_timeout.as_micros() as u64,
        close_on_stall: true,
        idle_timeout_us: Some(cfg.idle_timeout.as_micros() as u64),
        default_format: Format::Json,
        first_request_timeout_us: Some(cfg.first_request_timeout.as_micros() as u64),
        token: cfg.token,
    };
    // A serial line is one physical client: no token, no first-request deadline.
    let serial_link = LinkConfig {
        close_on_stall: false,
        idle_timeout_us: None,
        default_format: Format::Binary,
        first_request_timeout_us: None,
        token: None,
        ..socket_link
    };

    let outcome = std::thread::scope(|s| -> Result<(), String> {
        // Workers: sessions are created and warmed up on their own threads.
        let (init_tx, init_rx) = std::sync::mpsc::channel::<Result<(), String>>();
        let mut workers = Vec::new();
        for w in 0..cfg.workers {
            let (pool, init_tx) = (&pool, init_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("bertq-worker-{w}"))
                .spawn_scoped(s, move || {
                    if let Some(f) = cfg.on_thread_start {
                        f();
                    }
                    let session = Session::with_input_limit(model, max_seq, cfg.max_input, 1);
                    let mut session = match session {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = init_tx.send(Err(format!("worker session: {e}")));
                            return;
                        }
                    };
                    session.set_kernels(cfg.kernels);
                    let warm = bertq_server::backend::warm_up(&mut session)
                        .map_err(|e| format!("warm-up: {e}"));
                    let failed = warm.is_err();
                    let _ = init_tx.send(warm);
                    if !failed {
                        pool.work(&mut session);
                    }
                });
            match spawned {
                Ok(h) => workers.push(h),
                Err(e) => {
                    pool.stop_workers();
                    return Err(format!("starting a worker: {e}"));
                }
            }
        }
        drop(init_tx);
        for _ in 0..cfg.workers {
            let r = init_rx
                .recv()
                .unwrap_or_else(|_| Err("a worker exited during start-up".into()));
            if let Err(e) = r {
                pool.stop_workers();
                return Err(e);
            }
        }

        let mut threads = Vec::new();
        let mut start_error = None;
        // Link threads for socket connections.
        for i in 0..cfg.max_connections {
            let (pool, shared, handoff, metrics) = (&pool, &shared, &handoff, &metrics);
            // The link's buffers are allocated here, before serving starts, not in the thread
            // (which may be scheduled late, while the first requests are already served).
            let mut rx = vec![0u8; cfg.max_frame].into_boxed_slice();
            let mut tx = vec![0u8; max_reply].into_boxed_slice();
            let spawned = std::thread::Builder::new()
                .name(format!("bertq-link-{i}"))
                .spawn_scoped(s, move || {
                    if let Some(f) = cfg.on_thread_start {
                        f();
                    }
                    let mut backend = PoolBackend {
                        pool,
                        slot: i,
                        metrics,
                    };
                    let env = &StdEnv {
                        control,
                        proven: Some(&handoff.proven[i]),
                    };
                    while let Some(conn) = handoff.take(control, i) {
                        let mut acc = Accumulator::new(&mut rx[..]);
                        let mut out = Out::new(&mut tx[..]);
                        // The same loop over either socket type (`FdIo<T>` differs by type).
                        macro_rules! serve {
                            ($c:expr) => {{
                                let mut io = io::FdIo::new($c, tick, cfg.write_timeout);
                                link::serve_link(
                                    &mut io,
                                    shared,
                                    &mut backend,
                                    env,
                                    &mut acc,
                                    &mut out,
                                    &socket_link,
                                )
                            }};
                        }
                        let end = match conn {
                            Conn::Unix(c) => {
                                let _ = c.set_nonblocking(true);
                                serve!(c)
                            }
                            Conn::Tcp(c) => {
                                let _ = c.set_nonblocking(true);
                                let _ = c.set_nodelay(true);
                                serve!(c)
                            }
                        };
                        handoff.done(i);
                        if cfg.verbose {
                            eprintln!("bertq: link {i}: connection ended: {end:?}");
                        }
                    }
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => {
                    start_error = Some(format!("starting a link thread: {e}"));
                    break;
                }
            }
        }
        // One link thread per serial line, with its own job slot after the sockets' ones.
        for (k, (path, file)) in serials.iter().enumerate() {
            if start_error.is_some() {
                break;
            }
            let (pool, shared, env, metrics) = (&pool, &shared, &env, &metrics);
            let slot = cfg.max_connections + k;
            let mut rx = vec![0u8; cfg.max_frame].into_boxed_slice();
            let mut tx = vec![0u8; max_reply].into_boxed_slice();
            let spawned = std::thread::Builder::new()
                .name(format!("bertq-serial-{k}"))
                .spawn_scoped(s, move || {
                    if let Some(f) = cfg.on_thread_start {
                        f();
                    }
                    let mut backend = PoolBackend {
                        pool,
                        slot,
                        metrics,
                    };
                    let mut io = io::FdIo::new(file, tick, cfg.write_timeout);
                    let mut acc = Accumulator::new(&mut rx[..]);
                    let mut out = Out::new(&mut tx[..]);
                    while !control.stopping() {
                        let end = link::serve_link(
                            &mut io,
                            shared,
                            &mut backend,
                            env,
                            &mut acc,
                            &mut out,
                            &serial_link,
                        );
                        if end == LinkEnd::Stopped {
                            break;
                        }
                        // A hang-up or a line error: nobody on the other end yet. Keep
                        // listening, without spinning.
                        if cfg.verbose {
                            eprintln!("bertq: serial {}: {end:?}", path.display());
                        }
                        acc.reset();
                        std::thread::sleep(tick);
                    }
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => start_error = Some(format!("starting a serial thread: {e}")),
            }
        }
        // Acceptors.
        for (k, l) in listeners.iter().enumerate() {
            if start_error.is_some() {
                break;
            }
            let (handoff, metrics) = (&handoff, &metrics);
            let spawned = std::thread::Builder::new()
                .name(format!("bertq-accept-{k}"))
                .spawn_scoped(s, move || {
                    if let Some(f) = cfg.on_thread_start {
                        f();
                    }
                    accept_loop(l, handoff, metrics, control, cfg);
                });
            match spawned {
                Ok(h) => threads.push(h),
                Err(e) => start_error = Some(format!("starting an acceptor: {e}")),
            }
        }

        if start_error.is_none() {
            let mut names: Vec<String> = listeners.iter().map(Listener::describe).collect();
            names.extend(
                serials
                    .iter()
                    .map(|(p, _)| format!("serial:{}@{}", p.display(), cfg.baud)),
            );
            eprintln!(
                "bertq: serving {} on {} ({} workers, queue {}, max {} tokens, kernels {})",
                crate::printable(model.name()),
                names.join(", "),
                cfg.workers,
                cfg.queue,
                max_seq,
                cfg.kernels.name
            );
            control.set_ready();
            control.wait_stop();
            eprintln!("bertq: shutting down: finishing requests in flight");
        } else {
            control.stop();
        }
        handoff.cv.notify_all();
        for t in threads {
            let _ = t.join();
        }
        pool.stop_workers();
        for w in workers {
            let _ = w.join();
        }
        start_error.map_or(Ok(()), Err)
    });
    drop(bound_paths);
    outcome?;
    Ok(Summary {
        requests: metrics.requests(),
        inferences: metrics.inferences(),
    })
}

/// The line sent to a connection refused because every link is busy.
const TOO_MANY: &[u8] =
    b"{\"id\":null,\"error\":\"too many connections: retry later\",\"error_type\":\"busy\"}\n";
/// The line sent to a connection refused because its address holds `--max-per-peer` already.
const TOO_MANY_FROM_PEER: &[u8] = b"{\"id\":null,\"error\":\"too many connections from this \
address: retry later\",\"error_type\":\"busy\"}\n";

fn accept_loop(
    l: &Listener,
    handoff: &Handoff,
    metrics: &Metrics,
    control: &Control,
    cfg: &ServeConfig,
) {
    loop {
        let ready = match l {
            Listener::Unix(_, u) => control.wait_readable(u),
            Listener::Tcp(_, t) => control.wait_readable(t),
        };
        if !ready {
            return;
        }
        let accepted = match l {
            Listener::Unix(_, u) => u.accept().map(|(c, _)| (Conn::Unix(c), None)),
            Listener::Tcp(_, t) => t.accept().map(|(c, a)| (Conn::Tcp(c), Some(a.ip()))),
        };
        match accepted {
            Ok((conn, peer)) => {
                metrics.note_connection();
                if let Err((conn, why)) = handoff.offer(conn, peer) {
                    metrics.note_rejected_connection();
                    let line = match why {
                        Refused::Full => TOO_MANY,
                        Refused::PerPeer => TOO_MANY_FROM_PEER,
                    };
                    if cfg.verbose {
                        eprintln!("bertq: {}: refused a connection: {why:?}", l.describe());
                    }
                    // Best effort: the socket is new, its buffer empty; never block on it.
                    let _ = match &conn {
                        Conn::Unix(c) => c.set_nonblocking(true).and_then(|_| (&*c).write(line)),
                        Conn::Tcp(c) => c.set_nonblocking(true).and_then(|_| (&*c).write(line)),
                    };
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                if cfg.verbose {
                    eprintln!("bertq: {}: accept: {e}", l.describe());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
