"""Annotations: boxes on an image, who made them, and the pure edits the editor applies.

Everything here is immutable; an edit returns a new :class:`ImageAnnotation`, so an undo
stack only has to keep the states before and after. Coordinates are integer pixels of the
*oriented* image (EXIF rotation applied), ``x1 < x2`` and ``y1 < y2`` inside the image;
normalized coordinates are derived from them, never stored as the truth.

    ann = ImageAnnotation.empty("street.png", 800, 600)
    ann = add_box(ann, make_box("car", (10, 20, 200, 120), ann.width, ann.height))
    ann = apply_detections(ann, result.detections, ("car", "person"))   # model boxes
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import Detection

__all__ = [
    "MODEL",
    "PERSON",
    "Box",
    "ImageAnnotation",
    "add_box",
    "apply_detections",
    "clean_labels",
    "make_box",
    "move_boxes",
    "new_box_id",
    "normalize_label",
    "relabel_boxes",
    "remove_boxes",
    "replace_box",
]

MODEL = "model"
PERSON = "person"
_SOURCES = (MODEL, PERSON)
SCHEMA_VERSION = 1

Pixels = tuple[int, int, int, int]
MAX_LABEL_LENGTH = 200
_MAX_SIDE = 1 << 20  # a million pixels a side: far beyond any image lfmdesk decodes


def _unrepresentable(ch: str) -> bool:
    # Lone surrogates cannot be written as UTF-8; noncharacters (U+FFFE, U+FDD0...) are
    # refused by XML parsers, YAML readers and many JSON tools.
    cp = ord(ch)
    return 0xD800 <= cp <= 0xDFFF or 0xFDD0 <= cp <= 0xFDEF or (cp & 0xFFFE) == 0xFFFE


def normalize_label(text: object) -> str:
    """``text`` as a label: NFC, on one line, control characters removed, spaces collapsed.

    Every label that enters lfmdesk (typed, read from a file, answered by the model) goes
    through here once, so XML, YAML, ``classes.txt`` and the terminal all get one clean line.
    Returns "" for a label with nothing left.

    Raises:
        InputError: not text, longer than 200 characters, or holding a character no
            dataset format can store (a lone surrogate, U+FFFE, U+FFFF, U+FDD0-U+FDEF).
    """
    if isinstance(text, bool) or not isinstance(text, (str, int)):
        raise InputError(f"a label must be text, not {type(text).__name__}")
    text = str(text)
    bad = next((ch for ch in text if _unrepresentable(ch)), None)
    if bad is not None:
        raise InputError(f"label {text[:40]!r} holds U+{ord(bad):04X}, which cannot be saved")
    # Line and paragraph separators and C0/C1 controls that are whitespace become spaces;
    # other controls (ESC, NUL, DEL ...) go.
    cleaned = "".join(
        " " if ch.isspace() else ch
        for ch in unicodedata.normalize("NFC", text)
        if ch.isspace() or unicodedata.category(ch) != "Cc"
    )
    label = " ".join(cleaned.split())
    if len(label) > MAX_LABEL_LENGTH:
        raise InputError(f"label {label[:40]!r}… is longer than {MAX_LABEL_LENGTH} characters")
    return label


def new_box_id() -> str:
    """A fresh, unique box id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Box:
    """One labelled rectangle.

    Attributes:
        label: the class name.
        px: ``(x1, y1, x2, y2)`` in integer pixels of the oriented image.
        source: ``"model"`` when the model proposed it untouched, ``"person"`` once a
            person drew, moved, resized or relabelled it.
        id: stable identity for editing and undo; not exported.
    """

    label: str
    px: Pixels
    source: str = PERSON
    id: str = dataclasses.field(default_factory=new_box_id)

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.px[2] - self.px[0]

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.px[3] - self.px[1]

    def normalized(self, width: int, height: int) -> tuple[float, float, float, float]:
        """``px`` divided by the image size: (x1, y1, x2, y2) in [0, 1]."""
        x1, y1, x2, y2 = self.px
        return (x1 / width, y1 / height, x2 / width, y2 / height)

    def to_dict(self, width: int, height: int) -> dict[str, Any]:
        """JSON-ready: id, label, source, ``box_px`` and ``box`` (normalized, 6 decimals)."""
        return {
            "id": self.id,
            "label": self.label,
            "source": self.source,
            "box_px": list(self.px),
            "box": [round(v, 6) for v in self.normalized(width, height)],
        }


def make_box(
    label: str,
    px: Sequence[float],
    width: int,
    height: int,
    *,
    source: str = PERSON,
    box_id: str | None = None,
) -> Box:
    """A valid :class:`Box` from any two corners: ordered, rounded half up, clamped.

    Raises:
        InputError: the label is blank, the source unknown, or the box has no area
            left inside the image.
    """
    label = normalize_label(label)
    if not label:
        raise InputError("a box needs a label")
    if source not in _SOURCES:
        raise InputError(f"box source must be 'model' or 'person', not {source!r}")
    if not isinstance(px, Sequence) or isinstance(px, str) or len(px) != 4:
        raise InputError("a box needs 4 numbers (x1, y1, x2, y2)")
    xa, ya, xb, yb = (_coordinate(v) for v in px)
    x1, x2 = (_clamp(v, width) for v in sorted((xa, xb)))
    y1, y2 = (_clamp(v, height) for v in sorted((ya, yb)))
    if x2 <= x1 or y2 <= y1:
        corners = [round(v, 3) for v in (xa, ya, xb, yb)]
        raise InputError(f"box {corners} has no area inside the {width}×{height} image")
    return Box(label, (x1, y1, x2, y2), source, box_id or new_box_id())


def _coordinate(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"a box coordinate must be a number, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InputError("a box coordinate is not a finite number")
    return number


def _clamp(value: float, size: int) -> int:
    return min(max(int(value + 0.5) if value >= 0 else 0, 0), size)


@dataclass(frozen=True)
class ImageAnnotation:
    """The boxes of one image.

    Attributes:
        image: where the image is: a POSIX path relative to the project folder, or an
            absolute path for an image kept outside it.
        width: oriented image width in pixels.
        height: oriented image height in pixels.
        boxes: the boxes, in drawing order.
        detected: the labels the model last looked for here; None if it never ran.
        edited: a person changed this image's boxes; batch detection leaves it alone.
    """

    image: str
    width: int
    height: int
    boxes: tuple[Box, ...] = ()
    detected: tuple[str, ...] | None = None
    edited: bool = False

    @classmethod
    def empty(cls, image: str, width: int, height: int) -> ImageAnnotation:
        """No boxes yet."""
        if width <= 0 or height <= 0:
            raise InputError(f"{image}: image size {width}×{height} is not valid")
        return cls(image, width, height)

    def box(self, box_id: str) -> Box | None:
        """The box with ``box_id``, if present."""
        return next((b for b in self.boxes if b.id == box_id), None)

    def labels(self) -> tuple[str, ...]:
        """The distinct labels used, in first-use order."""
        return tuple(dict.fromkeys(b.label for b in self.boxes))

    def to_dict(self) -> dict[str, Any]:
        """The JSON document saved for this image (with ``schema_version``)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "image": self.image,
            "width": self.width,
            "height": self.height,
            "edited": self.edited,
            "detected": list(self.detected) if self.detected is not None else None,
            "boxes": [b.to_dict(self.width, self.height) for b in self.boxes],
        }

    @classmethod
    def from_dict(cls, data: Any) -> ImageAnnotation:
        """Read :meth:`to_dict`'s output; unknown keys are ignored.

        Raises:
            InputError: a required field is missing or has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InputError("not an lfmdesk annotation (not a JSON object)")
        image = data.get("image")
        width, height = _size(data.get("width")), _size(data.get("height"))
        if not isinstance(image, str) or not image or width is None or height is None:
            raise InputError("not an lfmdesk annotation (needs image, width and height)")
        boxes = data.get("boxes") or []
        if not isinstance(boxes, list):
            raise InputError("not an lfmdesk annotation ('boxes' must be a list)")
        return cls(
            image,
            width,
            height,
            tuple(_box_from_dict(b, n, width, height) for n, b in enumerate(boxes, 1)),
            _detected(data.get("detected")),
            data.get("edited") is True,
        )


def _size(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_SIDE
    return value if ok else None


def _detected(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise InputError("not an lfmdesk annotation ('detected' must be a list of labels)")
    return clean_labels(value)


def _box_from_dict(data: Any, n: int, width: int, height: int) -> Box:
    if not isinstance(data, Mapping) or "label" not in data or "box_px" not in data:
        raise InputError(f"box {n} needs 'label' and 'box_px'")
    box_id = data.get("id")
    try:
        return make_box(
            data["label"],
            data["box_px"],
            width,
            height,
            source=str(data.get("source", PERSON)),
            box_id=box_id if isinstance(box_id, str) and 0 < len(box_id) <= 64 else None,
        )
    except InputError as exc:
        raise InputError(f"box {n}: {exc}") from None


# --- edits: each returns a new annotation; person edits mark it edited -----------------


def add_box(ann: ImageAnnotation, box: Box) -> ImageAnnotation:
    """``ann`` with ``box`` appended (a person drew it)."""
    return dataclasses.replace(ann, boxes=(*ann.boxes, box), edited=True)


def remove_boxes(ann: ImageAnnotation, box_ids: Iterable[str]) -> ImageAnnotation:
    """``ann`` without the boxes whose ids are given."""
    gone = set(box_ids)
    return dataclasses.replace(
        ann, boxes=tuple(b for b in ann.boxes if b.id not in gone), edited=True
    )


def replace_box(ann: ImageAnnotation, box: Box) -> ImageAnnotation:
    """``ann`` with the box of the same id replaced by ``box``, now a person's box."""
    mine = dataclasses.replace(box, source=PERSON)
    return dataclasses.replace(
        ann, boxes=tuple(mine if b.id == box.id else b for b in ann.boxes), edited=True
    )


def move_boxes(ann: ImageAnnotation, box_ids: Iterable[str], dx: int, dy: int) -> ImageAnnotation:
    """``ann`` with the given boxes shifted by (dx, dy), stopped at the image edges."""
    ids = set(box_ids)
    moved = []
    for b in ann.boxes:
        if b.id in ids:
            x1, y1, x2, y2 = b.px
            sx = min(max(dx, -x1), ann.width - x2)
            sy = min(max(dy, -y1), ann.height - y2)
            b = Box(b.label, (x1 + sx, y1 + sy, x2 + sx, y2 + sy), PERSON, b.id)
        moved.append(b)
    return dataclasses.replace(ann, boxes=tuple(moved), edited=True)


def relabel_boxes(ann: ImageAnnotation, box_ids: Iterable[str], label: str) -> ImageAnnotation:
    """``ann`` with the given boxes labelled ``label``."""
    label = normalize_label(label)
    if not label:
        raise InputError("a box needs a label")
    ids = set(box_ids)
    return dataclasses.replace(
        ann,
        boxes=tuple(Box(label, b.px, PERSON, b.id) if b.id in ids else b for b in ann.boxes),
        edited=True,
    )


def apply_detections(
    ann: ImageAnnotation, detections: Sequence[Detection], labels: Sequence[str]
) -> ImageAnnotation:
    """The model's answer for ``labels``: its old boxes go, a person's boxes stay.

    Detections must be in this image's pixels (``Detection.box_px``). ``edited`` is left as
    it was: running the model is not a person's edit.
    """
    kept = tuple(b for b in ann.boxes if b.source == PERSON)
    new = []
    for d in detections:
        try:
            new.append(make_box(d.label, d.box_px, ann.width, ann.height, source=MODEL))
        except InputError:
            continue  # a degenerate box or an unsavable label: nothing to draw or export
    return dataclasses.replace(ann, boxes=(*kept, *new), detected=clean_labels(labels))


def clean_labels(
    labels: Iterable[object], refused: Callable[[str], object] | None = None
) -> tuple[str, ...]:
    """``labels`` normalized; blanks, repeats and labels that cannot be saved dropped
    (``refused`` is told why for each of those)."""
    clean: dict[str, None] = {}
    for label in labels:
        try:
            text = normalize_label(label)
        except InputError as exc:
            if refused is not None:
                refused(str(exc))
            continue
        if text:
            clean[text] = None
    return tuple(clean)
