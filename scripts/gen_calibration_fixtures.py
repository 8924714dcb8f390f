#!/usr/bin/env python3
"""Generate tests/fixtures/calibration.json: reference answers of the activation observers.

Usage (from the repo root, reference environment of scripts/setup_reference_env.sh):
    python scripts/gen_calibration_fixtures.py

Seeded activation-like samples (Gaussian bulk plus heavy-tailed outliers, as BERT's FFN inputs
have) and, computed independently with numpy:
  minmax      max |x| / 127
  percentile  numpy.percentile(|x|, p) / 127 (linear interpolation)
  mse         brute force over the clipping thresholds max|x| * i / 512, i = 1..512: the scale
              t / 127 with the least sum of (x - clip(round_half_away(x / s), -127, 127) * s)^2,
              and that error
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "tests/fixtures/calibration.json"
CANDIDATES = 512
PERCENTILES = [50.0, 99.0, 99.9, 99.99]


def round_half_away(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def sse(x: np.ndarray, s: float) -> float:
    q = np.clip(round_half_away(x * np.float32(1.0 / np.float32(s))), -127, 127)
    return float(np.sum((x.astype(np.float64) - q * np.float64(s)) ** 2))


def mse(x: np.ndarray) -> tuple[float, float]:
    m = float(np.max(np.abs(x)))
    best = (np.inf, 0.0)
    for i in range(1, CANDIDATES + 1):
        s = float(np.float32(m * i / CANDIDATES / 127.0))
        e = sse(x, s)
        if e < best[0]:
            best = (e, s)
    return best[1], best[0]


def sample(rng: np.random.Generator, n: int, outliers: int, scale: float) -> np.ndarray:
    x = rng.normal(0.0, 1.0, n)
    idx = rng.choice(n, outliers, replace=False)
    x[idx] = rng.standard_t(2.0, outliers) * scale
    return x.astype(np.float32)


def main() -> None:
    rng = np.random.default_rng(20261126)
    cases = []
    for name, n, outliers, scale in [
        ("gaussian", 2000, 0, 1.0),
        ("few_outliers", 3000, 6, 20.0),
        ("heavy_tail", 2500, 60, 8.0),
    ]:
        x = sample(rng, n, outliers, scale)
        a = np.abs(x)
        s, e = mse(x)
        cases.append(
            {
                "name": name,
                "values": [float(v) for v in x],
                "minmax": float(np.float32(a.max()) / np.float32(127.0)),
                "percentile": {str(p): float(np.percentile(a.astype(np.float64), p) / 127.0) for p in PERCENTILES},
                "mse_scale": s,
                "mse_sse": e,
                "sse_at_minmax": sse(x, float(np.float32(a.max()) / np.float32(127.0))),
            }
        )
        print(f"{name}: minmax {cases[-1]['minmax']:.4g} mse {s:.4g} (sse {e:.4g} vs {cases[-1]['sse_at_minmax']:.4g})")
    OUT.write_text(
        json.dumps(
            {"generator": "scripts/gen_calibration_fixtures.py", "mse_candidates": CANDIDATES, "cases": cases},
            separators=(",", ":"),
        )
        + "\n"
    )
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
