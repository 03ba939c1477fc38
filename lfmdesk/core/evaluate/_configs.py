"""What an evaluation compares: model variants x tiling presets x constrained/free decoding.

Tiling presets (a table, plus ``maxN``):

=========== ==========================================================================
``default`` your vision settings (the model card's unless you changed them)
``nosplit`` the same without splitting: one view of up to ``max_image_tokens`` tokens
``maxN``    one view of at most N image tokens, never split (``max64`` is live mode's)
=========== ==========================================================================
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lfmdesk.core._errors import InputError
from lfmdesk.core._settings import VisionSettings

__all__ = ["DECODINGS", "TILINGS", "EvalConfig", "make_configs", "tiling_vision"]

TILINGS: dict[str, Callable[[VisionSettings], VisionSettings]] = {
    "default": lambda v: v,
    "nosplit": lambda v: dataclasses.replace(v, do_image_splitting=False),
}
DECODINGS: dict[str, bool] = {"constrained": True, "free": False}
_MAX_TOKENS = re.compile(r"max(\d+)")


def tiling_vision(name: str, base: VisionSettings) -> VisionSettings:
    """The vision settings of tiling preset ``name`` built on ``base``.

    Raises:
        InputError: an unknown preset, or a ``maxN`` outside the allowed token range.
    """
    if name in TILINGS:
        return TILINGS[name](base)
    found = _MAX_TOKENS.fullmatch(name)
    if found is None:
        known = ", ".join([*TILINGS, "maxN (e.g. max64)"])
        raise InputError(f"unknown tiling {name!r}; use {known}")
    tokens = int(found.group(1))
    return dataclasses.replace(
        base,
        do_image_splitting=False,
        max_image_tokens=tokens,
        min_image_tokens=min(base.min_image_tokens, tokens),
    )


@dataclass(frozen=True)
class EvalConfig:
    """One configuration to evaluate.

    Attributes:
        variant: the model: a variant key (``8bit``), repo id or folder.
        tiling: a tiling preset name (see the module docstring).
        constrained: Detect answers decoded under the box grammar.
    """

    variant: str
    tiling: str = "default"
    constrained: bool = True

    @property
    def decoding(self) -> str:
        """``"constrained"`` or ``"free"``."""
        return "constrained" if self.constrained else "free"

    @property
    def name(self) -> str:
        """``8bit · default · constrained`` (a folder or repo id shows its last part)."""
        short = self.variant.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or self.variant
        return f"{short} · {self.tiling} · {self.decoding}"


def _names(text: str | Sequence[str]) -> list[str]:
    parts = text.split(",") if isinstance(text, str) else list(text)
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def make_configs(
    variants: str | Sequence[str],
    tilings: str | Sequence[str] = ("default",),
    decodings: str | Sequence[str] = ("constrained", "free"),
    *,
    vision: VisionSettings | None = None,
) -> tuple[EvalConfig, ...]:
    """Every combination, variant by variant (one model load each).

    Args:
        variants: "4bit,8bit" or a sequence.
        tilings: preset names.
        decodings: "constrained" and/or "free".
        vision: the base vision settings, to check each tiling can be built.

    Raises:
        InputError: an empty list, an unknown tiling or decoding.
    """
    names = {"variants": _names(variants), "tilings": _names(tilings)}
    names["decodings"] = _names(decodings)
    for what, values in names.items():
        if not values:
            raise InputError(f"nothing to evaluate: give one or more {what}")
    for tiling in names["tilings"]:
        tiling_vision(tiling, vision or VisionSettings())
    bad = [d for d in names["decodings"] if d not in DECODINGS]
    if bad:
        raise InputError(f"unknown decoding {bad[0]!r}; use constrained or free")
    return tuple(
        EvalConfig(variant, tiling, DECODINGS[decoding])
        for variant in names["variants"]
        for tiling in names["tilings"]
        for decoding in names["decodings"]
    )
