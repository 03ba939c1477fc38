"""Grounding: the detection prompt, and a tolerant parser from model text to pixel boxes.

The parser never raises on model text. One linear pass of a small hand-written scanner (plain
regex alternations, no nested quantifiers) builds a forgiving JSON-ish tree: single quotes,
Python literals, unquoted keys, missing or trailing commas, prose and code fences around the
JSON, and output cut off mid-array are all accepted. Every complete object with a box key, at
any depth, is a candidate; bare ``[x1, y1, x2, y2]`` lists at the top are labelled "object".

Scale, decided once per answer from every well-formed box (``top``: the largest coordinate):
``top <= 1.05`` → "normalized" (the slack keeps a 1.02 overshoot from turning the answer into
one-pixel boxes); else ``top <= 1000`` and either the image is over 1000 px on a side or some
x > width / y > height (so they cannot be pixels) → "per-mille"; else → "pixels" of the
oriented image. Known limits: a pixel answer with every coordinate ≤ 1, or a per-mille answer
whose boxes all fit an image of at most 1000 px, is read as the other scale.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lfmdesk.core._errors import InputError

__all__ = [
    "BOX_KEYS",
    "GROUNDING_TEMPLATE",
    "LABEL_KEYS",
    "MAX_DETECTIONS",
    "Detection",
    "DetectionResult",
    "grounding_prompt",
    "parse_detections",
    "split_labels",
]

# The LFM2.5-VL model card's grounding prompt. Fill it with grounding_prompt(): the literal
# braces of the JSON example make str.format() unusable on it.
GROUNDING_TEMPLATE = (
    "Detect all instances of: {query}. Response must be a JSON array: "
    '[{"label": ..., "bbox": [x1, y1, x2, y2]}, ...]. Coordinates are normalized to [0,1].'
)

BOX_KEYS = ("bbox", "bbox_2d", "box", "bounding_box")
LABEL_KEYS = ("label", "name", "class", "category")
MAX_DETECTIONS = 200
# A 200-detection answer is ~4,000 tokens; the cap bounds the time spent on runaway garbage.
_MAX_TOKENS = 200_000
_MAX_DEPTH = 64
_MAX_LABEL = 200
_NORMALIZED_TOP = 1.05
_PER_MILLE_TOP = 1000.0
_WORDS = dict(true=True, false=False, null=None, none=None, nan=math.nan, inf=math.inf)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_LABEL_SPLIT = re.compile(r"[,;\n]")
_OPENER = re.compile(r"[\[{]")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_TOKEN = re.compile(
    r"""(?P<space>\s+)
    |(?P<punct>[\[\]{}:,])
    |(?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
    |(?P<number>[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
    |(?P<word>[^\W\d]\w*)
    |(?P<other>[^\s\[\]{}:,"'\w+\-.]+|.)""",
    re.VERBOSE | re.DOTALL,
)


_JUNK: Any = object()  # a value the scanner could not read: prose word, broken string


class _Obj(dict[str, Any]):
    complete = False


class _Arr(list[Any]):
    complete = False


@dataclass(frozen=True)
class Detection:
    """One detected object.

    Attributes:
        label: what the model called it ("object" when it gave no label).
        box: normalized ``(x1, y1, x2, y2)`` in [0, 1], x1 < x2 and y1 < y2.
        box_px: the same box in pixels of the oriented image, rounded half up and clamped.
    """

    label: str
    box: tuple[float, float, float, float]
    box_px: tuple[int, int, int, int]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict: ``{"label", "box", "box_px"}``."""
        return {"label": self.label, "box": list(self.box), "box_px": list(self.box_px)}


@dataclass(frozen=True)
class DetectionResult:
    """Everything :func:`parse_detections` read from one answer.

    Attributes:
        detections: the kept detections, in answer order.
        dropped: one short reason per dropped item (repeats of one item share a line).
        scale: "normalized", "per-mille" or "pixels"; None when no box was readable.
        truncated: the answer was cut off mid-array; the complete objects were kept.
    """

    detections: tuple[Detection, ...]
    dropped: tuple[str, ...]
    scale: str | None
    truncated: bool

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the whole result."""
        return {
            "detections": [d.to_dict() for d in self.detections],
            "dropped": list(self.dropped),
            "scale": self.scale,
            "truncated": self.truncated,
        }


def split_labels(text: str) -> tuple[str, ...]:
    """Split "cat, dog ,," into ("cat", "dog"): commas, semicolons or lines; blanks and repeats go.

    Repeats are found case-insensitively; the first spelling is kept.
    """
    labels: dict[str, str] = {}
    for part in _LABEL_SPLIT.split(text):
        label = " ".join(part.split())
        if label:
            labels.setdefault(label.casefold(), label)
    return tuple(labels.values())


def grounding_prompt(labels: str | Sequence[str]) -> str:
    """Build the model card's detection prompt for ``labels``.

    Args:
        labels: "cat, dog" or ["cat", "dog"].

    Raises:
        InputError: no label is left once blanks are removed.
    """
    text = labels if isinstance(labels, str) else ", ".join(str(x) for x in labels)
    names = split_labels(text)
    if not names:
        raise InputError("nothing to detect: give one or more object names, e.g. 'cat, dog'")
    return GROUNDING_TEMPLATE.replace("{query}", ", ".join(names))


# --- scanning -----------------------------------------------------------------------------


def _unescape(body: str) -> str:
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if len(code) == 5:
            return chr(int(code[1:], 16))
        return _ESCAPES.get(code, code)

    if "\\" not in body:
        return body
    text = _ESCAPE.sub(one, body)
    # \ud83d\ude00 escapes arrive as two halves: pair them, and replace a lone half.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _scalar(kind: str, raw: str) -> Any:
    if kind == "number":
        return float(raw)
    if kind == "word":
        return _WORDS.get(raw.lower().replace("infinity", "inf"), _JUNK)
    body = raw[1:-1]
    # An odd run of backslashes before the last quote escapes it: the string never closed.
    escaped = (len(body) - len(body.rstrip("\\"))) % 2 == 1
    closed = len(raw) > 1 and raw[-1] == raw[0] and not escaped
    return _unescape(body) if closed else _JUNK


class _Scanner:
    """One linear pass over ``text`` building the JSON-ish tree; see the module docstring."""

    def __init__(self, text: str) -> None:
        self.roots: list[Any] = []
        self.stack: list[tuple[Any, list[str | None]]] = []  # (container, [pending key])
        self.skip = 0  # depth beyond _MAX_DEPTH, whose contents are ignored
        self.exhausted = False  # stopped at _MAX_TOKENS
        self._scan(text)

    def _add(self, value: Any, word: str | None = None) -> None:
        container, key = self.stack[-1]
        if isinstance(container, _Arr):
            container.append(value)
        elif key[0] is not None:
            container[key[0]] = value
            key[0] = None
        elif isinstance(value, (_Obj, _Arr)):
            # "{{...}, {...}}": braces used as a list; keep the children reachable.
            container[f"\x00{len(container)}"] = value
        elif word is not None:  # an unquoted key: {label: "cat"}
            key[0] = word
        elif isinstance(value, (str, float)):
            key[0] = value if isinstance(value, str) else repr(value)

    def _open(self, char: str) -> None:
        if len(self.stack) >= _MAX_DEPTH or self.skip:
            self.skip += 1
            return
        node: Any = _Arr() if char == "[" else _Obj()
        if self.stack:
            self._add(node)
        else:
            self.roots.append(node)
        self.stack.append((node, [None]))

    def _close(self, char: str) -> None:
        if self.skip:
            self.skip -= 1
            return
        kind = _Arr if char == "]" else _Obj
        for depth in range(len(self.stack) - 1, -1, -1):
            if isinstance(self.stack[depth][0], kind):
                # A mismatched closer closes the containers the model forgot to close.
                for node, _ in self.stack[depth:]:
                    node.complete = True
                del self.stack[depth:]
                return

    def _scan(self, text: str) -> None:
        pos, end, tokens = 0, len(text), 0
        while pos < end:
            tokens += 1
            if tokens > _MAX_TOKENS:
                self.exhausted = True
                return
            if not self.stack and not self.skip:
                found = _OPENER.search(text, pos)
                if found is None:
                    return
                pos = found.start()
            match = _TOKEN.match(text, pos)
            if match is None:  # unreachable: the last alternative matches any character
                return
            pos = match.end()
            kind, token = match.lastgroup or "other", match.group()
            if token in ("[", "{"):
                self._open(token)
            elif token in ("]", "}"):
                self._close(token)
            elif token == "," and not self.skip:
                self.stack[-1][1][0] = None  # a comma ends an entry: forget a dangling key
            elif kind in ("string", "number", "word") and not self.skip:
                self._add(_scalar(kind, token), token if kind == "word" else None)


# --- candidates ---------------------------------------------------------------------------


def _is_box_list(node: Any) -> bool:
    return isinstance(node, list) and len(node) == 4 and all(type(v) is float for v in node)


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> tuple[bool, Any]:
    lowered = {k.lower(): v for k, v in obj.items()}
    for key in keys:
        if key in lowered:
            return True, lowered[key]
    return False, None


def _candidates(root: Any) -> Iterator[tuple[Any, Any]]:
    """Yield (label value, box value) for every candidate under ``root``, in answer order."""
    if _is_box_list(root):
        yield None, root
        return
    # (node, whether a bare box list here counts: only directly inside a top-level list)
    todo: list[tuple[Any, bool]] = [(root, False)]
    while todo:
        node, bare_ok = todo.pop()
        if isinstance(node, _Obj):
            has_box, box = _first(node, BOX_KEYS)
            has_label, label = _first(node, LABEL_KEYS)
            nested = any(isinstance(v, (dict, list)) for v in node.values())
            if node.complete and (has_box or (has_label and not nested)):
                yield label, box
                continue
            children = list(node.values())
        elif bare_ok and _is_box_list(node):
            yield None, node
            continue
        else:
            children = list(node)
        top_list = node is root and isinstance(node, _Arr)
        todo.extend((c, top_list) for c in reversed(children) if isinstance(c, (dict, list)))


# --- boxes --------------------------------------------------------------------------------


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = str(int(value))
    if not isinstance(value, str):
        return "object"
    return " ".join(value.split())[:_MAX_LABEL] or "object"


def _number(value: Any) -> float | None:
    try:  # quoted numbers ("0.5") are accepted: harmless, and small models write them
        return float(value) if isinstance(value, (float, str)) else None
    except ValueError:
        return None


def _raw_box(value: Any) -> tuple[float, float, float, float] | str:
    """Four finite numbers, or the reason they cannot be had."""
    if isinstance(value, str) and "[" in value:
        roots = _Scanner(value).roots
        value = roots[0] if roots else value
    if not isinstance(value, list):
        return "no box" if value is None else "box is not a list of 4 numbers"
    if len(value) != 4:
        return f"box has {len(value)} values, expected 4"
    numbers = [_number(v) for v in value]
    if any(n is None for n in numbers):
        return "non-numeric box"
    x1, y1, x2, y2 = (n for n in numbers if n is not None)
    if not all(math.isfinite(n) for n in (x1, y1, x2, y2)):
        return "NaN or infinite coordinate"
    return x1, y1, x2, y2


def _detect_scale(boxes: Sequence[tuple[float, ...]], width: int, height: int) -> str | None:
    if not boxes:
        return None
    top = max(max(box) for box in boxes)
    if top <= _NORMALIZED_TOP:
        return "normalized"
    if top <= _PER_MILLE_TOP:
        if max(width, height) > _PER_MILLE_TOP:
            return "per-mille"
        if any(max(b[0], b[2]) > width or max(b[1], b[3]) > height for b in boxes):
            return "per-mille"
    return "pixels"


def _to_pixels(v: float, size: int) -> int:
    return min(size, max(0, math.floor(v * size + 0.5)))


def _place(
    raw: tuple[float, float, float, float], scale: str, width: int, height: int
) -> tuple[tuple[float, float, float, float], tuple[int, int, int, int]] | str:
    """Normalize, order and clamp one box; or say why it is dropped."""
    sx, sy = {"normalized": (1.0, 1.0), "per-mille": (1000.0, 1000.0)}.get(
        scale, (float(width), float(height))
    )
    x1, x2 = sorted((raw[0] / sx, raw[2] / sx))
    y1, y2 = sorted((raw[1] / sy, raw[3] / sy))
    if x1 == x2 or y1 == y2:
        return "zero-area box"
    if x2 <= 0 or y2 <= 0 or x1 >= 1 or y1 >= 1:
        return "box outside the image"
    x1, y1, x2, y2 = (round(min(1.0, max(0.0, v)), 6) for v in (x1, y1, x2, y2))
    px1, px2 = _to_pixels(x1, width), _to_pixels(x2, width)
    py1, py2 = _to_pixels(y1, height), _to_pixels(y2, height)
    if px1 >= px2 or py1 >= py2:
        return "zero-area box"
    return (x1, y1, x2, y2), (px1, py1, px2, py2)


def _repeat_lines(repeats: dict[int, list[int]]) -> list[str]:
    return [
        f"item {at[0]}: repeat of item {first}"
        if len(at) == 1
        else f"items {at[0]}-{at[-1]}: {len(at)} repeats of item {first}"
        for first, at in repeats.items()
    ]


def _build(
    items: list[tuple[Any, Any]], width: int, height: int
) -> tuple[list[Detection], list[str], str | None]:
    raws = [_raw_box(box) for _, box in items]
    scale = _detect_scale([r for r in raws if not isinstance(r, str)], width, height)
    kept: list[Detection] = []
    dropped: list[str] = []
    seen: dict[tuple[str, tuple[int, ...]], int] = {}
    repeats: dict[int, list[int]] = {}
    for number, ((label_value, _), raw) in enumerate(zip(items, raws, strict=True), start=1):
        if len(kept) >= MAX_DETECTIONS:
            left = len(items) - number + 1
            dropped.append(f"stopped at {MAX_DETECTIONS} detections; {left} more items ignored")
            break
        placed = raw if isinstance(raw, str) else _place(raw, scale or "pixels", width, height)
        if isinstance(placed, str):
            dropped.append(f"item {number}: {placed}")
            continue
        label = _label(label_value)
        key = (label, placed[1])
        if key in seen:
            repeats.setdefault(seen[key], []).append(number)
            continue
        seen[key] = number
        kept.append(Detection(label, placed[0], placed[1]))
    return kept, dropped + _repeat_lines(repeats), scale


def parse_detections(text: str, width: int, height: int) -> DetectionResult:
    """Read the detections in a model answer; never raises on any text.

    Args:
        text: the model's answer, as generated.
        width: width in pixels of the oriented image the model saw.
        height: its height in pixels.

    Raises:
        ValueError: ``width`` or ``height`` is not a positive whole number (a caller bug).
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    scanner = _Scanner(text)
    items: list[tuple[Any, Any]] = []
    for root in scanner.roots:
        items.extend(_candidates(root))
    open_nodes = [node for node, _ in scanner.stack]
    truncated = bool(open_nodes) and (
        any(isinstance(n, _Obj) for n in open_nodes)
        or any(True for _ in _candidates(open_nodes[0]))
    )
    kept, dropped, scale = _build(items, width, height)
    if scanner.exhausted:
        dropped.append(f"answer too long: read its first {_MAX_TOKENS} tokens only")
    return DetectionResult(tuple(kept), tuple(dropped), scale, truncated)
