#!/usr/bin/env python3
"""Fits the polynomials of runtime/src/kernels/vector.rs (EXP_POLY, ERF_NUM, ERF_DEN) and checks
them in f32, with fused multiply-adds, on the grids the runtime's unit tests use.

exp:
e^r on |r| <= ln2 / 2 as p(r) = 1 + r q(r), q of degree DEG - 1, with the least maximum
relative error (Lawson's iteratively reweighted least squares on a dense grid, which converges
to the minimax fit). Then the whole f32 `exp` (clamp, Cody-Waite reduction, Horner with fused
multiply-adds, exponent bits) is evaluated on every x the runtime's unit test uses and its worst
relative error printed: the unit test's bound is 3e-7.

erf: x P(x^2) / Q(x^2) on |x| <= 3.92 (erf(3.92) is 1 in f32; the runtime clamps x there), P of
degree 5, Q of degree 5 with Q(0) = 1, with the least maximum absolute error (a linearised
rational least-squares iteration, Lawson-weighted). Then the f32 evaluation's worst absolute
error on [-6, 6]: the unit test's bound is 5e-7.

    .venv-ref/bin/python scripts/gen_float_polys.py [--degree 5]
"""
import argparse
import math

import numpy as np

f32 = np.float32


def fit(deg: int, lo: float, hi: float, iters: int = 200):
    r = np.linspace(lo, hi, 20001)
    r = r[r != 0]
    target = np.expm1(r) / r  # q(r) should equal this
    weight = r / np.exp(r)  # |p(r) / e^r - 1| = |q(r) - target| * weight
    vander = np.vander(r, deg, increasing=True)
    u = np.ones_like(r)
    for _ in range(iters):
        w = weight * np.sqrt(u)
        q, *_ = np.linalg.lstsq(vander * w[:, None], target * w, rcond=None)
        err = np.abs((vander @ q - target) * weight)
        u = u * err
        u /= u.sum()
    return q, err.max()


def fma(a, b, c):
    # Exact product of two f32 in f64, then one rounding to f32 (double rounding is rare and
    # only moves the estimate by an ulp at most).
    return (np.float64(a) * np.float64(b) + np.float64(c)).astype(f32)


def exp32(x, poly):
    magic, log2e = f32(12582912.0), f32(math.log2(math.e))
    hi, lo = f32(0.6933594), f32(-2.1219444e-4)
    x = np.maximum(x, f32(-87.0))
    t = fma(x, log2e, magic)
    n = (t - magic).astype(f32)
    r = fma(-n, lo, fma(-n, hi, x))
    p = np.full_like(x, poly[0])
    for c in poly[1:]:
        p = fma(p, r, c)
    bits = (t.view(np.uint32) - (magic.view(np.uint32) - np.uint32(127))) << np.uint32(23)
    return (p * bits.astype(np.uint32).view(f32)).astype(f32)


ERF_CLAMP = 3.92


def fit_erf(dp: int, dq: int, x_max: float, iters: int = 60):
    x = np.linspace(0, x_max, 40001)[1:]
    s = x * x
    f = np.vectorize(math.erf)(x)
    den = np.ones_like(x)
    u = np.ones_like(x) / len(x)
    best = None
    for _ in range(iters):
        # x P(s) - f s Qt(s) = f with Q = 1 + s Qt(s), divided by the last Q (Loeb's
        # linearisation) and weighted by the running Lawson weights.
        vp = x[:, None] * np.vander(s, dp + 1, increasing=True)
        vq = -(f * s)[:, None] * np.vander(s, dq, increasing=True)
        w = np.sqrt(u) / den
        c, *_ = np.linalg.lstsq(np.hstack([vp, vq]) * w[:, None], f * w, rcond=None)
        p, q = c[: dp + 1], c[dp + 1 :]
        den = 1 + s * np.polyval(q[::-1], s)
        err = np.abs(x * np.polyval(p[::-1], s) / den - f)
        if best is None or err.max() < best[0]:
            best = (err.max(), p, q)
        u = u * (err + 1e-300)
        u /= u.sum()
    return best


def horner32(s, coefs):
    acc = np.full_like(s, coefs[0])
    for c in coefs[1:]:
        acc = fma(acc, s, c)
    return acc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--degree", type=int, default=5)
    args = ap.parse_args()
    q, err = fit(args.degree, -math.log(2) / 2, math.log(2) / 2)
    poly = [f32(c) for c in q[::-1]] + [f32(1.0)]
    print(f"degree {args.degree}: fitted max relative error {err:.3g}")
    print("EXP_POLY (highest degree first):", ", ".join(repr(float(c)) for c in poly))
    x = (np.arange(-86900, 87901, dtype=np.int64).astype(f32) * f32(1e-3)).astype(f32)
    got = exp32(x, poly)
    rel = np.abs(got / np.exp(x.astype(np.float64)) - 1).max()
    print(f"f32 exp with fused multiply-adds, x in [-86.9, 87.9]: max relative error {rel:.3g}")

    err, p, q = fit_erf(5, 5, ERF_CLAMP)
    num = [f32(c) for c in p[::-1]]
    den = [f32(c) for c in q[::-1]] + [f32(1.0)]
    print(f"erf rational 5/5 on |x| <= {ERF_CLAMP}: fitted max absolute error {err:.3g}")
    print("ERF_NUM:", ", ".join(repr(float(c)) for c in num))
    print("ERF_DEN:", ", ".join(repr(float(c)) for c in den))
    x = (np.arange(-6000, 6001).astype(f32) * f32(1e-3)).astype(f32)
    xc = np.minimum(np.maximum(x, f32(-ERF_CLAMP)), f32(ERF_CLAMP))
    s = (xc * xc).astype(f32)
    got = ((xc * horner32(s, num)).astype(f32) / horner32(s, den)).astype(f32)
    worst = np.abs(got.astype(np.float64) - np.vectorize(math.erf)(x.astype(np.float64))).max()
    print(f"f32 erf with fused multiply-adds, x in [-6, 6]: max absolute error {worst:.3g}")


if __name__ == "__main__":
    main()
