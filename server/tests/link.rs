//! The server loop without a model (a device whose model failed to load) and the `shutdown`
//! request, over an in-memory stream: what the firmware relies on, checked without QEMU.

use bertq_protocol::{Accumulator, DeviceInfo, ErrorCode};
use bertq_server::link::{self, Backend, Env, Format, InferJob, LinkConfig, LinkEnd, Shared};
use bertq_server::metrics::Metrics;
use bertq_server::reply::{Failure, Out, ServerInfo};
use std::cell::Cell;

/// Input bytes, then end of stream; output collected.
struct Stream {
    input: Vec<u8>,
    at: usize,
    output: Vec<u8>,
}

#[derive(Debug)]
struct Never;
impl core::fmt::Display for Never {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("never")
    }
}
impl core::error::Error for Never {}
impl embedded_io::Error for Never {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}
impl embedded_io::ErrorType for Stream {
    type Error = Never;
}
impl embedded_io::Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Never> {
        // A few bytes at a time, as a UART delivers them.
        let n = buf.len().min(7).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
impl embedded_io::Write for Stream {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Never> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Never> {
        Ok(())
    }
}

struct Device {
    shutdown: bool,
    now: Cell<u64>,
}
impl Env for Device {
    fn now_us(&self) -> u64 {
        self.now.set(self.now.get() + 10);
        self.now.get()
    }
    fn stopping(&self) -> bool {
        false
    }
    fn accepts_shutdown(&self) -> bool {
        self.shutdown
    }
}

/// Must never be reached: the loop refuses inferences without a model.
struct Unreachable;
impl Backend for Unreachable {
    fn infer(&mut self, _: &InferJob<'_>, _: &mut Out<'_>) -> Result<(), Failure> {
        panic!("an inference reached the backend of a device without a model")
    }
    fn queue_depth(&self) -> u32 {
        0
    }
    fn in_flight(&self) -> u32 {
        0
    }
}

/// Serves `input` on a device without a model; returns how the loop ended and the reply lines.
fn serve(input: &str, shutdown: bool) -> (LinkEnd, Vec<serde_json::Value>) {
    let metrics = Metrics::new();
    let shared = Shared {
        model: None,
        info: ServerInfo {
            max_seq: 128,
            kernels: "neon",
            workers: 1,
            queue_capacity: 0,
            max_frame: 1024,
            device: Some(DeviceInfo {
                board: "virt",
                ram_bytes: 1 << 20,
                arena_bytes: 4096,
                arena_used: 0,
                arena_max_seq: 128,
                model_source: "0x04000000",
                model_error: Some("the model in the model region is not usable: bad magic"),
                cores: 1,
            }),
        },
        metrics: &metrics,
    };
    let mut io = Stream {
        input: input.as_bytes().to_vec(),
        at: 0,
        output: Vec::new(),
    };
    let mut buf = vec![0u8; 1024];
    let mut acc = Accumulator::new(&mut buf[..]);
    let mut reply = vec![0u8; 8192];
    let mut out = Out::new(&mut reply);
    let env = Device {
        shutdown,
        now: Cell::new(0),
    };
    let cfg = LinkConfig {
        stall_timeout_us: 1_000_000,
        close_on_stall: false,
        idle_timeout_us: None,
        default_format: Format::Binary,
        first_request_timeout_us: None,
        token: None,
    };
    let end = link::serve_link(
        &mut io,
        &shared,
        &mut Unreachable,
        &env,
        &mut acc,
        &mut out,
        &cfg,
    );
    let lines = String::from_utf8(io.output)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (end, lines)
}

#[test]
fn without_a_model_inferences_are_model_unavailable_and_info_says_why() {
    let (end, replies) = serve(
        "{\"id\":1,\"text\":\"Maria\"}\n{\"id\":2,\"type\":\"info\"}\n{\"id\":3,\"type\":\"health\"}\n",
        false,
    );
    assert_eq!(end, LinkEnd::Closed);
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[0]["id"], 1);
    assert_eq!(replies[0]["error_type"], ErrorCode::ModelUnavailable.name());
    let info = &replies[1]["result"];
    assert_eq!(info["task"], "unavailable");
    assert_eq!(info["model"], "");
    assert_eq!(info["labels"], serde_json::json!([]));
    assert_eq!(info["device"]["board"], "virt");
    assert_eq!(info["device"]["model_source"], "0x04000000");
    assert!(info["device"]["model_error"]
        .as_str()
        .unwrap()
        .contains("bad magic"));
    assert_eq!(replies[2]["result"]["ok"], true);
}

#[test]
fn shutdown_is_answered_then_ends_the_loop_where_it_is_accepted() {
    // Accepted (the firmware): a health reply with ok = false, and nothing after it is read.
    let (end, replies) = serve(
        "{\"id\":\"s\",\"type\":\"shutdown\"}\n{\"id\":9,\"type\":\"health\"}\n",
        true,
    );
    assert_eq!(end, LinkEnd::Shutdown);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["id"], "s");
    assert_eq!(replies[0]["result"]["ok"], false);

    // Refused (an operating system's server): `unsupported`, and the link goes on.
    let (end, replies) = serve(
        "{\"id\":\"s\",\"type\":\"shutdown\"}\n{\"id\":9,\"type\":\"health\"}\n",
        false,
    );
    assert_eq!(end, LinkEnd::Closed);
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["error_type"], "unsupported");
    assert_eq!(replies[1]["result"]["ok"], true);
}
