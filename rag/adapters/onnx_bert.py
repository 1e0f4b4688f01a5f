"""Torch-free ONNX graph of a BERT encoder, built from a ``model.safetensors`` file.

The graph has the inputs ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64,
``[batch, seq]``) and the output ``last_hidden_state`` (float32, ``[batch, seq, hidden]``), the
same interface as a ``torch.onnx`` export of ``transformers.BertModel``, so it needs only numpy
and ``onnx`` to build and onnxruntime to run. Pooling happens outside the graph.
"""

from __future__ import annotations

import json
import math
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the graph changes, so graphs cached by an older builder are not reused.
BUILDER_VERSION = 1
OPSET = 17  # first opset with LayerNormalization

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


@dataclass(frozen=True)
class BertConfig:
    """The parts of a Hugging Face ``config.json`` that shape a BERT encoder."""

    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    intermediate_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BertConfig:
        """Read a ``config.json`` dict; refuse variants this builder does not implement."""
        if data.get("model_type", "bert") != "bert":
            raise ValueError(f"model_type {data.get('model_type')!r} is not 'bert'")
        if data.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"hidden_act {data.get('hidden_act')!r} is not 'gelu'")
        if data.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(
            hidden_size=int(data["hidden_size"]),
            num_attention_heads=int(data["num_attention_heads"]),
            num_hidden_layers=int(data["num_hidden_layers"]),
            intermediate_size=int(data["intermediate_size"]),
            layer_norm_eps=float(data.get("layer_norm_eps", 1e-12)),
        )


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors buffer (8-byte header length, JSON header, raw little-endian data)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    base = 8 + header_len
    tensors: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPES:
            raise ValueError(f"tensor {name}: dtype {info['dtype']} is not supported")
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        start, end = info["data_offsets"]
        count = (end - start) // dtype.itemsize
        array = np.frombuffer(data, dtype=dtype, count=count, offset=base + start)
        tensors[name] = array.reshape(info["shape"]).astype(dtype.newbyteorder("="), copy=False)
    return tensors


class _GraphBuilder:
    """Collects nodes and initializers; ``op`` returns the name of the node's (first) output."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._names: set[str] = set()
        self._n = 0

    def const(self, name: str, value: np.ndarray) -> str:
        # Shared scalars (e.g. sqrt(2) of every GELU) are stored once, under their first name.
        if name not in self._names:
            self._names.add(name)
            self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs: Any) -> Any:
        self._n += 1
        outs = [f"{op_type.lower()}_{self._n}_{i}" for i in range(n_out)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _f32(array: np.ndarray) -> np.ndarray:
    return np.asarray(array, dtype=np.float32)


def _embeddings(g: _GraphBuilder, w: Mapping[str, np.ndarray], cfg: BertConfig) -> str:
    """Word + position + token-type embeddings, then LayerNorm."""
    words = g.op("Gather", [g.const("word_emb", _f32(w["embeddings.word_embeddings.weight"])), "input_ids"])
    # Positions 0..seq-1 are the first seq rows of the position table.
    seq = g.op("Shape", ["input_ids"], start=1, end=2)
    zero = g.const("zero_1d", np.array([0], np.int64))
    pos = g.op(
        "Slice", [g.const("pos_emb", _f32(w["embeddings.position_embeddings.weight"])), zero, seq, zero]
    )
    types = g.op(
        "Gather", [g.const("type_emb", _f32(w["embeddings.token_type_embeddings.weight"])), "token_type_ids"]
    )
    summed = g.op("Add", [g.op("Add", [words, pos]), types])
    return _layer_norm(g, w, "embeddings.LayerNorm", summed, cfg)


def _layer_norm(g: _GraphBuilder, w: Mapping[str, np.ndarray], prefix: str, x: str, cfg: BertConfig) -> str:
    gamma = g.const(f"{prefix}.weight", _f32(w[f"{prefix}.weight"]))
    beta = g.const(f"{prefix}.bias", _f32(w[f"{prefix}.bias"]))
    return g.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=cfg.layer_norm_eps)


def _linear(g: _GraphBuilder, x: str, weight: np.ndarray, bias: np.ndarray, name: str) -> str:
    """x @ weight.T + bias (torch Linear stores weight as [out, in])."""
    wt = g.const(f"{name}.wT", _f32(weight).T.copy())
    return g.op("Add", [g.op("MatMul", [x, wt]), g.const(f"{name}.b", _f32(bias))])


def _attention(
    g: _GraphBuilder, w: Mapping[str, np.ndarray], p: str, x: str, mask_bias: str, cfg: BertConfig
) -> str:
    """Multi-head self-attention with one fused QKV projection; the 1/sqrt(d) scale is folded into Q."""
    heads, hidden = cfg.num_attention_heads, cfg.hidden_size
    scale = 1.0 / math.sqrt(hidden // heads)
    weight = np.concatenate(
        [_f32(w[f"{p}.query.weight"]) * scale, w[f"{p}.key.weight"], w[f"{p}.value.weight"]]
    )
    bias = np.concatenate([_f32(w[f"{p}.query.bias"]) * scale, w[f"{p}.key.bias"], w[f"{p}.value.bias"]])
    qkv = _linear(g, x, weight, bias, f"{p}.qkv")
    split = g.const(f"{p}.split", np.array([hidden] * 3, np.int64))
    q, k, v = g.op("Split", [qkv, split], n_out=3, axis=-1)
    heads_shape = g.const(f"{p}.heads_shape", np.array([0, 0, heads, hidden // heads], np.int64))
    q = g.op("Transpose", [g.op("Reshape", [q, heads_shape])], perm=[0, 2, 1, 3])
    k = g.op("Transpose", [g.op("Reshape", [k, heads_shape])], perm=[0, 2, 3, 1])
    v = g.op("Transpose", [g.op("Reshape", [v, heads_shape])], perm=[0, 2, 1, 3])
    scores = g.op("Add", [g.op("MatMul", [q, k]), mask_bias])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    merged_shape = g.const(f"{p}.merged_shape", np.array([0, 0, hidden], np.int64))
    return g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merged_shape])


def _gelu(g: _GraphBuilder, x: str) -> str:
    """Exact (erf) GELU as in BERT; onnxruntime fuses this pattern into one kernel."""
    inner = g.op("Erf", [g.op("Div", [x, g.const("sqrt2", np.array(math.sqrt(2.0), np.float32))])])
    one, half = g.const("one_f", np.array(1.0, np.float32)), g.const("half_f", np.array(0.5, np.float32))
    return g.op("Mul", [g.op("Mul", [x, g.op("Add", [inner, one])]), half])


def _layer(
    g: _GraphBuilder, w: Mapping[str, np.ndarray], i: int, x: str, mask_bias: str, cfg: BertConfig
) -> str:
    """One encoder layer: attention, add & norm, feed-forward, add & norm (post-norm BERT)."""
    p = f"encoder.layer.{i}"
    context = _attention(g, w, f"{p}.attention.self", x, mask_bias, cfg)
    attn_out = _linear(
        g,
        context,
        w[f"{p}.attention.output.dense.weight"],
        w[f"{p}.attention.output.dense.bias"],
        f"{p}.attention.output.dense",
    )
    x = _layer_norm(g, w, f"{p}.attention.output.LayerNorm", g.op("Add", [attn_out, x]), cfg)
    inter = _gelu(
        g,
        _linear(
            g,
            x,
            w[f"{p}.intermediate.dense.weight"],
            w[f"{p}.intermediate.dense.bias"],
            f"{p}.intermediate.dense",
        ),
    )
    out = _linear(g, inter, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"], f"{p}.output.dense")
    return _layer_norm(g, w, f"{p}.output.LayerNorm", g.op("Add", [out, x]), cfg)


def build_bert_onnx(weights: Mapping[str, np.ndarray], cfg: BertConfig) -> bytes:
    """Serialised ONNX model of the encoder described by ``weights`` and ``cfg``."""
    from onnx import TensorProto, checker, helper

    g = _GraphBuilder()
    x = _embeddings(g, weights, cfg)
    # Additive key mask [batch, 1, 1, seq]: 0 where attended, float32 min where padded (as transformers does).
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    inverted = g.op("Sub", [g.const("one_mask", np.array(1.0, np.float32)), mask])
    mask_bias = g.op("Mul", [inverted, g.const("neg_big", np.array(np.finfo(np.float32).min, np.float32))])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.const("mask_axes", np.array([1, 2], np.int64))])
    for i in range(cfg.num_hidden_layers):
        x = _layer(g, weights, i, x, mask_bias, cfg)
    g.nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    dims = ["batch", "sequence"]
    inputs = [
        helper.make_tensor_value_info(n, TensorProto.INT64, dims)
        for n in ("input_ids", "attention_mask", "token_type_ids")
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, [*dims, cfg.hidden_size])
    graph = helper.make_graph(g.nodes, "bert_encoder", inputs, [output], initializer=g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dossier")
    model.ir_version = 8  # readable by every onnxruntime >= 1.14
    checker.check_model(model)
    return model.SerializeToString()


def build_from_dir(model_dir: Path, weights_data: bytes) -> bytes:
    """ONNX bytes for the model in ``model_dir`` from the (already verified) safetensors bytes."""
    cfg = BertConfig.from_json(json.loads((model_dir / "config.json").read_text(encoding="utf-8")))
    return build_bert_onnx(read_safetensors(weights_data), cfg)


def cached_path(cache_dir: Path, weights_sha256: str) -> Path:
    """Where the graph built from weights with this sha256 is cached."""
    return cache_dir / f"minilm-{weights_sha256[:16]}-v{BUILDER_VERSION}.onnx"


def write_cache(cache_dir: Path, weights_sha256: str, onnx_bytes: bytes) -> Path | None:
    """Store the graph atomically (a crash never leaves half a file); None if the folder is not writable."""
    target = cached_path(cache_dir, weights_sha256)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(onnx_bytes)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return None
    return target
