//! `bertq serve --serial` end to end over a pseudo-terminal pair: a stream with flipped bits,
//! dropped bytes and garbage between frames. Every intact request gets exactly one correct
//! reply, every damaged one an error or nothing, and the link keeps working afterwards.

mod common;

use bertq_boards::client::{Client, Stream};
use bertq_protocol::{
    decode_frame, decode_response, Accumulator, ErrorCode, InferOptions, Item, RequestBody,
    ResponseBody,
};
use common::*;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A pty pair: the server gets the slave's path, the test talks through the master.
fn pty() -> (File, OwnedFd, String) {
    let p = nix::pty::openpty(None, None).expect("openpty");
    let path = nix::unistd::ttyname(&p.slave)
        .expect("ttyname")
        .to_string_lossy()
        .into_owned();
    (File::from(p.master), p.slave, path)
}

/// A deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Debug)]
enum Reply {
    Ok(u32, serde_json::Value),
    Err(u32, ErrorCode),
    /// A JSON error line (answer to garbage that started with `{`).
    Line(String),
}

/// Reads replies from the master until `stop`, decoding frames, sending each on `tx`.
fn reader(
    mut master: File,
    stop: Arc<AtomicBool>,
    tx: mpsc::Sender<Reply>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut acc = Accumulator::new(vec![0u8; 1 << 20]);
        let mut replies = ReplySink(tx);
        let mut chunk = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let mut fds = [nix::poll::PollFd::new(
                std::os::fd::AsFd::as_fd(&master),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(50u16)).unwrap_or(0) == 0 {
                continue;
            }
            let n = match master.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut rest = &chunk[..n];
            while !rest.is_empty() {
                let (item, r) = acc.feed(rest);
                rest = r;
                match item {
                    Some(Item::Frame(f)) => {
                        let msg = decode_frame(f).expect("the server's frames arrive intact");
                        let resp = decode_response(msg).expect("a valid reply");
                        replies.push(match &resp.body {
                            ResponseBody::Error(e) => Reply::Err(resp.id, e.code),
                            _ => Reply::Ok(
                                resp.id,
                                bertq_boards::client::reply_json(&resp)["result"].clone(),
                            ),
                        });
                    }
                    Some(Item::Line(l)) => {
                        replies.push(Reply::Line(String::from_utf8_lossy(l).into_owned()))
                    }
                    Some(other) => panic!("unexpected bytes from the server: {other:?}"),
                    None => {}
                }
            }
        }
    })
}

struct ReplySink(mpsc::Sender<Reply>);
impl ReplySink {
    fn push(&mut self, r: Reply) {
        let _ = self.0.send(r);
    }
}

const SENTENCES: &[&str] = &[
    "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.",
    "John Smith lives at 221B Baker Street, London.",
    "Send it to Zoë Müller, Hauptstraße 5, 10115 Berlin.",
    "Call +1 (555) 010-9999 or visit https://example.org/a?b=c.",
    "My passport number is X1234567 and I live in Springfield, IL 62704.",
    "",
    "日本語のテキスト and an emoji 🙂 for Anna.",
];

#[test]
fn corrupted_serial_stream_loses_only_damaged_requests() {
    let (master, _slave, path) = pty();
    let _server = Server::start(&["--serial", &path, "--baud", "921600", "--workers", "2"]);
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let expected: Vec<serde_json::Value> = run_outputs(&texts, &[])
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let reads = reader(master.try_clone().unwrap(), stop.clone(), tx);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut stream = Vec::new();
    let mut intact = HashMap::new();
    let mut damaged = Vec::new();
    let requests = 60u32;
    for id in 1..=requests {
        let which = rng.below(texts.len());
        let mut frame = raw_frame(&infer_message(id, texts[which].as_bytes(), 1, true), 1);
        let body = 1..frame.len() - 1; // between the delimiters
        match id % 5 {
            1 => {
                // A flipped bit inside the frame.
                let i = body.start + rng.below(body.len());
                frame[i] ^= 1 << rng.below(8);
                damaged.push(id);
            }
            2 => {
                // A dropped byte inside the frame.
                frame.remove(body.start + rng.below(body.len()));
                damaged.push(id);
            }
            3 => {
                // Garbage (with delimiters, '{', newlines, frame starts) before the frame.
                let n = 1 + rng.below(40);
                let alphabet = [0u8, 1, b'{', b'\n', b'x', 0xff, 0x7f, b'"'];
                for _ in 0..n {
                    stream.push(if rng.below(2) == 0 {
                        alphabet[rng.below(alphabet.len())]
                    } else {
                        rng.next() as u8
                    });
                }
                intact.insert(id, which);
            }
            _ => {
                intact.insert(id, which);
            }
        }
        stream.extend_from_slice(&frame);
    }
    // Write in uneven chunks, sometimes pausing (bytes trickle in as on a UART).
    let mut w = master.try_clone().unwrap();
    let mut i = 0;
    while i < stream.len() {
        let n = (1 + rng.below(96)).min(stream.len() - i);
        w.write_all(&stream[i..i + n]).unwrap();
        i += n;
        if rng.below(8) == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    // Then the link must still work: one clean request at the end.
    w.write_all(&raw_frame(
        &infer_message(1000, texts[0].as_bytes(), 1, true),
        1,
    ))
    .unwrap();

    // Collect replies (bounded in time) until the final request is answered: the link
    // answers in order, so nothing is outstanding after it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut replies = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(r) => {
                let last = matches!(r, Reply::Ok(1000, _));
                replies.push(r);
                if last {
                    break;
                }
            }
            Err(_) => panic!("no reply to the final request; got {replies:?}"),
        }
    }
    stop.store(true, Ordering::SeqCst);
    reads.join().unwrap();

    let mut answered: HashMap<u32, usize> = HashMap::new();
    let mut errors = 0;
    for r in &replies {
        match r {
            Reply::Ok(id, v) => {
                *answered.entry(*id).or_default() += 1;
                if *id == 1000 {
                    assert_eq!(v, &expected[0]);
                    continue;
                }
                let which = intact
                    .get(id)
                    .unwrap_or_else(|| panic!("a damaged request ({id}) got a result"));
                assert_eq!(v, &expected[*which], "request {id}");
            }
            Reply::Err(id, code) => {
                errors += 1;
                // Damaged frames cannot be attributed: their errors carry id 0.
                assert_eq!(*id, 0, "{code:?}");
                assert!(
                    matches!(code, ErrorCode::BadFrame | ErrorCode::CrcMismatch),
                    "{code:?}"
                );
            }
            Reply::Line(l) => {
                errors += 1;
                assert!(l.contains("\"error_type\""), "{l}");
            }
        }
    }
    for id in intact.keys() {
        assert_eq!(answered.get(id), Some(&1), "intact request {id}: one reply");
    }
    for id in &damaged {
        assert_eq!(answered.get(id), None, "damaged request {id}");
    }
    assert_eq!(answered.get(&1000), Some(&1));
    assert!(intact.len() >= 30 && damaged.len() >= 20);
    // Every damaged frame and every run of garbage was noticed.
    assert!(
        errors >= damaged.len(),
        "{errors} errors for {} damaged",
        damaged.len()
    );
}

#[test]
fn the_client_library_and_program_speak_over_a_serial_line() {
    let (master, _slave, path) = pty();
    let _server = Server::start(&["--serial", &path, "--baud", "115200", "--workers", "1"]);
    let texts: Vec<String> = SENTENCES.iter().map(|s| s.to_string()).collect();
    let expected = run_outputs(&texts, &[]);
    let mut c = Client::new(Stream::Serial(master), Duration::from_secs(20), 2).unwrap();
    for (t, want) in texts.iter().zip(&expected) {
        let r = c.infer(t, InferOptions::default()).unwrap().unwrap();
        assert_eq!(&r.json, want);
    }
    let info = c.query(RequestBody::Info).unwrap();
    assert_eq!(info["model"], "rampart-pii");
    let m = c.query(RequestBody::Metrics).unwrap();
    assert_eq!(m["inferences"], texts.len());
}

#[test]
fn serial_lines_are_raw_at_the_requested_baud() {
    use nix::sys::termios::{self, BaudRate, LocalFlags, OutputFlags};
    for (baud, rate) in [(115200, BaudRate::B115200), (921600, BaudRate::B921600)] {
        let (_master, slave, _) = pty();
        let f = File::from(slave);
        bertq_boards::serve::serial::make_raw(&f, baud).unwrap();
        let t = termios::tcgetattr(&f).unwrap();
        assert_eq!(termios::cfgetospeed(&t), rate);
        assert_eq!(termios::cfgetispeed(&t), rate);
        assert!(!t
            .local_flags
            .intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG));
        assert!(!t.output_flags.contains(OutputFlags::OPOST));
    }
    let (_master, slave, _) = pty();
    assert!(bertq_boards::serve::serial::make_raw(&File::from(slave), 12345).is_err());
}
