"""Box metrics: IoU, one-to-one greedy matching, precision/recall/F1, mean IoU, Acc@0.5.

Boxes are integer pixels of the oriented image, as the project stores them. Corners are put
in order before anything is measured (``(10, 10, 0, 0)`` is the box ``(0, 0, 10, 10)``).

Matching at IoU 0.5 is one-to-one and greedy: every (prediction, ground truth) pair with the
same label and IoU >= 0.5 is a candidate; candidates are taken highest IoU first (ties: the
earlier prediction, then the earlier truth), skipping any whose prediction or truth is
already taken. A label never matches another label; a box whose label was not asked for is
a false positive. Precision, recall and F1 therefore do not depend on the model's order.

Acc@0.5 is Liquid's RefCOCO-style metric, on the images with exactly one ground-truth box:
the image counts as found when the first predicted box with that box's label has IoU >= 0.5
with it (with one label asked, simply the first box of the answer).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "IOU_MATCH",
    "Counts",
    "LabeledBox",
    "acc_at_50",
    "iou",
    "match_greedy",
    "ordered",
    "strict_answer",
]

IOU_MATCH = 0.5

Pixels = tuple[int, int, int, int]


@dataclass(frozen=True)
class LabeledBox:
    """A label and a box in integer pixels (corners in any order)."""

    label: str
    px: Pixels

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: ``{"label", "box_px"}`` with ordered corners."""
        return {"label": self.label, "box_px": list(ordered(self.px))}


def ordered(px: Sequence[int]) -> Pixels:
    """``px`` with x1 <= x2 and y1 <= y2."""
    x1, y1, x2, y2 = px
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def iou(a: Sequence[int], b: Sequence[int]) -> float:
    """Intersection over union of two pixel boxes (0.0 when they do not overlap).

    Integer arithmetic up to one division, so the value is exactly pycocotools' ``bbIou``.
    """
    ax1, ay1, ax2, ay2 = ordered(a)
    bx1, by1, bx2, by2 = ordered(b)
    w = min(ax2, bx2) - max(ax1, bx1)
    h = min(ay2, by2) - max(ay1, by1)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union


def match_greedy(
    truth: Sequence[LabeledBox], predicted: Sequence[LabeledBox], threshold: float = IOU_MATCH
) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(prediction index, truth index, IoU)``, greedy by IoU.

    Only pairs with equal labels and IoU >= ``threshold`` can match (IoU exactly 0.5 does).
    """
    pairs = [
        (-value, p, t)
        for p, pred in enumerate(predicted)
        for t, true in enumerate(truth)
        if pred.label == true.label and (value := iou(pred.px, true.px)) >= threshold
    ]
    pairs.sort()
    used_p: set[int] = set()
    used_t: set[int] = set()
    matches = []
    for negative, p, t in pairs:
        if p not in used_p and t not in used_t:
            used_p.add(p)
            used_t.add(t)
            matches.append((p, t, -negative))
    return matches


def acc_at_50(truth: Sequence[LabeledBox], predicted: Sequence[LabeledBox]) -> bool | None:
    """Acc@0.5 for one image: None unless it has exactly one ground-truth box."""
    if len(truth) != 1:
        return None
    first = next((p for p in predicted if p.label == truth[0].label), None)
    return first is not None and iou(first.px, truth[0].px) >= IOU_MATCH


@dataclass(frozen=True)
class Counts:
    """Match counts over some images (and labels), and what follows from them.

    Attributes:
        truth: ground-truth boxes.
        predicted: predicted boxes.
        tp: matched predictions.
        iou_sum: sum of the matched pairs' IoU.
        acc_hits: Acc@0.5 images found.
        acc_images: images with exactly one ground-truth box.
    """

    truth: int = 0
    predicted: int = 0
    tp: int = 0
    iou_sum: float = 0.0
    acc_hits: int = 0
    acc_images: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.truth + other.truth,
            self.predicted + other.predicted,
            self.tp + other.tp,
            self.iou_sum + other.iou_sum,
            self.acc_hits + other.acc_hits,
            self.acc_images + other.acc_images,
        )

    @property
    def fp(self) -> int:
        """Predictions that matched nothing."""
        return self.predicted - self.tp

    @property
    def fn(self) -> int:
        """Ground-truth boxes nothing matched."""
        return self.truth - self.tp

    @property
    def precision(self) -> float | None:
        """tp / predicted; None when nothing was predicted."""
        return self.tp / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        """tp / truth; None when there is no ground truth."""
        return self.tp / self.truth if self.truth else None

    @property
    def f1(self) -> float | None:
        """2tp / (2tp + fp + fn); None when there is neither truth nor prediction."""
        total = 2 * self.tp + self.fp + self.fn
        return 2 * self.tp / total if total else None

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU of the matched pairs; None when nothing matched."""
        return self.iou_sum / self.tp if self.tp else None

    @property
    def acc50(self) -> float | None:
        """Acc@0.5 over the images with exactly one ground-truth box; None when none."""
        return self.acc_hits / self.acc_images if self.acc_images else None


def strict_answer(text: str) -> bool:
    """The answer is exactly the model card's format: a JSON array of objects, each with a
    string ``label`` and a ``bbox`` of four numbers (whitespace around it allowed)."""
    try:
        items = json.loads(text)
    except ValueError:
        return False
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("label"), str):
            return False
        box = item.get("bbox")
        if not isinstance(box, list) or len(box) != 4:
            return False
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            return False
    return True
