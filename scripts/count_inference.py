#!/usr/bin/env python3
"""Executed aarch64 instructions of one whole BERT inference, bertq beside ONNX Runtime.

A deterministic speed proxy for ARM boards that this x86 machine can measure: both runtimes run
under qemu-user (`-cpu cortex-a53`, `cortex-a72`, `cortex-a76`, `max,sve=off,sme=off`), batch 1,
one thread, the same synthetic input of exactly N tokens, and a TCG plugin
(tools/qemu-count/count.c) counts what they execute.

- bertq: the static aarch64 build (scripts/cross_build.sh) runs `bertq bench` for I and 2I
  iterations (the same warm-up); the difference over I is one inference, start-up and model
  loading cancelled. The instructions inside the int8 GEMM kernels are counted too (their symbol
  ranges from `nm`), so the table shows what lies outside them.
- ONNX Runtime: its aarch64 wheel in an aarch64 Python made from Debian's arm64 packages (a
  sysroot under .cache/arm-count), the int8 model of scripts/compare_runtimes.py
  (`quantize_dynamic`, per-channel). Counted between marker system calls placed after session
  creation and warm-up (Python's start-up varies by millions of instructions), I runs per
  length. qemu 7.2 shows the guest the host's /proc/cpuinfo, on which ONNX Runtime's CPU
  detection crashes, so the sysroot gets an ARM one for each emulated core.
- tract (`--tract`): tools/tract-bench (tract-onnx 0.23), cross-built static for aarch64, on the
  fp32 ONNX export and on ONNX Runtime's int8 model, counted between the marker calls its
  `--markers` flag places around I runs after loading, optimising and warming up (the same fake
  /proc/cpuinfo, through the sysroot: tract picks its kernels by the core's part number too).
- qemu's `max` is run with SVE and SME off: with them ONNX Runtime switches to SVE/SME code whose
  emulated counts say nothing about speed. That leaves i8mm (SMMLA) and SDOT.

Usage (from the repo root; the reference environment makes the ONNX models on first use):
    .venv-ref/bin/python scripts/count_inference.py [--cpus ...] [--seq 8 32 128]
        [--models minilm-l6 rampart-pii] [--iters 2] [--json out.json] [--no-ort] [--profile]
        [--tract]

Set-up on first use (cached in .cache/arm-count): `apt-get download` of Debian's dynamic
qemu-user (the static one cannot load plugins) and of the arm64 Python packages, `pip download`
of the aarch64 onnxruntime and numpy wheels. Needs the cross toolchain
(scripts/install_aarch64_toolchain.sh) and gcc.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "arm-count"
COMPARE = ROOT / ".cache" / "compare"
QEMU = WORK / "qemu" / "usr" / "bin" / "qemu-aarch64"
PLUGIN = WORK / "libcount.so"
TRACT_TARGET = ROOT / "tools" / "tract-bench" / "target"
TRACT = TRACT_TARGET / "aarch64-unknown-linux-gnu" / "release" / "tract-bench"
SYSROOT = WORK / "sysroot"

CPUS = {
    # name: (qemu -cpu, fake /proc/cpuinfo part number, Features line)
    "cortex-a53": ("cortex-a53", "0xd03", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a72": ("cortex-a72", "0xd08", "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"),
    "cortex-a76": ("cortex-a76", "0xd0b",
                   "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid "
                   "asimdrdm lrcpc dcpop asimddp"),
    "max": ("max,sve=off,sme=off", "0xd49",
            "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm "
            "jscvt fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 asimdfhm dit uscat ilrcpc flagm "
            "sb paca pacg dcpodp flagm2 frint i8mm bf16"),
}

ARM64_DEBS = [
    "python3.11-minimal:arm64", "libpython3.11-minimal:arm64", "libpython3.11-stdlib:arm64",
    "libc6:arm64", "libstdc++6:arm64", "libgcc-s1:arm64", "libssl3:arm64", "libffi8:arm64",
    "zlib1g:arm64", "libexpat1:arm64", "liblzma5:arm64", "libbz2-1.0:arm64",
    "libsqlite3-0:arm64", "libncursesw6:arm64", "libtinfo6:arm64", "libuuid1:arm64",
    "libcrypt1:arm64", "libtirpc3:arm64", "libnsl2:arm64",
]

# Where bertq's instructions go, by symbol (`nm -C`): the int8 GEMM kernels of every aarch64
# table (each a `#[target_feature]` function or the NEON driver with its micro-kernel inlined),
# then the other kernel-table steps. What matches none is "other" (the model's glue, the
# embeddings, the head).
PROFILE = [
    ("int8_gemm", re.compile(r"gemm_k4n16_sdot|gemm_k4n16_smmla|gemm_k8n8_smmla|neon::gemm_k4n16")),
    ("attention", re.compile(r"ops::attention|vector::attention|gemm_nn|reference::gemm_f32")),
    ("softmax", re.compile(r"ops::softmax|aarch64::float::softmax")),
    ("activation", re.compile(r"ops::activate")),
    ("layer_norm", re.compile(r"ops::add_layer_norm")),
    ("quantize", re.compile(r"aarch64::quantize_row")),
    ("memory", re.compile(r"\bmem(cpy|move|set)")),
]

# Runs inside the aarch64 Python: warm up, then one marker-delimited segment of `iters` runs per
# length. A marker is close(-4242) (EBADF; the plugin watches for it).
ORT_DRIVER = r"""
import os, sys
import numpy as np
import onnxruntime as ort
path, iters, seqs = sys.argv[1], int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
opts.intra_op_num_threads = 1
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
def marker():
    try:
        os.close(-4242)
    except OSError:
        pass
for seq in seqs:
    ids = np.full((1, seq), 1000, dtype=np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    feed = {"input_ids": ids, "attention_mask": np.ones((1, seq), dtype=np.int64),
            "token_type_ids": np.zeros((1, seq), dtype=np.int64)}
    for _ in range(2):
        sess.run(None, feed)
    marker()
    for _ in range(iters):
        sess.run(None, feed)
    marker()
"""


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, **kw)


def setup(need_ort: bool) -> None:
    """Downloads and builds what the counts need, once."""
    debs = WORK / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if not QEMU.exists():
        run(["apt-get", "download", "qemu-user"], cwd=debs)
        deb = next(debs.glob("qemu-user_*.deb"))
        run(["dpkg", "-x", str(deb), str(WORK / "qemu")])
    src = ROOT / "tools" / "qemu-count" / "count.c"
    if not PLUGIN.exists() or PLUGIN.stat().st_mtime < src.stat().st_mtime:
        run(["gcc", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall", "-Wextra",
             "-o", str(PLUGIN), str(src)])
    if need_ort and not (SYSROOT / "site" / "onnxruntime").exists():
        run(["apt-get", "download", *ARM64_DEBS], cwd=debs)
        for deb in debs.glob("*_arm64.deb"):
            run(["dpkg", "-x", str(deb), str(SYSROOT)])
        wheels = WORK / "wheels"
        wheels.mkdir(exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--only-binary=:all:",
             "--platform", "manylinux_2_28_aarch64", "--python-version", "3.11",
             "onnxruntime==1.32.0", "numpy", "-d", str(wheels)])
        for whl in wheels.glob("*.whl"):
            run([sys.executable, "-m", "zipfile", "-e", str(whl), str(SYSROOT / "site")])


def fake_cpuinfo(cpu: str) -> None:
    _, part, features = CPUS[cpu]
    (SYSROOT / "proc").mkdir(parents=True, exist_ok=True)
    (SYSROOT / "proc" / "cpuinfo").write_text(
        f"processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: {features}\nCPU implementer\t: 0x41\n"
        f"CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: {part}\nCPU revision\t: 1\n\n")


def count(cpu: str, argv: list[str], plugin_args: list[str], env: list[str] = (),
          sysroot: Path | None = None) -> tuple[str, str]:
    """(stdout, stderr) of PROGRAM under qemu-aarch64 with the counting plugin."""
    plugin = ",".join([str(PLUGIN)] + plugin_args)
    cmd = [str(QEMU), "-cpu", CPUS[cpu][0], "-plugin", plugin]
    if sysroot is not None:
        cmd += ["-L", str(sysroot)]
    for e in env:
        cmd += ["-E", e]
    out = subprocess.run(cmd + argv, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd + argv)} failed:\n{out.stderr[-3000:]}")
    return out.stdout, out.stderr


def models(names: list[str]) -> dict[str, tuple[Path, Path, Path]]:
    """The bertq file, ONNX Runtime's int8 model and the fp32 export for each name
    (compare_runtimes.py's)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import compare_runtimes as cr  # the reference environment's export and quantization

    COMPARE.mkdir(parents=True, exist_ok=True)
    quantizer = ROOT / "target" / "release" / "bertq-quantize"
    if not quantizer.exists():
        run(["cargo", "build", "--release", "-q", "-p", "bertq-quantize"], cwd=ROOT)
    out = {}
    for name in names:
        hf = cr.MODELS[name]
        fp32, int8, bq = (COMPARE / f"{name}.onnx", COMPARE / f"{name}.int8.onnx",
                          COMPARE / f"{name}.bertq")
        if not fp32.exists():
            cr.export_onnx(hf, fp32, 16)
        if not int8.exists():
            cr.quantize_ort(fp32, int8)
        if not bq.exists():
            run([str(quantizer), "--input", str(hf), "--output", str(bq), "--name", name,
                 "--quiet"])
        out[name] = (bq, int8, fp32)
    return out


def build_tract() -> None:
    """tools/tract-bench for aarch64, static (about 10 minutes the first time: tract-onnx)."""
    import os
    env = {**os.environ, "RUSTC": "/usr/bin/rustc", "RUSTDOC": "/usr/bin/rustdoc",
           "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER": "aarch64-linux-gnu-gcc",
           "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS": "-C target-feature=+crt-static",
           "CC_aarch64_unknown_linux_gnu": "aarch64-linux-gnu-gcc",
           "CARGO_TARGET_DIR": str(TRACT_TARGET)}
    run(["cargo", "build", "--release", "-q", "--manifest-path",
         str(ROOT / "tools" / "tract-bench" / "Cargo.toml"), "--target",
         "aarch64-unknown-linux-gnu"], cwd=ROOT, env=env)


TRACT_FAILED: dict[Path, str] = {}


def tract_count(cpu: str, onnx: Path, seq: int, iters: int) -> int | None:
    """tract's instructions per inference, or None when it cannot run the model (said once)."""
    if onnx in TRACT_FAILED:
        return None
    fake_cpuinfo(cpu)
    try:
        _, err = count(cpu, [str(TRACT), str(onnx), str(seq), str(iters), "--markers"],
                       ["marker=on"], env=["RUST_BACKTRACE=0"], sysroot=SYSROOT)
    except RuntimeError as e:
        why = next((l for l in str(e).splitlines() if l.startswith("Error:")), "failed")
        TRACT_FAILED[onnx] = why
        print(f"    tract cannot run {onnx.name}: {why}", file=sys.stderr)
        return None
    segs = [int(x) for x in re.findall(r"segment \d+: (\d+)", err)]
    if len(segs) != 1:
        raise RuntimeError(f"expected one segment:\n{err[-2000:]}")
    return segs[0] // iters


def profile_ranges(binary: Path) -> Path:
    """A ranges file for the plugin: `START SIZE LABEL` per function of PROFILE."""
    nm = subprocess.run(["aarch64-linux-gnu-nm", "-S", "-C", str(binary)], check=True,
                        capture_output=True, text=True).stdout
    lines = []
    for line in nm.splitlines():
        parts = line.split(None, 3)
        if len(parts) != 4 or parts[2] not in "tTwW":
            continue
        for label, pattern in PROFILE:
            if pattern.search(parts[3]):
                lines.append(f"{parts[0]} {parts[1]} {label}")
                break
    if not any(line.endswith(" int8_gemm") for line in lines):
        raise RuntimeError(f"no GEMM kernel symbols in {binary}")
    # One file per binary: checkouts sharing .cache may count at the same time.
    key = hashlib.sha1(str(binary.resolve()).encode()).hexdigest()[:12]
    path = WORK / f"profile-ranges-{key}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def number(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    if not m:
        raise RuntimeError(f"{pattern!r} not in:\n{text[-2000:]}")
    return int(m.group(1))


def bertq_counts(binary: Path, ranges: Path, cpu: str, model: Path, seq: int,
                 iters: int) -> tuple[int, dict[str, int], str]:
    """Instructions per inference, the same by PROFILE label, and the kernel table."""
    def once(n: int) -> tuple[int, dict[str, int], str]:
        out, err = count(cpu, [str(binary), "bench", "--model", str(model), "--seq", str(seq),
                               "--threads", "1", "--iters", str(n), "--json"],
                         [f"ranges={ranges}"])
        labels = {k: int(v) for k, v in re.findall(r"label (\w+): (\d+)", err)}
        return number(r"instructions: (\d+)", err), labels, json.loads(out)["kernel"]

    # The warm-up is a tenth of the iterations, at least 2: the same for I and 2I when 2I <= 20.
    a, la, table = once(iters)
    b, lb, _ = once(2 * iters)
    profile = {k: (lb.get(k, 0) - la.get(k, 0)) // iters for k, _ in PROFILE}
    profile["other"] = (b - a) // iters - sum(profile.values())
    return (b - a) // iters, profile, table


def ort_counts(cpu: str, onnx: Path, seqs: list[int], iters: int) -> list[int]:
    fake_cpuinfo(cpu)
    driver = WORK / "ort_driver.py"
    driver.write_text(ORT_DRIVER)
    # The model is read through the sysroot's view of the file system: give it an absolute path
    # that exists there too.
    (SYSROOT / "models").mkdir(exist_ok=True)
    shutil.copy(onnx, SYSROOT / "models" / onnx.name)
    shutil.copy(driver, SYSROOT / "ort_driver.py")
    _, err = count(cpu, [str(SYSROOT / "usr" / "bin" / "python3.11"), "/ort_driver.py",
                         f"/models/{onnx.name}", str(iters), *map(str, seqs)],
                   ["marker=on"], env=["PYTHONPATH=/site", "PYTHONHOME=/usr"], sysroot=SYSROOT)
    segs = [int(x) for x in re.findall(r"segment \d+: (\d+)", err)]
    if len(segs) != len(seqs):
        raise RuntimeError(f"expected {len(seqs)} segments:\n{err[-2000:]}")
    return [s // iters for s in segs]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cpus", nargs="+", default=list(CPUS), choices=list(CPUS))
    ap.add_argument("--seq", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--models", nargs="+", default=["minilm-l6", "rampart-pii"])
    ap.add_argument("--iters", type=int, default=2, help="inferences per count (I and 2I)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--no-ort", action="store_true", help="bertq only")
    ap.add_argument("--tract", action="store_true",
                    help="also count tract (tools/tract-bench for aarch64) on the fp32 and int8 ONNX")
    ap.add_argument("--profile", action="store_true",
                    help="also print bertq's instructions by step (GEMM, attention, softmax, ...)")
    args = ap.parse_args()
    if not 1 <= args.iters <= 10:
        ap.error("--iters must be 1..10 (the warm-up must not change between I and 2I)")

    setup(not args.no_ort)
    built = subprocess.run([str(ROOT / "scripts" / "cross_build.sh"), "generic"], check=True,
                           capture_output=True, text=True, cwd=ROOT).stdout.strip().splitlines()
    stripped = ROOT / built[-1]
    unstripped = stripped.with_name("bertq")
    ranges = profile_ranges(unstripped)
    files = models(args.models)
    if args.tract:
        build_tract()

    rows = []
    print(f"{'model':12} {'cpu':11} {'seq':>4} {'table':8} {'bertq':>13} {'in GEMMs':>13} "
          f"{'outside':>12} {'ORT int8':>13} {'bertq/ORT':>9}"
          + (f" {'tract f32':>13} {'tract int8':>13} {'/tract f32':>10} {'/tract i8':>9}"
             if args.tract else ""), flush=True)
    for name in args.models:
        bq, onnx, fp32 = files[name]
        for cpu in args.cpus:
            ort = [None] * len(args.seq) if args.no_ort else ort_counts(cpu, onnx, args.seq,
                                                                          args.iters)
            for seq, o in zip(args.seq, ort):
                total, profile, table = bertq_counts(unstripped, ranges, cpu, bq, seq,
                                                     args.iters)
                gemm = profile["int8_gemm"]
                ratio = f"{total / o:.2f}" if o else "-"
                t32 = tract_count(cpu, fp32, seq, args.iters) if args.tract else None
                t8 = tract_count(cpu, onnx, seq, args.iters) if args.tract else None
                tract = (f" {t32 or 0:13,} {t8 or 0:13,} "
                         f"{f'{total / t32:.2f}' if t32 else '-':>10} "
                         f"{f'{total / t8:.2f}' if t8 else '-':>9}") if args.tract else ""
                print(f"{name:12} {cpu:11} {seq:4} {table:8} {total:13,} {gemm:13,} "
                      f"{total - gemm:12,} {o or 0:13,} {ratio:>9}{tract}", flush=True)
                if args.profile:
                    print("    " + "  ".join(f"{k} {v / 1e6:.2f}M" for k, v in profile.items()),
                          flush=True)
                rows.append({"model": name, "cpu": CPUS[cpu][0], "seq": seq, "kernels": table,
                             "bertq": total, "bertq_gemm": gemm, "bertq_outside_gemm": total - gemm,
                             "bertq_profile": profile, "ort_int8": o,
                             "tract_fp32": t32, "tract_int8": t8,
                             "ratio": total / o if o else None})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
