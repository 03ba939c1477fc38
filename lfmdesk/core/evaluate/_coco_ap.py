"""COCO box AP, computed the way pycocotools' ``COCOeval`` computes it.

mAP is AP averaged over IoU thresholds 0.50:0.05:0.95, 101 recall points, every area, at most
100 boxes per image and label, then over the labels that have ground truth; AP50 is the same at
IoU 0.50 only. The tests check both equal pycocotools' to 1e-6 on random projects.

The model gives no confidences, so each box is scored by its rank in the answer:
:func:`rank_score` gives the answer's first box 1, the second 1/2, the third 1/3, and so on.
Boxes with equal scores (every answer's first box) keep image order, as pycocotools' stable
sort does. Precision, recall and F1 (:mod:`._metrics`) do not depend on this convention; AP
does, a little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lfmdesk.core.evaluate._metrics import LabeledBox, iou

__all__ = ["IOU_THRESHOLDS", "MAX_DETS", "RECALL_POINTS", "LabelAP", "label_ap", "rank_score"]

# np.linspace exactly as COCOeval's Params builds them (0.6500000000000001 and all).
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 100


def rank_score(rank: int) -> float:
    """The score of the box at position ``rank`` (0-based) of an answer: 1 / (rank + 1)."""
    return 1.0 / (rank + 1)


@dataclass(frozen=True)
class LabelAP:
    """One label's COCO AP.

    Attributes:
        ap: mean precision over IoU 0.50:0.95 and 101 recall points.
        ap50: the same at IoU 0.50.
    """

    ap: float
    ap50: float


def _match(truth: Sequence[LabeledBox], dets: Sequence[LabeledBox]) -> np.ndarray:
    """COCOeval.evaluateImg for one image and label: which dets match, per threshold."""
    ious = [[iou(d.px, t.px) for t in truth] for d in dets]
    matched = np.zeros((len(IOU_THRESHOLDS), len(dets)), dtype=bool)
    for ti, threshold in enumerate(IOU_THRESHOLDS):
        taken = [False] * len(truth)
        for di in range(len(dets)):
            best, found = min(float(threshold), 1 - 1e-10), -1
            for gi in range(len(truth)):
                if taken[gi] or ious[di][gi] < best:
                    continue
                best, found = ious[di][gi], gi
            if found >= 0:
                taken[found] = True
                matched[ti, di] = True
    return matched


def _precision(scores: np.ndarray, matched: np.ndarray, truth: int) -> np.ndarray:
    """COCOeval.accumulate for one label: precision at each threshold and recall point."""
    order = np.argsort(-scores, kind="mergesort")
    tps = matched[:, order]
    tp_sum = np.cumsum(tps, axis=1).astype(float)
    fp_sum = np.cumsum(~tps, axis=1).astype(float)
    out = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
    for t in range(len(IOU_THRESHOLDS)):
        tp, fp = tp_sum[t], fp_sum[t]
        recall = tp / truth
        precision = (tp / (fp + tp + np.spacing(1))).tolist()
        for i in range(len(precision) - 1, 0, -1):  # the precision envelope
            precision[i - 1] = max(precision[i - 1], precision[i])
        for r, at in enumerate(np.searchsorted(recall, RECALL_POINTS, side="left")):
            if at < len(precision):
                out[t, r] = precision[at]
    return out


def label_ap(
    images: Sequence[tuple[Sequence[LabeledBox], Sequence[LabeledBox]]], label: str
) -> LabelAP | None:
    """COCO AP of ``label`` over ``images`` (in image order): ``(truth, predicted)`` each,
    predictions in answer order. None when ``label`` has no ground truth."""
    truth_total = 0
    scores: list[np.ndarray] = []
    matches: list[np.ndarray] = []
    for truth, predicted in images:
        mine_t = [b for b in truth if b.label == label]
        ranked = [(rank_score(r), b) for r, b in enumerate(predicted) if b.label == label]
        ranked = ranked[:MAX_DETS]  # scores fall with rank: already sorted
        truth_total += len(mine_t)
        if not mine_t and not ranked:
            continue
        scores.append(np.array([s for s, _ in ranked], dtype=float))
        matches.append(_match(mine_t, [b for _, b in ranked]))
    if truth_total == 0:
        return None
    precision = _precision(np.concatenate(scores), np.concatenate(matches, axis=1), truth_total)
    return LabelAP(float(np.mean(precision)), float(np.mean(precision[0])))
