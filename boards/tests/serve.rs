//! `bertq serve` end to end over Unix sockets and loopback TCP: replies equal `bertq run`'s
//! output, every bad input gets exactly one error and loses nothing, a full queue answers
//! `busy`, misbehaving clients do not hold up others, SIGTERM finishes what is in flight.

mod common;

use bertq_boards::client::Client;
use bertq_protocol::{ErrorCode, InferOptions, RequestBody};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

fn opts(truncate: bool) -> InferOptions {
    InferOptions {
        truncate,
        ..InferOptions::default()
    }
}

/// Reads JSON lines from a stream, bounded in time.
struct Lines {
    r: BufReader<UnixStream>,
}

impl Lines {
    fn new(s: &UnixStream) -> Lines {
        let s = s.try_clone().unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        Lines {
            r: BufReader::new(s),
        }
    }
    fn next(&mut self) -> serde_json::Value {
        let mut line = String::new();
        let n = self.r.read_line(&mut line).expect("a reply line in time");
        assert!(n > 0, "connection closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
    }
}

#[test]
fn unix_socket_replies_equal_bertq_run() {
    let texts = texts();
    let expected = run_outputs(&texts, &[]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bertq.sock");
    let server = Server::start_in(dir, &["--unix", sock.to_str().unwrap(), "--workers", "2"]);
    // The socket file has the default mode 0660.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);

    // Binary protocol, through the client library.
    let mut client = Client::connect_unix(&sock, T).unwrap();
    for (text, want) in texts.iter().zip(&expected) {
        let got = client.infer(text, opts(true)).unwrap().unwrap();
        assert_eq!(&got.json, want, "binary reply for {text:?}");
        assert_eq!(got.truncated, text.len() > 1000);
    }

    // JSON Lines on another connection: same results under "result", ids echoed verbatim.
    let s = UnixStream::connect(&sock).unwrap();
    let mut lines = Lines::new(&s);
    for (i, (text, want)) in texts.iter().zip(&expected).enumerate() {
        let id = if i % 2 == 0 {
            serde_json::json!(i)
        } else {
            serde_json::json!(format!("req-{i}"))
        };
        let req = serde_json::json!({"id": id, "text": text});
        (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
        let v = lines.next();
        assert_eq!(v["id"], id);
        let want: serde_json::Value = serde_json::from_str(want).unwrap();
        assert_eq!(v["result"], want, "JSON reply for {text:?}");
    }

    // The bertq client program prints exactly what bertq run prints.
    let out = std::process::Command::new(BIN)
        .args(["client", "--unix", sock.to_str().unwrap()])
        .args(&texts[..2])
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(
        printed,
        expected[..2].iter().map(String::as_str).collect::<Vec<_>>()
    );
    drop(server);
}

#[test]
fn tcp_and_unix_at_once_with_info_health_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("both.sock");
    let server = Server::start_in(
        dir,
        &[
            "--tcp",
            "127.0.0.1:0",
            "--unix",
            sock.to_str().unwrap(),
            "--workers",
            "1",
            "--queue",
            "4",
        ],
    );
    let addr = server.tcp_addr();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut c = Client::connect_tcp(&addr, T).unwrap();
    // The Unix socket serves the same server (its request counts in the metrics below).
    let mut u = Client::connect_unix(&sock, T).unwrap();
    assert_eq!(u.query(RequestBody::Health).unwrap()["ok"], true);

    let info = c.query(RequestBody::Info).unwrap();
    assert_eq!(info["model"], "rampart-pii");
    assert_eq!(info["task"], "token-classification");
    assert_eq!(info["max_sequence_length"], 512);
    assert_eq!(info["labels"].as_array().unwrap().len(), 35);
    assert_eq!(info["labels"][1], "B-GIVEN_NAME");
    assert_eq!(info["protocol_version"], 1);
    assert_eq!(info["workers"], 1);
    assert_eq!(info["queue_capacity"], 4);
    // The kernels are the ones `bertq info` reports for this CPU.
    let info_text = std::process::Command::new(BIN)
        .arg("info")
        .output()
        .unwrap();
    let kernels_line = String::from_utf8(info_text.stdout).unwrap();
    let kernels = kernels_line
        .lines()
        .find(|l| l.starts_with("kernels"))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(info["kernels"], kernels.as_str());

    let health = c.query(RequestBody::Health).unwrap();
    assert_eq!(health["ok"], true);

    for _ in 0..5 {
        c.infer("Call Bob at 555-0100.", opts(true))
            .unwrap()
            .unwrap();
    }
    let long = "word ".repeat(700);
    let e = c.infer(&long, opts(false)).unwrap().unwrap_err();
    assert_eq!(e.code, ErrorCode::TextTooLong);
    assert!(e.message.contains("702 tokens"), "{}", e.message);

    let m = c.query(RequestBody::Metrics).unwrap();
    assert_eq!(m["inferences"], 5);
    // health (unix), info, health, 5 inferences, 1 rejected text (this metrics request is
    // counted after).
    assert_eq!(m["requests"], 9);
    assert_eq!(m["errors"]["text_too_long"], 1);
    let p50 = m["latency_us"]["p50"].as_u64().unwrap();
    let p99 = m["latency_us"]["p99"].as_u64().unwrap();
    assert!(p50 > 0 && p50 <= p99, "{m}");
    let hist: u64 = m["latency_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(hist, 5);

    // The client program prints metrics as JSON.
    let out = std::process::Command::new(BIN)
        .args(["client", "--tcp", &addr, "--metrics"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["latency_us"]["p90"].as_u64().unwrap() > 0);
}

/// Reads one binary reply frame from a blocking stream: (id, Ok(result JSON) or Err(code)).
fn read_reply(s: &mut UnixStream) -> (u32, Result<serde_json::Value, ErrorCode>) {
    let mut buf = Vec::new();
    let mut byte = [0u8];
    loop {
        s.read_exact(&mut byte).expect("a reply in time");
        if byte[0] == 0 {
            if buf.is_empty() {
                continue;
            }
            break;
        }
        buf.push(byte[0]);
    }
    let msg = bertq_protocol::decode_frame(&mut buf).expect("a valid reply frame");
    let r = bertq_protocol::decode_response(msg).expect("a reply");
    let v = bertq_boards::client::reply_json(&r);
    let result = match &r.body {
        bertq_protocol::ResponseBody::Error(e) => Err(e.code),
        _ => Ok(v["result"].clone()),
    };
    (r.id, result)
}

#[test]
fn bad_input_gets_one_error_each_and_loses_nothing() {
    let texts = texts();
    let expected = run_outputs(&texts[..2], &[]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let _server = Server::start_in(
        dir,
        &["--unix", sock.to_str().unwrap(), "--max-frame", "2048"],
    );

    let good = |id: u32, text: &str| raw_frame(&infer_message(id, text.as_bytes(), 1, true), 1);
    let mut bad_crc = good(90, "x");
    let n = bad_crc.len();
    bad_crc[n - 2] ^= 0x55; // a CRC byte (COBS leaves non-zero bytes as they are)
    if bad_crc[n - 2] == 0 {
        bad_crc[n - 2] = 1;
    }
    let cases: Vec<(Vec<u8>, u32, ErrorCode)> = vec![
        (b"\x17garbage\xff".to_vec(), 0, ErrorCode::BadFrame),
        (bad_crc, 0, ErrorCode::CrcMismatch),
        (raw_frame(&[91, 9], 1), 91, ErrorCode::UnknownMessage),
        (raw_frame(&[92, 2], 2), 0, ErrorCode::UnsupportedVersion),
        (
            raw_frame(&infer_message(93, b"\xff\xfe", 1, true), 1),
            93,
            ErrorCode::InvalidUtf8,
        ),
        (raw_frame(&[94, 0, 50, b'a'], 1), 94, ErrorCode::BadRequest),
        (good(95, &"long ".repeat(1000)), 0, ErrorCode::FrameTooLarge),
        (
            raw_frame(
                // 602 tokens in 1200 bytes: fits the frame, not the 512-token session.
                &infer_message(96, "a ".repeat(600).as_bytes(), 1, false),
                1,
            ),
            96,
            ErrorCode::TextTooLong,
        ),
    ];
    let mut s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    // Each bad message between two good ones, all written at once: one reply each, in order.
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for (i, (bytes, id, code)) in cases.iter().enumerate() {
        let gid = 1 + i as u32;
        stream.extend(good(gid, &texts[i % 2]));
        want.push((gid, Ok(json(&expected[i % 2]))));
        stream.extend(bytes);
        want.push((*id, Err(*code)));
    }
    stream.extend(good(50, &texts[0]));
    want.push((50, Ok(json(&expected[0]))));
    s.write_all(&stream).unwrap();
    for (k, w) in want.iter().enumerate() {
        let got = read_reply(&mut s);
        assert_eq!(&got, w, "reply {k}");
    }

    // JSON Lines errors, each answered, the connection still usable afterwards.
    let j = UnixStream::connect(&sock).unwrap();
    let mut lines = Lines::new(&j);
    let bad_lines: Vec<(Vec<u8>, serde_json::Value, &str)> = vec![
        (
            b"{\"id\": 1, \"text\": 5}".to_vec(),
            1.into(),
            "bad_request",
        ),
        (b"{\"id\": 2}".to_vec(), 2.into(), "bad_request"),
        (
            b"{\"id\": 3, \"type\": \"reboot\"}".to_vec(),
            3.into(),
            "unknown_message",
        ),
        (
            b"{\"id\": 4, \"text\": \"\xff\"}".to_vec(),
            serde_json::Value::Null,
            "invalid_utf8",
        ),
        (
            b"{\"id\": 5, \"text\": \"unterminated}".to_vec(),
            5.into(),
            "bad_frame",
        ),
        (
            b"hello there".to_vec(),
            serde_json::Value::Null,
            "bad_frame",
        ),
        (
            format!("{{\"id\": 7, \"text\": \"{}\"}}", "a".repeat(3000)).into_bytes(),
            serde_json::Value::Null,
            "frame_too_large",
        ),
        (
            b"{\"id\": 8, \"text\": \"x\", \"aggregation_strategy\": \"mean\"}".to_vec(),
            8.into(),
            "bad_request",
        ),
    ];
    for (line, id, kind) in &bad_lines {
        (&j).write_all(line).unwrap();
        (&j).write_all(b"\n").unwrap();
        let v = lines.next();
        assert_eq!(v["error_type"], *kind, "{}", String::from_utf8_lossy(line));
        assert_eq!(&v["id"], id);
        assert!(!v["error"].as_str().unwrap().is_empty());
        (&j).write_all(b"{\"id\": 100, \"text\": \"Maria\"}\n")
            .unwrap();
        assert_eq!(lines.next()["id"], 100);
    }
}

#[test]
fn a_full_queue_answers_busy_and_every_request_gets_one_reply() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("q.sock");
    let _server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--workers",
            "1",
            "--queue",
            "1",
        ],
    );
    let text = "Maria Gonzalez ".repeat(120); // about 500 tokens: tens of ms per inference
    let expected = run_outputs(std::slice::from_ref(&text), &[])[0].clone();
    let clients = 6;
    let per_client = 4;
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (sock, text) = (sock.clone(), text.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect_unix(&sock, T).unwrap();
                // Spread over a few inference times, so that the queue empties in between.
                (0..per_client)
                    .map(|_| {
                        let r = c.infer(&text, opts(true)).unwrap();
                        std::thread::sleep(Duration::from_millis(30));
                        r
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for h in handles {
        for r in h.join().unwrap() {
            match r {
                Ok(inf) => {
                    assert_eq!(inf.json, expected);
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(e.code, ErrorCode::Busy, "{}", e.message);
                    busy += 1;
                }
            }
        }
    }
    assert_eq!(ok + busy, clients * per_client);
    assert!(ok >= 2 && busy >= 1, "ok {ok}, busy {busy}");
    let m = Client::connect_unix(&sock, T)
        .unwrap()
        .query(RequestBody::Metrics)
        .unwrap();
    assert_eq!(m["errors"]["busy"], busy);
    assert_eq!(m["inferences"], ok);
    assert_eq!(m["max_queue_depth"], 1);
}

#[test]
fn misbehaving_clients_do_not_hold_up_others() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("m.sock");
    let _server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--workers",
            "1",
            "--stall-timeout",
            "1",
            "--write-timeout",
            "1",
            "--idle-timeout",
            "3",
            "--max-connections",
            "8",
        ],
    );
    let frame = raw_frame(&infer_message(7, b"Maria Gonzalez", 1, true), 1);

    // A: half a frame, then silence. It gets a timeout error and is disconnected.
    let mut a = UnixStream::connect(&sock).unwrap();
    a.write_all(&frame[..frame.len() / 2]).unwrap();
    // B: a flood of requests, never reading a reply.
    let mut b = UnixStream::connect(&sock).unwrap();
    let flood: Vec<u8> = (0..400)
        .flat_map(|i| {
            raw_frame(
                &infer_message(i, "Call 555-0100 ".repeat(20).as_bytes(), 1, true),
                1,
            )
        })
        .collect();
    let flooder = std::thread::spawn(move || {
        b.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        let _ = b.write_all(&flood); // fails once the server drops the connection
        b
    });
    // C: a request, then gone before the reply.
    {
        let mut c = UnixStream::connect(&sock).unwrap();
        c.write_all(&frame).unwrap();
    }
    // D: a well-behaved client keeps getting prompt, correct answers meanwhile.
    let want = run_outputs(&["Maria Gonzalez".to_string()], &[])[0].clone();
    let mut d = Client::connect_unix(&sock, T).unwrap();
    let start = Instant::now();
    let mut worst = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(4) {
        let t = Instant::now();
        let r = d.infer("Maria Gonzalez", opts(true)).unwrap().unwrap();
        worst = worst.max(t.elapsed());
        assert_eq!(r.json, want);
    }
    assert!(worst < Duration::from_secs(1), "a request took {worst:?}");

    // A got its timeout error, then the connection was closed.
    a.set_read_timeout(Some(T)).unwrap();
    let (id, r) = read_reply(&mut a);
    assert_eq!((id, r), (0, Err(ErrorCode::Timeout)));
    let mut rest = Vec::new();
    assert_eq!(a.read_to_end(&mut rest).unwrap(), 0);

    // B was dropped (write timeout) rather than served forever.
    let mut b = flooder.join().unwrap();
    b.set_read_timeout(Some(T)).unwrap();
    let mut sink = Vec::new();
    let _ = b.read_to_end(&mut sink); // ends: the server closed it
    drop(d); // (idle for longer than the idle timeout by now)
    let m = Client::connect_unix(&sock, T)
        .unwrap()
        .query(RequestBody::Metrics)
        .unwrap();
    assert!(m["errors"]["timeout"].as_u64().unwrap() >= 1, "{m}");
}

#[test]
fn connections_beyond_the_limit_are_refused_with_busy() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("c.sock");
    let _server = Server::start_in(
        dir,
        &["--unix", sock.to_str().unwrap(), "--max-connections", "2"],
    );
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect_unix(&sock, T).unwrap();
        c.query(RequestBody::Health).unwrap(); // served: the link is taken
        held.push(c);
    }
    let s = UnixStream::connect(&sock).unwrap();
    let v = Lines::new(&s).next();
    assert_eq!(v["error_type"], "busy");
    drop(held);
    // Links are free again (after the server notices the closes).
    let deadline = Instant::now() + T;
    loop {
        let mut c = Client::connect_unix(&sock, Duration::from_secs(2)).unwrap();
        if let Ok(v) = c.query(RequestBody::Health) {
            assert_eq!(v["ok"], true);
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_finishes_requests_in_flight_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("t.sock");
    let mut server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--workers",
            "1",
            "--queue",
            "4",
        ],
    );
    let text = "Maria Gonzalez lives in Boston. ".repeat(60);
    let expected = run_outputs(std::slice::from_ref(&text), &[])[0].clone();
    // Two requests in flight (one running, one queued) on two connections.
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (sock, text) = (sock.clone(), text.clone());
            std::thread::spawn(move || {
                let mut c = Client::connect_unix(&sock, T).unwrap();
                c.infer(&text, opts(true))
            })
        })
        .collect();
    let mut probe = Client::connect_unix(&sock, T).unwrap();
    let deadline = Instant::now() + T;
    while probe.query(RequestBody::Health).unwrap()["in_flight"] != 2 {
        assert!(Instant::now() < deadline, "requests never got in flight");
        std::thread::sleep(Duration::from_millis(1));
    }
    let (status, stderr) = server.terminate(Duration::from_secs(30));
    for h in handles {
        let r = h.join().unwrap().unwrap().unwrap();
        assert_eq!(r.json, expected);
    }
    assert!(status.success(), "{status:?}");
    assert!(
        stderr.iter().any(|l| l.contains("shutting down")),
        "{stderr:?}"
    );
    assert!(!sock.exists(), "the socket file was removed");
    assert!(UnixStream::connect(&sock).is_err());
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("x.sock");
    // A stale socket file (its listener is gone).
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    assert!(sock.exists());
    let _server = Server::start_in(
        dir,
        &["--unix", sock.to_str().unwrap(), "--socket-mode", "600"],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second server on the same path refuses to start.
    let out = std::process::Command::new(BIN)
        .args(["serve", "--unix", sock.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another server is listening"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Serving needs a transport.
    let out = std::process::Command::new(BIN)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_first_request_is_as_fast_as_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("w.sock");
    let _server = Server::start_in(dir, &["--unix", sock.to_str().unwrap(), "--workers", "1"]);
    let text = "Maria Gonzalez lives in Boston. ".repeat(40);
    let mut c = Client::connect_unix(&sock, T).unwrap();
    let mut times = Vec::new();
    for _ in 0..12 {
        let t = Instant::now();
        c.infer(&text, opts(true)).unwrap().unwrap();
        times.push(t.elapsed());
    }
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort();
    let median = rest[rest.len() / 2];
    // (Generous: tests run in parallel on two cores. A cold start — pages of the model and
    // the session touched for the first time — costs far more than this on a board.)
    assert!(
        first < median * 3 + Duration::from_millis(20),
        "first {first:?}, median {median:?}"
    );
}

#[test]
fn every_aggregation_strategy_equals_bertq_run() {
    let texts: Vec<String> = texts().into_iter().take(6).collect();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("a.sock");
    let _server = Server::start_in(dir, &["--unix", sock.to_str().unwrap()]);
    let mut c = Client::connect_unix(&sock, T).unwrap();
    let s = UnixStream::connect(&sock).unwrap();
    let mut lines = Lines::new(&s);
    for a in bertq_protocol::Aggregation::ALL {
        let expected = run_outputs(&texts, &["--aggregation", a.name()]);
        let options = InferOptions {
            aggregation: a,
            ..InferOptions::default()
        };
        for (t, want) in texts.iter().zip(&expected) {
            let got = c.infer(t, options).unwrap().unwrap();
            assert_eq!(&got.json, want, "{} over frames: {t:?}", a.name());
            let req = serde_json::json!({"id": 1, "text": t, "aggregation_strategy": a.name()});
            (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
            assert_eq!(
                lines.next()["result"],
                json(want),
                "{} over JSON: {t:?}",
                a.name()
            );
        }
    }
}

/// Token classification of long texts in windows (`stride`): binary `InferStride` frames and
/// JSON lines with `"stride"` reply exactly what `bertq run --stride` prints; a bad stride is a
/// `bad_request`, nothing is cut.
#[test]
fn stride_requests_equal_bertq_run() {
    let texts: Vec<String> = vec![
        "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309. ".repeat(6),
        "John Smith lives at 221B Baker Street, London.".into(),
    ];
    let expected = run_outputs(&texts, &["--max-length", "48", "--stride", "12"]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("stride.sock");
    let server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--workers",
            "1",
            "--max-length",
            "48",
        ],
    );
    let mut client = Client::connect_unix(&sock, T).unwrap();
    for (text, want) in texts.iter().zip(&expected) {
        let got = client
            .infer_stride(text, InferOptions::default(), 12)
            .unwrap()
            .unwrap();
        assert_eq!(&got.json, want, "binary stride reply for {text:?}");
        assert!(!got.truncated);
    }
    let bad = client
        .infer_stride(&texts[0], InferOptions::default(), 47)
        .unwrap()
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::BadRequest, "{bad:?}");
    let s = UnixStream::connect(&sock).unwrap();
    let mut lines = Lines::new(&s);
    for (i, (text, want)) in texts.iter().zip(&expected).enumerate() {
        let req = serde_json::json!({"id": i, "text": text, "stride": 12});
        (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
        let v = lines.next();
        assert_eq!(v["result"], json(want), "JSON stride reply for {text:?}");
    }
    let req = serde_json::json!({"id": 9, "text": texts[0], "stride": 12,
                                 "aggregation_strategy": "none"});
    (&s).write_all(format!("{req}\n").as_bytes()).unwrap();
    assert_eq!(lines.next()["error_type"], "bad_request");
    // `bertq client --stride` prints the same.
    let out = std::process::Command::new(BIN)
        .args(["client", "--unix", sock.to_str().unwrap(), "--stride", "12"])
        .args(&texts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(
        printed,
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    drop(server);
}
