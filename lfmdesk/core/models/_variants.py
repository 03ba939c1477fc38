"""The model variants lfmdesk knows by a short key ("8bit", "1.6b-4bit", ...).

One row per downloadable MLX repo, and only for repos that exist on the hub:

* LFM2.5-VL-450M: Liquid AI's own MLX builds, ``LiquidAI/LFM2.5-VL-450M-MLX-{4,5,6,8bit,bf16}``.
* LFM2.5-VL-1.6B: Liquid AI publishes no MLX build; the public ones are mlx-community's
  ``mlx-community/LFM2.5-VL-1.6B-{4bit,6bit,8bit,bf16}`` (no 5-bit). Their chat template is
  reported to lack LFM2.5's tool-list macro; lfmdesk then writes the tool list into the system
  turn itself, exactly as LFM2.5's template does (``core/engine/prompt/_render``), so tools
  still work.
* LFM2-VL (first generation): mlx-community's 8-bit conversions.
* LFM2.5-VL-3B (``LiquidAI/LFM2.5-VL-3B-MLX-*``) is left out on purpose: lfmdesk offers only
  models that load with mlx-vlm's built-in LFM2-VL classes and no ``trust_remote_code``, and
  that could not be checked for 3B without the weights (no network where this table was made).

 ``size_bytes`` is an *estimate for display* ("will download
about 570 MB"), computed below from parameter counts, not measured from the hub:

* MLX conversions (``mlx_vlm.convert -q``) quantize the language model only; the vision tower and
  the projector stay bf16 (2 bytes per parameter).
* A quantized weight costs ``bits`` per parameter plus a bf16 scale and a bf16 bias per group of
  64 weights, i.e. 0.5 bit per parameter more.
* Parameter counts: LFM2(.5)-350M text ≈ 354M, SigLIP2 NaFlex base ≈ 86M, projector ≈ 10M
  (450M models); LFM2(.5)-1.2B text ≈ 1.17B, SigLIP2 NaFlex so400m ≈ 400M, projector ≈ 14M
  (1.6B models); LFM2-2.6B text ≈ 2.57B with the same vision tower (3B model).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_VARIANT_KEY", "VARIANTS", "Variant", "find_variant"]


@dataclass(frozen=True)
class Variant:
    """One downloadable model repo.

    Attributes:
        key: Short name typed on the command line ("8bit", "1.6b-8bit", "v1-450m-8bit").
        repo_id: Hugging Face repo id.
        family: Model family ("LFM2.5-VL-450M", "LFM2-VL-3B", ...).
        bits: Quantization bits of the language model; ``None`` for bf16.
        size_bytes: Estimated size on disk (see the module docstring), rounded to a megabyte.
        description: One line for a menu or ``--help``.
    """

    key: str
    repo_id: str
    family: str
    bits: int | None
    size_bytes: int
    description: str


_GROUP_OVERHEAD_BITS = 0.5  # bf16 scale + bf16 bias per group of 64 weights
_MB = 1_000_000

# family -> (language-model parameters, vision tower + projector parameters)
_PARAMS: dict[str, tuple[int, int]] = {
    "LFM2.5-VL-450M": (354_000_000, 96_000_000),
    "LFM2.5-VL-1.6B": (1_170_000_000, 414_000_000),
    "LFM2-VL-450M": (354_000_000, 96_000_000),
    "LFM2-VL-1.6B": (1_170_000_000, 414_000_000),
    "LFM2-VL-3B": (2_570_000_000, 415_000_000),
}

_PRECISION_TEXT: dict[int | None, str] = {
    4: "4-bit: smallest, lowest quality",
    5: "5-bit",
    6: "6-bit",
    8: "8-bit: near bf16 quality at half the size",
    None: "bf16: full precision, largest",
}


def _estimate_size(family: str, bits: int | None) -> int:
    text, vision = _PARAMS[family]
    text_bits = 16.0 if bits is None else bits + _GROUP_OVERHEAD_BITS
    total = text * text_bits / 8 + vision * 2
    return round(total / _MB) * _MB


def _bits_suffix(bits: int | None) -> str:
    return "bf16" if bits is None else f"{bits}bit"


def _liquid(family: str, key_prefix: str, bits: int | None) -> Variant:
    suffix = _bits_suffix(bits)
    return Variant(
        key=f"{key_prefix}{suffix}",
        repo_id=f"LiquidAI/{family}-MLX-{suffix}",
        family=family,
        bits=bits,
        size_bytes=_estimate_size(family, bits),
        description=f"{family}, {_PRECISION_TEXT[bits]} (Liquid AI)",
    )


def _community(family: str, key_prefix: str, bits: int | None, *, first_gen: bool) -> Variant:
    # Conversions published by mlx-community, not by Liquid AI; the description says so.
    suffix = _bits_suffix(bits)
    generation = " (first generation)" if first_gen else ""
    return Variant(
        key=f"{key_prefix}{suffix}",
        repo_id=f"mlx-community/{family}-{suffix}",
        family=family,
        bits=bits,
        size_bytes=_estimate_size(family, bits),
        description=f"{family}{generation}, {_PRECISION_TEXT[bits]} "
        "(community conversion by mlx-community)",
    )


_ALL_BITS: tuple[int | None, ...] = (4, 5, 6, 8, None)
_COMMUNITY_1_6B_BITS: tuple[int | None, ...] = (4, 6, 8, None)  # mlx-community has no 5-bit

VARIANTS: tuple[Variant, ...] = (
    *(_liquid("LFM2.5-VL-450M", "", bits) for bits in _ALL_BITS),
    *(
        _community("LFM2.5-VL-1.6B", "1.6b-", bits, first_gen=False)
        for bits in _COMMUNITY_1_6B_BITS
    ),
    _community("LFM2-VL-450M", "v1-450m-", 8, first_gen=True),
    _community("LFM2-VL-1.6B", "v1-1.6b-", 8, first_gen=True),
    _community("LFM2-VL-3B", "v1-3b-", 8, first_gen=True),
)

DEFAULT_VARIANT_KEY = "8bit"

_BY_NAME: dict[str, Variant] = {
    **{v.repo_id.lower(): v for v in VARIANTS},
    **{v.key.lower(): v for v in VARIANTS},
}


def find_variant(key_or_repo: str) -> Variant | None:
    """Return the variant with this key or repo id (case-insensitive), or ``None``.

    Args:
        key_or_repo: A key such as ``"8bit"`` or a repo id such as
            ``"LiquidAI/LFM2.5-VL-450M-MLX-8bit"``.
    """
    return _BY_NAME.get(key_or_repo.strip().lower())
