//! `bertq doctor`: CPU features, kernels, board profiles, memory fit.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_bertq");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn doctor_reports_the_kernels_bertq_info_uses_and_the_memory_fit() {
    let (ok, info, _) = run(&["info"]);
    assert!(ok);
    let kernels = info
        .lines()
        .find_map(|l| l.strip_prefix("kernels"))
        .unwrap()
        .trim()
        .to_string();
    let (ok, doc, err) = run(&["doctor", "--workers", "2"]);
    assert!(ok, "{err}");
    let line = doc.lines().find(|l| l.starts_with("kernels")).unwrap();
    assert!(line.contains(&format!("{kernels} in use")), "{doc}");
    // This machine's features, as the standard library detects them.
    #[cfg(target_arch = "x86_64")]
    {
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        assert!(doc.contains(&format!("avx2 {}", if avx2 { "yes" } else { "no" })));
    }
    // The session size `bertq info` reports for 512 tokens, times two workers.
    let session = info
        .lines()
        .find_map(|l| l.strip_prefix("session @ 512"))
        .unwrap()
        .trim()
        .to_string();
    assert!(
        doc.contains(&format!("session @ 512 tokens {session} per worker")),
        "{doc}"
    );
    assert!(doc.contains("fits"), "{doc}");
    assert!(doc.contains("verdict       ok"), "{doc}");
}

#[test]
fn board_profiles_are_listed_and_queryable() {
    let (ok, list, _) = run(&["doctor", "--list-boards"]);
    assert!(ok);
    for id in [
        "rpi3",
        "rpi4",
        "rpi5",
        "jetson-orin",
        "imx8m",
        "rk3588",
        "generic",
    ] {
        assert!(list.lines().any(|l| l.starts_with(id)), "{id} in {list}");
    }
    for (board, cpu) in [
        ("rpi3", "cortex-a53"),
        ("rpi4", "cortex-a72"),
        ("rpi5", "cortex-a76"),
    ] {
        let (ok, out, _) = run(&["doctor", "--board", board, "--print", "target-cpu"]);
        assert!(ok);
        assert_eq!(out.trim(), cpu);
    }
    let (ok, out, _) = run(&["doctor", "--board", "rpi5", "--print", "kernels"]);
    assert!(ok && out.trim() == "dotprod");
    let (ok, _, err) = run(&["doctor", "--board", "nope"]);
    assert!(!ok && err.contains("unknown"), "{err}");
    // Against a profile: one line per RAM variant, saying what fits.
    let (ok, out, err) = run(&["doctor", "--board", "rpi3"]);
    assert!(ok, "{err}");
    assert!(out.contains("  512 MB"), "{out}");
    assert!(out.contains("BERT-large (24x1024) no"), "{out}");
    assert!(out.contains("MiniLM-L6 / Rampart (6x384) yes"), "{out}");
}
