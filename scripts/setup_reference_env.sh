#!/usr/bin/env bash
# Creates .venv-ref/, the Python environment used to regenerate the reference
# fixtures (scripts/dequantize_rampart.py, scripts/gen_model_fixtures.py).
# Not needed for building or testing the Rust code; CI does not use it.
#
# Usage:  scripts/setup_reference_env.sh   (also makes .venv-ref-qa/, see the end)
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
# PyTorch's CPU-only wheels are a tenth of PyPI's CUDA build; where their index is unreachable
# (a machine that only reaches PyPI), pip would retry it for every package, so ask once.
extra=()
if "$venv/bin/python" -c 'import urllib.request as u; u.urlopen("https://download.pytorch.org/whl/cpu/", timeout=10)' 2>/dev/null; then
    extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
else
    echo "download.pytorch.org unreachable: installing PyPI's torch (the CUDA build, about 3 GB)"
fi
"$venv/bin/pip" install "${extra[@]}" \
    torch transformers onnx onnxruntime tokenizers safetensors numpy sentence-transformers
echo "reference environment ready: $venv/bin/python"

# The question-answering fixtures (scripts/gen_qa_fixtures.py) need the `question-answering`
# pipeline, which transformers 5 removed: a second environment, .venv-ref-qa/, with
# transformers 4.57.1 (the last release that has it) on top of the packages above.
qa="$root/.venv-ref-qa"
python3 -m venv "$qa"
site() { "$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
# Reuse torch, numpy, ... from .venv-ref (a .pth line), pin only what transformers 4.57.1 needs.
site "$venv" > "$(site "$qa")/venv-ref.pth"
"$qa/bin/pip" install "transformers==4.57.1" "huggingface_hub<1.0" "tokenizers>=0.22,<0.23"
echo "question-answering reference environment ready: $qa/bin/python"
