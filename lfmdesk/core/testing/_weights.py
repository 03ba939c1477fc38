"""Random LFM2-VL weights under their Hugging Face names, streamed into a safetensors file.

The tensors are written one row-block at a time, so even the full 450M shape (about 900 MB
of bf16) never needs more than a few tens of MB of memory. bf16 is produced from float32
with NumPy alone (round to nearest even on the upper 16 bits), so no MLX is needed here.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["Dims", "TensorSpec", "tensor_specs", "write_safetensors"]

_TEXT = "model.language_model."
_VISION = "model.vision_tower.vision_model."
_PROJECTOR = "model.multi_modal_projector."
_CHUNK_ELEMENTS = 1 << 22
_BF16_ONE = 0x3F80
_EMBEDDING_SCALE = 0.02

# "normal": std 1/sqrt(fan_in), so every layer really transforms the residual stream (with
# the usual std 0.02 the tied embeddings dominate and the model only echoes its last prompt
# token); "embedding": std 0.02.
Init = Literal["normal", "embedding", "ones", "zeros"]


@dataclass(frozen=True)
class Dims:
    """Every size that decides a tensor shape of an LFM2-VL checkpoint."""

    hidden: int
    layer_types: tuple[str, ...]
    heads: int
    kv_heads: int
    intermediate: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_intermediate: int
    projector_hidden: int
    vocab: int = 65536
    vision_patches: int = 256
    patch_size: int = 16
    downsample: int = 2
    conv_kernel: int = 3
    multiple_of: int = 256

    @property
    def feed_forward(self) -> int:
        """The SwiGLU width LFM2 derives from ``intermediate_size`` (block_auto_adjust_ff_dim)."""
        width = int(2 * self.intermediate / 3)
        return self.multiple_of * math.ceil(width / self.multiple_of)


@dataclass(frozen=True)
class TensorSpec:
    """One tensor of the checkpoint: its HF key, its shape and how it is initialised."""

    name: str
    shape: tuple[int, ...]
    init: Init = "normal"


def _text_specs(d: Dims) -> list[TensorSpec]:
    head_dim = d.hidden // d.heads
    specs = [
        TensorSpec(f"{_TEXT}embed_tokens.weight", (d.vocab, d.hidden), "embedding"),
        TensorSpec(f"{_TEXT}embedding_norm.weight", (d.hidden,), "ones"),
    ]
    for i, kind in enumerate(d.layer_types):
        p = f"{_TEXT}layers.{i}."
        specs += [
            TensorSpec(f"{p}operator_norm.weight", (d.hidden,), "ones"),
            TensorSpec(f"{p}ffn_norm.weight", (d.hidden,), "ones"),
            TensorSpec(f"{p}feed_forward.w1.weight", (d.feed_forward, d.hidden)),
            TensorSpec(f"{p}feed_forward.w3.weight", (d.feed_forward, d.hidden)),
            TensorSpec(f"{p}feed_forward.w2.weight", (d.hidden, d.feed_forward)),
        ]
        if kind == "conv":
            specs += [
                TensorSpec(f"{p}conv.conv.weight", (d.hidden, 1, d.conv_kernel)),
                TensorSpec(f"{p}conv.in_proj.weight", (3 * d.hidden, d.hidden)),
                TensorSpec(f"{p}conv.out_proj.weight", (d.hidden, d.hidden)),
            ]
            continue
        specs += [
            TensorSpec(f"{p}self_attn.q_proj.weight", (d.heads * head_dim, d.hidden)),
            TensorSpec(f"{p}self_attn.k_proj.weight", (d.kv_heads * head_dim, d.hidden)),
            TensorSpec(f"{p}self_attn.v_proj.weight", (d.kv_heads * head_dim, d.hidden)),
            TensorSpec(f"{p}self_attn.out_proj.weight", (d.hidden, d.heads * head_dim)),
            TensorSpec(f"{p}self_attn.q_layernorm.weight", (head_dim,), "ones"),
            TensorSpec(f"{p}self_attn.k_layernorm.weight", (head_dim,), "ones"),
        ]
    return specs


def _linear(name: str, out_dim: int, in_dim: int) -> list[TensorSpec]:
    return [TensorSpec(f"{name}.weight", (out_dim, in_dim)), TensorSpec(f"{name}.bias", (out_dim,))]


def _layer_norm(name: str, dim: int) -> list[TensorSpec]:
    return [
        TensorSpec(f"{name}.weight", (dim,), "ones"),
        TensorSpec(f"{name}.bias", (dim,), "zeros"),
    ]


def _vision_specs(d: Dims) -> list[TensorSpec]:
    h = d.vision_hidden
    specs = _linear(f"{_VISION}embeddings.patch_embedding", h, 3 * d.patch_size**2)
    specs.append(
        TensorSpec(
            f"{_VISION}embeddings.position_embedding.weight", (d.vision_patches, h), "embedding"
        )
    )
    for i in range(d.vision_layers):
        p = f"{_VISION}encoder.layers.{i}."
        specs += _layer_norm(f"{p}layer_norm1", h) + _layer_norm(f"{p}layer_norm2", h)
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            specs += _linear(f"{p}self_attn.{proj}", h, h)
        specs += _linear(f"{p}mlp.fc1", d.vision_intermediate, h)
        specs += _linear(f"{p}mlp.fc2", h, d.vision_intermediate)
    return specs + _layer_norm(f"{_VISION}post_layernorm", h)


def _projector_specs(d: Dims) -> list[TensorSpec]:
    unshuffled = d.vision_hidden * d.downsample**2
    return (
        _layer_norm(f"{_PROJECTOR}layer_norm", unshuffled)
        + _linear(f"{_PROJECTOR}linear_1", d.projector_hidden, unshuffled)
        + _linear(f"{_PROJECTOR}linear_2", d.hidden, d.projector_hidden)
    )


def tensor_specs(dims: Dims) -> list[TensorSpec]:
    """Every tensor of an LFM2-VL checkpoint with ``dims``, sorted by key like safetensors."""
    specs = _text_specs(dims) + _vision_specs(dims) + _projector_specs(dims)
    return sorted(specs, key=lambda s: s.name)


def _to_bf16_bits(x: np.ndarray) -> np.ndarray:
    bits = x.astype(np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype("<u2")


def _chunks(spec: TensorSpec, seed: int) -> Iterator[bytes]:
    """The tensor's bf16 bytes in row blocks; the values depend only on ``seed`` and the key."""
    rows = spec.shape[0]
    row_size = math.prod(spec.shape[1:])
    step = max(1, _CHUNK_ELEMENTS // row_size)
    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    fill = {"ones": _BF16_ONE, "zeros": 0}
    scale = _EMBEDDING_SCALE if spec.init == "embedding" else 1 / math.sqrt(row_size)
    for start in range(0, rows, step):
        count = min(step, rows - start) * row_size
        if spec.init in ("normal", "embedding"):
            block = _to_bf16_bits(rng.standard_normal(count, dtype=np.float32) * np.float32(scale))
        else:
            block = np.full(count, fill[spec.init], dtype="<u2")
        yield block.tobytes()


def write_safetensors(path: Path, specs: list[TensorSpec], seed: int) -> None:
    """Write random bf16 tensors for ``specs`` to ``path``, streaming one block at a time.

    Args:
        path: The ``model.safetensors`` file to create (overwritten).
        specs: The tensors, in file order.
        seed: Makes the values reproducible.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for spec in specs:
        size = 2 * math.prod(spec.shape)
        header[spec.name] = {
            "dtype": "BF16",
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data must start 8-byte aligned
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for spec in specs:
            for block in _chunks(spec, seed):
                fh.write(block)
