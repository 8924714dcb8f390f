#!/usr/bin/env python3
"""Converts one categorium Keras model (TFBertForSequenceClassification `tf_model.h5`) into a
Hugging Face directory that `bertq-quantize` reads: model.safetensors (PyTorch names and
layouts), config.json (id2label from `<lang>_categorias.csv`, in output order), vocab.txt and
tokenizer_config.json (uncased; accents stripped, as the package's BertTokenizer does).

Needs only h5py and numpy (safetensors is written by hand: a JSON header and raw little-endian
f32). scripts/fetch_models.sh makes a small venv with them at .cache/h5venv.

Usage: .cache/h5venv/bin/python scripts/convert_categorium.py LANG OUT_DIR [CATEGORIUM_DIR]
"""
import csv
import json
import os
import struct
import sys

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PKG = os.path.join(ROOT, ".cache/models/categorium/categorium-0.2.2/categorium")


def labels(path):
    # UTF-8 with a BOM, CRLF, a `cat` header, then one category per line in output order.
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [r[0].strip() for r in csv.reader(f) if r]
    assert rows[0] == "cat", f"{path}: expected a `cat` header, found {rows[0]!r}"
    return rows[1:]


def hf_name(keras_name):
    """bert/tf_bert_for_sequence_classification/bert/encoder/layer_._0/attention/self/query/kernel:0
    -> (bert.encoder.layer.0.attention.self.query.weight, transpose?)"""
    name = keras_name.split(":")[0]
    parts = name.split("/")
    parts = parts[2:]  # drop the Keras layer and model scopes
    name = ".".join(parts).replace("layer_._", "layer.")
    transpose = False
    if name.endswith(".kernel"):
        name, transpose = name[: -len("kernel")] + "weight", True
    elif name.endswith(".gamma"):
        name = name[: -len("gamma")] + "weight"
    elif name.endswith(".beta"):
        name = name[: -len("beta")] + "bias"
    elif name.endswith("embeddings.embeddings"):
        name = name[: -len(".embeddings")] + ".weight"
    return name, transpose


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    lang, out = sys.argv[1], sys.argv[2]
    pkg = sys.argv[3] if len(sys.argv) > 3 else DEFAULT_PKG
    src = os.path.join(pkg, "modelos", lang)
    model_dir = os.path.join(src, f"{lang}_hultig_model")
    os.makedirs(out, exist_ok=True)
    tensors = {}
    with h5py.File(os.path.join(model_dir, "tf_model.h5"), "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                hf, transpose = hf_name(name)
                v = np.array(obj, dtype=np.float32)
                tensors[hf] = v.T if transpose else v
        f.visititems(visit)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    names = labels(os.path.join(src, f"{lang}_categorias.csv"))
    n = tensors["classifier.bias"].shape[0]
    assert len(names) == n, f"{len(names)} labels for {n} outputs"
    config["id2label"] = {str(i): l for i, l in enumerate(names)}
    config["label2id"] = {l: i for i, l in enumerate(names)}
    with open(os.path.join(out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
    with open(os.path.join(src, f"hultig-bert-token-uncased_{lang}-vocab.txt"), "rb") as f:
        vocab = f.read()
    with open(os.path.join(out, "vocab.txt"), "wb") as f:
        f.write(vocab)
    # BertTokenizer's defaults, as categorium loads it: lowercase, accents stripped.
    with open(os.path.join(out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"do_lower_case": True, "strip_accents": None, "tokenize_chinese_chars": True,
                   "model_max_length": 512, "tokenizer_class": "BertTokenizer"}, f, indent=2)
    print(f"{lang}: {len(tensors)} tensors, {len(names)} labels -> {out}")


if __name__ == "__main__":
    main()
