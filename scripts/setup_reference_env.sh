#!/usr/bin/env bash
# Creates .venv-ref/, the Python environment used to regenerate the reference
# fixtures (scripts/dequantize_rampart.py, scripts/gen_model_fixtures.py).
# Not needed for building or testing the Rust code; CI does not use it.
#
# Usage:  scripts/setup_reference_env.sh
#         .venv-ref/bin/python scripts/dequantize_rampart.py
#         .venv-ref/bin/python scripts/gen_model_fixtures.py
#
# The fixtures in tests/fixtures/ were produced with torch 2.15, transformers 5.24,
# onnx 1.23, onnxruntime 1.32, sentence-transformers 6.2 (CPU). Other versions
# should agree to well within the tests' tolerances.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-ref"
python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
# The CPU wheel index keeps the download small; torch's CUDA build works too.
"$venv/bin/pip" install --extra-index-url https://download.pytorch.org/whl/cpu \
    torch transformers onnx onnxruntime tokenizers safetensors numpy sentence-transformers
echo "reference environment ready: $venv/bin/python"
