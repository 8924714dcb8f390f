#!/usr/bin/env python3
"""Reference for the train-head trainer: scikit-learn's LogisticRegression on a small synthetic
set (tests/tests/train_head.rs fits the same features with bertq's trainer and compares).

Three Gaussian classes in 16 dimensions (seeded numpy), separable up to a little overlap,
features on the scale of normalised sentence embeddings. scikit-learn fits
StandardScaler + multinomial LogisticRegression with C = 1 / (l2 * n_train) (bertq's objective
`mean cross-entropy + l2/2 ||W||²` on standardised features, bias unpenalised) to a tight
tolerance; the scaler is folded into the stored weights (W / scale, b - W·mean / scale), as
bertq writes them.

Usage: /work/refvenv/bin/python scripts/gen_train_head_fixtures.py
"""
import json
import os

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L2 = 1e-2


def main():
    rng = np.random.default_rng(7)
    d, k, per_class = 16, 3, 120
    centres = rng.normal(0.0, 1.0, (k, d))
    x = np.concatenate([centres[c] + rng.normal(0.0, 0.9, (per_class, d)) for c in range(k)])
    y = np.repeat(np.arange(k), per_class)
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # like MiniLM's
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    n_train = 240
    xtr, ytr, xte, yte = x[:n_train], y[:n_train], x[n_train:], y[n_train:]
    scaler = StandardScaler().fit(xtr.astype(np.float64))
    lr = LogisticRegression(C=1.0 / (L2 * n_train), tol=1e-12, max_iter=100000)
    lr.fit(scaler.transform(xtr.astype(np.float64)), ytr)
    w = lr.coef_ / scaler.scale_
    b = lr.intercept_ - w @ scaler.mean_
    test_logits = xte.astype(np.float64) @ w.T + b
    out = {
        "generator": "scripts/gen_train_head_fixtures.py",
        "sklearn": sklearn.__version__,
        "l2": L2,
        "d": d,
        "k": k,
        "train_x": xtr.flatten().tolist(),
        "train_y": ytr.tolist(),
        "test_x": xte.flatten().tolist(),
        "test_y": yte.tolist(),
        "weight": w.flatten().tolist(),
        "bias": b.tolist(),
        "test_logits": test_logits.flatten().tolist(),
        "train_accuracy": float((lr.predict(scaler.transform(xtr)) == ytr).mean()),
        "test_accuracy": float((test_logits.argmax(1) == yte).mean()),
    }
    path = os.path.join(ROOT, "tests/fixtures/train_head.json")
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"train accuracy {out['train_accuracy']:.4f}, test accuracy {out['test_accuracy']:.4f} -> {path}")


if __name__ == "__main__":
    main()
