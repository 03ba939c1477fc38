"""The grammar of a Detect answer, and the guard that keeps every box in it usable.

:func:`detection_lark` is the answer format of the model card's grounding prompt as an
llguidance Lark grammar: ``[]`` or a JSON array of ``{"label": L, "bbox": [x1, y1, x2, y2]}``
where ``L`` is one of the requested labels and every coordinate is a number in [0, 1] with at
most three decimals, written with the card's separators (``", "``, ``": "``), at most
:data:`MAX_DETECTIONS` items. Whatever a model's weights say, the text parses.

A grammar cannot say "x2 differs from x1" or "not the same box twice", and it cannot see the
token budget, so :class:`DetectionGuard` walks the answer byte by byte beside the grammar
and, at the steps where it matters, removes from the grammar's allowed tokens those that
would (1) give a box with no area in the image's pixels, (2) repeat an earlier box with the
same label, or (3) leave fewer tokens than the shortest way to close the array. Then
``parse_detections`` keeps every box: nothing is dropped and nothing is cut off. The pixel
rule is the parser's own (``floor(v * size + 0.5)``), so both agree on what a repeat is.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lfmdesk.core.answers._grounding import MAX_DETECTIONS

__all__ = ["DECIMALS", "DetectionGuard", "detection_lark", "detection_schema"]

DECIMALS = 3
_GRID = 1000  # 10 ** DECIMALS: coordinates are k / 1000 for k in 0..1000
_DIGITS = b"0123456789"
_NUMBER = frozenset(b"0123456789.")
# The item template: literal bytes, and the two kinds of free field.
_LABEL, _NUM = "label", "num"
_PARTS: tuple[bytes | str, ...] = (
    b'{"label": ',
    _LABEL,
    b', "bbox": [',
    _NUM,
    b", ",
    _NUM,
    b", ",
    _NUM,
    b", ",
    _NUM,
    b"]}",
)
_COORD_OF_PART = {3: 0, 5: 1, 7: 2, 9: 3}  # part index -> x1, y1, x2, y2
_FIRST_GUARDED_PART = 5  # from y1 on, one token can reach x2 or y2
_START, _OPEN, _ITEM, _AFTER, _SEP, _END, _LOST = range(7)


def _json_label(label: str) -> str:
    return json.dumps(label, ensure_ascii=False)


def detection_lark(labels: Sequence[str]) -> str:
    """The Lark grammar of a Detect answer for ``labels`` (llguidance's dialect)."""
    choices = " | ".join(json.dumps(_json_label(x), ensure_ascii=False) for x in labels)
    more = MAX_DETECTIONS - 1
    return (
        f'start: "[" (item (", " item){{0,{more}}})? "]"\n'
        'item: "{\\"label\\": " LABEL ", \\"bbox\\": [" NUM ", " NUM ", " NUM ", " NUM "]}"\n'
        f"LABEL: {choices}\n"
        f"NUM: /0(\\.[0-9]{{1,{DECIMALS}}})?|1(\\.0{{1,{DECIMALS}}})?/\n"
    )


def detection_schema(labels: Sequence[str]) -> dict[str, object]:
    """The same answer as a JSON schema, for backends that take schemas (vLLM, OpenAI)."""
    coordinate = {"type": "number", "minimum": 0, "maximum": 1}
    item = {
        "type": "object",
        "properties": {
            "label": {"enum": list(labels)},
            "bbox": {"type": "array", "items": coordinate, "minItems": 4, "maxItems": 4},
        },
        "required": ["label", "bbox"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": item, "maxItems": MAX_DETECTIONS}


def _pixel(k: int, size: int) -> int:
    """The parser's pixel for coordinate ``k / 1000`` (``_grounding._to_pixels``)."""
    return min(size, max(0, math.floor(round(k / _GRID, 6) * size + 0.5)))


def _grid_range(number: bytes) -> tuple[int, int]:
    """Every grid value ``k`` a number starting with ``number`` can still end as."""
    if number.startswith(b"1"):
        return _GRID, _GRID
    if not number:
        return 0, _GRID
    digits = number[2:].decode()  # after "0."
    low = int(digits.ljust(DECIMALS, "0")) if digits else 0
    high = int(digits.ljust(DECIMALS, "9")) if digits else _GRID - 1
    return low, high


def _is_complete(number: bytes) -> bool:
    return bool(number) and not number.endswith(b".")


def _value(number: bytes) -> int:
    return round(float(number.decode()) * _GRID)


def _extensions(number: bytes) -> list[bytes]:
    """One more byte the number grammar allows after ``number``."""
    if not number:
        return [b"0", b"1"]
    if number in (b"0", b"1"):
        return [b"."]
    if len(number) - 2 >= DECIMALS:
        return []
    return [b"0"] if number.startswith(b"1") else [bytes([d]) for d in _DIGITS]


@dataclass
class _Walk:
    """Where an answer stands in the format; copied to try a token without committing it."""

    stage: int = _START
    part: int = 0
    offset: int = 0
    buffer: bytes = b""
    label: bytes = b""
    coords: list[int] = field(default_factory=list)  # pixels of this item: x1, y1, x2, y2
    bad: bool = False  # a box this walk completed breaks a rule

    def copy(self) -> _Walk:
        return _Walk(self.stage, self.part, self.offset, self.buffer, self.label, [*self.coords])


class DetectionGuard:
    """Follows a Detect answer token by token and vetoes tokens that would spoil a box.

    Args:
        labels: the requested labels (as in the grammar).
        width: width in pixels of the image the model sees.
        height: its height.
        token_bytes: the bytes of a token id; None for special tokens (the end token).
    """

    def __init__(
        self,
        labels: Sequence[str],
        width: int,
        height: int,
        token_bytes: Callable[[int], bytes | None],
    ) -> None:
        self._labels = tuple(_json_label(x).encode() for x in labels)
        self._sizes = (max(1, width), max(1, height))
        self._pixels = [[_pixel(k, size) for k in range(_GRID + 1)] for size in self._sizes]
        self._reachable = [len(set(pixels)) for pixels in self._pixels]
        nx, ny = self._reachable
        # Boxes of one label after which a label or an x1 can run out of new boxes to give
        # (only on images a few pixels wide): from then on every step is checked.
        self._tight_at = min((nx - 1) * ny * (ny - 1) // 2, (ny - 1) * nx * (nx - 1) // 2)
        self._tight = self._tight_at <= 0
        self._token_bytes = token_bytes
        self._boxes: dict[bytes, set[tuple[int, int, int, int]]] = {}  # label -> sorted boxes
        self._walk = _Walk()
        self._good: dict[tuple[int, frozenset[int]], list[int]] = {}
        shortest = min(len(x) for x in self._labels)
        longest = max(len(x) for x in self._labels)
        fixed = sum(len(p) for p in _PARTS if isinstance(p, bytes))
        self._shortest_item = fixed + shortest + 4
        # The most one token can add to the shortest completion: a whole new item.
        self._growth = fixed + longest + 4 * (DECIMALS + 2) + 8

    # --- following the answer -----------------------------------------------------------

    def advance(self, token: int) -> None:
        """Record that ``token`` was generated."""
        data = self._token_bytes(token)
        if data is not None:
            self._feed(self._walk, data, commit=True)
            self._walk.bad = False  # a spoilt box (no candidate was clean) is history now

    def checks(self, remaining: int) -> bool:
        """Whether the next token needs :meth:`allowed` (most steps do not).

        Args:
            remaining: tokens left in the budget, this one included.
        """
        walk = self._walk
        if walk.stage == _LOST:
            return False
        semantic = self._tight or (walk.stage == _ITEM and walk.part >= _FIRST_GUARDED_PART)
        return semantic or remaining <= self._shortest(walk) + self._growth

    def allowed(self, candidates: Sequence[int], remaining: int) -> list[int] | None:
        """The candidates (allowed by the grammar) that keep every box and the budget sound.

        Args:
            candidates: token ids the grammar allows next.
            remaining: tokens left in the budget, this one included.

        Returns:
            The subset to allow, or None to leave the grammar's choice alone (no candidate
            passes: better one spoilt box than no answer).
        """
        walk = self._walk
        budget = remaining <= self._shortest(walk) + self._growth
        kept = []
        for token in candidates:
            data = self._token_bytes(token)
            if data is None:  # the end token: the grammar allows it only when complete
                kept.append(token)
                continue
            trial = walk.copy()
            self._feed(trial, data, commit=False)
            if trial.bad or trial.stage == _LOST or not self._feasible(trial):
                continue
            if budget and self._shortest(trial) > remaining - 1:
                continue
            kept.append(token)
        return kept or None

    # --- the walk ---------------------------------------------------------------------

    def _feed(self, walk: _Walk, data: bytes, *, commit: bool) -> None:
        for byte in data:
            if walk.stage == _LOST:
                return
            self._step(walk, byte, commit)

    def _step(self, walk: _Walk, byte: int, commit: bool) -> None:
        if walk.stage == _ITEM:
            self._item_step(walk, byte, commit)
            return
        moves = {
            (_START, ord("[")): _OPEN,
            (_OPEN, ord("]")): _END,
            (_AFTER, ord("]")): _END,
            (_AFTER, ord(",")): _SEP,
        }
        if (walk.stage, byte) in moves:
            walk.stage = moves[walk.stage, byte]
        elif (walk.stage, byte) in ((_OPEN, ord("{")), (_SEP, ord(" "))):
            walk.stage, walk.part, walk.offset, walk.coords = _ITEM, 0, 0, []
            if byte == ord("{"):
                walk.offset = 1
        else:
            walk.stage = _LOST  # not the format: stop guarding rather than guess

    def _item_step(self, walk: _Walk, byte: int, commit: bool) -> None:
        part = _PARTS[walk.part]
        if part == _NUM:
            if byte in _NUMBER:
                walk.buffer += bytes([byte])
                return
            self._end_number(walk)
            self._next_part(walk, commit)
            self._item_step(walk, byte, commit)
        elif part == _LABEL:
            walk.buffer += bytes([byte])
            if walk.buffer in self._labels:
                walk.label = walk.buffer
                self._next_part(walk, commit)
        elif isinstance(part, bytes) and walk.offset < len(part) and part[walk.offset] == byte:
            walk.offset += 1
            if walk.offset == len(part):
                self._next_part(walk, commit)
        else:
            walk.stage = _LOST

    def _end_number(self, walk: _Walk) -> None:
        coord = _COORD_OF_PART[walk.part]
        pixel = self._pixels[coord % 2][_value(walk.buffer)]
        if coord >= 2 and pixel in self._forbidden(walk, coord):
            walk.bad = True
        walk.coords.append(pixel)

    def _next_part(self, walk: _Walk, commit: bool) -> None:
        walk.part, walk.offset, walk.buffer = walk.part + 1, 0, b""
        if walk.part < len(_PARTS):
            return
        walk.stage = _AFTER
        if commit:
            boxes = self._boxes.setdefault(walk.label, set())
            boxes.add(_sorted_box(walk.coords))
            self._tight = self._tight or len(boxes) >= self._tight_at

    # --- the rules --------------------------------------------------------------------

    def _forbidden(self, walk: _Walk, coord: int) -> set[int]:
        """Pixels the coordinate being written must avoid: no area, or a repeated box."""
        if coord == 2:
            return {walk.coords[0]}
        x1, y1, x2 = walk.coords[:3]
        xs = (min(x1, x2), max(x1, x2))
        out = {y1}
        for bx1, by1, bx2, by2 in self._boxes.get(walk.label, ()):
            if (bx1, bx2) == xs:
                out |= {by2} if by1 == y1 else {by1} if by2 == y1 else set()
        return out

    def _feasible(self, walk: _Walk) -> bool:
        """A new box can still come out of ``walk``: its label has boxes left to give (a
        tiny image has few), and the number being written can end on an allowed pixel."""
        if walk.stage in (_OPEN, _AFTER, _SEP):
            return walk.stage != _SEP or any(self._box_left(x, []) for x in self._labels)
        if walk.stage != _ITEM:
            return True
        if _PARTS[walk.part] == _LABEL:
            labels = [x for x in self._labels if x.startswith(walk.buffer)]
        else:
            labels = [walk.label] if walk.part > 1 else list(self._labels)
        if not any(self._box_left(x, walk.coords) for x in labels):
            return False
        if _PARTS[walk.part] != _NUM or _COORD_OF_PART[walk.part] < 2:
            return True
        coord = _COORD_OF_PART[walk.part]
        good = self._good_counts(coord % 2, frozenset(self._forbidden(walk, coord)))
        low, high = _grid_range(walk.buffer)
        return good[high + 1] > good[low]

    def _box_left(self, label: bytes, known: Sequence[int]) -> bool:
        """Some box with ``label`` and the pixels ``known`` (x1, y1, x2, ...) is still new."""
        pairs = 1
        for axis in (0, 1):
            mine = known[axis::2]  # x1, x2 or y1, y2 as far as they are known
            if len(mine) == 2:
                pairs *= int(mine[0] != mine[1])
            else:
                reachable = self._reachable[axis]
                pairs *= reachable - 1 if mine else reachable * (reachable - 1) // 2
        taken = sum(_consistent(box, known) for box in self._boxes.get(label, ()))
        return pairs > taken

    def _good_counts(self, axis: int, forbidden: frozenset[int]) -> list[int]:
        """Running count of grid values whose pixel is allowed (O(1) range checks)."""
        key = (axis, forbidden)
        if key not in self._good:
            if len(self._good) > 256:
                self._good.clear()
            counts = [0]
            for pixel in self._pixels[axis]:
                counts.append(counts[-1] + (pixel not in forbidden))
            self._good[key] = counts
        return self._good[key]

    def _number_tail(self, walk: _Walk) -> int:
        """Bytes still needed by the shortest allowed end of the number being written."""
        coord = _COORD_OF_PART[walk.part]
        forbidden = self._forbidden(walk, coord) if coord >= 2 else set()
        pixels = self._pixels[coord % 2]
        layer = [walk.buffer]
        for extra in range(DECIMALS + 3):
            for number in layer:
                if _is_complete(number) and pixels[_value(number)] not in forbidden:
                    return extra
            layer = [n + e for n in layer for e in _extensions(n)]
        return DECIMALS + 2

    def _shortest(self, walk: _Walk) -> int:
        """Length in bytes of the shortest allowed way to finish the answer from ``walk``."""
        if walk.stage in (_END, _LOST):
            return 0
        if walk.stage in (_OPEN, _AFTER):
            return 1
        if walk.stage == _START:
            return 2
        if walk.stage == _SEP:
            return 1 + self._shortest_item + (2 if self._boxes else 0) + 1
        part = _PARTS[walk.part]
        if part == _NUM:
            here = self._number_tail(walk)
        elif part == _LABEL:
            here = min(len(x) - len(walk.buffer) for x in self._labels if x.startswith(walk.buffer))
        else:
            here = len(part) - walk.offset
        rest = 0
        for index in range(walk.part + 1, len(_PARTS)):
            later = _PARTS[index]
            if isinstance(later, bytes):
                rest += len(later)
            elif later == _LABEL:
                rest += min(len(x) for x in self._labels)
            else:  # y2 may have to dodge repeats of earlier boxes: "0.5" instead of "0"
                rest += 3 if _COORD_OF_PART[index] == 3 and self._boxes else 1
        return here + rest + 1


def _consistent(box: tuple[int, int, int, int], known: Sequence[int]) -> bool:
    """``box`` (sorted) could be the box whose first pixels (x1, y1, x2, y2) are ``known``."""
    for axis in (0, 1):
        mine, theirs = known[axis::2], (box[axis], box[axis + 2])
        if len(mine) == 2 and sorted(mine) != list(theirs):
            return False
        if len(mine) == 1 and mine[0] not in theirs:
            return False
    return True


def _sorted_box(coords: Sequence[int]) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = coords
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
