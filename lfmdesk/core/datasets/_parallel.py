"""Batch detection with N requests in flight, for a remote server that answers many at once.

The same events, rules and files as :func:`~lfmdesk.core.datasets._batch.annotate_project`:
each result is saved by the calling thread the moment it arrives (so results are written by
one thread, in arrival order), images a person edited are never touched, and a rerun resumes.
Worker threads read and encode an image only when they are about to send it, so memory holds
at most N images whatever the size of the project. Setting ``cancel`` stops new requests at
once; the calling thread notices within :data:`POLL_S` seconds.

    for event in annotate_concurrently(project, "car, person", detect, concurrency=32):
        print(event)
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from PIL import Image

from lfmdesk.core._errors import InputError, LfmdeskError
from lfmdesk.core.answers._grounding import DetectionResult
from lfmdesk.core.datasets._batch import (
    SKIP_DONE,
    SKIP_EDITED,
    BatchEvent,
    BatchFinished,
    BatchStarted,
    Detector,
    ImageAnnotated,
    ImageFailed,
    ImageSkipped,
    plan_batch,
    record_detections,
)
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.images._load import LoadedImage, load_image

__all__ = ["POLL_S", "annotate_concurrently"]

POLL_S = 0.1
_NO_PIXELS = Image.new("RGB", (1, 1))


@dataclass(frozen=True)
class _Done:
    key: str
    image: LoadedImage | None
    result: DetectionResult | None
    error: str | None
    seconds: float


def _work(
    keys: Iterator[str],
    lock: threading.Lock,
    project: Project,
    labels: tuple[str, ...],
    detect: Detector,
    stop: threading.Event,
    out: queue.SimpleQueue[_Done | None],
) -> None:
    try:
        while not stop.is_set():
            with lock:
                key = next(keys, None)
            if key is None:
                return
            began = time.perf_counter()
            try:
                image = load_image(project.image_path(key))
                result = detect(image, labels, stop)
            except Exception as exc:  # one image's failure never stops the others
                text = str(exc) if isinstance(exc, LfmdeskError) else f"{type(exc).__name__}: {exc}"
                out.put(_Done(key, None, None, text, time.perf_counter() - began))
                continue
            if stop.is_set():
                return
            # Saving needs the size only: the pixels are let go now, so memory holds at most
            # one picture per request in flight, however far behind the saving thread is.
            sized = dataclasses.replace(image, image=_NO_PIXELS)
            del image
            out.put(_Done(key, sized, result, None, time.perf_counter() - began))
    finally:
        out.put(None)


def _record(
    project: Project, done: _Done, labels: tuple[str, ...], index: int, total: int
) -> ImageAnnotated | ImageSkipped | ImageFailed:
    if done.error is not None or done.image is None or done.result is None:
        return ImageFailed(index, total, done.key, done.error or "no answer")
    try:
        ann = record_detections(project, done.key, done.image, done.result, labels)
    except LfmdeskError as exc:
        return ImageFailed(index, total, done.key, str(exc))
    if ann is None:
        return ImageSkipped(done.key, SKIP_EDITED)
    return ImageAnnotated(index, total, done.key, ann, done.result.dropped, done.seconds)


def annotate_concurrently(
    project: Project,
    labels: str | Sequence[str],
    detect: Detector,
    *,
    concurrency: int,
    cancel: threading.Event | None = None,
    redo: bool = False,
) -> Iterator[BatchEvent]:
    """Like ``annotate_project``, with ``concurrency`` detections in flight (never more).

    ``detect`` is called from worker threads, so it must be thread-safe (a remote engine
    is; the in-process MLX engine is not). ``index`` in the events counts finished images.

    Raises:
        InputError: ``concurrency`` below 1, no labels, or no images.
    """
    if concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {concurrency}")
    stop = cancel or threading.Event()
    plan = plan_batch(project, labels, redo=redo)
    started = time.perf_counter()
    yield BatchStarted(plan)
    skipped = [(k, SKIP_DONE) for k in plan.done] + [(k, SKIP_EDITED) for k in plan.edited]
    for key, reason in (*skipped, *plan.problems):
        yield ImageSkipped(key, reason)
    total = len(plan.todo)
    results: queue.SimpleQueue[_Done | None] = queue.SimpleQueue()
    keys, lock = iter(plan.todo), threading.Lock()
    workers = [
        threading.Thread(
            target=_work,
            args=(keys, lock, project, plan.labels, detect, stop, results),
            name=f"lfmdesk-annotate-{n}",
            daemon=True,
        )
        for n in range(min(concurrency, total))
    ]
    for worker in workers:
        worker.start()
    annotated = failed = finished = 0
    running = len(workers)
    try:
        while running and not stop.is_set():
            try:
                done = results.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if done is None:
                running -= 1
                continue
            finished += 1
            event = _record(project, done, plan.labels, finished, total)
            annotated += isinstance(event, ImageAnnotated)
            failed += isinstance(event, ImageFailed)
            yield event
    finally:
        if running:  # cancelled, or the caller stopped listening: no new requests
            stop.set()
    elapsed = time.perf_counter() - started
    yield BatchFinished(
        annotated, failed, len(skipped) + len(plan.problems), stop.is_set(), elapsed
    )
