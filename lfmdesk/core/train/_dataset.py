"""The training set: what a person marked in a project, as the Detect exchange the model learns.

One row per image a person made or checked boxes on. The question is exactly the prompt Detect
sends for the chosen labels; the answer is the model card's JSON: ``[{"label": ..., "bbox":
[x1, y1, x2, y2]}, ...]`` with coordinates normalised to the oriented image (EXIF rotation
applied, as the model sees it), 3 decimals, boxes in reading order (top to bottom, then left
to right), ``[]`` for an image with none of the labels.

Only boxes a person drew, moved, relabelled or imported count, never the model's own: an image
that still holds the model's unchecked boxes for these labels is left out (its answer would be
half the model's guess). The split is by the picture's content hash, so an image keeps its side
when files are renamed or others are added, and the same picture twice is never on both sides.

    training = build_training_set(Project("photos"), "car, person")
    training.rows          # TrainingRow(image, content_hash, width, height, split, prompt, answer)
    training.left_out      # (image, why) for each image not used
    training.jsonl("train")  # the rows as bytes, one JSON object per line
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from lfmdesk.core._errors import InputError, LfmdeskError
from lfmdesk.core.answers._grounding import grounding_prompt, split_labels
from lfmdesk.core.datasets._annotations import MODEL, PERSON, Box, ImageAnnotation
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.images._load import load_image

__all__ = [
    "DEFAULT_VALIDATION_SHARE",
    "LEFT_OUT_UNCHECKED",
    "LEFT_OUT_UNTOUCHED",
    "Split",
    "TrainingRow",
    "TrainingSet",
    "answer_json",
    "build_training_set",
    "split_of",
]

Split = Literal["train", "validation"]
SPLITS: tuple[Split, ...] = ("train", "validation")
DEFAULT_VALIDATION_SHARE = 0.2
_DECIMALS = 3

LEFT_OUT_UNTOUCHED = "no boxes made or checked by a person"
LEFT_OUT_UNCHECKED = "still holds the model's unchecked boxes for these labels"
LEFT_OUT_RESIZED = "the image changed size since it was annotated"


@dataclass(frozen=True)
class TrainingRow:
    """One image as the model will be taught it.

    Attributes:
        image: the project's key for the image (path inside the project folder).
        content_hash: the oriented picture's hash (the split and the resume check use it).
        width: oriented width in pixels.
        height: oriented height in pixels.
        split: "train" or "validation".
        prompt: the Detect prompt, exactly as Detect sends it.
        answer: the model card's JSON answer.
        boxes: how many boxes the answer holds.
    """

    image: str
    content_hash: str
    width: int
    height: int
    split: Split
    prompt: str
    answer: str
    boxes: int

    def to_dict(self) -> dict[str, Any]:
        """The row as written in the training set files."""
        return {
            "image": self.image,
            "content_hash": self.content_hash,
            "width": self.width,
            "height": self.height,
            "split": self.split,
            "messages": [
                {"role": "user", "content": self.prompt},
                {"role": "assistant", "content": self.answer},
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRow:
        """Read :meth:`to_dict`'s output back (a saved run being resumed).

        Raises:
            InputError: the row is damaged.
        """
        try:
            user, assistant = data["messages"]
            split = next((s for s in SPLITS if s == data["split"]), None)
            if split is None:
                raise ValueError(f"unknown split {data['split']!r}")
            answer = str(assistant["content"])
            return cls(
                image=str(data["image"]),
                content_hash=str(data["content_hash"]),
                width=int(data["width"]),
                height=int(data["height"]),
                split=split,
                prompt=str(user["content"]),
                answer=answer,
                boxes=len(json.loads(answer)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"damaged training set row ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class TrainingSet:
    """The rows of one training run and the images left out.

    Attributes:
        labels: the labels taught, in the user's order and spelling.
        prompt: the Detect prompt every row asks.
        rows: one per image used, in project order.
        left_out: ``(image, reason)`` for every image of the project not used.
    """

    labels: tuple[str, ...]
    prompt: str
    rows: tuple[TrainingRow, ...]
    left_out: tuple[tuple[str, str], ...] = ()

    def split(self, which: Split) -> tuple[TrainingRow, ...]:
        """The rows of one side of the split."""
        return tuple(r for r in self.rows if r.split == which)

    @property
    def boxes(self) -> int:
        """Boxes in all answers."""
        return sum(r.boxes for r in self.rows)

    def jsonl(self, which: Split) -> bytes:
        """One side of the split as UTF-8 JSON lines (stable bytes: same project, same file)."""
        lines = [
            json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n"
            for r in self.split(which)
        ]
        return "".join(lines).encode("utf-8")

    def digest(self) -> str:
        """sha256 of both sides' bytes: changes whenever any row does."""
        digest = hashlib.sha256()
        for which in SPLITS:
            digest.update(self.jsonl(which))
        return digest.hexdigest()


def split_of(content_hash: str, validation_share: float = DEFAULT_VALIDATION_SHARE) -> Split:
    """The side of the split a picture falls on, from its content hash alone."""
    return "validation" if _share(content_hash) < validation_share else "train"


def _share(content_hash: str) -> float:
    # A fresh hash of the hash: uniform in [0, 1) whatever the input looks like.
    value = hashlib.sha256(f"lfmdesk-split:{content_hash}".encode()).digest()[:8]
    return int.from_bytes(value, "big") / 2**64


def _round(value: float) -> float:
    return round(value, _DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def answer_json(boxes: Sequence[Box], width: int, height: int, spelling: dict[str, str]) -> str:
    """The model card's JSON answer for ``boxes`` (pixels of a ``width`` × ``height`` image).

    Args:
        boxes: the boxes to say.
        width: oriented image width.
        height: oriented image height.
        spelling: casefolded label → the label as the user wrote it in the prompt.
    """
    items = []
    for box in boxes:
        x1, y1, x2, y2 = (_round(v) for v in box.normalized(width, height))
        items.append((y1, x1, y2, x2, spelling[box.label.casefold()]))
    items.sort()
    return json.dumps(
        [{"label": label, "bbox": [x1, y1, x2, y2]} for y1, x1, y2, x2, label in items],
        ensure_ascii=False,
    )


def _why_left_out(ann: ImageAnnotation | None, wanted: set[str]) -> str | None:
    if ann is None:
        return LEFT_OUT_UNTOUCHED
    if any(b.source == MODEL and b.label.casefold() in wanted for b in ann.boxes):
        return LEFT_OUT_UNCHECKED
    if not ann.edited and not any(b.source == PERSON for b in ann.boxes):
        return LEFT_OUT_UNTOUCHED
    return None


def build_training_set(
    project: Project,
    labels: str | Sequence[str],
    *,
    validation_share: float = DEFAULT_VALIDATION_SHARE,
) -> TrainingSet:
    """Turn a project's person-made boxes into the rows a model is trained on.

    Args:
        project: the project.
        labels: the labels to teach ("car, person" or a sequence); the prompt lists them.
        validation_share: the fraction of pictures held out to score the result (at least
            one picture, and at least one left to train on, once there are two).

    Raises:
        InputError: no labels, or no image a person made or checked boxes on.
    """
    wanted = split_labels(labels if isinstance(labels, str) else ",".join(labels))
    prompt = grounding_prompt(wanted)  # InputError when no label is left
    spelling = {label.casefold(): label for label in wanted}
    rows: list[TrainingRow] = []
    left_out: list[tuple[str, str]] = []
    for key in project.images():
        try:
            row = _row(project, key, spelling, prompt, validation_share)
        except LfmdeskError as exc:
            left_out.append((key, str(exc)))
            continue
        if isinstance(row, str):
            left_out.append((key, row))
        else:
            rows.append(row)
    if not rows:
        raise InputError(
            f"{project.root}: no image has boxes a person made or checked for "
            f"{', '.join(wanted)}; draw or fix boxes in the window, or import a dataset first"
        )
    if not any(r.boxes for r in rows):
        raise InputError(
            f"{project.root}: no box is labelled {', '.join(wanted)} in the {len(rows)} "
            f"pictures a person checked (labels there: {_labels_in(project, rows) or 'none'})"
        )
    return TrainingSet(wanted, prompt, _balanced(rows), tuple(left_out))


def _labels_in(project: Project, rows: Sequence[TrainingRow]) -> str:
    found: dict[str, str] = {}
    for row in rows:
        ann = project.load(row.image)
        for box in ann.boxes if ann else ():
            if box.source == PERSON:
                found.setdefault(box.label.casefold(), box.label)
    return ", ".join(found.values())


def _row(
    project: Project, key: str, spelling: dict[str, str], prompt: str, share: float
) -> TrainingRow | str:
    ann = project.load(key)
    reason = _why_left_out(ann, set(spelling))
    if reason is not None:
        return reason
    assert ann is not None  # _why_left_out gave a reason otherwise
    image = load_image(project.image_path(key))
    if (image.width, image.height) != (ann.width, ann.height):
        return LEFT_OUT_RESIZED
    mine = [b for b in ann.boxes if b.source == PERSON and b.label.casefold() in spelling]
    answer = answer_json(mine, ann.width, ann.height, spelling)
    split = split_of(image.content_hash, share)
    return TrainingRow(
        key, image.content_hash, ann.width, ann.height, split, prompt, answer, len(mine)
    )


def _balanced(rows: list[TrainingRow]) -> tuple[TrainingRow, ...]:
    """Both sides non-empty once there are two pictures: the nearest one crosses over."""
    pictures = {r.content_hash for r in rows}
    sides = {r.split for r in rows}
    if len(pictures) < 2 or len(sides) == 2:
        return tuple(rows)
    # All on one side: move the picture closest to the threshold (smallest share goes to
    # validation, largest to train), with every copy of it.
    to: Split = "validation" if sides == {"train"} else "train"
    pick = (min if to == "validation" else max)(pictures, key=_share)
    return tuple(dataclasses.replace(r, split=to) if r.content_hash == pick else r for r in rows)
