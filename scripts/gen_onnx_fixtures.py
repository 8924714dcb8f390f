#!/usr/bin/env python3
"""Generate the ONNX import fixtures in tests/fixtures/onnx/ (deterministic, small).

Usage (from the repo root, reference environment with torch, transformers, onnx, onnxruntime):
    HF_HUB_OFFLINE=1 /work/refvenv/bin/python scripts/gen_onnx_fixtures.py

Tiny BERTs (2 layers, hidden 32, 4 heads, FFN 64, vocab 40) whose weights come from the seeded
generator of scripts/random_bert.py (the Rust tests regenerate them bit-exactly and write the
matching Hugging Face directory with tests/src/random_bert.rs), exported and quantized the ways
users do it:

  token_eager17.onnx       BertForTokenClassification, torch.onnx.export (TorchScript), opset 17,
                           eager attention (LayerNormalization op, scale Mul after the scores)
  seqcls_sdpa14.onnx       BertForSequenceClassification, opset 14, SDPA attention: what
                           Hugging Face Optimum exports (decomposed LayerNorm, scale on Q and K,
                           NaN guard after Softmax, Gemm pooler/classifier)
  encoder_tanh12.onnx      BertModel with hidden_act gelu_new (tanh GELU), opset 12, outputs
                           last_hidden_state and pooler_output
  token_int8_dynamic.onnx  onnxruntime quantize_dynamic(per_channel) of token_eager17:
                           DynamicQuantizeLinear + MatMulInteger, uint8 embeddings
  token_qdq.onnx           onnxruntime quantize_static(QDQ, per_channel) of token_eager17
  token_q4.onnx            token_eager17 with every Linear as com.microsoft MatMulNBits
                           (4-bit, block 32; layer 0 symmetric without zero points like the
                           Rampart package, layer 1 and the classifier with zero points) and
                           uint8 per-tensor embeddings behind DequantizeLinear
  broken_*.onnx            graphs that must be rejected with an error naming a node

expected.json records, for each fixture, the weights the importer must recover (shape and an
FNV-1a 64 hash of the float32 little-endian bytes), with values taken from the source they are
defined by: the seeded state dict for exports, onnxruntime's own DequantizeLinear outputs for
QDQ, the ONNX operator definitions (numpy) for MatMulInteger and MatMulNBits (checked here
against onnxruntime's outputs); and last hidden states for a few inputs (transformers for the
float exports, onnxruntime for the 4-bit model, whose activations stay float32).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import random_bert  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests/fixtures/onnx"

CONFIG = dict(
    num_hidden_layers=2,
    hidden_size=32,
    num_attention_heads=4,
    intermediate_size=64,
    vocab_size=40,
    max_position_embeddings=32,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    hidden_act="gelu",
)
LABEL_NAMES = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "MISC"]
# [CLS]=2, [SEP]=3 in the placeholder vocabulary tests/src/random_bert.rs writes.
INPUTS = [
    {"input_ids": [2, 7, 19, 33, 8, 11, 3], "token_type_ids": [0, 0, 0, 0, 1, 1, 1]},
    {"input_ids": [2, 39, 5, 3], "token_type_ids": [0, 0, 0, 0]},
]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def weight_entry(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a, dtype=np.float32)
    return {"shape": list(a.shape), "fnv1a64": f"{fnv1a64(a.tobytes()):016x}"}


def rounded(x) -> list:
    arr = np.asarray(x, dtype=np.float64)
    return [float(f"{v:.7g}") for v in arr.ravel()]


# --------------------------------------------------------------------------
# Seeded models and their exports
# --------------------------------------------------------------------------


def config_dict(hidden_act: str) -> dict:
    c = dict(CONFIG)
    c["hidden_act"] = hidden_act
    return c


def make_model(kind: str, seed: int, labels: int, hidden_act: str = "gelu", attn: str = "eager"):
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        BertForTokenClassification,
        BertModel,
    )

    cfg = config_dict(hidden_act)
    extra = {}
    if labels:
        extra = dict(
            num_labels=labels,
            id2label={i: LABEL_NAMES[i] if i < len(LABEL_NAMES) else f"LABEL_{i}" for i in range(labels)},
        )
    config = BertConfig(**cfg, **extra)
    config._attn_implementation = attn
    cls = {"encoder": BertModel, "token": BertForTokenClassification, "sequence": BertForSequenceClassification}[kind]
    model = cls(config).eval()
    sd = random_bert.make_state_dict(cfg, seed)
    weights = {}
    if kind == "encoder":
        state = dict(sd)
    else:
        state = {f"bert.{k}": v for k, v in sd.items()}
        if kind == "token":
            state = {k: v for k, v in state.items() if not k.startswith("bert.pooler")}
        h = cfg["hidden_size"]
        state["classifier.weight"] = torch.from_numpy(random_bert.make_tensor("classifier.weight", (labels, h), seed))
        state["classifier.bias"] = torch.from_numpy(random_bert.make_tensor("classifier.bias", (labels,), seed))
    model.load_state_dict(state, strict=True)
    for k, v in state.items():
        name = k.removeprefix("bert.")
        if kind == "encoder" and name.startswith("pooler"):
            continue  # a BertModel's pooler is not part of a sentence encoder
        weights[name] = v.numpy()
    return model, weights


class Wrapper(torch.nn.Module):
    """Exports (task output, last hidden state) or, for BertModel, (last hidden, pooler)."""

    def __init__(self, model, kind):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_hidden_states=self.kind != "encoder",
        )
        if self.kind == "encoder":
            return out.last_hidden_state, out.pooler_output
        return out.logits, out.hidden_states[-1]


def export(model, kind: str, path: Path, opset: int) -> list[str]:
    outputs = ["last_hidden_state", "pooler_output"] if kind == "encoder" else ["logits", "hidden"]
    ids = torch.tensor([INPUTS[0]["input_ids"]])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    # The wrapper must be in eval mode: export restores the wrapper's training flag on the
    # model afterwards, which would switch dropout on for the reference outputs below.
    torch.onnx.export(
        Wrapper(model, kind).eval(),
        (ids, torch.ones_like(ids), torch.tensor([INPUTS[0]["token_type_ids"]])),
        str(path),
        input_names=names,
        output_names=outputs,
        dynamic_axes={n: {0: "batch", 1: "seq"} for n in names + outputs[:1] + (outputs[1:] if kind != "encoder" else [])},
        opset_version=opset,
        dynamo=False,
    )
    model.eval()
    return outputs


def hidden_states(model, kind: str) -> list[dict]:
    res = []
    for inp in INPUTS:
        ids = torch.tensor([inp["input_ids"]])
        with torch.no_grad():
            out = model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                token_type_ids=torch.tensor([inp["token_type_ids"]]),
                output_hidden_states=True,
            )
        res.append({**inp, "hidden": rounded(out.hidden_states[-1][0].numpy())})
    return res


def ort_outputs(path: Path, name: str) -> list[dict]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    res = []
    for inp in INPUTS:
        ids = np.array([inp["input_ids"]], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.array([inp["token_type_ids"]], dtype=np.int64),
        }
        (h,) = sess.run([name], feed)
        res.append({**inp, "hidden": rounded(h[0])})
    return res


# --------------------------------------------------------------------------
# Mapping exported nodes to Hugging Face module names (the oracle may use names)
# --------------------------------------------------------------------------


def module_of(node_name: str) -> str:
    """'/model/bert/encoder/layer.0/attention/self/query/MatMul_quant' -> 'encoder.layer.0.attention.self.query'."""
    parts = [p for p in node_name.split("/") if p][:-1]
    while parts and parts[0] in ("m", "model", "bert"):
        parts = parts[1:]
    return ".".join(parts)


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def const_value(model: onnx.ModelProto, name: str, inits: dict):
    if name in inits:
        return inits[name]
    for n in model.graph.node:
        if n.op_type == "Constant" and n.output[0] == name:
            return numpy_helper.to_array(n.attribute[0].t)
    raise KeyError(name)


def dq(q: np.ndarray, scale: np.ndarray, zp: np.ndarray, axis: int | None = None) -> np.ndarray:
    """ONNX DequantizeLinear: (q - zp) * scale in float32."""
    qf = q.astype(np.int64)
    z = zp.astype(np.int64)
    s = scale.astype(np.float32)
    if axis is not None and s.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        z, s = z.reshape(shape), s.reshape(shape)
    return ((qf - z).astype(np.float32) * s).astype(np.float32)


def expected_int8_dynamic(model: onnx.ModelProto) -> dict:
    inits = initializers(model)
    prod = {o: n for n in model.graph.node for o in n.output}
    w = {}
    for n in model.graph.node:
        if n.op_type == "MatMulInteger":
            mod = module_of(n.name)
            bq, bz = inits[n.input[1]], inits[n.input[3]]
            scales_mul = next(m for m in model.graph.node if m.op_type == "Mul" and m.name == n.name + "_scales_mul")
            ws = inits[scales_mul.input[1]]
            w[mod + ".weight"] = dq(bq, ws, bz, axis=1).T
        elif n.op_type == "Add" and n.name.endswith("/Add") and module_of(n.name).endswith(("query", "key", "value", "dense", "classifier")):
            mod = module_of(n.name)
            bias = next(i for i in n.input if i in inits)
            w[mod + ".bias"] = inits[bias]
        elif n.op_type == "LayerNormalization":
            mod = module_of(n.name)
            w[mod + ".weight"], w[mod + ".bias"] = inits[n.input[1]], inits[n.input[2]]
        elif n.op_type == "DequantizeLinear" and n.input[0] in prod and prod[n.input[0]].op_type == "Gather":
            g = prod[n.input[0]]
            mod = module_of(g.name)
            w[mod + ".weight"] = dq(inits[g.input[0]], inits[n.input[1]], inits[n.input[2]])
    return w


def expected_qdq(model: onnx.ModelProto, path: Path) -> dict:
    """The float values onnxruntime itself computes for every weight of a QDQ model."""
    want: dict[str, tuple[str, bool]] = {}  # tensor -> (canonical name, transpose)
    inits = initializers(model)
    for n in model.graph.node:
        mod = module_of(n.name)
        if n.op_type == "MatMul" and mod.endswith(("query", "key", "value", "dense", "classifier")):
            want[n.input[1]] = (mod + ".weight", True)
        elif n.op_type == "Add" and n.name.endswith("/Add") and mod.endswith(("query", "key", "value", "dense", "classifier")):
            other = [i for i in n.input if "MatMul" not in i]
            want[other[0]] = (mod + ".bias", False)
        elif n.op_type == "LayerNormalization":
            want[n.input[1]] = (mod + ".weight", False)
            want[n.input[2]] = (mod + ".bias", False)
        elif n.op_type == "Gather" and mod.endswith("_embeddings"):
            want[n.input[0]] = (mod + ".weight", False)
    m = copy.deepcopy(model)
    existing = {o.name for o in m.graph.output}
    for t in want:
        if t not in existing and t not in inits:
            m.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.onnx"
        onnx.save(m, str(p))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        sess = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        names = [t for t in want if t not in inits]
        ids = np.array([INPUTS[0]["input_ids"]], dtype=np.int64)
        vals = sess.run(names, {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})
    got = dict(zip(names, vals))
    for t in want:
        if t in inits:
            got[t] = inits[t]
    w = {}
    for t, (name, tr) in want.items():
        v = np.asarray(got[t], dtype=np.float32)
        w[name] = v.T if tr else v
    return w


# --------------------------------------------------------------------------
# 4-bit MatMulNBits (what onnxruntime's MatMulNBitsQuantizer writes, built by hand)
# --------------------------------------------------------------------------


def pack_nibbles(q: np.ndarray) -> np.ndarray:
    """Pairs along the last axis: even element in the low nibble."""
    q = q.astype(np.uint8)
    if q.shape[-1] % 2:
        q = np.concatenate([q, np.zeros(q.shape[:-1] + (1,), np.uint8)], axis=-1)
    return (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)


def quantize_q4(w: np.ndarray, block: int, symmetric: bool):
    """w [N, K] -> (B [N, blocks, block/2] uint8, scales [N, blocks] f32, zp packed or None, W dequantized)."""
    n, k = w.shape
    blocks = (k + block - 1) // block
    wp = np.zeros((n, blocks * block), np.float32)
    wp[:, :k] = w
    wb = wp.reshape(n, blocks, block)
    if symmetric:
        # onnxruntime's symmetric rule: the largest-magnitude value maps to -8 (scale may be negative).
        idx = np.abs(wb).argmax(axis=-1)
        m = np.take_along_axis(wb, idx[..., None], axis=-1)[..., 0]
        scale = (m / -8.0).astype(np.float32)
        scale[scale == 0] = 1.0
        zp = np.full((n, blocks), 8, np.int64)
    else:
        lo, hi = np.minimum(wb.min(axis=-1), 0), np.maximum(wb.max(axis=-1), 0)
        scale = ((hi - lo) / 15.0).astype(np.float32)
        scale[scale == 0] = 1.0
        zp = np.clip(np.round(-lo / scale), 0, 15).astype(np.int64)
    q = np.clip(np.round(wb / scale[..., None]) + zp[..., None], 0, 15).astype(np.uint8)
    deq = ((q.astype(np.int64) - zp[..., None]).astype(np.float32) * scale[..., None]).astype(np.float32)
    packed = pack_nibbles(q)  # [N, blocks, block/2]
    zp_packed = None if symmetric else pack_nibbles(zp)  # [N, ceil(blocks/2)]
    return packed, scale, zp_packed, deq.reshape(n, blocks * block)[:, :k]


def make_q4(src: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    m = copy.deepcopy(src)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    expected = {}
    new_nodes = []
    for n in g.node:
        if n.op_type == "MatMul" and n.input[1] in inits:
            wt = numpy_helper.to_array(inits[n.input[1]])  # [K, N]
            k, nn = wt.shape
            mod = module_of(n.name)
            symmetric = ".layer.0." in "." + mod + "."
            b, s, z, deq = quantize_q4(wt.T.copy(), 32, symmetric)
            base = n.input[1]
            g.initializer.append(numpy_helper.from_array(b, base + "_Q4"))
            g.initializer.append(numpy_helper.from_array(s, base + "_scales"))
            ins = [n.input[0], base + "_Q4", base + "_scales"]
            if z is not None:
                g.initializer.append(numpy_helper.from_array(z.reshape(-1), base + "_zp"))
                ins.append(base + "_zp")
            g.initializer.remove(inits[n.input[1]])
            new_nodes.append(
                helper.make_node(
                    "MatMulNBits", ins, list(n.output), name=n.name + "_Q4", domain="com.microsoft",
                    K=k, N=nn, bits=4, block_size=32,
                )
            )
            expected[mod + ".weight"] = deq
        elif n.op_type == "Gather" and n.input[0] in inits and module_of(n.name).endswith("_embeddings"):
            t = numpy_helper.to_array(inits[n.input[0]])
            lo, hi = min(t.min(), 0.0), max(t.max(), 0.0)
            scale = np.float32((hi - lo) / 255.0)
            zp = np.uint8(np.clip(np.round(-lo / scale), 0, 255))
            q = np.clip(np.round(t / scale) + zp, 0, 255).astype(np.uint8)
            tname = n.input[0]
            g.initializer.remove(inits[tname])
            g.initializer.append(numpy_helper.from_array(q, tname + "_quantized"))
            g.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), tname + "_scale"))
            g.initializer.append(numpy_helper.from_array(np.array(zp, np.uint8), tname + "_zero_point"))
            qout = n.output[0] + "_quantized"
            new_nodes.append(helper.make_node("Gather", [tname + "_quantized", n.input[1]], [qout], name=n.name))
            new_nodes.append(
                helper.make_node(
                    "DequantizeLinear", [qout, tname + "_scale", tname + "_zero_point"], [n.output[0]],
                    name=n.name + "_DequantizeLinear",
                )
            )
            expected[module_of(n.name) + ".weight"] = dq(q, np.array(scale), np.array(zp))
        else:
            new_nodes.append(n)
    del g.node[:]
    g.node.extend(new_nodes)
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(m)
    return m, expected


# --------------------------------------------------------------------------
# Broken graphs
# --------------------------------------------------------------------------


def remove_node(m: onnx.ModelProto, name: str) -> None:
    g = m.graph
    (n,) = [x for x in g.node if x.name == name]
    src, dst = n.input[0], n.output[0]
    g.node.remove(n)
    for x in g.node:
        for i, v in enumerate(x.input):
            if v == dst:
                x.input[i] = src


def insert_after(m: onnx.ModelProto, tensor: str, node: onnx.NodeProto) -> None:
    g = m.graph
    for x in g.node:
        for i, v in enumerate(x.input):
            if v == tensor:
                x.input[i] = node.output[0]
    idx = next(i for i, x in enumerate(g.node) if tensor in x.output)
    g.node.insert(idx + 1, node)


def set_scale(m: onnx.ModelProto, mul_name: str, value: float) -> None:
    g = m.graph
    (mul,) = [x for x in g.node if x.name == mul_name]
    for x in g.node:
        if x.op_type == "Constant" and x.output[0] in mul.input:
            x.attribute[0].t.CopyFrom(numpy_helper.from_array(np.array(value, np.float32)))
            return
    raise KeyError(mul_name)


def shorten_tensor_names(m: onnx.ModelProto) -> onnx.ModelProto:
    """Renames every internal tensor and initializer to `t<i>` (node names stay): keeps the
    broken fixtures small, and shows that the importer does not read tensor names."""
    g = m.graph
    keep = {v.name for v in g.input} | {v.name for v in g.output}
    names: dict[str, str] = {}

    def short(t: str) -> str:
        if not t or t in keep:
            return t
        return names.setdefault(t, f"t{len(names)}")

    for t in g.initializer:
        t.name = short(t.name)
    for n in g.node:
        for i, v in enumerate(n.input):
            n.input[i] = short(v)
        for i, v in enumerate(n.output):
            n.output[i] = short(v)
    del g.value_info[:]
    return m


def not_bert() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.standard_normal((8, 2)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h"], name="mlp/fc1"),
        helper.make_node("Relu", ["h"], ["r"], name="mlp/relu"),
        helper.make_node("MatMul", ["r", "w2"], ["y"], name="mlp/fc2"),
    ]
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# --------------------------------------------------------------------------


def main() -> int:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    fixtures = []

    def record(file, seed, head, labels, hidden_act, weights, inputs, tolerance, kinds):
        fixtures.append({
            "file": file,
            "seed": seed,
            "head": head,
            "labels": labels,
            "hidden_act": hidden_act,
            "weight_kinds": kinds,
            "weights": {k: weight_entry(v) for k, v in sorted(weights.items())},
            "inputs": inputs,
            "tolerance": tolerance,
        })

    # 1. Token classification, eager attention, opset 17.
    model, weights = make_model("token", 11, 5)
    token17 = OUT / "token_eager17.onnx"
    export(model, "token", token17, 17)
    ref = hidden_states(model, "token")
    record(token17.name, 11, "token", 5, "gelu", weights, ref, 1e-4, ["MatMul f32"])

    # 2. Sequence classification, SDPA, opset 14 (Optimum's export settings).
    model2, weights2 = make_model("sequence", 12, 3, attn="sdpa")
    seq14 = OUT / "seqcls_sdpa14.onnx"
    export(model2, "sequence", seq14, 14)
    record(seq14.name, 12, "sequence", 3, "gelu", weights2, hidden_states(model2, "sequence"), 1e-4, ["MatMul f32", "Gemm f32"])

    # Classification examples for the accuracy report: transformers' label and probabilities
    # for texts of the placeholder vocabulary (`tokN` is token id N).
    # Gold labels: the prediction for even examples, another label for odd ones, so the f32
    # accuracy is 0.5 and the expected calibration error (15 bins) follows from the scores.
    rng = np.random.default_rng(7)
    cls_examples, conf, correct = [], [], []
    for k in range(12):
        ids = [int(i) for i in rng.integers(5, 40, int(rng.integers(2, 9)))]
        with torch.no_grad():
            logits = model2(input_ids=torch.tensor([[2] + ids + [3]])).logits[0]
        probs = torch.softmax(logits, -1).numpy()
        top = int(probs.argmax())
        gold = top if k % 2 == 0 else (top + 1) % 3
        conf.append(float(probs[top]))
        correct.append(gold == top)
        cls_examples.append({
            "text": " ".join(f"tok{i}" for i in ids),
            "label": LABEL_NAMES[gold],
            "predicted": LABEL_NAMES[top],
            "probs": rounded(probs),
        })
    conf_a, corr_a = np.array(conf), np.array(correct, dtype=np.float64)
    bins = np.clip(np.ceil(conf_a * 15).astype(int), 1, 15) - 1
    ece = sum(abs(corr_a[bins == b].sum() - conf_a[bins == b].sum()) for b in range(15)) / len(conf)
    cls_summary = {"fp32_accuracy": float(corr_a.mean()), "fp32_ece_15_bins": float(ece)}

    # 3. BertModel, tanh GELU, opset 12, two outputs.
    model3, weights3 = make_model("encoder", 13, 0, hidden_act="gelu_new")
    enc12 = OUT / "encoder_tanh12.onnx"
    export(model3, "encoder", enc12, 12)
    record(enc12.name, 13, None, 0, "gelu_new", weights3, hidden_states(model3, "encoder"), 1e-4, ["MatMul f32"])

    # 4. onnxruntime quantize_dynamic.
    dyn = OUT / "token_int8_dynamic.onnx"
    quantize_dynamic(str(token17), str(dyn), per_channel=True, weight_type=QuantType.QInt8)
    dyn_model = onnx.load(str(dyn))
    w4 = expected_int8_dynamic(dyn_model)
    assert set(w4) == set(weights), sorted(set(w4) ^ set(weights))
    record(dyn.name, 11, "token", 5, "gelu", w4, [], None, ["MatMulInteger int8 (quantize_dynamic)"])

    # 5. onnxruntime quantize_static, QDQ.
    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.data = iter(
                [
                    {
                        "input_ids": rng.integers(0, 40, (1, 9)).astype(np.int64),
                        "attention_mask": np.ones((1, 9), np.int64),
                        "token_type_ids": np.zeros((1, 9), np.int64),
                    }
                    for _ in range(4)
                ]
            )

        def get_next(self):
            return next(self.data, None)

    qdq = OUT / "token_qdq.onnx"
    quantize_static(
        str(token17), str(qdq), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
    )
    w5 = expected_qdq(onnx.load(str(qdq)), qdq)
    assert set(w5) == set(weights), sorted(set(w5) ^ set(weights))
    record(qdq.name, 11, "token", 5, "gelu", w5, [], None, ["MatMul + QDQ DequantizeLinear"])

    # 6. 4-bit MatMulNBits, checked against onnxruntime.
    q4_model, deq = make_q4(onnx.load(str(token17)))
    q4 = OUT / "token_q4.onnx"
    onnx.save(q4_model, str(q4))
    w6 = dict(weights)
    w6.update(deq)
    check = copy.deepcopy(model)
    sd = {("bert." + k if not k.startswith("classifier") else k): torch.from_numpy(np.ascontiguousarray(v)) for k, v in w6.items()}
    check.load_state_dict(sd, strict=True)
    ort_ref = ort_outputs(q4, "hidden")
    torch_ref = hidden_states(check, "token")
    worst = max(float(np.abs(np.array(a["hidden"]) - np.array(b["hidden"])).max()) for a, b in zip(ort_ref, torch_ref))
    print(f"token_q4: |onnxruntime - transformers(dequantized weights)| = {worst:.2e}")
    assert worst < 1e-4, worst
    record(q4.name, 11, "token", 5, "gelu", w6, ort_ref, 1e-4, ["MatMulNBits 4-bit"])

    # 7. Broken graphs (from the 4-bit model: small files).
    broken = []
    m = copy.deepcopy(q4_model)
    remove_node(m, "/model/bert/encoder/layer.1/attention/output/LayerNorm/LayerNormalization")
    onnx.save(shorten_tensor_names(m), str(OUT / "broken_missing_layernorm.onnx"))
    broken.append({
        "file": "broken_missing_layernorm.onnx",
        "contains": ["LayerNormalization", "encoder.layer.1.attention.output.LayerNorm",
                     "/model/bert/encoder/layer.1/intermediate/dense/MatMul_Q4"],
    })
    m = copy.deepcopy(q4_model)
    insert_after(m, "/model/bert/encoder/layer.0/attention/output/dense/Add_output_0",
                 helper.make_node("Relu", ["/model/bert/encoder/layer.0/attention/output/dense/Add_output_0"],
                                  ["extra_relu_out"], name="extra_relu"))
    onnx.save(shorten_tensor_names(m), str(OUT / "broken_extra_op.onnx"))
    broken.append({"file": "broken_extra_op.onnx", "contains": ["`extra_relu` (Relu)", "residual"]})
    m = copy.deepcopy(q4_model)
    set_scale(m, "/model/bert/encoder/layer.1/attention/self/Mul", 0.5)
    onnx.save(shorten_tensor_names(m), str(OUT / "broken_attention_scale.onnx"))
    broken.append({"file": "broken_attention_scale.onnx",
                   "contains": ["/model/bert/encoder/layer.1/attention/self/MatMul", "attention scale is 0.5"]})
    m = copy.deepcopy(q4_model)
    insert_after(m, "/model/bert/encoder/layer.0/intermediate/dense/Add_output_0",
                 helper.make_node("Sigmoid", ["/model/bert/encoder/layer.0/intermediate/dense/Add_output_0"],
                                  ["extra_sigmoid_out"], name="extra_sigmoid"))
    onnx.save(shorten_tensor_names(m), str(OUT / "broken_activation.onnx"))
    broken.append({"file": "broken_activation.onnx", "contains": ["is not erf GELU, tanh GELU or ReLU"]})
    onnx.save(not_bert(), str(OUT / "broken_not_bert.onnx"))
    broken.append({"file": "broken_not_bert.onnx", "contains": ["no word embedding"]})

    doc = {
        "generator": "scripts/gen_onnx_fixtures.py",
        "config": CONFIG,
        "fixtures": fixtures,
        "broken": broken,
        "classification": {"fixture": seq14.name, "examples": cls_examples, **cls_summary},
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__},
    }
    (OUT / "expected.json").write_text(json.dumps(doc, indent=1) + "\n")
    for f in sorted(OUT.iterdir()):
        print(f"{f.stat().st_size:8d}  {f.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
