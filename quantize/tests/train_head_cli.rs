//! `bertq-quantize train-head` on the command line: bad data and options get clear errors
//! (before any encoder is loaded) and a non-zero exit status, never a panic.

use std::path::PathBuf;
use std::process::Command;

/// A file under the target directory's temp space, unique per test.
fn write(name: &str, contents: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bertq-train-head-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn train_head(data: &PathBuf, extra: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bertq-quantize"))
        .arg("train-head")
        .arg("--encoder")
        .arg("/nonexistent-encoder")
        .arg("--data")
        .arg(data)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.success(), stderr)
}

#[test]
fn bad_training_data_is_reported() {
    let cases = [
        (
            "no_tab.tsv",
            "good film\tpos\nno label here\n",
            "no_tab.tsv: line 2: expected `text<TAB>label`",
        ),
        (
            "empty_label.tsv",
            "good\tpos\nbad\t\n",
            "line 2: empty label",
        ),
        (
            "one_label.tsv",
            "a\tpos\nb\tpos\nc\tpos\nd\tpos\n",
            "need at least two labels",
        ),
        ("few.tsv", "a\tpos\nb\tneg\n", "need at least 4 examples"),
        ("empty.tsv", "\n\n", "no examples"),
    ];
    for (name, data, message) in cases {
        let (ok, stderr) = train_head(&write(name, data), &[]);
        assert!(!ok, "{name} was accepted");
        assert!(stderr.contains(message), "{name}: {stderr}");
    }
    let good = write("good.tsv", "a\tpos\nb\tneg\nc\tpos\nd\tneg\n");
    let (ok, stderr) = train_head(&good, &["--labels", "pos"]);
    assert!(
        !ok && stderr.contains("label `neg` is in the data but not in --labels"),
        "{stderr}"
    );
    let (ok, stderr) = train_head(&good, &["--holdout", "1.5"]);
    assert!(!ok && stderr.contains("--holdout"), "{stderr}");
    let (ok, stderr) = train_head(&good, &["--l2=-1"]);
    assert!(!ok && stderr.contains("--l2"), "{stderr}");
    // Valid data, missing encoder: the encoder is named.
    let (ok, stderr) = train_head(&good, &[]);
    assert!(!ok && stderr.contains("/nonexistent-encoder"), "{stderr}");
    let (ok, stderr) = train_head(&PathBuf::from("/nonexistent.tsv"), &[]);
    assert!(!ok && stderr.contains("/nonexistent.tsv"), "{stderr}");
}
