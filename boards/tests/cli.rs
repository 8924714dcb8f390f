//! The `bertq` command line, end to end on the built-in model.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bertq(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bertq"))
        .args(args)
        .output()
        .expect("bertq runs")
}

fn stdout_json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "bertq failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

#[test]
fn run_finds_entities_with_the_builtin_model() {
    let text = "My name is Maria Gonzalez, email maria.gonzalez@example.com.";
    let v = stdout_json(&bertq(&["run", text]));
    let entities = v.as_array().unwrap();
    let groups: Vec<&str> = entities
        .iter()
        .map(|e| e["entity_group"].as_str().unwrap())
        .collect();
    assert!(groups.contains(&"GIVEN_NAME"), "{v}");
    assert!(groups.contains(&"EMAIL"), "{v}");
    // `word` is the original text between the character offsets.
    let chars: Vec<char> = text.chars().collect();
    for e in entities {
        let (s, t) = (
            e["start"].as_u64().unwrap() as usize,
            e["end"].as_u64().unwrap() as usize,
        );
        let word: String = chars[s..t].iter().collect();
        assert_eq!(e["word"].as_str().unwrap(), word);
        let score = e["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&score));
    }
}

#[test]
fn run_reads_lines_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bertq"))
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"John lives in Boston.\n\nCall 555-0100.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 3);
    for l in lines {
        let _: serde_json::Value = serde_json::from_str(l).unwrap();
    }
}

#[test]
fn truncation_is_reported() {
    let long = "word ".repeat(100);
    let out = bertq(&["run", "--max-length", "16", "--truncate", &long]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated to 16 of 102 tokens"), "{err}");
}

/// Token classification runs long texts in windows by default: nothing is cut, entities come
/// from the whole text; `none` (which cannot use windows) refuses them instead of cutting.
#[test]
fn long_texts_run_in_windows() {
    let long = "My name is Sarah Connor and I live in Paris. ".repeat(12);
    let out = bertq(&["run", "--max-length", "32", "--stride", "8", &long]);
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    let v = stdout_json(&out);
    let last_end = v.as_array().unwrap().last().unwrap()["end"]
        .as_u64()
        .unwrap();
    assert!(last_end as usize > long.len() - 50, "{v}");
    let out = bertq(&["run", "--max-length", "32", "--aggregation", "none", &long]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--truncate"), "{err}");
    let out = bertq(&[
        "run",
        "--max-length",
        "32",
        "--max-input-tokens",
        "64",
        &long,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("longer than the session's limit of 64 tokens"),
        "{err}"
    );
}

#[test]
fn tokenize_prints_ids_tokens_and_offsets() {
    let v = stdout_json(&bertq(&["tokenize", "Héllo, wörld!"]));
    let ids = v["input_ids"].as_array().unwrap();
    let tokens = v["tokens"].as_array().unwrap();
    let offsets = v["offsets"].as_array().unwrap();
    assert_eq!(ids.len(), tokens.len());
    assert_eq!(ids.len(), offsets.len());
    assert_eq!(tokens.first().unwrap(), "[CLS]");
    assert_eq!(tokens.last().unwrap(), "[SEP]");
    assert_eq!(offsets[1], serde_json::json!([0, 5]));
}

#[test]
fn info_describes_the_model() {
    let out = bertq(&["info"]);
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "token classification",
        "6 layers x 384 hidden",
        "B-EMAIL",
        "session @ 128",
        "kernels",
    ] {
        assert!(s.contains(needle), "missing {needle:?} in\n{s}");
    }
}

#[test]
fn bad_inputs_are_clear_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bertq");
    std::fs::write(&garbage, b"this is not a model").unwrap();
    let missing = dir.path().join("missing.bertq");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "info".into(),
                "--model".into(),
                garbage.display().to_string(),
            ],
            "not a bertq model",
        ),
        (
            vec![
                "run".into(),
                "--model".into(),
                missing.display().to_string(),
                "x".into(),
            ],
            "missing.bertq",
        ),
        (
            vec!["run".into(), "--max-length".into(), "1".into(), "x".into()],
            "out of range",
        ),
        (
            vec![
                "run".into(),
                "--max-length".into(),
                "100000".into(),
                "x".into(),
            ],
            "out of range",
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = bertq(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn invalid_utf8_on_stdin_is_an_error_not_a_panic() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bertq"))
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"ok line\n\xff\xfe bad\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("UTF-8"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn run_processes_a_file_line_by_line_and_keeps_lines_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("texts.txt");
    std::fs::write(&input, b"John lives in Boston.\n\xff bad\nCall 555-0100.\n").unwrap();
    let out = bertq(&["run", "--input", input.to_str().unwrap()]);
    // One line failed (invalid UTF-8): exit code says so, and its place holds an error object.
    assert!(!out.status.success());
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].is_array() && lines[2].is_array());
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("UTF-8"));
    // The same texts as arguments give the same results.
    let direct = stdout_json(&bertq(&["run", "John lives in Boston."]));
    assert_eq!(lines[0], direct);
    let missing = bertq(&[
        "run",
        "--input",
        dir.path().join("nope.txt").to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.txt"));
}

#[test]
fn run_classifies_sentiment_with_the_shipped_trained_head() {
    // models/sentiment-minilm.bertq: MiniLM + a head written by `bertq-quantize train-head`.
    let model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/sentiment-minilm.bertq"
    );
    let cases = [
        (
            "A moving, beautifully acted film that stays with you.",
            "POSITIVE",
        ),
        (
            "A dull, lifeless mess with a script full of clichés.",
            "NEGATIVE",
        ),
    ];
    for (text, want) in cases {
        let v = stdout_json(&bertq(&["run", "--model", model, text]));
        let top = &v.as_array().unwrap()[0];
        assert_eq!(top["label"], want, "{text}: {v}");
        let score = top["score"].as_f64().unwrap();
        assert!((0.5..=1.0).contains(&score), "{v}");
    }
    // Both labels with --top-k, scores summing to 1 (softmax).
    let v = stdout_json(&bertq(&[
        "run",
        "--model",
        model,
        "--top-k",
        "5",
        "It was fine.",
    ]));
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 2);
    let sum: f64 = all.iter().map(|e| e["score"].as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "{v}");
}

/// `bertq run ... | head -1`: the reader leaves early; bertq must end by SIGPIPE like any Unix
/// tool, not panic in `println!` (exit 101 with a message).
#[test]
fn run_ends_quietly_when_the_reader_goes_away() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_bertq"))
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bertq runs");
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..2000 {
            if writeln!(stdin, "Maria Gonzalez lives in Paris.").is_err() {
                break;
            }
        }
    });
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("GIVEN_NAME"), "{first}");
    // Dropping the reader closes the pipe while bertq still has lines to print.
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status.signal(),
        Some(13),
        "status {:?}: {stderr}",
        out.status
    );
}
