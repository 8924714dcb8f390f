#!/usr/bin/env python3
"""Reference entities of the Hugging Face token-classification pipeline on long texts with a
`stride` (overlapping windows of `tokenizer.model_max_length` tokens, entities merged across
windows by `aggregate_overlapping_entities`), for

* randomly initialised BertForTokenClassification models of two shapes (weights from
  scripts/random_bert.py's seeded generator, rebuilt by tests/src/random_bert.rs with the
  vocabulary recorded here), windows of 16 and 24 tokens, several strides and strategies;
* the real Rampart PII model in fp32 (.cache/rampart-fp32, from scripts/dequantize_rampart.py)
  with windows of 64 tokens over long texts made of the rampart_ner.json sentences.

Usage: HF_HUB_OFFLINE=1 python scripts/gen_stride_fixtures.py
Writes tests/fixtures/ner_stride.json.
"""
import json
import random
import sys
from pathlib import Path

import torch
from transformers import (AutoModelForTokenClassification, AutoTokenizer, BertConfig,
                          BertForTokenClassification, BertTokenizerFast, pipeline)

import random_bert
from gen_qa_fixtures import SENTENCES, vocab

ROOT = Path(__file__).resolve().parent.parent
LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]
STRATEGIES = ["simple", "first", "average", "max"]

MODELS = [
    {"name": "ner-2x64-gelu", "seed": 61, "window": 16, "strides": [0, 3, 7],
     "config": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                    max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12, hidden_act="gelu")},
    {"name": "ner-1x48-relu", "seed": 62, "window": 24, "strides": [5, 11],
     "config": dict(num_hidden_layers=1, hidden_size=48, num_attention_heads=3, intermediate_size=96,
                    max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-5, hidden_act="relu")},
]


def entities(out: list) -> list:
    """`[entity_group, score, start, end]` per entity (compact: the fixture stays small)."""
    return [[e["entity_group"], float(f"{float(e['score']):.7g}"), int(e["start"]), int(e["end"])] for e in out]


def main() -> None:
    tokens = vocab()
    rng = random.Random(5)
    models = []
    for m in MODELS:
        # transformers 5 builds the tokenizer from the vocabulary itself (vocab_file is ignored).
        tok = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, model_max_length=m["window"])
        cfg = dict(m["config"], vocab_size=len(tokens))
        model = BertForTokenClassification(BertConfig(
            **cfg, id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})).eval()
        h = cfg["hidden_size"]
        sd = {f"bert.{k}": v for k, v in random_bert.make_state_dict(cfg, m["seed"]).items()
              if not k.startswith("pooler.")}
        for name, shape in {"classifier.weight": (len(LABELS), h), "classifier.bias": (len(LABELS),)}.items():
            sd[name] = torch.from_numpy(random_bert.make_tensor(name, shape, m["seed"]))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        texts = []
        for n in [1, 4, 8, 10]:
            text = " ".join(rng.sample(SENTENCES, n))
            runs = []
            for stride in m["strides"]:
                for s in STRATEGIES:
                    pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=s)
                    windows = len(tok(text, truncation=True, stride=stride,
                                      return_overflowing_tokens=True)["input_ids"])
                    runs.append({"stride": stride, "aggregation": s, "windows": windows,
                                 "entities": entities(pipe(text, stride=stride))})
            texts.append({"text": text, "runs": runs})
        models.append({"name": m["name"], "seed": m["seed"], "window": m["window"], "labels": LABELS,
                       "config": cfg, "texts": texts})
    rampart = ROOT / ".cache/rampart-fp32"
    tok = AutoTokenizer.from_pretrained(rampart, model_max_length=64)
    model = AutoModelForTokenClassification.from_pretrained(rampart).eval()
    base = json.loads((ROOT / "tests/fixtures/rampart_ner.json").read_text())
    sentences = [s["text"] for s in base["sentences"]]
    real = []
    for n in [4, 7, 10]:
        text = " ".join(rng.sample(sentences, min(len(sentences), n)))
        runs = []
        for stride, s in [(16, "simple"), (8, "first"), (30, "max"), (0, "average")]:
            pipe = pipeline("token-classification", model=model, tokenizer=tok, aggregation_strategy=s)
            windows = len(tok(text, truncation=True, stride=stride, return_overflowing_tokens=True)["input_ids"])
            runs.append({"stride": stride, "aggregation": s, "windows": windows,
                         "entities": entities(pipe(text, stride=stride))})
        real.append({"text": text, "runs": runs})
    path = ROOT / "tests/fixtures/ner_stride.json"
    path.write_text(json.dumps({"vocab": tokens, "models": models,
                                "rampart": {"window": 64, "texts": real}}, ensure_ascii=False))
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)


if __name__ == "__main__":
    main()
