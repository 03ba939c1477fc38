"""Detect over a project with several answers decoding together on one in-process engine.

:func:`engine_detector` turns a loaded :class:`~lfmdesk.core.engine.Engine` into a
``ManyDetector`` for :func:`~lfmdesk.core.datasets._batch.annotate_project`: each image gets
the same grounding request as a one-at-a-time Detect (same prompt, tokens and vision cache),
and :class:`~lfmdesk.core.engine._batch.BatchEngine` keeps ``batch`` of them in flight.
Images are read only when a slot frees, so memory holds ``batch`` images at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from lfmdesk.core._errors import LfmdeskError
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._grounding import parse_detections
from lfmdesk.core.datasets._batch import Detected, ManyDetector, Readable, detection_request
from lfmdesk.core.engine._batch import BatchEngine, RequestFailed
from lfmdesk.core.engine._chat import ChatRequest, GenerationStats, TextDelta
from lfmdesk.core.engine._engine import Engine
from lfmdesk.core.images._load import LoadedImage

__all__ = ["engine_detector"]


def engine_detector(
    engine: Engine,
    sampling: SamplingSettings | None = None,
    vision: VisionSettings | None = None,
    *,
    batch: int,
) -> ManyDetector:
    """A ``ManyDetector`` that answers up to ``batch`` images together on ``engine``.

    Raises:
        InputError: ``batch`` below 1.
    """
    return _EngineDetector(BatchEngine(engine, max_batch=batch), sampling, vision)


class _EngineDetector:
    def __init__(
        self, batch: BatchEngine, sampling: SamplingSettings | None, vision: VisionSettings | None
    ) -> None:
        self._batch = batch
        self._sampling = sampling
        self._vision = vision

    def detect_many(
        self, images: Iterator[Readable], labels: tuple[str, ...], cancel: threading.Event
    ) -> Iterator[Detected]:
        held: dict[str, tuple[LoadedImage | None, float]] = {}
        texts: dict[str, list[str]] = {}

        def requests() -> Iterator[tuple[str, ChatRequest | LfmdeskError]]:
            while True:
                began = time.perf_counter()
                item = next(images, None)
                if item is None:
                    return
                key, image = item
                if isinstance(image, LfmdeskError):
                    yield key, image
                    continue
                held[key] = (image, began)
                yield key, detection_request(image, labels, self._sampling, self._vision)

        events = self._batch.run(requests(), cancel=cancel)
        try:
            for key, event in events:
                if isinstance(event, TextDelta):
                    texts.setdefault(key, []).append(event.text)
                    continue
                if not isinstance(event, (GenerationStats, RequestFailed)):
                    continue
                image, began = held.pop(key, (None, time.perf_counter()))
                text = "".join(texts.pop(key, ()))
                seconds = time.perf_counter() - began
                if isinstance(event, RequestFailed):
                    yield Detected(key, image, None, event.message, seconds)
                elif image is not None and event.finish_reason != "cancelled":
                    result = parse_detections(text, image.width, image.height)
                    yield Detected(key, image, result, None, seconds)
        finally:
            events.close()  # answers still in flight end as cancelled
            self._batch.close()
