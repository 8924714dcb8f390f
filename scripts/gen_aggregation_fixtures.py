#!/usr/bin/env python3
"""Reference outputs of the Hugging Face token-classification pipeline for every aggregation
strategy (none, simple, first, average, max), with the model's own logits, so that bertq's
decoding can be checked in isolation from quantization: the Rust test feeds these exact logits
to bertq's aggregation and must reproduce the pipeline's entities.

Usage (after scripts/fetch_models.sh and scripts/dequantize_rampart.py):
    HF_HUB_OFFLINE=1 python scripts/gen_aggregation_fixtures.py [--model .cache/rampart-fp32]
Writes tests/fixtures/ner_aggregation.json.
"""
import argparse
import json
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline

ROOT = Path(__file__).resolve().parent.parent

EXTRA = [
    "Contact jean-pierre.dupont@exemple.fr or call +33 6 12 34 56 78 today.",
    "Ship it to 1600 Pennsylvania Avenue NW, Washington, DC 20500, attention Mr. Obama.",
    "My SSN is 078-05-1120 and my passport number is X12345678.",
    "Email [MASK] at hello@world.io, or [UNK] me on 555 010 9999.",
    "Zoë Ångström lives in Zürich at Bahnhofstrasse 12, apt 3B.",
    "Supercalifragilisticexpialidociousandevenlongerwordsthatdonotexistanywhereatallinanyvocabularywhatsoever John",
    "",
    "no entities here at all",
    "ALL CAPS: JOHN SMITH, 42 MAIN ST, SPRINGFIELD IL 62701",
    "Routing 021000021 account 123456789012, tax id 12-3456789.",
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / ".cache/rampart-fp32"))
    args = ap.parse_args()
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForTokenClassification.from_pretrained(args.model).eval()
    base = json.loads((ROOT / "tests/fixtures/rampart_ner.json").read_text())
    texts = [s["text"] for s in base["sentences"]] + EXTRA
    strategies = ["none", "simple", "first", "average", "max"]
    pipes = {s: pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=s) for s in strategies}
    cases = []
    for text in texts:
        enc = tok(text, return_tensors="pt", truncation=True, max_length=512)
        with torch.no_grad():
            logits = model(**enc).logits[0].numpy().astype(np.float32)
        case = {
            "text": text,
            "input_ids": enc["input_ids"][0].tolist(),
            "logits": [[float(f"{v:.8g}") for v in row] for row in logits.tolist()],
        }
        for s in strategies:
            out = pipes[s](text) if text else []
            ents = []
            for e in out:
                d = {"score": float(e["score"]), "start": int(e["start"]), "end": int(e["end"])}
                if s == "none":
                    d["entity"] = e["entity"]
                    d["index"] = int(e["index"])
                else:
                    d["entity_group"] = e["entity_group"]
                ents.append(d)
            case[s] = ents
        cases.append(case)
    out = {
        "model": "Rampart fp32 (scripts/dequantize_rampart.py), transformers token-classification pipeline",
        "note": "logits are the model's; bertq's test decodes them and must match each strategy",
        "cases": cases,
    }
    path = ROOT / "tests/fixtures/ner_aggregation.json"
    path.write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")))
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {len(cases)} texts)")


if __name__ == "__main__":
    main()
