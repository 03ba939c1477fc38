"""A faster SigLIP2 vision tower on CPU, patched into mlx-vlm's model at load.

Profiled on a 2-core x86-64 CPU (512x512 image: 1024 patches, 12 layers, float32, OpenBLAS):
the matmuls already run at BLAS speed, but MLX's CPU element-wise kernels are scalar loops
(its JIT compiles them without SIMD flags), so ``exp`` costs ~10 ns a number and ``erf``
more: the attention softmax (12 x 1024 x 1024 exps a layer) and the precise GELU (1024 x
3072 erfs) took over half of the tower's ~3.4-4.2 s. ``mx.compile`` does not help (nn.gelu
is compiled already; the fused loop calls the same scalar ``exp``), and
``mx.fast.scaled_dot_product_attention`` falls back to the same ops on CPU. NumPy's
ufuncs are vectorized (AVX2/AVX-512) and its bundled OpenBLAS does the matmuls, so the
encoder layers run in NumPy: LayerNorm, the q/k/v/out projections, attention with an
in-place softmax, and GELU with erf from Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, a
third of MLX's own). Embeddings, the post-layernorm, pixel unshuffle and the projector stay
in MLX. Same weights (NumPy views of MLX's arrays, no copy), same masking, float32 all the
way: features equal the stock path's to float32 rounding (tests compare them), and on the
full-size tower they are closer to a float64 reference than the stock path's are.

Where it runs: ``auto`` takes it on a CPU-only MLX with float32 tower weights (lfmdesk's
CPU default) and keeps mlx-vlm's own tower on Apple GPUs, where Metal kernels are fast;
``LFMDESK_VISION_TOWER=numpy|stock`` forces one (``python -m lfmdesk.bench --stages`` times
both on any machine).
"""

from __future__ import annotations

import math
import os
from typing import Any, Literal, cast

__all__ = ["VISION_TOWERS", "VisionTower", "install_fast_vision", "numpy_encoder_class"]

VisionTower = Literal["auto", "numpy", "stock"]
VISION_TOWERS: tuple[VisionTower, ...] = ("auto", "numpy", "stock")
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
        tower: "numpy", "stock" or "auto"; None reads ``LFMDESK_VISION_TOWER``.

    Returns:
        The tower in use: "numpy" or "stock".
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten

    encoder = model.vision_tower.encoder
    stock = _stock_class(encoder)
    wanted = tower or requested_tower()
    float32 = all(w.dtype == mx.float32 for _, w in tree_flatten(encoder.parameters()))
    use_numpy = float32 and (wanted == "numpy" or (wanted == "auto" and device == "cpu"))
    encoder.__class__ = numpy_encoder_class(stock) if use_numpy else stock
    return "numpy" if use_numpy else "stock"


def _stock_class(encoder: Any) -> type:
    cls = type(encoder)
    return cast(type, getattr(cls, "_lfmdesk_stock", cls))


_CLASSES: dict[type, type] = {}


def numpy_encoder_class(stock: type) -> type:
    """A subclass of mlx-vlm's SigLIP2 ``Encoder`` whose layers run in NumPy (made once)."""
    if stock not in _CLASSES:
        _CLASSES[stock] = type(
            "NumpyEncoder",
            (stock,),
            {"__call__": _numpy_encoder_call, "_lfmdesk_stock": stock},
        )
    return _CLASSES[stock]


def _numpy_encoder_call(
    self: Any, x: Any, output_hidden_states: bool | None = None, mask: Any = None
) -> tuple[Any, ...]:
    """``Encoder.__call__`` with the same inputs and outputs, computed in NumPy."""
    import mlx.core as mx
    import numpy as np

    mx.eval(x if mask is None else (x, mask))
    hidden = np.array(x, dtype=np.float32)  # a copy we may overwrite
    additive = None if mask is None else np.asarray(mask, dtype=np.float32)
    states = [mx.array(hidden)] if output_hidden_states else []
    for layer in self.layers:
        weights = _LayerWeights(layer)
        for row in range(hidden.shape[0]):  # one view at a time bounds the attention memory
            row_mask = None if additive is None else additive[row % additive.shape[0], 0]
            hidden[row] = weights.forward(hidden[row], row_mask)
        if output_hidden_states:
            states.append(mx.array(hidden))
    return tuple(states) if output_hidden_states else (mx.array(hidden),)


class _LayerWeights:
    """One encoder layer's weights as NumPy views of the MLX arrays (no copies)."""

    def __init__(self, layer: Any) -> None:
        import numpy as np

        def view(a: Any) -> Any:
            return np.asarray(a)

        attn, mlp = layer.self_attn, layer.mlp
        self.heads = int(attn.num_heads)
        self.scale = float(attn.scale)
        self.norm1 = (view(layer.layer_norm1.weight), view(layer.layer_norm1.bias))
        self.norm2 = (view(layer.layer_norm2.weight), view(layer.layer_norm2.bias))
        self.eps1, self.eps2 = float(layer.layer_norm1.eps), float(layer.layer_norm2.eps)
        self.q = (view(attn.q_proj.weight), view(attn.q_proj.bias))
        self.k = (view(attn.k_proj.weight), view(attn.k_proj.bias))
        self.v = (view(attn.v_proj.weight), view(attn.v_proj.bias))
        self.out = (view(attn.out_proj.weight), view(attn.out_proj.bias))
        self.fc1 = (view(mlp.fc1.weight), view(mlp.fc1.bias))
        self.fc2 = (view(mlp.fc2.weight), view(mlp.fc2.bias))

    def forward(self, x: Any, mask: Any) -> Any:
        """``x + attn(ln1(x))`` then ``h + mlp(ln2(h))`` for one view: (L, D) -> (L, D)."""
        h = x + self.attention(_layer_norm(x, *self.norm1, self.eps1), mask)
        hidden = _linear(_layer_norm(h, *self.norm2, self.eps2), *self.fc1)
        _gelu_inplace(hidden)
        h += _linear(hidden, *self.fc2)
        return h

    def attention(self, a: Any, mask: Any) -> Any:
        length = a.shape[0]
        q = _linear(a, *self.q).reshape(length, self.heads, -1).transpose(1, 0, 2)
        k = _linear(a, *self.k).reshape(length, self.heads, -1).transpose(1, 2, 0)
        v = _linear(a, *self.v).reshape(length, self.heads, -1).transpose(1, 0, 2)
        q *= self.scale
        scores = q @ k  # (heads, L, L)
        if mask is not None:
            scores += mask  # (1, L): 0 for patches, -inf for padding
        _softmax_inplace(scores)
        context = (scores @ v).transpose(1, 0, 2).reshape(length, -1)
        return _linear(context, *self.out)


def _linear(x: Any, weight: Any, bias: Any) -> Any:
    out = x @ weight.T
    out += bias
    return out


def _layer_norm(x: Any, weight: Any, bias: Any, eps: float) -> Any:
    import numpy as np

    centred = x - x.mean(axis=-1, keepdims=True)
    var = np.mean(np.square(centred), axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(var + np.float32(eps))
    centred *= weight
    centred += bias
    return centred


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
