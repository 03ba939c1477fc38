"""Batch detection with N requests in flight, for a remote server that answers many at once.

:class:`ConcurrentDetector` is a ``ManyDetector``: :func:`~lfmdesk.core.datasets._batch.
annotate_project` drives it as it drives the one-at-a-time and the batched detectors, so the
events, rules and files are the same: each result is saved by the calling thread the moment
it arrives (one writer, in arrival order), images a person edited are never touched, and a
rerun resumes. Worker threads take the next image from the lazily read stream only when they
are about to send it, so memory holds at most N images whatever the size of the project.
Setting ``cancel`` stops new requests at once; the calling thread notices within
:data:`POLL_S` seconds.

    for event in annotate_concurrently(project, "car, person", detect, concurrency=32):
        print(event)
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Iterator, Sequence

from PIL import Image

from lfmdesk.core._errors import InputError, LfmdeskError
from lfmdesk.core.datasets._batch import (
    BatchEvent,
    Detected,
    Detector,
    Readable,
    annotate_project,
)
from lfmdesk.core.datasets._project import Project

__all__ = ["POLL_S", "ConcurrentDetector", "annotate_concurrently"]

POLL_S = 0.1
_NO_PIXELS = Image.new("RGB", (1, 1))


class ConcurrentDetector:
    """A one-image ``detect`` run on ``concurrency`` worker threads (never more in flight).

    ``detect`` is called from worker threads, so it must be thread-safe (a remote engine is;
    the in-process MLX engine is not).

    Raises:
        InputError: ``concurrency`` below 1.
    """

    def __init__(self, detect: Detector, concurrency: int) -> None:
        if concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, got {concurrency}")
        self._detect, self.concurrency = detect, concurrency

    def detect_many(
        self, images: Iterator[Readable], labels: tuple[str, ...], cancel: threading.Event
    ) -> Iterator[Detected]:
        """One ``Detected`` per image, in the order they finish (see ``ManyDetector``)."""
        stop = threading.Event()  # ours: leaving early stops the workers, not the caller
        results: queue.SimpleQueue[Detected | None] = queue.SimpleQueue()
        lock = threading.Lock()
        workers = [
            threading.Thread(
                target=self._work,
                args=(images, lock, labels, stop, results),
                name=f"lfmdesk-annotate-{n}",
                daemon=True,
            )
            for n in range(self.concurrency)
        ]
        for worker in workers:
            worker.start()
        running = len(workers)
        try:
            while running and not cancel.is_set():
                try:
                    done = results.get(timeout=POLL_S)
                except queue.Empty:
                    continue
                if done is None:
                    running -= 1
                else:
                    yield done
        finally:
            stop.set()  # cancelled, or the caller stopped listening: no new requests

    def _work(
        self,
        images: Iterator[Readable],
        lock: threading.Lock,
        labels: tuple[str, ...],
        stop: threading.Event,
        out: queue.SimpleQueue[Detected | None],
    ) -> None:
        try:
            while not stop.is_set():
                began = time.perf_counter()
                with lock:  # a generator serves one thread at a time; it reads the image
                    item = next(images, None)
                if item is None:
                    return
                key, image = item
                if isinstance(image, LfmdeskError):
                    out.put(Detected(key, None, None, str(image), 0.0))
                    continue
                try:
                    result = self._detect(image, labels, stop)
                except Exception as exc:  # one image's failure never stops the others
                    text = (
                        str(exc)
                        if isinstance(exc, LfmdeskError)
                        else f"{type(exc).__name__}: {exc}"
                    )
                    out.put(Detected(key, None, None, text, time.perf_counter() - began))
                    continue
                if stop.is_set():
                    return
                # Saving needs the size only: the pixels are let go now, so memory holds at
                # most one picture per request in flight, however far behind the saving is.
                sized = dataclasses.replace(image, image=_NO_PIXELS)
                del image
                out.put(Detected(key, sized, result, None, time.perf_counter() - began))
        finally:
            out.put(None)


def _line(exc: Exception) -> str:
    return str(exc) if isinstance(exc, LfmdeskError) else f"{type(exc).__name__}: {exc}"


def annotate_concurrently(
    project: Project,
    labels: str | Sequence[str],
    detect: Detector,
    *,
    concurrency: int,
    cancel: threading.Event | None = None,
    redo: bool = False,
) -> Iterator[BatchEvent]:
    """``annotate_project`` with ``concurrency`` detections in flight (never more).

    ``index`` in the events counts finished images.

    Raises:
        InputError: ``concurrency`` below 1, no labels, or no images.
    """
    detector = ConcurrentDetector(detect, concurrency)
    return annotate_project(project, labels, detector, cancel=cancel, redo=redo)
