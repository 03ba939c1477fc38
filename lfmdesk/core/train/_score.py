"""The validation Detect score the train report quotes: did the model answer, and did it find it?

For each held-out picture the model gets the Detect prompt (greedy, so the score repeats) and
its answer is read with the app's own parser. Per picture:

* **parsed**: the answer reads as a box list: at least one box, or exactly ``[]``;
* **label hit** (pictures with boxes): some box carries one of the picture's true labels;
* **IoU hit** (pictures with boxes): some box overlaps a true box of its label by IoU ≥ 0.5;
* **empty right** (pictures without boxes): the answer holds no box.

This is deliberately small; ``lfmdesk eval`` (``core.evaluate``) is the full evaluation, and
:func:`score_validation` is the one place to switch to it.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._grounding import Detection, parse_detections
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, TextDelta
from lfmdesk.core.images._load import LoadedImage

__all__ = ["DetectEngine", "ImageScore", "ScoreProgress", "ValidationScore", "score_validation"]

_IOU_HIT = 0.5
_MIN_ANSWER_TOKENS = 64


class DetectEngine(Protocol):
    """What scoring needs of an engine (:class:`~lfmdesk.core.Engine` and its stand-ins)."""

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]: ...


@dataclass(frozen=True)
class ImageScore:
    """One held-out picture's result."""

    image: str
    truth_boxes: int
    found_boxes: int
    parsed: bool
    label_hit: bool
    iou_hit: bool
    answer: str


@dataclass(frozen=True)
class ValidationScore:
    """The score over the held-out pictures.

    Attributes:
        images: pictures scored.
        parsed: answers that read as a box list.
        with_boxes: pictures that have true boxes.
        label_hits: of those, answers with a box of a true label.
        iou_hits: of those, answers with a box of a true label at IoU ≥ 0.5.
        empty_right: of the pictures without boxes, answers with no box.
        seconds: time spent answering.
        per_image: one :class:`ImageScore` each (not saved in the adapter's metadata, not
            compared).
    """

    images: int
    parsed: int
    with_boxes: int
    label_hits: int
    iou_hits: int
    empty_right: int
    seconds: float
    per_image: tuple[ImageScore, ...] = dataclasses.field(default=(), compare=False)

    @property
    def parse_rate(self) -> float:
        """Share of answers that read as a box list."""
        return self.parsed / self.images if self.images else 0.0

    @property
    def label_hit_rate(self) -> float:
        """Share of pictures with boxes where a box of a true label was found."""
        return self.label_hits / self.with_boxes if self.with_boxes else 0.0

    @property
    def iou_hit_rate(self) -> float:
        """Share of pictures with boxes where a true box was found at IoU ≥ 0.5."""
        return self.iou_hits / self.with_boxes if self.with_boxes else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts (the per-picture answers are left out)."""
        data = dataclasses.asdict(self)
        data.pop("per_image")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationScore:
        """Read :meth:`to_dict`'s output; unknown keys are ignored."""
        return cls(
            images=int(data["images"]),
            parsed=int(data["parsed"]),
            with_boxes=int(data["with_boxes"]),
            label_hits=int(data["label_hits"]),
            iou_hits=int(data["iou_hits"]),
            empty_right=int(data["empty_right"]),
            seconds=float(data["seconds"]),
        )


@dataclass(frozen=True)
class ScoreProgress:
    """One held-out picture was answered."""

    done: int
    total: int
    score: ImageScore


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _judge(name: str, answer: str, truth: Sequence[Detection], image: LoadedImage) -> ImageScore:
    result = parse_detections(answer, image.width, image.height)
    found = result.detections
    parsed = bool(found) or answer.strip() == "[]"
    labels = {d.label.casefold() for d in truth}
    label_hit = any(d.label.casefold() in labels for d in found)
    iou_hit = any(
        d.label.casefold() == t.label.casefold() and _iou(d.box, t.box) >= _IOU_HIT
        for d in found
        for t in truth
    )
    return ImageScore(name, len(truth), len(found), parsed, label_hit, iou_hit, answer)


def _answer(engine: DetectEngine, request: ChatRequest, cancel: threading.Event) -> str:
    return "".join(
        e.text for e in engine.stream_chat(request, cancel=cancel) if isinstance(e, TextDelta)
    )


def score_validation(
    engine: DetectEngine,
    items: Sequence[tuple[str, LoadedImage, str, str]],
    vision: VisionSettings,
    *,
    cancel: threading.Event | None = None,
    answer_tokens: int = _MIN_ANSWER_TOKENS,
    clock: Callable[[], float] = time.perf_counter,
) -> Iterator[ScoreProgress | ValidationScore]:
    """Ask Detect on every held-out picture and score the answers.

    Args:
        engine: answers the requests (a loaded engine, base or with an adapter).
        items: ``(image name, picture, prompt, true answer)`` per held-out picture; the true
            answer is the model card's JSON the training set holds.
        vision: the tiling the model was trained with.
        cancel: set it to stop after the current answer (the score covers what was done).
        answer_tokens: the answer budget; an answer longer than the longest true one by far
            cannot be right, so the caller passes a bound from the training set.
        clock: for tests.

    Yields:
        One :class:`ScoreProgress` per picture, then the :class:`ValidationScore`.
    """
    stop = cancel or threading.Event()
    sampling = SamplingSettings(
        temperature=0.0, repetition_penalty=1.0, max_tokens=max(answer_tokens, 1)
    )
    started, scores = clock(), []
    for done, (name, image, prompt, truth_text) in enumerate(items, 1):
        if stop.is_set():
            break
        request = ChatRequest.single(prompt, [image], sampling=sampling, vision=vision)
        answer = _answer(engine, request, stop)
        truth = parse_detections(truth_text, image.width, image.height).detections
        score = _judge(name, answer, truth, image)
        scores.append(score)
        yield ScoreProgress(done, len(items), score)
    boxed = [s for s in scores if s.truth_boxes]
    yield ValidationScore(
        images=len(scores),
        parsed=sum(s.parsed for s in scores),
        with_boxes=len(boxed),
        label_hits=sum(s.label_hit for s in boxed),
        iou_hits=sum(s.iou_hit for s in boxed),
        empty_right=sum(not s.found_boxes for s in scores if not s.truth_boxes),
        seconds=round(clock() - started, 3),
        per_image=tuple(scores),
    )
