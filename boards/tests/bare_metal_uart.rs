//! The server loop as it runs on bare metal: one thread, one session of its own
//! (`DirectBackend`), and a UART driver behind `embedded-hal-nb` (`NbSerial`). The UART here is
//! a mock that returns `WouldBlock` at random and loses a byte to an overrun now and then.

mod common;

use bertq_protocol::{decode_frame, decode_response, Accumulator, ErrorCode, Item, ResponseBody};
use bertq_runtime::{Model, ModelBytes, Session};
use bertq_server::backend::DirectBackend;
use bertq_server::link::{self, Env, Format, LinkConfig, LinkEnd, Shared};
use bertq_server::metrics::Metrics;
use bertq_server::nb_serial::NbSerial;
use bertq_server::reply::{Out, ServerInfo};
use common::*;
use embedded_hal_nb::nb;
use embedded_hal_nb::serial::{self, ErrorKind};
use std::cell::Cell;
use std::collections::VecDeque;
use std::path::Path;

/// A UART: bytes in (`rx`), bytes out (`tx`), with `WouldBlock` every few calls and an overrun
/// (the byte is lost) at chosen positions of the input.
struct MockUart<'a> {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    read: usize,
    overruns: Vec<usize>,
    empty_polls: u32,
    rng: u64,
    exhausted: &'a Cell<bool>,
}

impl MockUart<'_> {
    fn flaky(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng.is_multiple_of(4)
    }
}

#[derive(Debug)]
struct UartError(ErrorKind);
impl serial::Error for UartError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

impl serial::ErrorType for MockUart<'_> {
    type Error = UartError;
}

impl serial::Read<u8> for MockUart<'_> {
    fn read(&mut self) -> nb::Result<u8, UartError> {
        if self.flaky() {
            return Err(nb::Error::WouldBlock);
        }
        let Some(b) = self.rx.pop_front() else {
            // Input used up and the loop has polled an empty line twice over (so everything
            // received has been answered): stop the test server.
            self.empty_polls += 1;
            if self.empty_polls > 100 {
                self.exhausted.set(true);
            }
            return Err(nb::Error::WouldBlock);
        };
        self.read += 1;
        if self.overruns.contains(&(self.read - 1)) {
            return Err(nb::Error::Other(UartError(ErrorKind::Overrun)));
        }
        Ok(b)
    }
}

impl serial::Write<u8> for MockUart<'_> {
    fn write(&mut self, b: u8) -> nb::Result<(), UartError> {
        if self.flaky() {
            return Err(nb::Error::WouldBlock);
        }
        self.tx.push(b);
        Ok(())
    }
    fn flush(&mut self) -> nb::Result<(), UartError> {
        Ok(())
    }
}

/// A clock that advances 1 ms per reading; stops once the input is used up.
struct TestEnv<'a> {
    t: Cell<u64>,
    done: &'a Cell<bool>,
}

impl Env for TestEnv<'_> {
    fn now_us(&self) -> u64 {
        self.t.set(self.t.get() + 1000);
        self.t.get()
    }
    fn stopping(&self) -> bool {
        self.done.get()
    }
}

#[test]
fn the_server_loop_serves_an_embedded_hal_uart() {
    let texts: Vec<String> = texts().into_iter().take(6).collect();
    let expected: Vec<serde_json::Value> = run_outputs(&texts, &[])
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // Requests 1..=12 (each text twice); an overrun inside request 5's frame.
    let mut input = Vec::new();
    let mut starts = Vec::new();
    for id in 1..=12u32 {
        starts.push(input.len());
        let t = &texts[(id as usize - 1) % texts.len()];
        input.extend(raw_frame(&infer_message(id, t.as_bytes(), 1, true), 1));
    }
    let overrun_at = starts[4] + 5;

    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/rampart-pii.bertq");
    let bytes = ModelBytes::map(&path).unwrap();
    let model = Model::load(&bytes).unwrap();
    let mut session = Session::with_owned_memory(&model, 128).unwrap();
    let metrics = Metrics::new();
    let shared = Shared {
        model: Some(&model),
        info: ServerInfo {
            max_seq: 128,
            kernels: session.kernels().name,
            workers: 1,
            queue_capacity: 0,
            max_frame: 2048,
            device: None,
        },
        metrics: &metrics,
    };
    let done = Cell::new(false);
    let uart = MockUart {
        rx: input.into(),
        tx: Vec::new(),
        read: 0,
        overruns: vec![overrun_at],
        empty_polls: 0,
        rng: 0x1234_5678,
        exhausted: &done,
    };
    let mut io = NbSerial::new(uart, 50);
    // On a microcontroller these would be static arrays.
    let mut rx = vec![0u8; 2048];
    let mut tx = vec![0u8; 64 * 1024];
    let mut acc = Accumulator::new(&mut rx[..]);
    let mut out = Out::new(&mut tx[..]);
    let env = TestEnv {
        t: Cell::new(0),
        done: &done,
    };
    let cfg = LinkConfig {
        stall_timeout_us: u64::MAX,
        close_on_stall: false,
        idle_timeout_us: None,
        default_format: Format::Binary,
        first_request_timeout_us: None,
        token: None,
    };
    let end = link::serve_link(
        &mut io,
        &shared,
        &mut DirectBackend {
            session: &mut session,
        },
        &env,
        &mut acc,
        &mut out,
        &cfg,
    );
    assert_eq!(end, LinkEnd::Stopped);
    assert_eq!(io.line_errors(), 1);

    // Decode what the UART sent.
    let sent = std::mem::take(&mut io.get_mut().tx);
    let mut dec = Accumulator::new(vec![0u8; 1 << 16]);
    let mut rest = &sent[..];
    let mut replies = Vec::new();
    while !rest.is_empty() {
        let (item, r) = dec.feed(rest);
        rest = r;
        if let Some(Item::Frame(f)) = item {
            let resp = decode_response(decode_frame(f).unwrap()).unwrap();
            let v = bertq_boards::client::reply_json(&resp);
            replies.push((resp.id, v, matches!(resp.body, ResponseBody::Error(_))));
        }
    }
    // Request 5 lost a byte: one error (id 0) in its place; every other request its result,
    // in order, truncated to the 128-token session like `bertq run --max-length 128` would.
    let long_expected = run_outputs(&texts, &["--max-length", "128"]);
    assert_eq!(replies.len(), 12, "{replies:?}");
    for (k, (id, v, is_err)) in replies.iter().enumerate() {
        let want_id = k as u32 + 1;
        if want_id == 5 {
            assert_eq!(*id, 0);
            assert!(is_err);
            // (Invalid COBS or a CRC mismatch, depending on which byte was lost.)
            let kind = v["error_type"].as_str().unwrap();
            assert!(["bad_frame", "crc_mismatch"].contains(&kind), "{kind}");
            continue;
        }
        assert_eq!(*id, want_id);
        let i = (want_id as usize - 1) % texts.len();
        let want: serde_json::Value = serde_json::from_str(&long_expected[i]).unwrap();
        assert_eq!(v["result"], want, "request {want_id}");
        // Texts shorter than 128 tokens give the same result as the full-length session.
        if texts[i].len() < 300 {
            assert_eq!(v["result"], expected[i]);
        }
    }
    assert_eq!(metrics.inferences(), 11);
    assert_eq!(
        metrics.errors(ErrorCode::CrcMismatch) + metrics.errors(ErrorCode::BadFrame),
        1
    );
}
