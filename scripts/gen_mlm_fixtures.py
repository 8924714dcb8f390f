#!/usr/bin/env python3
"""Reference outputs of the Hugging Face fill-mask pipeline (top_k=5) for randomly initialised
BertForMaskedLM models, next-sentence-prediction logits of BertForNextSentencePrediction models,
and tokenizer.decode on id sequences. Weights come from scripts/random_bert.py's seeded generator
(head tensors by the same rules); the Rust test (tests/tests/fill_mask.rs) rebuilds the models
with tests/src/random_bert.rs (same vocabulary of placeholder tokens) and compares.

Usage: HF_HUB_OFFLINE=1 python scripts/gen_mlm_fixtures.py
Writes tests/fixtures/fill_mask.json.
"""
import json
import random
from pathlib import Path

import torch
from transformers import (BertConfig, BertForMaskedLM, BertForNextSentencePrediction,
                          BertTokenizerFast, pipeline)

import random_bert

ROOT = Path(__file__).resolve().parent.parent

MODELS = [
    {"name": "mlm-2x64-gelu", "seed": 31,
     "config": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                    vocab_size=300, max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")},
    {"name": "mlm-1x48-relu", "seed": 32,
     "config": dict(num_hidden_layers=1, hidden_size=48, num_attention_heads=3, intermediate_size=96,
                    vocab_size=250, max_position_embeddings=32, type_vocab_size=2, layer_norm_eps=1e-5,
                    hidden_act="relu")},
]

TEXTS = ["tok7 [MASK] tok9", "[MASK] tok42 tok43 tok44", "tok10 [MASK] tok11 [MASK]", "[MASK]",
         "tok100 tok101 tok102 [MASK] tok103 tok104 tok105 tok106", "[MASK] [MASK] tok20 [MASK]"]
PAIRS = [("tok7 tok8", "tok99 tok100"), ("tok5", "tok6 tok7 tok8"), ("tok10 tok11 tok12", ""),
         ("tok50 tok51 tok52 tok53", "tok54")]

DECODE_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", ".", ",", "!", "?", "'",
                "s", "##s", "##ing", "don", "n't", "'s", "'m", "re", "'re", "##'", "a", "é", "do", "not",
                "##.", "'ve", "x"]


def vocab(size: int) -> list[str]:
    v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return v + [f"tok{i}" for i in range(len(v), size)]


def tokenizer(tokens: list[str]) -> BertTokenizerFast:
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)})


def state_dict(cfg: dict, seed: int, head: dict, pooler: bool) -> dict:
    sd = {f"bert.{k}": v for k, v in random_bert.make_state_dict(cfg, seed).items()
          if pooler or not k.startswith("pooler.")}
    for name, shape in head.items():
        sd[name] = torch.from_numpy(random_bert.make_tensor(name, shape, seed))
    return sd


def load(model, sd: dict, allowed_missing: set) -> None:
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert set(missing) <= allowed_missing, missing


def main() -> None:
    out = []
    for m in MODELS:
        cfg = dict(m["config"])
        h, v = cfg["hidden_size"], cfg["vocab_size"]
        tok = tokenizer(vocab(v))
        mlm = BertForMaskedLM(BertConfig(**cfg)).eval()
        head = {"cls.predictions.transform.dense.weight": (h, h), "cls.predictions.transform.dense.bias": (h,),
                "cls.predictions.transform.LayerNorm.weight": (h,), "cls.predictions.transform.LayerNorm.bias": (h,),
                "cls.predictions.bias": (v,)}
        load(mlm, state_dict(cfg, m["seed"], head, pooler=False),
             {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"})
        # The decoder is tied: the word embeddings and the prediction bias.
        assert torch.equal(mlm.cls.predictions.decoder.weight, mlm.bert.embeddings.word_embeddings.weight)
        assert torch.equal(mlm.cls.predictions.decoder.bias, mlm.cls.predictions.bias)
        pipe = pipeline("fill-mask", model=mlm, tokenizer=tok, top_k=5)
        cases = []
        for text in TEXTS:
            res = pipe(text)
            rows = res if isinstance(res[0], list) else [res]
            # fp32 margin between the best and the second candidate, per mask (for the int8 check)
            cases.append({"text": text, "input_ids": tok(text)["input_ids"], "multi": isinstance(res[0], list),
                          "masks": [[{"score": float(r["score"]), "token": int(r["token"]),
                                      "token_str": r["token_str"], "sequence": r["sequence"]} for r in row]
                                    for row in rows]})
        nsp = BertForNextSentencePrediction(BertConfig(**cfg)).eval()
        load(nsp, state_dict(cfg, m["seed"] + 100, {"cls.seq_relationship.weight": (2, h),
                                                    "cls.seq_relationship.bias": (2,)}, pooler=True), set())
        pairs = []
        for a, b in PAIRS:
            enc = tok(a, b, return_tensors="pt")
            with torch.no_grad():
                logits = nsp(**enc).logits[0]
            pairs.append({"text": a, "text_pair": b, "input_ids": enc["input_ids"][0].tolist(),
                          "logits": logits.tolist(), "probs": logits.softmax(-1).tolist()})
        out.append({"name": m["name"], "seed": m["seed"], "nsp_seed": m["seed"] + 100, "config": cfg,
                    "cases": cases, "pairs": pairs})
    dtok = tokenizer(DECODE_VOCAB)
    rng = random.Random(7)
    seqs = [[5, 7], [5, 13, 14, 6], [15, 16], [11, 12], [5, 17, 18, 20], [2, 5, 4, 6, 3], [7, 5], [13], [21, 5]]
    seqs += [[rng.randrange(len(DECODE_VOCAB)) for _ in range(rng.randrange(1, 9))] for _ in range(60)]
    decodes = [{"ids": ids, "skip_special_tokens": skip, "text": dtok.decode(ids, skip_special_tokens=skip)}
               for ids in seqs for skip in (False, True)]
    path = ROOT / "tests/fixtures/fill_mask.json"
    path.write_text(json.dumps({"models": out, "decode_vocab": DECODE_VOCAB, "decodes": decodes}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
