"""Constrained decoding: answers that follow a grammar by construction, on Metal and on CPU.

A :class:`Constraint` rides on the :class:`~lfmdesk.core.ChatRequest` (frozen, picklable: it
crosses the engine-process pipe). ``Engine._generate`` turns it into an MLX logits processor
(:func:`logits_processor`) that mlx-vlm's decode loop calls once per token: llguidance computes
the bitmask of tokens the grammar allows next, and every other token's logit becomes -inf.

mlx-vlm's own ``LLGuidanceLogitsProcessor`` applies that mask with a Metal kernel and fails on
CPU ("No Metal back-end"); :func:`apply_token_bitmask` applies the same bitmask with plain MLX
ops where Metal is missing (mlx-vlm's Metal kernel where it is)::

    request = dataclasses.replace(request, constraint=constraint_for_detection(["car"]))
    request = dataclasses.replace(request, constraint=constraint_for_json_schema(schema))

Detection constraints also get a :class:`~._detect_grammar.DetectionGuard`: no zero-area or
repeated boxes, and the array always closes within ``max_tokens``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lfmdesk.core._errors import EngineError, InputError
from lfmdesk.core.answers._grounding import split_labels
from lfmdesk.core.engine._detect_grammar import DetectionGuard, detection_lark, detection_schema

__all__ = [
    "ConstrainedLogits",
    "Constraint",
    "GrammarTokenizer",
    "apply_token_bitmask",
    "constraint_for_detection",
    "constraint_for_json_schema",
    "logits_processor",
]

ConstraintKind = Literal["detection", "json_schema"]
# The model card's JSON style: one space after ", " and ": ", no other whitespace.
_JSON_OPTIONS = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}


@dataclass(frozen=True)
class Constraint:
    """A grammar an answer must follow.

    Attributes:
        kind: "detection" (the grounding answer for ``labels``) or "json_schema".
        grammar: the llguidance grammar (serialized; what the engine compiles).
        schema: an equivalent JSON schema as text, for backends that take schemas.
        labels: detection only: the labels an answer may use.
    """

    kind: ConstraintKind
    grammar: str
    schema: str
    labels: tuple[str, ...] = ()


def _llguidance() -> Any:
    import llguidance

    return llguidance


def constraint_for_detection(labels: str | Sequence[str]) -> Constraint:
    """The Detect answer for ``labels``: ``[]`` or ``[{"label", "bbox"}, ...]``.

    Labels are cleaned like :func:`~lfmdesk.core.split_labels`; each box is four numbers in
    [0, 1] (at most three decimals) and each label one of ``labels``.

    Raises:
        InputError: no label is left once blanks are removed.
    """
    names = split_labels(labels if isinstance(labels, str) else ",".join(labels))
    if not names:
        raise InputError("nothing to detect: give one or more object names, e.g. 'cat, dog'")
    grammar = _llguidance().LLMatcher.grammar_from_lark(detection_lark(names))
    return Constraint("detection", grammar, json.dumps(detection_schema(names)), names)


def constraint_for_json_schema(schema: str | Mapping[str, Any]) -> Constraint:
    """Answers that are JSON documents valid under ``schema`` (OpenAI's ``json_schema``).

    Raises:
        InputError: ``schema`` is not a JSON object, or llguidance cannot compile it.
    """
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise InputError(f"the JSON schema is not valid JSON: {exc}") from None
    if not isinstance(schema, Mapping):
        raise InputError("a JSON schema must be a JSON object")
    labels = _detection_labels(schema)
    if labels:  # a Detect answer asked for by schema (a remote lfmdesk): decode it as Detect does
        return constraint_for_detection(labels)
    text = json.dumps(schema, ensure_ascii=False)
    llg = _llguidance()
    try:
        grammar = llg.LLMatcher.grammar_from_json_schema(text, defaults=_JSON_OPTIONS)
    except ValueError as exc:
        raise InputError(f"the JSON schema cannot be used: {exc}") from None
    error = llg.LLMatcher.validate_grammar(grammar)
    if error:
        raise InputError(f"the JSON schema cannot be used: {' '.join(error.split())}")
    return Constraint("json_schema", grammar, text)


def _detection_labels(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The labels when ``schema`` is exactly :func:`detection_schema`'s, else ()."""
    try:
        labels = schema["items"]["properties"]["label"]["enum"]
    except (KeyError, TypeError):
        return ()
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        return ()
    return tuple(labels) if labels and dict(schema) == detection_schema(labels) else ()


class GrammarTokenizer:
    """llguidance's view of a loaded model's tokenizer (built once per model: ~1 s).

    Args:
        tokenizer: the Hugging Face tokenizer the model decodes with.
    """

    def __init__(self, tokenizer: Any) -> None:
        import llguidance.hf

        self.llg = llguidance.hf.from_tokenizer(tokenizer)
        self._bytes: dict[int, bytes | None] = {}

    @property
    def vocab_size(self) -> int:
        """Tokens the grammar masks are sized for."""
        return int(self.llg.vocab_size)

    def token_bytes(self, token: int) -> bytes | None:
        """The bytes token ``token`` stands for; None for special tokens (the end token)."""
        if token not in self._bytes:
            special = self.llg.is_special_token(token)
            self._bytes[token] = None if special else bytes(self.llg.decode_bytes([token]))
        return self._bytes[token]


def _metal() -> bool:
    import mlx.core as mx

    return bool(mx.metal.is_available())


def _metal_kernel() -> Any:
    """mlx-vlm's Metal mask kernel (what its own processor uses); None if it moved."""
    try:
        from mlx_vlm.structured import _apply_llguidance_mask
    except (ImportError, AttributeError):
        return None
    return _apply_llguidance_mask


def apply_token_bitmask(logits: Any, mask: np.ndarray) -> Any:
    """``logits`` with every token whose bit is 0 in ``mask`` set to -inf.

    Args:
        logits: an MLX array, ``(vocab,)`` or ``(batch, vocab)``.
        mask: llguidance's packed bitmask, int32 ``(batch, ceil(vocab / 32))``; bit ``i % 32``
            of word ``i // 32`` allows token ``i``. Tokens past the mask are not allowed.
    """
    import mlx.core as mx

    flat = logits.ndim == 1
    rows = logits[None, :] if flat else logits
    metal_apply = _metal_kernel() if _metal() else None
    if metal_apply is not None:
        out = metal_apply(rows, mx.array(mask.reshape(rows.shape[0], -1)))
    else:
        words = mx.array(mask.reshape(rows.shape[0], -1))
        bits = mx.right_shift(words[:, :, None], mx.arange(32, dtype=mx.int32)) & 1
        allowed = bits.reshape(rows.shape[0], -1)
        vocab = rows.shape[1]
        if allowed.shape[1] < vocab:
            pad = mx.zeros((rows.shape[0], vocab - allowed.shape[1]), dtype=allowed.dtype)
            allowed = mx.concatenate([allowed, pad], axis=1)
        out = mx.where(allowed[:, :vocab] != 0, rows, mx.array(-np.inf, dtype=rows.dtype))
    return out[0] if flat else out


class ConstrainedLogits:
    """An mlx-vlm logits processor: ``processor(tokens, logits) -> logits``, one per answer.

    The first call masks the first answer token; each later call first feeds the token
    sampled last to the grammar (``tokens[-1]``). ``seconds`` adds up the time spent on
    masks (the benchmark reports it per token).

    Args:
        grammar: a serialized llguidance grammar.
        tokenizer: the model's :class:`GrammarTokenizer`.
        max_tokens: the answer's token budget (the guard closes the array within it).
        guard: the detection guard, or None.

    Raises:
        EngineError: the grammar does not compile for this tokenizer.
    """

    def __init__(
        self,
        grammar: str,
        tokenizer: GrammarTokenizer,
        max_tokens: int,
        guard: DetectionGuard | None = None,
    ) -> None:
        llg = _llguidance()
        self._tokenizer = tokenizer
        self._matcher = llg.LLMatcher(tokenizer.llg, grammar)
        if self._matcher.is_error():
            raise EngineError(f"cannot constrain this answer: {self._matcher.get_error()}")
        self._mask = np.full((1, (tokenizer.vocab_size + 31) // 32), -1, dtype=np.int32)
        self._guard = guard
        self._max_tokens = max_tokens
        self._steps = 0
        self.seconds = 0.0

    @property
    def steps(self) -> int:
        """Masks computed so far (one per generated token)."""
        return self._steps

    def __call__(self, tokens: Any, logits: Any) -> Any:
        # Reading the last token waits for the model's step: that wait is not ours to count.
        last = int(tokens[-1].item()) if self._steps else -1
        began = time.perf_counter()
        if self._steps:
            if not self._matcher.consume_token(last):
                raise EngineError(f"constrained decoding failed: {self._matcher.get_error()}")
            if self._guard is not None:
                self._guard.advance(last)
        self._fill_mask()
        self._steps += 1
        out = apply_token_bitmask(logits, self._mask)
        self.seconds += time.perf_counter() - began
        return out

    def _fill_mask(self) -> None:
        import llguidance.numpy

        llguidance.numpy.fill_next_token_bitmask(self._matcher, self._mask, 0)
        remaining = self._max_tokens - self._steps
        if self._guard is None or not self._guard.checks(remaining):
            return
        row = self._mask[0]
        candidates = np.flatnonzero(np.unpackbits(row.view(np.uint8), bitorder="little"))
        kept = self._guard.allowed(candidates.tolist(), remaining)
        if kept is None:
            return
        allowed = np.zeros(row.size * 32, dtype=bool)
        allowed[kept] = True
        row[:] = np.packbits(allowed, bitorder="little").view(np.int32)


def logits_processor(
    constraint: Constraint,
    tokenizer: GrammarTokenizer,
    *,
    max_tokens: int,
    image_size: tuple[int, int] | None,
) -> ConstrainedLogits:
    """The logits processor that holds one answer to ``constraint``.

    Args:
        constraint: what the answer must follow.
        tokenizer: the loaded model's :class:`GrammarTokenizer`.
        max_tokens: the answer's token budget.
        image_size: (width, height) of the image a detection answer is about; None when the
            request has no image (boxes are then kept apart on a 1000-step grid).
    """
    guard = None
    if constraint.kind == "detection":
        width, height = image_size or (1000, 1000)
        guard = DetectionGuard(constraint.labels, width, height, tokenizer.token_bytes)
    return ConstrainedLogits(constraint.grammar, tokenizer, max_tokens, guard)
