"""Deterministic, seeded BERT weights that the Rust tests reproduce bit-exactly.

Both sides generate the same float32 tensors from (tensor name, model seed), so
test fixtures only need to store the inputs and expected outputs, never the
weights. The generator is therefore a *specification*; change it only
together with its Rust mirror.

Specification (all integer arithmetic is on uint64 and wraps mod 2^64):

* ``fnv1a64(name)``: ``h = 0xcbf29ce484222325``; for each byte ``b`` of the
  UTF-8 name: ``h = (h ^ b) * 0x100000001b3``.
* A tensor is identified by its Hugging Face ``BertModel`` state-dict name
  *without* a ``bert.`` prefix (e.g. ``encoder.layer.0.attention.self.query.weight``)
  and filled in PyTorch shape order, row-major (a Linear weight is ``[out, in]``).
* ``seed = fnv1a64(name) ^ model_seed``.
* Element ``i`` (0-based) is the splitmix64 output for counter ``i + 1``:
      state = seed + (i + 1) * 0x9E3779B97F4A7C15
      z = state
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
      z = (z ^ (z >> 27)) * 0x94D049BB133111EB
      z = z ^ (z >> 31)
* ``u = float64(z >> 40) / 16777216.0`` (24 bits, exactly representable, in [0, 1));
  ``r = 2.0 * u - 1.0`` (float64, in [-1, 1)).
* value = ``float32(center + r * amp)``: the multiply and the add are separate
  float64 operations (no fused multiply-add), then one round-to-nearest to
  float32. ``center`` and ``amp`` are the float64 literals below.
* ``(center, amp)`` by name, first match wins:
      "qa_outputs.weight" (question answering head)  -> (0.0, 1.0)
        (wide start/end logits, so that spans have clear margins)
      ends with "LayerNorm.weight"                   -> (1.0, 0.2)
      ends with "LayerNorm.bias"                     -> (0.0, 0.1)
      "embeddings.<x>_embeddings.weight"             -> (0.0, 0.5)
        (word_embeddings, position_embeddings, token_type_embeddings)
      any other name ending ".weight" (Linear)       -> (0.0, 0.06)
      any other name ending ".bias"                  -> (0.0, 0.05)
"""

from __future__ import annotations

import re

import numpy as np

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)

_EMBEDDING = re.compile(r"(^|\.)embeddings\.[a-z_]+_embeddings\.weight$")


def fnv1a64(name: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in name:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def center_amp(name: str) -> tuple[float, float]:
    if name == "qa_outputs.weight":
        return 0.0, 1.0
    if name.endswith("LayerNorm.weight"):
        return 1.0, 0.2
    if name.endswith("LayerNorm.bias"):
        return 0.0, 0.1
    if _EMBEDDING.search(name):
        return 0.0, 0.5
    if name.endswith(".weight"):
        return 0.0, 0.06
    if name.endswith(".bias"):
        return 0.0, 0.05
    raise ValueError(f"no generator rule for tensor {name!r}")


def uniform_r(name: str, numel: int, model_seed: int) -> np.ndarray:
    """The float64 values r in [-1, 1) for elements 0..numel-1 of tensor `name`."""
    seed = np.uint64(fnv1a64(name.encode()) ^ (model_seed & 0xFFFFFFFFFFFFFFFF))
    with np.errstate(over="ignore"):  # uint64 wrap-around is the intended arithmetic
        counter = np.arange(1, numel + 1, dtype=np.uint64)
        z = seed + counter * GOLDEN_GAMMA
        z = (z ^ (z >> np.uint64(30))) * MIX1
        z = (z ^ (z >> np.uint64(27))) * MIX2
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / 16777216.0
    return 2.0 * u - 1.0


def make_tensor(name: str, shape: tuple[int, ...], model_seed: int) -> np.ndarray:
    center, amp = center_amp(name)
    numel = int(np.prod(shape, dtype=np.int64))
    r = uniform_r(name, numel, model_seed)
    # Two separate float64 ops, then a single rounding to float32 (matches Rust `(c + r * a) as f32`).
    values = center + r * amp
    return values.astype(np.float32).reshape(shape)


def tensor_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """BertModel state-dict names (no `bert.` prefix) and PyTorch shapes, in state-dict order."""
    h = config["hidden_size"]
    ffn = config["intermediate_size"]
    shapes: dict[str, tuple[int, ...]] = {
        "embeddings.word_embeddings.weight": (config["vocab_size"], h),
        "embeddings.position_embeddings.weight": (config["max_position_embeddings"], h),
        "embeddings.token_type_embeddings.weight": (config["type_vocab_size"], h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        for proj in ("query", "key", "value"):
            shapes[f"{p}.attention.self.{proj}.weight"] = (h, h)
            shapes[f"{p}.attention.self.{proj}.bias"] = (h,)
        shapes[f"{p}.attention.output.dense.weight"] = (h, h)
        shapes[f"{p}.attention.output.dense.bias"] = (h,)
        shapes[f"{p}.attention.output.LayerNorm.weight"] = (h,)
        shapes[f"{p}.attention.output.LayerNorm.bias"] = (h,)
        shapes[f"{p}.intermediate.dense.weight"] = (ffn, h)
        shapes[f"{p}.intermediate.dense.bias"] = (ffn,)
        shapes[f"{p}.output.dense.weight"] = (h, ffn)
        shapes[f"{p}.output.dense.bias"] = (h,)
        shapes[f"{p}.output.LayerNorm.weight"] = (h,)
        shapes[f"{p}.output.LayerNorm.bias"] = (h,)
    shapes["pooler.dense.weight"] = (h, h)
    shapes["pooler.dense.bias"] = (h,)
    return shapes


def qa_head_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """`BertForQuestionAnswering`'s head (saved without the `bert.` prefix)."""
    return {"qa_outputs.weight": (2, config["hidden_size"]), "qa_outputs.bias": (2,)}


def make_state_dict(config_dict: dict, model_seed: int) -> dict:
    """A full BertModel state dict (torch float32 tensors) for `config_dict` and `model_seed`."""
    import torch

    return {
        name: torch.from_numpy(make_tensor(name, shape, model_seed))
        for name, shape in tensor_shapes(config_dict).items()
    }


def _self_check() -> None:
    # Cross-check the vectorised path against a scalar transcription of the spec.
    M = 0xFFFFFFFFFFFFFFFF
    name, seed = "encoder.layer.0.attention.self.query.weight", 7
    s = fnv1a64(name.encode()) ^ seed
    vec = make_tensor(name, (16,), seed)
    for i in range(16):
        z = (s + (i + 1) * 0x9E3779B97F4A7C15) & M
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        z ^= z >> 31
        r = 2.0 * ((z >> 40) / 16777216.0) - 1.0
        assert np.float32(0.0 + r * 0.06) == vec[i]
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C  # published FNV-1a 64 test vector


if __name__ == "__main__":
    _self_check()
    # Print a few reference values so the Rust mirror can be checked by eye.
    for name in (
        "embeddings.word_embeddings.weight",
        "embeddings.LayerNorm.weight",
        "encoder.layer.0.attention.self.query.weight",
        "encoder.layer.0.output.dense.bias",
    ):
        v = make_tensor(name, (4,), 1)
        print(f"{name:45s} seed=1 fnv={fnv1a64(name.encode()):#018x}", [f"{x:.9g}" for x in v])
    print("self-check OK")
