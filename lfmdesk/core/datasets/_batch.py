"""Batch detection over a project: resumable, and a person's work always wins.

``annotate_project`` is a plain generator of frozen events (the CLI prints them; the window
drives the same steps asynchronously with :func:`plan_batch`, :func:`detection_request` and
:func:`record_detections`). Each image's result is saved the moment it arrives, so a batch
stopped by Cancel, Ctrl-C or a crash resumes where it stopped: images already detected for
the same labels are skipped, and images a person has edited are never touched.

    for event in annotate_project(project, ("car", "person"), detect):
        print(event)  # BatchStarted, ImageAnnotated / ImageSkipped / ImageFailed..., BatchFinished

``detect`` answers one image at a time; a :class:`ManyDetector` (``engine_detector`` in
``_detect_many``: several answers decoding together on one engine) is given the images as
they are read and hands results back as they finish. Either way the rules above hold.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lfmdesk.core._errors import InputError, LfmdeskError
from lfmdesk.core._files import reason
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._grounding import DetectionResult, grounding_prompt, split_labels
from lfmdesk.core.datasets._annotations import ImageAnnotation, apply_detections, clean_labels
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets._status import ImageRow, batch_role, project_rows
from lfmdesk.core.engine._chat import ChatRequest
from lfmdesk.core.engine._constrained import constraint_for_detection
from lfmdesk.core.images._load import LoadedImage, load_image

__all__ = [
    "SKIP_DONE",
    "SKIP_EDITED",
    "BatchEvent",
    "BatchFinished",
    "BatchPlan",
    "BatchStarted",
    "Detected",
    "ImageAnnotated",
    "ImageFailed",
    "ImageSkipped",
    "ManyDetector",
    "Readable",
    "annotate_project",
    "detection_request",
    "plan_batch",
    "record_detections",
]

SKIP_DONE = "already detected with these labels"
SKIP_EDITED = "edited by a person; left as it is"

Detector = Callable[[LoadedImage, tuple[str, ...], threading.Event], DetectionResult]
Readable = tuple[str, LoadedImage | LfmdeskError]  # a project key and its image, or why not


@dataclass(frozen=True)
class Detected:
    """One image's answer from a detector, or why there is none.

    Attributes:
        key: the project key.
        image: the picture the model saw (None when it could not be read).
        result: the parsed answer (None on failure).
        error: a one-line reason when there is no result.
        seconds: how long this image took, reading included.
    """

    key: str
    image: LoadedImage | None
    result: DetectionResult | None
    error: str | None
    seconds: float


@runtime_checkable
class ManyDetector(Protocol):
    """Detects in many images at once, reading each only when it has room for it."""

    def detect_many(
        self, images: Iterator[Readable], labels: tuple[str, ...], cancel: threading.Event
    ) -> Iterator[Detected]:
        """One ``Detected`` per image, in the order they finish; none for answers cut
        short by ``cancel``. Pulls from ``images`` lazily."""
        ...


@dataclass(frozen=True)
class BatchPlan:
    """Which images a batch will run on.

    Attributes:
        labels: the labels asked for (cleaned, in the user's order).
        todo: images still to detect, in project order.
        done: images already detected with the same labels (skipped; resume).
        edited: images a person edited (skipped; never overwritten).
        problems: images whose annotation file is damaged (skipped, with the reason).
    """

    labels: tuple[str, ...]
    todo: tuple[str, ...]
    done: tuple[str, ...]
    edited: tuple[str, ...]
    problems: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BatchStarted:
    """The batch begins: what will run and what is skipped."""

    plan: BatchPlan


@dataclass(frozen=True)
class ImageAnnotated:
    """One image was detected and its annotation saved."""

    index: int  # 1-based count of images finished so far (plan.todo order, one at a time)
    total: int
    image: str
    annotation: ImageAnnotation
    dropped: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class ImageSkipped:
    """An image the batch did not run on, and why."""

    image: str
    reason: str


@dataclass(frozen=True)
class ImageFailed:
    """An image that could not be detected; the batch goes on."""

    index: int
    total: int
    image: str
    message: str


@dataclass(frozen=True)
class BatchFinished:
    """The batch ended (finished or cancelled); everything done so far is saved."""

    annotated: int
    failed: int
    skipped: int
    cancelled: bool
    seconds: float


BatchEvent = BatchStarted | ImageAnnotated | ImageSkipped | ImageFailed | BatchFinished


def plan_batch(project: Project, labels: str | Sequence[str], *, redo: bool = False) -> BatchPlan:
    """Sort the project's images into to-do, done and edited.

    Args:
        project: the project.
        labels: what to find ("car, person" or a sequence).
        redo: detect again images already detected with these labels (edited images are
            still left alone).

    Raises:
        InputError: no labels, or the project has no images.
    """
    raw = split_labels(labels) if isinstance(labels, str) else split_labels(",".join(labels))
    wanted = clean_labels(raw)  # what is saved as 'detected' must compare equal next time
    if not wanted:
        raise InputError('no labels to look for: give some, e.g. --labels "car, person"')
    rows = project_rows(project)
    if not rows:
        raise InputError(f"{project.root}: no images in this folder")
    by_role: dict[str, list[ImageRow]] = {"todo": [], "done": [], "edited": [], "problem": []}
    for row in rows:
        by_role[batch_role(row, wanted, redo=redo)].append(row)
    keys = {role: tuple(row.key for row in group) for role, group in by_role.items()}
    problems = tuple((row.key, row.message) for row in by_role["problem"])
    return BatchPlan(wanted, keys["todo"], keys["done"], keys["edited"], problems)


def detection_request(
    image: LoadedImage,
    labels: Sequence[str],
    sampling: SamplingSettings | None = None,
    vision: VisionSettings | None = None,
) -> ChatRequest:
    """The one-turn grounding request a batch sends for ``image`` (live detect and eval too).

    With ``sampling.constrained`` (the default) the answer is decoded under the Detect
    grammar: it always parses, with only ``labels`` as labels.
    """
    sampling = sampling or SamplingSettings()
    constraint = constraint_for_detection(labels) if sampling.constrained else None
    return ChatRequest.single(
        grounding_prompt(labels), [image], sampling=sampling, vision=vision, constraint=constraint
    )


def record_detections(
    project: Project, key: str, image: LoadedImage, result: DetectionResult, labels: Sequence[str]
) -> ImageAnnotation | None:
    """Save the model's boxes for ``key``; None when a person edited it meanwhile.

    The annotation is read again just before writing, so edits made in the window while
    the model was busy are never overwritten.
    """
    ann = project.load(key)
    if ann is not None and ann.edited:
        return None
    if ann is None or (ann.width, ann.height) != (image.width, image.height):
        ann = ImageAnnotation.empty(key, image.width, image.height)
    ann = apply_detections(ann, result.detections, labels)
    project.save(ann)
    return ann


def annotate_project(
    project: Project,
    labels: str | Sequence[str],
    detect: Detector | ManyDetector,
    *,
    cancel: threading.Event | None = None,
    redo: bool = False,
) -> Iterator[BatchEvent]:
    """Detect ``labels`` in every image still to do, saving each result as it comes.

    Args:
        project: the project to annotate.
        labels: what to find.
        detect: runs the model on one image: ``detect(image, labels, cancel) ->
            DetectionResult``; or a :class:`ManyDetector` with several images in flight.
        cancel: set it to stop: answers being written are cut short and not saved.
        redo: see :func:`plan_batch`.

    Yields:
        ``BatchStarted``, one ``ImageSkipped`` per skipped image, then per image
        ``ImageAnnotated``, ``ImageSkipped`` (edited meanwhile) or ``ImageFailed`` in the
        order they finish, and ``BatchFinished`` last.
    """
    stop = cancel or threading.Event()
    plan = plan_batch(project, labels, redo=redo)
    started = time.perf_counter()
    yield BatchStarted(plan)
    skipped = [(k, SKIP_DONE) for k in plan.done] + [(k, SKIP_EDITED) for k in plan.edited]
    for key, why in (*skipped, *plan.problems):
        yield ImageSkipped(key, why)
    many = detect if isinstance(detect, ManyDetector) else _OneAtATime(detect)
    results = many.detect_many(_read_lazily(project, plan.todo, stop), plan.labels, stop)
    annotated = failed = finished = 0
    total = len(plan.todo)
    try:
        for done in results:
            if stop.is_set():  # cancelled while this answer was written: nothing saved
                break
            finished += 1
            event = _record(project, done, plan.labels, finished, total)
            annotated += isinstance(event, ImageAnnotated)
            failed += isinstance(event, ImageFailed)
            yield event
    finally:
        close = getattr(results, "close", None)
        if close is not None:  # answers still in flight end now
            close()
    elapsed = time.perf_counter() - started
    yield BatchFinished(
        annotated, failed, len(skipped) + len(plan.problems), stop.is_set(), elapsed
    )


def _read_lazily(
    project: Project, keys: Sequence[str], stop: threading.Event
) -> Iterator[Readable]:
    """Each image read only when a detector asks for it (memory holds what is in flight)."""
    for key in keys:
        if stop.is_set():
            return
        try:
            yield key, load_image(project.image_path(key))
        except LfmdeskError as exc:
            yield key, exc


def _record(
    project: Project, done: Detected, labels: tuple[str, ...], index: int, total: int
) -> ImageAnnotated | ImageSkipped | ImageFailed:
    if done.image is None or done.result is None:
        return ImageFailed(index, total, done.key, done.error or "no answer")
    try:
        ann = record_detections(project, done.key, done.image, done.result, labels)
    except LfmdeskError as exc:
        return ImageFailed(index, total, done.key, str(exc))
    except OSError as exc:  # cannot save (disk full, a symbolic link in the way)
        return ImageFailed(index, total, done.key, f"cannot save its boxes ({reason(exc)})")
    if ann is None:
        return ImageSkipped(done.key, SKIP_EDITED)
    return ImageAnnotated(index, total, done.key, ann, done.result.dropped, done.seconds)


class _OneAtATime:
    """A one-image ``Detector`` as a ``ManyDetector``: each image answered before the next."""

    def __init__(self, detect: Detector) -> None:
        self._detect = detect

    def detect_many(
        self, images: Iterator[Readable], labels: tuple[str, ...], cancel: threading.Event
    ) -> Iterator[Detected]:
        while True:
            began = time.perf_counter()
            item = next(images, None)  # reads the image: its time counts
            if item is None:
                return
            key, image = item
            if isinstance(image, LfmdeskError):
                yield Detected(key, None, None, str(image), 0.0)
                continue
            try:
                result = self._detect(image, labels, cancel)
            except LfmdeskError as exc:
                yield Detected(key, image, None, str(exc), time.perf_counter() - began)
                continue
            if cancel.is_set():
                return
            yield Detected(key, image, result, None, time.perf_counter() - began)
