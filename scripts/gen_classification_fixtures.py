#!/usr/bin/env python3
"""Reference outputs of the Hugging Face text-classification pipeline (top_k=None, every
function_to_apply) for randomly initialised BertForSequenceClassification models whose weights
both sides draw from scripts/random_bert.py's seeded generator (the classifier too, by the same
rules). The Rust test rebuilds the model with tests/src/random_bert.rs (same vocabulary of
placeholder tokens), runs bertq's f32 path and compares every label's score.

Usage: HF_HUB_OFFLINE=1 python scripts/gen_classification_fixtures.py
Writes tests/fixtures/classification.json.
"""
import json
import tempfile
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, pipeline

import random_bert

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]

MODELS = [
    {"name": "mini-5-labels", "seed": 21, "labels": 5, "problem_type": None,
     "config": dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512,
                    vocab_size=300, max_position_embeddings=128, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")},
    {"name": "multi-label-3", "seed": 22, "labels": 3, "problem_type": "multi_label_classification",
     "config": dict(num_hidden_layers=1, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                    vocab_size=200, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")},
]

TEXTS = ["tok7 tok8 tok99", "tok5", "tok120 tok121 tok122 tok123 tok7 tok7", "", "tok42 [MASK] tok43"]
PAIRS = [("tok7 tok8", "tok99 tok100 tok101"), ("tok5", ""), ("tok10 tok11 tok12", "tok13")]


def vocab(size: int) -> list[str]:
    v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return v + [f"tok{i}" for i in range(len(v), size)]


def run(pipe, text: str) -> list[dict]:
    res = pipe(text)
    if res and isinstance(res[0], list):  # some versions nest the single input's results
        res = res[0]
    return [{"label": r["label"], "score": float(r["score"])} for r in res]


def main() -> None:
    out = []
    for m in MODELS:
        cfg = dict(m["config"])
        names = {str(i): (LABELS[i] if i < len(LABELS) else f"LABEL_{i}") for i in range(m["labels"])}
        config = BertConfig(**cfg, num_labels=m["labels"], id2label=names,
                            label2id={v: int(k) for k, v in names.items()}, problem_type=m["problem_type"])
        model = BertForSequenceClassification(config).eval()
        sd = {f"bert.{k}": v for k, v in random_bert.make_state_dict(cfg, m["seed"]).items()}
        for name, shape in [("classifier.weight", (m["labels"], cfg["hidden_size"])), ("classifier.bias", (m["labels"],))]:
            sd[name] = torch.from_numpy(random_bert.make_tensor(name, shape, m["seed"]))
        model.load_state_dict(sd, strict=True)
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / "vocab.txt").write_text("\n".join(vocab(cfg["vocab_size"])) + "\n")
            tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab(cfg["vocab_size"]))})
        cases = []
        for text in TEXTS:
            case = {"text": text, "input_ids": tok(text)["input_ids"]}
            for fn in ["softmax", "sigmoid", "none"]:
                pipe = pipeline("text-classification", model=model, tokenizer=tok, function_to_apply=fn, top_k=None)
                case[fn] = run(pipe, text)
            pipe = pipeline("text-classification", model=model, tokenizer=tok, top_k=None)
            case["default"] = run(pipe, text)
            cases.append(case)
        pairs = []
        for a, b in PAIRS:
            enc = tok(a, b)
            pipe = pipeline("text-classification", model=model, tokenizer=tok, top_k=None)
            pairs.append({"text": a, "text_pair": b, "input_ids": enc["input_ids"],
                          "token_type_ids": enc["token_type_ids"],
                          "default": run(pipe, {"text": a, "text_pair": b})})
        # longest_first truncation of pairs to a few lengths
        truncations = []
        for a, b in [("tok7 tok8 tok9 tok10 tok11", "tok12 tok13"), ("tok7", "tok8 tok9 tok10 tok11 tok12"),
                     ("tok7 tok8 tok9", "tok10 tok11 tok12")]:
            for max_length in [3, 4, 5, 6, 7, 8]:
                enc = tok(a, b, truncation="longest_first", max_length=max_length)
                truncations.append({"text": a, "text_pair": b, "max_length": max_length,
                                    "input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]})
        out.append({"pairs": pairs, "truncations": truncations, "name": m["name"], "seed": m["seed"], "labels": m["labels"],
                    "problem_type": m["problem_type"], "config": cfg, "cases": cases})
    path = ROOT / "tests/fixtures/classification.json"
    path.write_text(json.dumps({"models": out}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
