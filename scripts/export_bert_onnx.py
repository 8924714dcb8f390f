#!/usr/bin/env python3
"""fp32 ONNX export of a BERT encoder (optionally with a token-classification head) without torch.

Builds the graph with onnx.helper from the checkpoint's tensors (safetensors, read with numpy), in
the shape of Hugging Face's eager BertModel as `torch.onnx.export` traces it: embeddings + LayerNorm;
per layer Q/K/V MatMul+Add, scores `(q kᵀ) * 1/sqrt(d) + mask`, Softmax, context, output dense +
residual + LayerNorm, FFN with erf GELU, + residual + LayerNorm; `classifier` on top when the
checkpoint has one. Inputs `input_ids`, `attention_mask`, `token_type_ids` (int64, [batch, seq],
dynamic), output `output`. Used by scripts/compare_runtimes.py when torch is not installed (the
PyTorch wheel index is unreachable on some machines; onnx, onnxruntime and safetensors come from
PyPI).

Usage:
    python scripts/export_bert_onnx.py HF_DIR OUT.onnx
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def load_state_dict(hf_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    sd = load_file(str(hf_dir / "model.safetensors"))
    return {k: v.astype(np.float32) for k, v in sd.items() if v.dtype != np.int64}


def build(sd: dict[str, np.ndarray], config: dict) -> onnx.ModelProto:
    prefix = "bert." if any(k.startswith("bert.") for k in sd) else ""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    hd = hidden // heads
    nodes, inits = [], []
    counter = [0]

    def name(base: str) -> str:
        counter[0] += 1
        return f"{base}_{counter[0]}"

    def const(value: np.ndarray, base: str = "c") -> str:
        n = name(base)
        inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def weight(key: str) -> np.ndarray:
        return sd[prefix + key] if prefix + key in sd else sd[key]

    def linear(x: str, key: str) -> str:
        w = const(np.ascontiguousarray(weight(f"{key}.weight").T), key + ".weight_t")
        b = const(weight(f"{key}.bias"), key + ".bias")
        return op("Add", [op("MatMul", [x, w]), b])

    def layer_norm(x: str, key: str) -> str:
        g = const(weight(f"{key}.weight"), key + ".weight")
        b = const(weight(f"{key}.bias"), key + ".bias")
        return op("LayerNormalization", [x, g, b], axis=-1, epsilon=eps)

    # Embeddings.
    seq_len = op("Gather", [op("Shape", ["input_ids"]), const(np.array([1], np.int64))], axis=0)
    pos = op("Slice", [const(weight("embeddings.position_embeddings.weight")),
                       const(np.array([0], np.int64)), seq_len, const(np.array([0], np.int64))])
    words = op("Gather", [const(weight("embeddings.word_embeddings.weight")), "input_ids"], axis=0)
    types = op("Gather", [const(weight("embeddings.token_type_embeddings.weight")), "token_type_ids"],
               axis=0)
    x = layer_norm(op("Add", [op("Add", [words, types]), pos]), "embeddings.LayerNorm")

    # Additive mask [batch, 1, 1, seq]: 0 where attended, the float minimum elsewhere.
    m = op("Cast", [op("Unsqueeze", ["attention_mask", const(np.array([1, 2], np.int64))])],
           to=TensorProto.FLOAT)
    mask = op("Mul", [op("Sub", [const(np.array(1.0, np.float32)), m]),
                      const(np.array(np.finfo(np.float32).min, np.float32))])

    split = const(np.array([0, 0, heads, hd], np.int64))
    merge = const(np.array([0, 0, hidden], np.int64))
    scale = const(np.array(1.0 / np.sqrt(hd), np.float32))
    for layer in range(layers):
        p = f"encoder.layer.{layer}"
        q = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.query"), split])],
               perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.key"), split])],
               perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.value"), split])],
               perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), mask])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        attn = layer_norm(op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]),
                          f"{p}.attention.output.LayerNorm")
        h = linear(attn, f"{p}.intermediate.dense")
        gelu = op("Mul", [op("Mul", [h, op("Add", [
            op("Erf", [op("Div", [h, const(np.array(np.sqrt(2.0), np.float32))])]),
            const(np.array(1.0, np.float32))])]), const(np.array(0.5, np.float32))])
        x = layer_norm(op("Add", [linear(gelu, f"{p}.output.dense"), attn]), f"{p}.output.LayerNorm")
    if "classifier.weight" in sd:
        x = linear(x, "classifier")
    nodes.append(helper.make_node("Identity", [x], ["output"]))

    dims = ["batch", "seq"]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, dims)
              for n in ["input_ids", "attention_mask", "token_type_ids"]]
    out_dim = sd["classifier.weight"].shape[0] if "classifier.weight" in sd else hidden
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, dims + [out_dim])]
    graph = helper.make_graph(nodes, "bert", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def export(hf_dir: Path, out: Path) -> None:
    config = json.loads((hf_dir / "config.json").read_text())
    onnx.save(build(load_state_dict(hf_dir), config), str(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    export(Path(sys.argv[1]), Path(sys.argv[2]))
