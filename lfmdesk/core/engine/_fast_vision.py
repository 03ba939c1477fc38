"""A faster SigLIP2 vision tower on CPU, patched into mlx-vlm's model at load.

Profiled on a 2-core x86-64 CPU (512x512 image: 1024 patches, 12 layers, float32, OpenBLAS):
the matmuls already run at BLAS speed, but MLX's CPU element-wise kernels are scalar loops
(its JIT compiles them without SIMD flags), ~10 ns per ``exp`` or ``tanh``: the attention
softmax (12 x 1024 x 1024 exps a layer, ~123 ms) and the tanh GELU (1024 x 3072, ~75 ms) were
over half of the tower's time. ``mx.compile`` does not help (``nn.gelu_approx`` is compiled
already; the fused loop calls the same scalar ``tanh``), and
``mx.fast.scaled_dot_product_attention`` falls back to these same ops on CPU. NumPy's ufuncs
are vectorized (AVX2/AVX-512): its softmax takes ~22 ms and the GELU ~3 ms.

So each encoder layer runs as in mlx-vlm, with every matmul, LayerNorm and bias in MLX (on
its OpenBLAS), but the softmax and GELU done in place by NumPy on the evaluated MLX arrays
(NumPy views of MLX memory: no copies). The same ops in the same order, the same mask, float32
throughout: features equal the stock tower's to float32 rounding (the tests hold them within
1e-4; on the full-size tower they differ by ~2e-6). Views run one at a time, which also bounds
the attention memory of many-tile images. (A NumPy-only tower was tried: NumPy's bundled
OpenBLAS used ~40% more CPU per matmul than MLX's, and two BLAS thread pools spinning against
each other made it slower under load.)

Where it runs: ``auto`` takes it on a CPU-only MLX with float32 tower weights (lfmdesk's
CPU default) and keeps mlx-vlm's own tower on Apple GPUs, where Metal kernels are fast and the
weights keep the checkpoint's dtype (NumPy has no bfloat16). ``LFMDESK_VISION_TOWER=fast|stock``
forces one where the weights allow; ``LFMDESK_VISION_TOWER=fast python -m lfmdesk.bench
--stages --compute float32`` compares the two on any machine.
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal, cast

__all__ = [
    "VISION_TOWERS",
    "VisionTower",
    "fast_encoder_class",
    "install_fast_vision",
    "vision_features",
]

VisionTower = Literal["auto", "fast", "stock"]
VISION_TOWERS: tuple[VisionTower, ...] = ("auto", "fast", "stock")
_ENV = "LFMDESK_VISION_TOWER"

_ROWS = 256  # rows per GELU chunk: its temporaries stay in the CPU's L2 cache


def requested_tower() -> VisionTower:
    """The tower asked for by ``LFMDESK_VISION_TOWER`` (``auto`` when unset or unknown)."""
    value = os.environ.get(_ENV, "auto").strip().lower()
    return next((tower for tower in VISION_TOWERS if tower == value), "auto")


def install_fast_vision(model: Any, device: str, tower: VisionTower | None = None) -> str:
    """Switch ``model``'s vision encoder to the fast path where it helps.

    Args:
        model: an mlx-vlm LFM2-VL model, weights already in their compute dtype.
        device: "cpu" or "gpu" (see ``backend_info``).
        tower: "fast", "stock" or "auto"; None reads ``LFMDESK_VISION_TOWER``.

    Returns:
        The tower in use: "fast" or "stock".
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten

    encoder = model.vision_tower.encoder
    stock = _stock_class(encoder)
    wanted = tower or requested_tower()
    float32 = all(w.dtype == mx.float32 for _, w in tree_flatten(encoder.parameters()))
    fast = float32 and (wanted == "fast" or (wanted == "auto" and device == "cpu"))
    encoder.__class__ = fast_encoder_class(stock) if fast else stock
    return "fast" if fast else "stock"


def vision_features(model: Any, processor: Any, image: Any) -> list[Any]:
    """What the language model gets for ``image`` through the tower installed now: one
    (tokens, hidden) NumPy array per view (how the fast tower is held to the stock one)."""
    import mlx.core as mx
    import numpy as np
    from mlx_vlm.utils import prepare_inputs

    inputs = prepare_inputs(
        processor,
        images=[image],
        prompts="<image>",
        image_token_index=model.config.image_token_index,
    )
    out = model.encode_images(
        inputs["pixel_values"],
        spatial_shapes=inputs["spatial_shapes"],
        pixel_attention_mask=inputs["pixel_attention_mask"],
    )
    mx.eval(*out)
    return [np.array(view) for view in out]


def _stock_class(encoder: Any) -> type:
    cls = type(encoder)
    return cast(type, getattr(cls, "_lfmdesk_stock", cls))


_CLASSES: dict[type, type] = {}


def fast_encoder_class(stock: type) -> type:
    """A subclass of mlx-vlm's SigLIP2 ``Encoder`` with the fast layer (made once per class)."""
    if stock not in _CLASSES:
        _CLASSES[stock] = type(
            "FastEncoder", (stock,), {"__call__": _fast_encoder_call, "_lfmdesk_stock": stock}
        )
    return _CLASSES[stock]


def _fast_encoder_call(
    self: Any, x: Any, output_hidden_states: bool | None = None, mask: Any = None
) -> tuple[Any, ...]:
    """``Encoder.__call__``: same inputs, same outputs, one view at a time (bounded memory)."""
    import mlx.core as mx

    views = [x[i : i + 1] for i in range(x.shape[0])]
    masks = [_padding(mask, i) for i in range(len(views))]
    states = [x] if output_hidden_states else []
    for layer in self.layers:
        views = [_layer(layer, v, m) for v, m in zip(views, masks, strict=True)]
        if output_hidden_states:
            states.append(mx.concatenate(views) if len(views) > 1 else views[0])
    return tuple(states) if output_hidden_states else (mx.concatenate(views),)


def _padding(mask: Any, view: int) -> Any:
    """The additive mask of ``view`` as NumPy (1, 1, L), or None when it has no padding."""
    import numpy as np

    if mask is None:
        return None
    row = np.asarray(mask[view % mask.shape[0]][None])
    return row if np.any(row) else None  # all zeros: adding it changes nothing


def _layer(layer: Any, x: Any, mask: Any) -> Any:
    """mlx-vlm's ``EncoderLayer`` for one view (1, L, D): MLX matmuls, NumPy element-wise."""
    import mlx.core as mx
    import numpy as np

    attn, mlp = layer.self_attn, layer.mlp
    _, length, dims = x.shape
    heads = attn.num_heads
    a = layer.layer_norm1(x)
    q = attn.q_proj(a).reshape(1, length, heads, -1).transpose(0, 2, 1, 3)
    k = attn.k_proj(a).reshape(1, length, heads, -1).transpose(0, 2, 3, 1)
    v = attn.v_proj(a).reshape(1, length, heads, -1).transpose(0, 2, 1, 3)
    scores = (q * attn.scale) @ k  # as mx.fast.scaled_dot_product_attention on CPU
    mx.eval(scores)
    probs = np.asarray(scores)  # a writable view of the evaluated scores: no copy
    if mask is not None:
        probs += mask  # (1, 1, L): 0 for patches, -inf for padding
    _softmax_inplace(probs)
    context = (scores @ v).transpose(0, 2, 1, 3).reshape(1, length, dims)
    h = x + attn.out_proj(context)
    hidden = mlp.fc1(layer.layer_norm2(h))
    mx.eval(hidden)
    _gelu_inplace(np.asarray(hidden)[0])
    return h + mlp.fc2(hidden)


def _softmax_inplace(scores: Any) -> None:
    import numpy as np

    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)


def _gelu_inplace(x: Any) -> None:
    """SigLIP2's tanh GELU, as mlx's ``gelu_approx``, in place a block of rows at a time.

    0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
    """
    import numpy as np

    f32 = np.float32
    for start in range(0, x.shape[0], _ROWS):
        block = x[start : start + _ROWS]
        inner = block * block  # np.power is a scalar loop: two multiplies are ~500x faster
        inner *= block
        inner *= f32(0.044715)
        inner += block
        inner *= f32(math.sqrt(2 / math.pi))
        np.tanh(inner, out=inner)
        inner += f32(1)
        inner *= f32(0.5)
        block *= inner
