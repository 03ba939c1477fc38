"""From answers to scores: one image's answer against its ground truth, then a whole
configuration (overall and per label), with speed and memory beside the quality."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lfmdesk.core.answers._grounding import parse_detections
from lfmdesk.core.evaluate._coco_ap import label_ap
from lfmdesk.core.evaluate._configs import EvalConfig
from lfmdesk.core.evaluate._metrics import (
    Counts,
    LabeledBox,
    acc_at_50,
    match_greedy,
    strict_answer,
)

__all__ = ["ConfigResult", "ImageEval", "Scores", "score_answer", "score_config"]


@dataclass(frozen=True)
class ImageEval:
    """One image's answer under one configuration, scored.

    Attributes:
        key: the image's project key.
        truth: its ground truth (a person's boxes with a requested label).
        predicted: the boxes read from the answer, in answer order; labels outside the
            requested ones are kept (they are false positives).
        matches: ``(prediction index, truth index, IoU)`` at IoU 0.5.
        parsed: the answer was exactly the model card's JSON format.
        dropped: items the tolerant parser had to drop.
        seconds: request to last token (as first measured, for a cached answer).
        image_tokens: image tokens the model saw.
        peak_memory_bytes: peak memory during the answer (0: unknown).
        error: why there is no answer ("" when there is one).
    """

    key: str
    truth: tuple[LabeledBox, ...]
    predicted: tuple[LabeledBox, ...]
    matches: tuple[tuple[int, int, float], ...]
    parsed: bool
    dropped: int
    seconds: float
    image_tokens: int = 0
    peak_memory_bytes: int = 0
    error: str = ""

    @property
    def tp(self) -> int:
        """Matched predictions."""
        return len(self.matches)

    @property
    def fp(self) -> int:
        """Predictions that matched nothing."""
        return len(self.predicted) - self.tp

    @property
    def fn(self) -> int:
        """Ground-truth boxes nothing matched."""
        return len(self.truth) - self.tp

    def counts(self, label: str | None = None) -> Counts:
        """Match counts for ``label`` (None: every label)."""

        def mine(box: LabeledBox) -> bool:
            return label is None or box.label == label

        truth = [b for b in self.truth if mine(b)]
        matched = [(p, t, v) for p, t, v in self.matches if mine(self.truth[t])]
        # Acc@0.5 is about images with one box in all; a label gets those whose box is its.
        acc = acc_at_50(self.truth, self.predicted) if len(truth) == 1 or not label else None
        return Counts(
            truth=len(truth),
            predicted=sum(mine(b) for b in self.predicted),
            tp=len(matched),
            iou_sum=sum(v for _, _, v in matched),
            acc_hits=int(bool(acc)),
            acc_images=int(acc is not None),
        )


def _label_for(name: str, labels: Sequence[str]) -> str:
    return next((x for x in labels if x.casefold() == name.casefold()), name)


def score_answer(
    key: str,
    width: int,
    height: int,
    truth: Sequence[LabeledBox],
    text: str | None,
    labels: Sequence[str],
    *,
    seconds: float = 0.0,
    image_tokens: int = 0,
    peak_memory_bytes: int = 0,
    error: str = "",
) -> ImageEval:
    """Score one answer (``text``; None when the model failed, scored as no boxes)."""
    result = parse_detections(text or "", width, height)
    predicted = tuple(LabeledBox(_label_for(d.label, labels), d.box_px) for d in result.detections)
    return ImageEval(
        key=key,
        truth=tuple(truth),
        predicted=predicted,
        matches=tuple(match_greedy(truth, predicted)),
        parsed=text is not None and strict_answer(text),
        dropped=len(result.dropped),
        seconds=seconds,
        image_tokens=image_tokens,
        peak_memory_bytes=peak_memory_bytes,
        error=error,
    )


@dataclass(frozen=True)
class Scores:
    """Quality over a set of images, for one label or all of them.

    Attributes:
        counts: the match counts (precision, recall, F1, mean IoU, Acc@0.5 follow).
        ap: COCO mAP (IoU 0.50:0.95); None without ground truth.
        ap50: COCO AP at IoU 0.50; None without ground truth.
    """

    counts: Counts
    ap: float | None
    ap50: float | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, rounded to 6 decimals."""
        c = self.counts
        values = {
            "precision": c.precision,
            "recall": c.recall,
            "f1": c.f1,
            "mean_iou": c.mean_iou,
            "acc50": c.acc50,
            "map": self.ap,
            "ap50": self.ap50,
        }
        counts = {"truth": c.truth, "predicted": c.predicted, "tp": c.tp, "fp": c.fp}
        return {
            **counts,
            "fn": c.fn,
            "acc50_images": c.acc_images,
            **{k: _round(v) for k, v in values.items()},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


@dataclass(frozen=True)
class ConfigResult:
    """Everything measured for one configuration.

    Attributes:
        config: what was evaluated.
        overall: scores over every requested label.
        per_label: ``(label, scores)`` for each requested label.
        images: each image's scored answer, in project order.
        failed: answers the model could not give (scored as no boxes).
        parse_failures: answers that were not exactly the JSON format.
        dropped: items the tolerant parser dropped, over all answers.
        latency_p50: median seconds per answer; None without answers.
        latency_p95: 95th percentile (linear interpolation).
        image_tokens: mean image tokens per image; None when the backend does not say.
        peak_memory_bytes: the largest peak over the answers; None when unknown.
    """

    config: EvalConfig
    overall: Scores
    per_label: tuple[tuple[str, Scores], ...]
    images: tuple[ImageEval, ...]
    failed: int
    parse_failures: int
    dropped: int
    latency_p50: float | None
    latency_p95: float | None
    image_tokens: float | None
    peak_memory_bytes: int | None

    @property
    def parse_failure_rate(self) -> float | None:
        """Answers not in the exact format, as a fraction of all answers."""
        return self.parse_failures / len(self.images) if self.images else None


def _scores(images: Sequence[ImageEval], labels: Sequence[str], label: str | None) -> Scores:
    counts = sum((image.counts(label) for image in images), Counts())
    pairs = [(image.truth, image.predicted) for image in images]
    aps = [ap for x in ([label] if label else labels) if (ap := label_ap(pairs, x)) is not None]
    if not aps:
        return Scores(counts, None, None)
    return Scores(
        counts, float(np.mean([a.ap for a in aps])), float(np.mean([a.ap50 for a in aps]))
    )


def score_config(
    config: EvalConfig, images: Sequence[ImageEval], labels: Sequence[str]
) -> ConfigResult:
    """Scores, speed and memory of ``config`` over its scored images."""
    answered = [image for image in images if not image.error]
    seconds = np.array([image.seconds for image in answered], dtype=float)
    tokens = [image.image_tokens for image in answered if image.image_tokens]
    peaks = [image.peak_memory_bytes for image in answered if image.peak_memory_bytes]
    return ConfigResult(
        config=config,
        overall=_scores(images, labels, None),
        per_label=tuple((label, _scores(images, labels, label)) for label in labels),
        images=tuple(images),
        failed=len(images) - len(answered),
        parse_failures=sum(not image.parsed for image in images),
        dropped=sum(image.dropped for image in images),
        latency_p50=float(np.percentile(seconds, 50)) if len(seconds) else None,
        latency_p95=float(np.percentile(seconds, 95)) if len(seconds) else None,
        image_tokens=float(np.mean(tokens)) if tokens else None,
        peak_memory_bytes=max(peaks) if peaks else None,
    )
