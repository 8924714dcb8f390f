//! The bare-metal firmware (`firmware/`) booted under `qemu-system-aarch64`, queried through
//! its UART (a Unix socket QEMU listens on) exactly as `bertq serve` is: replies equal `bertq
//! run` on this machine (see [`Expected`]), damaged traffic gets typed errors and loses nothing,
//! several cores answer bit-identically to one, a corrupt
//! or oversized model in the model region is reported while the firmware stays up, and every
//! boot ends with a `shutdown` request and QEMU's exit status 0 (semihosting).
//!
//! The images are built by `scripts/test_firmware.sh` (which runs these tests, from `.ci/run`):
//! `target/firmware/{virt,raspi3b}` with the built-in model, `target/firmware/virt-sentiment`
//! with the sentiment classifier linked in.

mod common;

use bertq_boards::client::{Client, Stream};
use bertq_protocol::{ErrorCode, InferOptions, RequestBody};
use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Inference under TCG takes seconds; boots a little more.
const T: Duration = Duration::from_secs(180);
/// From QEMU accepting the connection to the first reply.
const BOOT: Duration = Duration::from_secs(300);
const WHY: &str = "boots the firmware under QEMU: run scripts/test_firmware.sh";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sentiment_model() -> PathBuf {
    root().join("models/sentiment-minilm.bertq")
}

/// A firmware image running under QEMU (`scripts/firmware.sh run`), killed when dropped.
struct Firmware {
    child: Child,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Firmware {
    /// Boots `image_dir`'s image on `board` (`cpu` for virt), with `region_model` in the model
    /// region if given.
    fn boot(image_dir: &str, board: &str, cpu: Option<&str>, region_model: Option<&Path>) -> Self {
        Self::boot_cores(image_dir, board, cpu, region_model, None)
    }

    /// [`Firmware::boot`] on a `virt` machine with `smp` cores.
    fn boot_cores(
        image_dir: &str,
        board: &str,
        cpu: Option<&str>,
        region_model: Option<&Path>,
        smp: Option<u32>,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("uart.sock");
        let image = root()
            .join("target/firmware")
            .join(image_dir)
            .join(match board {
                "virt" => "bertq-firmware.elf",
                _ => "kernel8.img",
            });
        assert!(
            image.exists(),
            "{}: build it with scripts/test_firmware.sh",
            image.display()
        );
        let mut cmd = Command::new(root().join("scripts/firmware.sh"));
        cmd.args(["run", "--board", board, "--image", image.to_str().unwrap()])
            .arg("--uart")
            .arg(format!("unix:{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            // Its own process group, so that a failed test kills QEMU too.
            .process_group(0);
        if let Some(c) = cpu {
            cmd.args(["--cpu", c]);
        }
        if let Some(m) = region_model {
            cmd.arg("--model").arg(m);
        }
        if let Some(n) = smp {
            cmd.args(["--smp", &n.to_string()]);
        }
        let child = cmd.spawn().expect("scripts/firmware.sh starts");
        wait_for_path(&sock, Duration::from_secs(60));
        Firmware {
            child,
            sock,
            _dir: dir,
        }
    }

    /// The UART: QEMU starts the guest when this connects. Bytes sent while the firmware is
    /// still setting its UART up can be lost, as on any serial line: a `health` request through
    /// the client library (which sends again what got no reply) waits until it answers.
    fn connect(&self) -> UnixStream {
        let s = connect_uart(&self.sock);
        let stream = Stream::Unix(s.try_clone().unwrap());
        // A long wait per attempt: booting (the model's CRC, warm-up, starting the other cores)
        // under TCG on a loaded two-core machine can take well over 20 s, and a request retried
        // merely for being slow would be answered twice, leaving a stale reply for the next
        // read. A frame damaged while the UART is being set up comes back at once as an
        // anonymous `bad_frame` error, and only that is retried.
        let mut client = Client::new(stream, BOOT, 8).unwrap();
        let health = client
            .query(RequestBody::Health)
            .expect("the firmware answers");
        assert_eq!(health["ok"], true, "{health}");
        // The client made the shared socket non-blocking.
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        // A frame damaged during set-up can be answered by more than one `bad_frame` error, so
        // a retried health request may leave replies behind. The firmware answers in order:
        // once a last, uniquely named request is answered, nothing older is pending.
        let mut s = s;
        s.write_all(b"{\"id\":\"sync\",\"type\":\"health\"}\n")
            .unwrap();
        while read_item(&mut s)["id"] != "sync" {}
        s
    }

    /// Asks the firmware to stop over `s` (a JSON line) and returns QEMU's exit status.
    fn shutdown(mut self, s: &mut UnixStream) -> ExitStatus {
        s.write_all(b"{\"id\":\"bye\",\"type\":\"shutdown\"}\n")
            .unwrap();
        let reply = read_item(s);
        assert_eq!(reply["id"], "bye", "{reply}");
        assert_eq!(reply["result"]["ok"], false, "{reply}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "QEMU did not exit after shutdown"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Firmware {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Reads one reply from a blocking stream: a JSON line as its value, a binary frame as
/// `{"id", "result"}` or `{"id", "error", "error_type"}` (the client library's JSON of it).
fn read_item(s: &mut UnixStream) -> Value {
    let mut byte = [0u8];
    let mut buf = Vec::new();
    // Skip the delimiters between frames.
    loop {
        s.read_exact(&mut byte).expect("a reply in time");
        if byte[0] != 0 {
            break;
        }
    }
    if byte[0] == b'{' {
        buf.push(byte[0]);
        loop {
            s.read_exact(&mut byte).expect("the rest of the line");
            if byte[0] == b'\n' {
                return serde_json::from_slice(&buf)
                    .unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(&buf)));
            }
            buf.push(byte[0]);
        }
    }
    buf.push(byte[0]);
    loop {
        s.read_exact(&mut byte).expect("the rest of the frame");
        if byte[0] == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let mut framed = vec![0u8];
    framed.extend(&buf);
    let msg = bertq_protocol::decode_frame(&mut framed[1..]).expect("a valid reply frame");
    let r = bertq_protocol::decode_response(msg).expect("a reply");
    let v = bertq_boards::client::reply_json(&r);
    match v.get("error") {
        Some(_) => v,
        None if v.get("result").is_some() => v,
        None => serde_json::json!({"id": r.id, "result": v}),
    }
}

/// Equal but for floating-point numbers, which may differ by `tolerance`.
fn assert_close_within(got: &Value, want: &Value, tolerance: f64, context: &str) {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert!((a - b).abs() <= tolerance, "{context}: {a} vs {b}");
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{context}: {got} vs {want}");
            for (x, y) in a.iter().zip(b) {
                assert_close_within(x, y, tolerance, context);
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{context}: {got} vs {want}");
            for (k, x) in a {
                assert_close_within(x, &b[k], tolerance, context);
            }
        }
        _ => assert_eq!(got, want, "{context}"),
    }
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// What the firmware must answer for some texts: `bertq run`, twice.
///
/// - The aarch64 Linux build of `bertq` (scripts/cross_build.sh, `BERTQ_AARCH64_BIN`) under
///   qemu-user on the same CPU model, so with the same kernel table: identical (scores within
///   1e-6). The firmware is that program's runtime without an operating system.
/// - This machine's own `bertq` (x86 kernels; the same int8 arithmetic and fused multiply-adds
///   in the float steps, vectorised differently): the same entities and labels, scores within
///   1e-2. Float steps that differ in the last bit can flip one activation's int8 rounding, and
///   a low-confidence entity then moves by several 1e-3 (the routing number below: 0.556 with
///   the avx512vnni table, 0.563 with avx2 and on ARM, which agree bit for bit here).
struct Expected {
    arm: Vec<String>,
    host: Vec<String>,
}

impl Expected {
    fn of(texts: &[String], extra: &[&str], cpu: &str) -> Expected {
        let bin = std::env::var("BERTQ_AARCH64_BIN")
            .expect("BERTQ_AARCH64_BIN: the aarch64 bertq (scripts/test_firmware.sh sets it)");
        let mut arm = Command::new("qemu-aarch64-static");
        arm.args(["-cpu", cpu, &bin]);
        Expected {
            arm: run_outputs_of(arm, texts, extra),
            host: run_outputs(texts, extra),
        }
    }

    fn check(&self, i: usize, got: &Value, context: &str) {
        assert_close_within(got, &json(&self.arm[i]), 1e-6, context);
        assert_close_within(got, &json(&self.host[i]), 1e-2, context);
    }
}

/// The first texts of the server tests (entities, unicode, an empty text) and a long one cut to
/// the firmware's 128-token window.
fn ner_texts() -> Vec<String> {
    let mut t: Vec<String> = texts().into_iter().take(6).collect();
    t.push("Maria Gonzalez lives at 221B Baker Street, London. ".repeat(30));
    t
}

/// Sends JSON lines for `texts` (with `extra` fields) and checks each reply against `expected`.
fn check_json_lines(s: &mut UnixStream, texts: &[String], expected: &Expected, extra: Value) {
    for (i, text) in texts.iter().enumerate() {
        let mut req = serde_json::json!({"id": format!("j{i}"), "text": text});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        s.write_all(format!("{req}\n").as_bytes()).unwrap();
        let v = read_item(s);
        assert_eq!(v["id"], format!("j{i}"), "{v}");
        expected.check(i, &v["result"], &format!("JSON line for {text:?}"));
    }
}

/// Runs `texts` through the client library (binary frames) and checks them against `expected`.
fn check_frames(s: &UnixStream, texts: &[String], expected: &Expected, options: InferOptions) {
    let mut client = Client::new(Stream::Unix(s.try_clone().unwrap()), T, 0).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let got = client.infer(text, options).unwrap().unwrap();
        expected.check(i, &json(&got.json), &format!("frame for {text:?}"));
    }
    // The client made the shared socket non-blocking: back to blocking reads with a timeout.
    s.set_nonblocking(false).unwrap();
}

fn info(s: &mut UnixStream) -> Value {
    s.write_all(b"{\"id\":\"info\",\"type\":\"info\"}\n")
        .unwrap();
    let v = read_item(s);
    assert_eq!(v["id"], "info", "{v}");
    v["result"].clone()
}

/// Connects to QEMU's UART socket. The path exists once QEMU has bound it, a moment before it
/// listens: a refused connection in that moment is tried again (up to 10 s).
fn connect_uart(sock: &Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match UnixStream::connect(sock) {
            Ok(s) => return s,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                assert!(
                    Instant::now() < deadline,
                    "QEMU accepts the connection: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("QEMU accepts the connection: {e}"),
        }
    }
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn ner_on_every_cpu_equals_bertq_run() {
    let _ = WHY;
    let texts = ner_texts();
    for (cpu, kernels) in [
        ("cortex-a53", "neon"),
        ("cortex-a72", "neon"),
        ("cortex-a76", "dotprod"),
        ("max", "i8mm"),
    ] {
        let expected = Expected::of(&texts, &["--max-length", "128"], cpu);
        let fw = Firmware::boot("virt", "virt", Some(cpu), None);
        let mut s = fw.connect();
        let i = info(&mut s);
        assert_eq!(i["kernels"], kernels, "{cpu}: {i}");
        assert_eq!(i["model"], "rampart-pii");
        assert_eq!(i["max_sequence_length"], 128);
        let d = &i["device"];
        assert_eq!(d["board"], "virt");
        assert_eq!(d["model_source"], "linked");
        assert_eq!(d["model_error"], Value::Null);
        assert!(d["arena_used"].as_u64().unwrap() > 0);
        assert!(d["arena_used"].as_u64() <= d["arena_bytes"].as_u64());
        assert!(d["ram_bytes"].as_u64().unwrap() > d["arena_bytes"].as_u64().unwrap());

        check_json_lines(&mut s, &texts[..3], &expected, serde_json::json!({}));
        let options = InferOptions::default();
        check_frames(&s, &texts, &expected, options);
        let status = fw.shutdown(&mut s);
        assert_eq!(status.code(), Some(0), "{cpu}: QEMU's exit status");
    }
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn raspberry_pi_3_answers_like_bertq_run() {
    let texts: Vec<String> = ner_texts().into_iter().take(4).collect();
    let expected = Expected::of(&texts, &["--max-length", "128"], "cortex-a53");
    let fw = Firmware::boot("raspi3b", "raspi3b", None, None);
    let mut s = fw.connect();
    let i = info(&mut s);
    assert_eq!(i["kernels"], "neon");
    assert_eq!(i["device"]["board"], "raspi3b");
    // QEMU's raspi3b has four cores: the firmware starts the other three (spin table).
    assert_eq!(i["device"]["cores"], 4);
    check_json_lines(&mut s, &texts[..2], &expected, serde_json::json!({}));
    check_frames(&s, &texts, &expected, InferOptions::default());
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));
}

fn classification_texts() -> Vec<String> {
    vec![
        "A moving, beautifully acted film that stays with you.".into(),
        "Dull, overlong and badly written; I wanted my money back.".into(),
        "Ça coûte 12,50 € à Zürich — naïve café résumé.".into(),
        "".into(),
    ]
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn a_classifier_in_the_model_region_equals_bertq_run() {
    let model = sentiment_model();
    let texts = classification_texts();
    let m = model.to_str().unwrap();
    let extra = ["--model", m, "--max-length", "128", "--top-k", "2"];
    let expected = Expected::of(&texts, &extra, "cortex-a76");
    let fw = Firmware::boot("virt", "virt", Some("cortex-a76"), Some(&model));
    let mut s = fw.connect();
    let i = info(&mut s);
    assert_eq!(i["model"], "sentiment-minilm");
    assert_eq!(i["task"], "text-classification");
    assert_eq!(i["device"]["model_source"], "0x04000000");
    check_json_lines(&mut s, &texts, &expected, serde_json::json!({"top_k": 2}));
    let options = InferOptions {
        top_k: 2,
        ..InferOptions::default()
    };
    check_frames(&s, &texts, &expected, options);
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn a_linked_classifier_and_a_model_too_large_for_its_arena() {
    // The image built around the sentiment model answers with it...
    let model = sentiment_model();
    let texts = classification_texts();
    let m = model.to_str().unwrap();
    let expected = Expected::of(
        &texts[..2],
        &["--model", m, "--max-length", "128"],
        "cortex-a72",
    );
    let fw = Firmware::boot("virt-sentiment", "virt", Some("cortex-a72"), None);
    let mut s = fw.connect();
    assert_eq!(info(&mut s)["device"]["model_source"], "linked");
    check_frames(&s, &texts[..2], &expected, InferOptions::default());
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));

    // ...and refuses the PII model (35 labels: more session memory than its arena holds for
    // four cores), saying so, while it stays up.
    let rampart = root().join("models/rampart-pii.bertq");
    // On four cores, so that it needs the arena's every byte for them (one core needs less).
    let fw = Firmware::boot_cores(
        "virt-sentiment",
        "virt",
        Some("cortex-a72"),
        Some(&rampart),
        Some(4),
    );
    let mut s = fw.connect();
    let i = info(&mut s);
    assert_eq!(i["task"], "unavailable", "{i}");
    let error = i["device"]["model_error"].as_str().unwrap();
    assert!(error.contains("arena"), "{error}");
    assert_eq!(i["device"]["arena_used"], 0);
    s.write_all(b"{\"id\":7,\"text\":\"Maria\"}\n").unwrap();
    let v = read_item(&mut s);
    assert_eq!(
        (&v["id"], &v["error_type"]),
        (&7.into(), &"model_unavailable".into())
    );
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn a_corrupt_model_in_the_model_region_is_reported_and_the_firmware_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.bertq");
    let mut bytes = std::fs::read(sentiment_model()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&corrupt, &bytes).unwrap();

    let fw = Firmware::boot("virt", "virt", Some("cortex-a53"), Some(&corrupt));
    let mut s = fw.connect();
    let i = info(&mut s);
    assert_eq!(i["task"], "unavailable", "{i}");
    assert_eq!(i["model"], "");
    let error = i["device"]["model_error"].as_str().unwrap();
    assert!(
        error.contains("model region") && error.contains("checksum"),
        "{error}"
    );
    // Every inference, as a line or a frame, is a typed error; health and metrics still answer.
    s.write_all(b"{\"id\":1,\"text\":\"Maria\"}\n").unwrap();
    assert_eq!(read_item(&mut s)["error_type"], "model_unavailable");
    s.write_all(&raw_frame(&infer_message(2, b"Maria", 1, true), 1))
        .unwrap();
    let v = read_item(&mut s);
    assert_eq!(
        (&v["id"], &v["error_type"]),
        (&2.into(), &"model_unavailable".into())
    );
    s.write_all(b"{\"id\":3,\"type\":\"health\"}\n").unwrap();
    assert_eq!(read_item(&mut s)["result"]["ok"], true);
    s.write_all(b"{\"id\":4,\"type\":\"metrics\"}\n").unwrap();
    let m = read_item(&mut s);
    assert_eq!(m["result"]["errors"]["model_unavailable"], 2, "{m}");
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));
}

/// What one reply must be: its id and its result or error type.
#[derive(Debug)]
enum Want {
    /// The id and the index of the text whose result it is.
    Result(u32, usize),
    Error(u32, &'static [ErrorCode]),
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn damaged_traffic_gets_typed_errors_and_the_link_recovers() {
    let texts: Vec<String> = texts().into_iter().take(2).collect();
    let expected = Expected::of(&texts, &["--max-length", "128"], "cortex-a72");
    let good = |id: u32, i: usize| raw_frame(&infer_message(id, texts[i].as_bytes(), 1, true), 1);
    let mut bad_crc = good(90, 0);
    let n = bad_crc.len();
    bad_crc[n - 2] ^= 0x55;
    if bad_crc[n - 2] == 0 {
        bad_crc[n - 2] = 1;
    }
    let mut truncated = good(91, 1);
    truncated.truncate(truncated.len() - 4); // no CRC tail, no closing delimiter
                                             // Noise without delimiters, starting with neither a frame's first byte nor `{`: skipped up
                                             // to the next frame's leading 0x00, one error.
    let mut garbage = vec![0x17u8];
    garbage.extend(
        (0..300u32)
            .map(|i| (i * 37 % 251 + 1) as u8)
            .filter(|&b| b != b'\n'),
    );
    let oversized = raw_frame(
        &infer_message(92, "long ".repeat(4000).as_bytes(), 1, true),
        1,
    );
    const CRC: &[ErrorCode] = &[ErrorCode::CrcMismatch, ErrorCode::BadFrame];
    let cases: Vec<(Vec<u8>, Want)> = vec![
        (bad_crc, Want::Error(0, &[ErrorCode::CrcMismatch])),
        (truncated, Want::Error(0, CRC)),
        (garbage, Want::Error(0, &[ErrorCode::BadFrame])),
        (oversized, Want::Error(0, &[ErrorCode::FrameTooLarge])),
        (
            raw_frame(&[93, 9], 1),
            Want::Error(93, &[ErrorCode::UnknownMessage]),
        ),
        (
            raw_frame(&infer_message(94, b"\xff\xfe", 1, true), 1),
            Want::Error(94, &[ErrorCode::InvalidUtf8]),
        ),
        // A JSON line right after a frame, and a frame right after it.
        (
            format!("{}\n", serde_json::json!({"id": 95, "text": texts[1]})).into_bytes(),
            Want::Result(95, 1),
        ),
        (
            b"{\"id\": 96, \"text\": 5}\n".to_vec(),
            Want::Error(96, &[ErrorCode::BadRequest]),
        ),
    ];
    let fw = Firmware::boot("virt", "virt", Some("cortex-a72"), None);
    let mut s = fw.connect();
    // Everything in one burst: each bad message between two good frames.
    let mut stream = Vec::new();
    let mut want = Vec::new();
    for (k, (bytes, w)) in cases.into_iter().enumerate() {
        let id = 1 + k as u32;
        stream.extend(good(id, k % 2));
        want.push(Want::Result(id, k % 2));
        stream.extend(bytes);
        want.push(w);
    }
    stream.extend(good(50, 0));
    want.push(Want::Result(50, 0));
    s.write_all(&stream).unwrap();
    for (k, w) in want.iter().enumerate() {
        let v = read_item(&mut s);
        match w {
            Want::Result(id, text) => {
                assert_eq!(v["id"], *id, "reply {k}: {v}");
                expected.check(*text, &v["result"], &format!("reply {k}"));
            }
            Want::Error(id, codes) => {
                assert_eq!(v["id"], *id, "reply {k}: {v}");
                let kind = v["error_type"]
                    .as_str()
                    .unwrap_or_else(|| panic!("reply {k}: {v}"));
                assert!(
                    codes.iter().any(|c| c.name() == kind),
                    "reply {k}: {v}, want {codes:?}"
                );
            }
        }
    }
    // The link is still good, for the client library too, and the metrics counted it all.
    let mut client = Client::new(Stream::Unix(s.try_clone().unwrap()), T, 0).unwrap();
    let m = client.query(RequestBody::Metrics).unwrap();
    assert_eq!(m["inferences"], 9 + 1, "{m}");
    s.set_nonblocking(false).unwrap();
    assert_eq!(fw.shutdown(&mut s).code(), Some(0));
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn four_cores_answer_bit_identically_to_one() {
    let texts: Vec<String> = ner_texts().into_iter().take(4).collect();
    let mut replies = Vec::new();
    for smp in [1, 4] {
        let fw = Firmware::boot_cores("virt", "virt", Some("cortex-a76"), None, Some(smp));
        let mut s = fw.connect();
        assert_eq!(
            info(&mut s)["device"]["cores"],
            smp,
            "virt with {smp} cores"
        );
        let mut lines = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let req = serde_json::json!({"id": i, "text": text});
            s.write_all(format!("{req}\n").as_bytes()).unwrap();
            lines.push(read_item(&mut s).to_string());
        }
        replies.push(lines);
        assert_eq!(fw.shutdown(&mut s).code(), Some(0));
    }
    // The same bytes: every score identical, not merely close.
    assert_eq!(replies[0], replies[1]);
}

#[test]
#[ignore = "boots the firmware under QEMU: run scripts/test_firmware.sh"]
fn a_cpu_fault_is_reported_on_the_uart_and_qemu_exits_with_3() {
    // `virt-fault` executes an undefined instruction right after its UART is set up.
    let mut fw = Firmware::boot("virt-fault", "virt", Some("cortex-a53"), None);
    let mut s = connect_uart(&fw.sock);
    s.set_read_timeout(Some(T)).unwrap();
    let mut report = Vec::new();
    let _ = s.read_to_end(&mut report); // QEMU closes the socket when it exits
    let report = String::from_utf8_lossy(&report);
    assert!(
        report.contains("fatal synchronous exception") && report.contains("ESR_EL1=0x2000000"),
        "{report:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = fw.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "QEMU did not exit after the fault"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(3));
}
