#!/usr/bin/env bash
# Creates the TensorFlow reference environment for scripts/gen_categorium_fixtures.py: categorium
# ships Keras `tf_model.h5` files, which only `transformers` 4 (TFBertForSequenceClassification)
# reads; transformers 5 dropped TensorFlow. Not needed for building or testing; CI does not use it.
#
# Usage:  scripts/setup_tf_reference_env.sh [VENV]      (default /work/tfvenv)
#         HF_HUB_OFFLINE=1 /work/tfvenv/bin/python scripts/gen_categorium_fixtures.py
#
# tests/fixtures/categorium.json was produced with Python 3.11, transformers 4.57.6,
# tensorflow-cpu 2.17.1, tf-keras 2.17.0 (about 600 MB installed).
set -euo pipefail
venv="${1:-/work/tfvenv}"
python3.11 -m venv "$venv"
"$venv/bin/pip" install "transformers>=4.40,<5" "tensorflow-cpu==2.17.1" "tf-keras==2.17.0" h5py
echo "TensorFlow reference environment ready: $venv/bin/python"
