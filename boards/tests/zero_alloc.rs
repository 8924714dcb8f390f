//! Once the server is up, the request path allocates nothing: accepting a connection, reading,
//! parsing (binary and JSON), queueing, inference, writing the reply, errors of every kind,
//! `busy`, stalls, metrics. The server runs in this process; a counting global allocator counts
//! allocations on the server's threads only (each marks itself through `on_thread_start`).

use bertq_boards::client::Client;
use bertq_boards::serve::{self, Control, ServeConfig};
use bertq_protocol::{EntityOptions, ErrorCode, InferOptions, RequestBody};
use bertq_runtime::{Model, ModelBytes};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SERVER_THREAD: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if SERVER_THREAD.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

// SAFETY: forwards every call unchanged to the system allocator; counting has no effect on the
// memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn mark_server_thread() {
    SERVER_THREAD.with(|c| c.set(true));
}

const T: Duration = Duration::from_secs(30);

fn json_line(s: &UnixStream, line: &[u8]) -> serde_json::Value {
    (&*s).write_all(line).unwrap();
    (&*s).write_all(b"\n").unwrap();
    let mut r = BufReader::new(s);
    let mut reply = String::new();
    r.read_line(&mut reply).unwrap();
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{reply:?}: {e}"))
}

/// One round of every kind of request, on fresh connections.
fn round(sock: &Path, expected: &str) {
    let opts = InferOptions::default();
    let mut c = Client::connect_unix(sock, T).unwrap();
    let r = c
        .infer("Hi, I'm Maria Gonzalez, email maria@example.com.", opts)
        .unwrap()
        .unwrap();
    assert_eq!(r.json, expected);
    let long = "Maria lives in Boston. ".repeat(120);
    assert!(c.infer(&long, opts).unwrap().unwrap().truncated);
    let reject = InferOptions {
        truncate: false,
        ..opts
    };
    let e = c.infer(&long, reject).unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::TextTooLong);
    // The whole long text in windows.
    let windows = c.infer_stride(&long, opts, 128).unwrap().unwrap();
    assert!(!windows.truncated);
    for aggregation in bertq_protocol::Aggregation::ALL {
        let o = InferOptions {
            aggregation,
            ..opts
        };
        c.infer("Maria Gonzalez, maria@example.com", o)
            .unwrap()
            .unwrap();
    }
    // The model's default (whole PII spans), a threshold, redaction.
    let pii = InferOptions {
        aggregation: bertq_protocol::Aggregation::ModelDefault,
        ..opts
    };
    let text = "Maria Gonzalez, maria@example.com, 10.0.0.1, (555) 867-5309";
    for redact in [false, true] {
        let e = EntityOptions {
            threshold: Some(0.5),
            redact,
        };
        let r = c.infer_entities(text, pii, None, e).unwrap().unwrap();
        assert_eq!(r.redacted.is_some(), redact);
        c.infer_entities(text, pii, Some(8), e).unwrap().unwrap();
    }
    for body in [RequestBody::Info, RequestBody::Health, RequestBody::Metrics] {
        let v = c.query(body).unwrap();
        assert!(v.get("error").is_none(), "{v}");
    }

    // JSON Lines and malformed input on a raw connection.
    let s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let v = json_line(
        &s,
        br#"{"id": "a\"b", "text": "Hi, I'm Maria Gonzalez, email maria@example.com.", "top_k": 2}"#,
    );
    assert_eq!(v["id"], "a\"b");
    assert_eq!(
        v["result"],
        serde_json::from_str::<serde_json::Value>(expected).unwrap()
    );
    for (line, kind) in [
        (&br#"{"id": 2, "type": "info"}"#[..], None),
        (br#"{"id": 9, "text": "Maria, 10.0.0.1", "redact": true, "threshold": 0.5}"#, None),
        (br#"{"id": 10, "text": "Maria, 10.0.0.1", "stride": 4, "aggregation_strategy": "compat"}"#, None),
        (br#"{"id": 3, "type": "metrics"}"#, None),
        (br#"{"id": 4, "type": "health"}"#, None),
        (br#"{"id": 5, "type": "reboot"}"#, Some("unknown_message")),
        (br#"{"id": 6, "text": 7}"#, Some("bad_request")),
        (b"{\"id\": 7, \"text\": \"\xff\"}", Some("invalid_utf8")),
        (b"garbage", Some("bad_frame")),
        (&[b'{'; 5000], Some("frame_too_large")),
    ] {
        let v = json_line(&s, line);
        assert_eq!(v["error_type"].as_str(), kind, "{v}");
    }
    // A bad frame and a CRC mismatch on a binary connection.
    let mut b = UnixStream::connect(sock).unwrap();
    b.set_read_timeout(Some(T)).unwrap();
    b.write_all(b"\x00\x01\x02\x03\x04\x05\x06\x00\x00\x05\x00")
        .unwrap();
    let mut buf = [0u8; 512];
    let mut got = 0;
    let mut zeros = 0;
    while zeros < 4 {
        let n = b.read(&mut buf[got..]).unwrap();
        assert!(n > 0);
        zeros += buf[got..got + n].iter().filter(|&&x| x == 0).count();
        got += n;
    }

    // A stalled half message gets a timeout error (the stall timeout is short here).
    let mut h = UnixStream::connect(sock).unwrap();
    h.write_all(b"{\"id\": 1, \"te").unwrap();
    h.set_read_timeout(Some(T)).unwrap();
    let mut reply = String::new();
    h.read_to_string(&mut reply).unwrap();
    assert!(reply.contains("\"timeout\""), "{reply}");

    // A burst on a server with one worker and a queue of one: some get `busy`.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || {
                let mut c = Client::connect_unix(&sock, T).unwrap();
                let long = "Maria lives in Boston. ".repeat(60);
                (0..3)
                    .map(|_| c.infer(&long, InferOptions::default()).unwrap().is_ok())
                    .filter(|ok| !ok)
                    .count()
            })
        })
        .collect();
    let busy: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(busy > 0, "the burst never hit a full queue");
}

#[test]
fn the_request_path_allocates_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/rampart-pii.bertq");
    let bytes: &'static ModelBytes = Box::leak(Box::new(ModelBytes::map(&root).unwrap()));
    let model: &'static Model<'static> = Box::leak(Box::new(Model::load(bytes).unwrap()));
    let expected = {
        let mut s = bertq_runtime::Session::with_owned_memory(model, 512).unwrap();
        let text = "Hi, I'm Maria Gonzalez, email maria@example.com.";
        // The model's default output (whole PII spans: it has a PII profile).
        let options = bertq_runtime::RunOptions::for_model(model);
        let out = s.run_with(text, &options).unwrap();
        // The reference: the runtime's own output, written as `bertq run` writes it.
        let bertq_runtime::TaskOutput::Entities(es) = out.task else {
            panic!("the default model finds entities")
        };
        let mut j = String::from("[");
        for (i, e) in es.iter().enumerate() {
            if i > 0 {
                j.push(',');
            }
            let word = &text[e.byte_start as usize..e.byte_end as usize];
            bertq_runtime::heads::json::write_entity(
                &mut j,
                model.entity_type(e, options.aggregation),
                e.score,
                word,
                e.start,
                e.end,
            )
            .unwrap();
        }
        j.push(']');
        j
    };

    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("z.sock");
    let mut cfg = ServeConfig::new(bertq_runtime::kernels::select());
    cfg.unix = vec![sock.clone()];
    cfg.workers = 1;
    cfg.queue = 1;
    cfg.max_connections = 8;
    cfg.max_frame = 4096;
    cfg.stall_timeout = Duration::from_millis(300);
    cfg.on_thread_start = Some(mark_server_thread);
    let control = Arc::new(Control::new().unwrap());
    let server = {
        let control = control.clone();
        std::thread::spawn(move || {
            mark_server_thread();
            serve::run(model, &cfg, &control)
        })
    };
    assert!(control.wait_ready(Duration::from_secs(60)), "server ready");
    // The counter sees the server's threads: they allocated their buffers at start.
    let at_start = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(at_start > 0);

    // Warm up (first use of every path), then count.
    round(&sock, &expected);
    round(&sock, &expected);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..3 {
        round(&sock, &expected);
    }
    let during = ALLOCATIONS.load(Ordering::SeqCst) - before;

    control.stop();
    let summary = server.join().unwrap().unwrap();
    assert!(summary.inferences > 20, "{summary:?}");
    assert_eq!(during, 0, "allocations on server threads while serving");
    assert!(!sock.exists());
}
