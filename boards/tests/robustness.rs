//! Issue 13: what an adversarial probe found in `bertq serve` and `bertq run`, each a regression
//! test that failed before its fix (D3 a JSON client swallowed by a 0x01 byte, D4 slowloris and
//! authentication, D5 the served file replaced, D6 unbounded numbers and lines, D7 the stride
//! underflow).

mod common;

use bertq_boards::client::Client;
use bertq_protocol::{ErrorCode, InferOptions, RequestBody};
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Reads JSON lines from a stream.
struct Lines<R: Read>(BufReader<R>);

impl<R: Read> Lines<R> {
    fn next(&mut self) -> Option<serde_json::Value> {
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(json(&line)),
        }
    }
}

#[test]
fn d3_a_json_line_starting_with_0x01_loses_no_request() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let _server = Server::start_in(dir, &["--unix", sock.to_str().unwrap()]);
    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    // One junk line whose first byte is 0x01, then 100 requests, all written at once. Before the
    // fix the junk opened a binary frame that swallowed every line after it: one reply.
    let mut stream = b"\x01junk\n".to_vec();
    for i in 0..100 {
        stream.extend_from_slice(format!("{{\"id\": {i}, \"text\": \"Maria\"}}\n").as_bytes());
    }
    (&s).write_all(&stream).unwrap();
    let mut lines = Lines(BufReader::new(&s));
    let first = lines.next().expect("a reply to the junk line");
    assert_eq!(first["error_type"], "bad_frame", "{first}");
    assert_eq!(first["id"], serde_json::Value::Null);
    let mut seen = vec![0u32; 100];
    for _ in 0..100 {
        let v = lines.next().expect("one reply per request");
        assert!(v.get("result").is_some(), "{v}");
        seen[v["id"].as_u64().unwrap() as usize] += 1;
    }
    assert!(
        seen.iter().all(|&n| n == 1),
        "every id answered exactly once"
    );
}

#[test]
fn d4_silent_and_dribbling_connections_do_not_lock_clients_out() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let _server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--max-connections",
            "4",
            "--stall-timeout",
            "1",
        ],
    );
    // Every slot taken by a connection that sends nothing (the default idle timeout is 300 s).
    let silent: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(1300));
    // A new client is served at once: it takes the slot of the oldest silent connection. Before
    // the fix it got `busy` for as long as the silent ones stayed (minutes).
    let start = Instant::now();
    let mut c = Client::connect_unix(&sock, T).unwrap();
    let v = c.query(RequestBody::Health).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let mut s0 = &silent[0];
    s0.set_read_timeout(Some(T)).unwrap();
    let mut rest = Vec::new();
    assert_eq!(s0.read_to_end(&mut rest).unwrap(), 0, "evicted: closed");
    drop(silent);

    // A client dribbling one byte every 200 ms of a request that never ends: the stall timer
    // runs from the message's first byte, so it is cut off after about a second (before the
    // fix every byte restarted it).
    let d = UnixStream::connect(&sock).unwrap();
    d.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    (&d).write_all(b"{\"id\": 1, \"text\": \"").unwrap();
    let start = Instant::now();
    let mut got = Vec::new();
    while start.elapsed() < Duration::from_secs(8) {
        if (&d).write_all(b"a").is_err() {
            break;
        }
        let mut buf = [0u8; 512];
        match (&d).read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\"timeout\""), "{text}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn d4_a_connection_must_complete_a_request_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let _server = Server::start_in(
        dir,
        &[
            "--unix",
            sock.to_str().unwrap(),
            "--first-request-timeout",
            "1",
        ],
    );
    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let start = Instant::now();
    let mut rest = Vec::new();
    assert_eq!((&s).read_to_end(&mut rest).unwrap(), 0);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // One that completes a request in time stays.
    let mut c = Client::connect_unix(&sock, T).unwrap();
    c.query(RequestBody::Health).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(c.query(RequestBody::Health).unwrap()["ok"], true);
}

#[test]
fn d4_one_address_holds_at_most_max_per_peer_connections() {
    let server = Server::start(&["--tcp", "0", "--max-per-peer", "2"]);
    let addr = server.tcp_addr();
    let mut held: Vec<Client> = (0..2)
        .map(|_| {
            let mut c = Client::connect_tcp(&addr, T).unwrap();
            c.query(RequestBody::Health).unwrap();
            c
        })
        .collect();
    let s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let v = Lines(BufReader::new(&s)).next().expect("a busy line");
    assert_eq!(v["error_type"], "busy");
    assert!(v["error"].as_str().unwrap().contains("address"), "{v}");
    held.pop();
    // Once one is gone, the address may connect again.
    let deadline = Instant::now() + T;
    loop {
        let mut c = Client::connect_tcp(&addr, Duration::from_secs(2)).unwrap();
        if c.query(RequestBody::Health).is_ok_and(|v| v["ok"] == true) {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn d4_a_token_is_required_off_loopback_and_checked_on_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let token = "0123456789abcdef-secret";
    let token_path = dir.path().join("token");
    std::fs::write(&token_path, format!("{token}\n")).unwrap();
    // A non-loopback address without a token: refused at start.
    let out = Command::new(BIN)
        .args(["serve", "--tcp", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));

    let sock = dir.path().join("s.sock");
    let sock_s = sock.to_str().unwrap().to_string();
    let tp = token_path.to_str().unwrap().to_string();
    let _server = Server::start_in(dir, &["--unix", &sock_s, "--token-file", &tp]);

    // JSON without the token: `unauthorized`, then closed.
    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    (&s).write_all(b"{\"id\": 1, \"text\": \"Maria\"}\n")
        .unwrap();
    let mut lines = Lines(BufReader::new(&s));
    let v = lines.next().unwrap();
    assert_eq!(v["error_type"], "unauthorized", "{v}");
    assert_eq!(v["id"], 1);
    assert!(lines.next().is_none(), "closed");

    // A wrong token: the same.
    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    (&s).write_all(b"{\"type\": \"auth\", \"token\": \"0123456789abcdef-secreT\"}\n")
        .unwrap();
    let mut lines = Lines(BufReader::new(&s));
    assert_eq!(lines.next().unwrap()["error_type"], "unauthorized");
    assert!(lines.next().is_none());

    // The token on the first request, then requests without it on the same connection.
    let s = UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    let first = format!("{{\"id\": 1, \"text\": \"Maria\", \"token\": \"{token}\"}}\n");
    (&s).write_all(first.as_bytes()).unwrap();
    (&s).write_all(b"{\"id\": 2, \"text\": \"Maria\"}\n")
        .unwrap();
    let mut lines = Lines(BufReader::new(&s));
    for id in [1, 2] {
        let v = lines.next().unwrap();
        assert_eq!(v["id"], id);
        assert!(v.get("result").is_some(), "{v}");
    }

    // Binary frames: an Auth message first.
    let mut c = Client::connect_unix(&sock, T).unwrap();
    let e = c
        .infer("Maria", InferOptions::default())
        .unwrap()
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::Unauthorized);
    let mut c = Client::connect_unix(&sock, T).unwrap();
    assert!(c.authenticate("wrong-token-wrong-token").is_err());
    let mut c = Client::connect_unix(&sock, T).unwrap();
    c.authenticate(token).unwrap();
    c.infer("Maria", InferOptions::default()).unwrap().unwrap();
}

#[test]
fn d5_the_served_model_file_can_be_truncated_or_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.bertq");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(root.join("models/rampart-pii.bertq"), &model).unwrap();
    let sock = dir.path().join("s.sock");
    let (m, s) = (model.clone(), sock.clone());
    let _server = Server::start_in(
        dir,
        &[
            "--unix",
            s.to_str().unwrap(),
            "--model",
            m.to_str().unwrap(),
        ],
    );
    let text = "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com.";
    let mut c = Client::connect_unix(&sock, T).unwrap();
    let before = c.infer(text, InferOptions::default()).unwrap().unwrap();
    // Truncated in place (what writing over it does first), then other bytes.
    std::fs::File::create(&model).unwrap();
    let mut c2 = Client::connect_unix(&sock, T).unwrap();
    let during = c2.infer(text, InferOptions::default()).unwrap().unwrap();
    std::fs::write(&model, vec![0x5au8; 30_000_000]).unwrap();
    let after = c.infer(text, InferOptions::default()).unwrap().unwrap();
    assert_eq!(before.json, during.json);
    assert_eq!(before.json, after.json);
    assert!(before.json.contains("Maria"), "{}", before.json);
}

/// `bertq ARGS` with `stdin`: (exit code, stdout, stderr).
fn bertq(args: &[&str], stdin: &[u8]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn d6_numeric_options_are_bounded_with_clear_errors() {
    let cases: &[&[&str]] = &[
        &["run", "--threads", "100000", "x"],
        &["run", "--threads", "0", "x"],
        &["run", "--max-input-tokens", "9223372036854775807", "x"],
        &["run", "--max-input-tokens", "1000000000000", "x"],
        &["bench", "--threads", "100000", "--iters", "1"],
        &["bench", "--iters", "1000000000000"],
        &[
            "serve",
            "--unix",
            "/nonexistent/x.sock",
            "--max-input-tokens",
            "1000000000000",
        ],
        &[
            "serve",
            "--unix",
            "/nonexistent/x.sock",
            "--workers",
            "100000",
        ],
        &[
            "serve",
            "--unix",
            "/nonexistent/x.sock",
            "--max-frame",
            "99999999999",
        ],
        &[
            "serve",
            "--unix",
            "/nonexistent/x.sock",
            "--max-per-peer",
            "0",
        ],
        &[
            "serve",
            "--unix",
            "/nonexistent/x.sock",
            "--first-request-timeout",
            "1e300",
        ],
    ];
    for args in cases {
        let (code, _, err) = bertq(args, b"");
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("out of range") || err.contains("at most a week"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn d6_an_over_long_input_line_is_an_error_object_and_is_not_buffered() {
    // 3 MiB without a newline, then two short lines; then an endless line cut by EOF.
    let mut input = vec![b'a'; 3 << 20];
    input.extend_from_slice(b"\nMaria Gonzalez\n");
    input.extend_from_slice(&vec![0u8; 5 << 20]);
    let (code, out, err) = bertq(&["run"], &input);
    assert_eq!(code, Some(1), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(json).collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["line"], 1);
    assert!(lines[0]["error"].as_str().unwrap().contains("longer than"));
    assert!(lines[1].is_array(), "{}", lines[1]);
    assert_eq!(lines[2]["line"], 3);
    assert!(lines[2]["error"].as_str().unwrap().contains("longer than"));
}

#[test]
fn d7_a_window_with_no_room_is_an_error_not_an_underflow() {
    let (code, _, err) = bertq(
        &["run", "--max-length", "2", "Maria Gonzalez lives here"],
        b"",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("18446744073709551615"), "{err}");
    assert!(err.contains("no room"), "{err}");
}
