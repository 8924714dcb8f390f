#!/usr/bin/env python3
"""Fixtures for Chinese and multilingual vocabularies end to end (tests/tests/vocabularies.rs).

No Chinese or multilingual BERT weights are reachable here, so, as the issue asks, this builds
vocabularies in the style of bert-base-chinese (uncased, CJK characters one per token) and
bert-base-multilingual-cased / -uncased (several scripts, `##` pieces, accents kept or stripped),
puts a randomly initialised BertModel behind each (weights from scripts/random_bert.py, which the
Rust test regenerates bit-exactly), and records what Hugging Face computes: BertTokenizerFast
ids and character offsets, and transformers BertModel's last hidden states (fp32, eager).

Usage (reference environment of scripts/setup_reference_env.sh):
    HF_HUB_OFFLINE=1 .venv-ref/bin/python scripts/gen_vocab_fixtures.py
Writes tests/fixtures/vocabularies.json.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import random_bert  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/vocabularies.json"
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

# bert-base-chinese style: every CJK character a token, ASCII words and pieces, punctuation.
CJK = list(
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而"
    "方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应"
    "开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命"
    "北京上海东西南爱喜欢猫狗书读写字语言模型测试今明天气很"
)
CJK_PUNCT = list("，。！？、；：（）《》“”")
ASCII_WORDS = ["the", "bert", "model", "is", "good", "test", "hello", "world", "ok", "cat", "dog"]
ASCII_PIECES = ["##s", "##ing", "##ed", "##er", "##ly"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'\"-()")

CHINESE_TEXTS = [
    "我喜欢读书。",
    "北京今天天气很好！",
    "这个BERT模型是好的test，对吗？",
    "上海和北京都是中国的大城市。",
    "猫和狗，hello world 123。",
    "《语言模型》的测试：明天再说",
    "我爱你 鑫 龘 (未知字)",
    "  中文English混合text,标点符号！  ",
]

# bert-base-multilingual style: words of several scripts, accented pieces, characters to fall
# back on (each also as a ## piece so any word of these characters tokenizes).
MULTI_WORDS = [
    "Hello", "hello", "World", "world", "Bonjour", "bonjour", "le", "monde", "café", "cafe",
    "Straße", "strasse", "über", "uber", "naïve", "naive", "Zoë", "zoe", "Москва", "москва",
    "привет", "мир", "Αθήνα", "αθηνα", "γεια", "σου", "東", "京", "日", "本", "語", "مرحبا",
    "नमस्ते", "España", "españa", "niño", "nino", "São", "sao", "Paulo", "paulo", "İstanbul",
]
MULTI_PIECES = ["##s", "##é", "##e", "##ß", "##ss", "##а", "##и", "##ος", "##en", "##ing"]
MULTI_CHARS = sorted(
    set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éèêëïîôöüûçñßãõ"
        "ÉÈÖÜÇÑ" "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДМП" "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΘ"
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي" "नमसतेकखग्ा" ".,!?'-")
)
MULTI_TEXTS = [
    "Hello World, bonjour le monde!",
    "Zoë drank a café in São Paulo.",
    "Straße über naïve niño España",
    "Привет, мир! Москва.",
    "Γεια σου, Αθήνα.",
    "東京 日本語 İstanbul",
    "مرحبا नमस्ते hello",
    "ÉCOLE Ñandú ΘΕΑ Ёлка xyzzyqqq",
]


def vocabulary(words, pieces, chars):
    vocab = list(SPECIAL)
    for t in words + pieces + chars + ["##" + c for c in chars]:
        if t not in vocab:
            vocab.append(t)
    return vocab


def rounded(x):
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim > 1:
        return [rounded(v) for v in arr]
    return [float(f"{v:.7g}") for v in arr]


def main() -> int:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    cases = [
        ("chinese", vocabulary(ASCII_WORDS + CJK + CJK_PUNCT, ASCII_PIECES, CHARS),
         {"do_lower_case": True, "tokenize_chinese_chars": True}, CHINESE_TEXTS, 31),
        ("multilingual-cased", vocabulary(MULTI_WORDS, MULTI_PIECES, MULTI_CHARS),
         {"do_lower_case": False, "tokenize_chinese_chars": True}, MULTI_TEXTS, 32),
        ("multilingual-uncased", vocabulary(MULTI_WORDS, MULTI_PIECES, MULTI_CHARS),
         {"do_lower_case": True, "tokenize_chinese_chars": True}, MULTI_TEXTS, 33),
    ]
    models = []
    for name, vocab, settings, texts, seed in cases:
        tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, **settings)
        cfg = {
            "num_hidden_layers": 2,
            "hidden_size": 64,
            "num_attention_heads": 4,
            "intermediate_size": 128,
            "vocab_size": len(vocab),
            "max_position_embeddings": 64,
            "type_vocab_size": 2,
            "layer_norm_eps": 1e-12,
            "hidden_act": "gelu",
        }
        model = BertModel(BertConfig(**cfg, attn_implementation="eager")).eval()
        model.load_state_dict(random_bert.make_state_dict(cfg, seed), strict=True)
        entries = []
        for text in texts:
            enc = tokenizer(text, return_offsets_mapping=True, return_tensors="pt")
            with torch.no_grad():
                hidden = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                               token_type_ids=enc["token_type_ids"]).last_hidden_state[0]
            ids = enc["input_ids"][0].tolist()
            entries.append({
                "text": text,
                "input_ids": ids,
                "offsets": [list(o) for o in enc["offset_mapping"][0].tolist()],
                "unknown": sum(1 for i in ids if i == 1),
                "last_hidden_state": rounded(hidden),
            })
        models.append({"name": name, "seed": seed, "config": cfg, "tokenizer": settings,
                       "vocab": vocab, "texts": entries})
        print(f"{name}: {len(vocab)} tokens, {len(texts)} texts")
    import transformers
    OUT.write_text(json.dumps({
        "description": "Constructed Chinese / multilingual vocabularies with random BertModels "
                       "(scripts/random_bert.py weights); BertTokenizerFast ids + offsets and "
                       "BertModel last hidden states. Generated by scripts/gen_vocab_fixtures.py.",
        "transformers": transformers.__version__,
        "models": models,
    }, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size / 1e3:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
