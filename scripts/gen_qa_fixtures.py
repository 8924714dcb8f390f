#!/usr/bin/env python3
"""Reference answers of the Hugging Face `question-answering` pipeline for randomly initialised
BertForQuestionAnswering models of several shapes (no real QA weights are reachable here).

The pipeline was removed from transformers 5, so this script runs on transformers 4.57.1 (the
last release with `pipelines/question_answering.py`): see scripts/setup_reference_env.sh (the
`qa` environment). Weights come from scripts/random_bert.py's seeded generator, the head
`qa_outputs.*` by the same rules; the Rust test (tests/tests/question_answering.rs) rebuilds the
models with tests/src/random_bert.rs and the vocabulary recorded here, and compares.

Cases cover long contexts (several doc_stride windows), impossible answers, accents and other
non-ASCII text (character offsets), max_answer_len limits and top_k.

Usage: HF_HUB_OFFLINE=1 .venv-ref-qa/bin/python scripts/gen_qa_fixtures.py
Writes tests/fixtures/question_answering.json.
       python scripts/gen_qa_fixtures.py --write-demo DIR
writes the first random model as a Hugging Face directory (the README's example).
"""
import json
import random
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast, pipeline

import random_bert

ROOT = Path(__file__).resolve().parent.parent

# Words of the contexts (lowercased, accents stripped: what BertTokenizerFast sees), pieces
# that split longer words into subwords, letters and digits so that every word tokenizes.
WORDS = """the a an of in on at to and or is was were be has had who what where when which why how
she he it they her his their this that there here lives lived live born studied study work works
worked city river town school house street year years old new big small red blue green
zoe angstrom zurich ecole polytechnique paris cafe creme brulee munchen koln sao paulo bogota
jose garcia muller francois naive resume fiancee pinata senor lodz krakow
first second third last one two three four five six seven eight nine ten
music painting bridge tower garden market library museum station harbour
question answer context story day night morning evening because but not no yes
teacher doctor engineer painter writer baker friend sister brother mother father""".split()
PIECES = ["##s", "##ed", "##ing", "##er", "##ly", "##ion", "##al", "##ic", "##y", "##e"]
CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789")
PUNCT = list(".,;:!?'\"()-")
CJK = ["東", "京", "大", "学"]


def vocab() -> list[str]:
    v = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    v += PUNCT + CJK + CHARS + ["##" + c for c in CHARS] + PIECES + WORDS
    seen = set()
    out = []
    for t in v:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


MODELS = [
    {"name": "qa-2x64-gelu", "seed": 51,
     "config": dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128,
                    max_position_embeddings=128, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")},
    {"name": "qa-1x48-relu", "seed": 52,
     "config": dict(num_hidden_layers=1, hidden_size=48, num_attention_heads=3, intermediate_size=96,
                    max_position_embeddings=96, type_vocab_size=2, layer_norm_eps=1e-5,
                    hidden_act="relu")},
    {"name": "qa-3x32-gelu_new", "seed": 53,
     "config": dict(num_hidden_layers=3, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                    max_position_embeddings=80, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu_new")},
]

SENTENCES = [
    "Zoë Ångström lives in Zürich, near the river.",
    "She studied at the École Polytechnique in Paris in 1998.",
    "José García was born in São Paulo; his sister lives in Bogotá.",
    "François Müller worked as a baker in München and Köln.",
    "The café on Red Street sells crème brûlée every morning.",
    "Their mother, a teacher, lived in Łódź and Kraków for ten years.",
    "The old museum near the harbour has a big garden and a library.",
    "He is a painter who works at the station in the evening.",
    "東京大学 is a big school in the city.",
    "Yes, the naïve fiancée read her résumé at the piñata party, señor!",
]

QUESTIONS = ["Where does Zoë live?", "Who studied in Paris?", "What does the café sell?",
             "When was she born?", "Who works at the station?", "What is 東京大学?"]


def write_demo(out: Path) -> None:
    """The first random model as a Hugging Face directory (for `bertq-quantize`), e.g. for the
    README's question-answering example. Needs only numpy and safetensors."""
    import numpy as np
    from safetensors.numpy import save_file
    m, tokens = MODELS[0], vocab()
    cfg = dict(m["config"], vocab_size=len(tokens))
    sd = {f"bert.{k}": random_bert.make_tensor(k, s, m["seed"])
          for k, s in random_bert.tensor_shapes(cfg).items() if not k.startswith("pooler.")}
    for k, s in random_bert.qa_head_shapes(cfg).items():
        sd[k] = random_bert.make_tensor(k, s, m["seed"])
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(dict(cfg, architectures=["BertForQuestionAnswering"],
                                                     model_type="bert")))
    (out / "vocab.txt").write_text("\n".join(tokens) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--write-demo":
        return write_demo(Path(sys.argv[2]))
    assert transformers.__version__.startswith("4."), "needs transformers 4.x (question-answering pipeline)"
    tokens = vocab()
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "vocab.txt").write_text("\n".join(tokens) + "\n")
        tok = BertTokenizerFast(vocab_file=str(Path(d) / "vocab.txt"))
    rng = random.Random(11)
    out = []
    for m in MODELS:
        cfg = dict(m["config"], vocab_size=len(tokens))
        model = BertForQuestionAnswering(BertConfig(**cfg)).eval()
        sd = {f"bert.{k}": v for k, v in random_bert.make_state_dict(cfg, m["seed"]).items()
              if not k.startswith("pooler.")}
        for name, shape in random_bert.qa_head_shapes(cfg).items():
            sd[name] = torch.from_numpy(random_bert.make_tensor(name, shape, m["seed"]))
        missing, unexpected = model.load_state_dict(sd, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        pipe = pipeline("question-answering", model=model, tokenizer=tok)
        cases = []
        for i in range(16):
            n = [1, 2, 3, 6, 10, 10][i % 6] if i < 14 else [1, 4][i % 2]
            context = " ".join(rng.sample(SENTENCES, n))
            question = QUESTIONS[i % len(QUESTIONS)]
            params = {"max_seq_len": [48, 64, 40][i % 3], "top_k": [1, 3, 1, 5][i % 4],
                      "max_answer_len": [15, 4, 1, 30][i % 4],
                      "handle_impossible_answer": i % 5 == 2}
            if i % 2 == 1:
                params["doc_stride"] = [8, 16, 4][i % 3]
            if i >= 14:
                # Many answers with the empty one among them (and enough valid spans per window
                # that the pipeline never pads its candidates with zero-score spans).
                params.update(top_k=20, max_answer_len=15, handle_impossible_answer=True)
            res = pipe(question=question, context=context, **params)
            answers = res if isinstance(res, list) else [res]
            stride = params.get("doc_stride", min(params["max_seq_len"] // 2, 128))
            windows = tok(question, context, truncation="only_second", max_length=params["max_seq_len"],
                          stride=stride, return_overflowing_tokens=True)["input_ids"]
            cases.append({"question": question, "context": context, **params,
                          "windows": windows, "single": not isinstance(res, list),
                          "answers": [{"score": float(a["score"]), "start": int(a["start"]),
                                       "end": int(a["end"]), "answer": a["answer"]} for a in answers]})
        out.append({"name": m["name"], "seed": m["seed"], "config": cfg, "cases": cases})
    path = ROOT / "tests/fixtures/question_answering.json"
    path.write_text(json.dumps({"transformers": transformers.__version__, "vocab": tokens, "models": out},
                               ensure_ascii=False, indent=0))
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)", file=sys.stderr)


if __name__ == "__main__":
    main()
