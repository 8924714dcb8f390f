//! Shared by the server tests: starting `bertq serve` as a process, expected outputs from
//! `bertq run`, frames built by hand.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_bertq");

/// Texts with known entities, unicode, an empty one and a long one (truncated at 512 tokens).
pub fn texts() -> Vec<String> {
    vec![
        "Hi, I'm Maria Gonzalez, email maria.gonzalez@example.com, call 555-867-5309.".into(),
        "John Smith lives at 221B Baker Street, London.".into(),
        "".into(),
        "Ça coûte 12,50 € à Zürich — naïve café résumé, said Zoë Müller.".into(),
        "中文字符和日本語のテキスト 🙂👍🏽 emoji and \"quotes\" \\ backslash\ttab".into(),
        "My SSN is 078-05-1120 and my routing number is 021000021.".into(),
        "The quick brown fox jumps over the lazy dog near 221B Baker Street. ".repeat(60),
    ]
}

/// `bertq run` on each text (through stdin, one per line): the expected result lines. A
/// server's infer request is one window (long texts truncated), which `bertq run` does with
/// `--truncate`; with `--stride` in `extra`, both run the whole text in windows.
pub fn run_outputs(texts: &[String], extra: &[&str]) -> Vec<String> {
    run_outputs_of(Command::new(BIN), texts, extra)
}

/// [`run_outputs`] of another `bertq` (`program` is the command up to `run`: e.g. an aarch64
/// build under qemu-user).
pub fn run_outputs_of(mut program: Command, texts: &[String], extra: &[&str]) -> Vec<String> {
    let truncate: &[&str] = if extra.contains(&"--stride") {
        &[]
    } else {
        &["--truncate"]
    };
    let mut child = program
        .arg("run")
        .args(truncate)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("bertq run starts");
    let mut input = String::new();
    for t in texts {
        assert!(!t.contains('\n'));
        input.push_str(t);
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "bertq run failed");
    let lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), texts.len());
    lines
}

/// A `bertq serve` process, killed when dropped (if it is still running).
pub struct Server {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
    pub ready_line: String,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bertq serve ARGS` and waits (at most 60 s) for its ready line.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, args)
    }

    pub fn start_in(dir: tempfile::TempDir, args: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bertq serve starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready_line = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.contains("bertq: serving") => break l,
                Ok(l) => eprintln!("server: {l}"),
                Err(_) => {
                    let _ = child.kill();
                    panic!("bertq serve did not become ready: {:?}", child.wait());
                }
            }
        };
        Server {
            child,
            lines: rx,
            ready_line,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The TCP address from the ready line (`tcp:ADDR`).
    pub fn tcp_addr(&self) -> String {
        let i = self.ready_line.find("tcp:").expect("a tcp listener") + 4;
        self.ready_line[i..]
            .split([',', ' '])
            .next()
            .unwrap()
            .to_string()
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit; returns the stderr lines seen.
    pub fn terminate(&mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut lines = Vec::new();
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    lines.push(l);
                }
                return (status, lines);
            }
            assert!(Instant::now() < deadline, "the server did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn wait_for_path(p: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !p.exists() {
        assert!(Instant::now() < deadline, "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A frame around arbitrary message bytes (for messages no encoder would produce).
pub fn raw_frame(message: &[u8], version: u8) -> Vec<u8> {
    let mut payload = vec![0u8, version];
    payload.extend_from_slice(message);
    let crc = crc32(&payload);
    payload.extend_from_slice(&crc.to_le_bytes());
    let mut out = vec![0u8];
    out.extend(cobs_encode(&payload));
    out.push(0);
    out
}

/// CRC-32 (IEEE), bit by bit: an implementation independent of the one under test.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// COBS encoding, written from the definition (independent of the code under test).
pub fn cobs_encode(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    let mut code_at = 0;
    let mut code = 1u8;
    for &b in data {
        if b == 0 {
            out[code_at] = code;
            code_at = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(b);
            code += 1;
            if code == 0xFF {
                out[code_at] = code;
                code_at = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_at] = code;
    out
}

/// Unsigned LEB128 (postcard's varint).
pub fn varint(mut x: u64, out: &mut Vec<u8>) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// An infer request's message bytes, built from the documented layout: id, variant 0, text
/// (length + bytes), top_k, aggregation variant, truncate.
pub fn infer_message(id: u32, text: &[u8], top_k: u16, truncate: bool) -> Vec<u8> {
    let mut m = Vec::new();
    varint(id as u64, &mut m);
    m.push(0);
    varint(text.len() as u64, &mut m);
    m.extend_from_slice(text);
    varint(top_k as u64, &mut m);
    // Aggregation 8: the model's default (`ModelDefault`), as `bertq run` without --aggregation.
    m.push(8);
    m.push(truncate as u8);
    m
}
