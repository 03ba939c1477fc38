"""Detect over a whole project from the window: one image at a time, resumable.

The same steps as ``lfmdesk annotate`` (:mod:`lfmdesk.core.datasets._batch`), driven by signals
instead of a loop: decode an image in a worker thread, ask the engine, save its boxes the moment the
answer ends, go on. Cancel stops after telling the engine; everything saved stays, so starting
again resumes. A person's edits always win: an image edited before or *during* its request
keeps its boxes.

    runner = BatchRunner(client, lambda: (settings.sampling, settings.vision))
    runner.progress.connect(panel.show_progress)        # (done, total, key)
    runner.imageAnnotated.connect(window.on_annotated)  # (key, ImageAnnotation)
    runner.start(project, "car, person")
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QThreadPool, Signal, Slot

from lfmdesk.core import LoadedImage, load_image, parse_detections
from lfmdesk.core._errors import InputError
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.datasets._batch import (
    BatchFinished,
    BatchPlan,
    detection_request,
    plan_batch,
    record_detections,
)
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.engine._chat import TextDelta
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.support._jobs import PoolJob

__all__ = ["BatchRunner"]

SettingsSource = Callable[[], tuple[SamplingSettings, VisionSettings]]


class _Decoded(QObject):
    """Carries a worker thread's result to the GUI thread (queued signals)."""

    loaded = Signal(int, object)  # ticket, LoadedImage
    failed = Signal(int, str)  # ticket, message


class BatchRunner(QObject):
    """Runs Detect over every image of a project still to do.

    Args:
        client: the engine client (shared with the chat; other requests' events are ignored).
        settings: returns the sampling and vision settings to use, read per image.
        parent: Qt parent.

    Signals:
        started(BatchPlan): what will run and what is skipped.
        progress(int done, int total, str key): ``key`` starts; ``done`` images are finished.
        imageAnnotated(str key, ImageAnnotation): the model's boxes for ``key`` were saved.
        imageFailed(str key, str message): ``key`` could not be detected.
        finished(BatchFinished): the batch ended; ``cancelled`` is True when it stopped early
            (Cancel, or an engine failure reported by ``problem``).
        problem(str): a one-line message for the user (bad labels, no images, engine failure).
    """

    started = Signal(object)
    progress = Signal(int, int, str)
    imageAnnotated = Signal(str, object)
    imageFailed = Signal(str, str)
    finished = Signal(object)
    problem = Signal(str)

    def __init__(
        self, client: EngineClient, settings: SettingsSource, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._client, self._settings = client, settings
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._decoded = _Decoded(self)
        self._decoded.loaded.connect(self._on_decoded)
        self._decoded.failed.connect(self._on_decode_failed)
        client.chatEvent.connect(self._on_event)
        client.chatFinished.connect(self._on_finished)
        client.chatFailed.connect(self._on_failed)
        self._project: Project | None = None
        self._plan: BatchPlan | None = None
        self._queue: list[str] = []
        self._ticket = 0  # bumps per image so a stale decode is recognised
        self._key = ""
        self._in_flight = False  # the current image is being decoded or detected
        self._image: LoadedImage | None = None
        self._rid: int | None = None
        self._text: list[str] = []
        self._cancelled = False
        self._counts = {"annotated": 0, "failed": 0, "skipped": 0}
        self._began = 0.0

    @property
    def running(self) -> bool:
        """A batch is in progress (including one waiting for its cancel to land)."""
        return self._plan is not None

    @property
    def plan(self) -> BatchPlan | None:
        """The running batch's plan."""
        return self._plan

    def start(self, project: Project, labels: str, redo: bool = False) -> None:
        """Plan and start a batch; bad labels or an empty folder emit ``problem``."""
        if self.running:
            self.problem.emit("a batch is already running; cancel it first")
            return
        try:
            plan = plan_batch(project, labels, redo=redo)
        except InputError as exc:
            self.problem.emit(str(exc))
            return
        self._project, self._plan, self._queue = project, plan, list(plan.todo)
        self._cancelled = False
        skipped = len(plan.done) + len(plan.edited) + len(plan.problems)
        self._counts = {"annotated": 0, "failed": 0, "skipped": skipped}
        self._began = time.perf_counter()
        self.started.emit(plan)
        self._next()

    @Slot()
    def cancel(self) -> None:
        """Stop: the answer in flight is cut short and not saved; earlier results stay."""
        if not self.running or self._cancelled:
            return
        self._cancelled = True
        if self._rid is not None:
            self._client.cancel(self._rid)  # finished when the engine confirms
        else:
            self._ticket += 1  # a decode in flight is forgotten
            self._finish()

    # --- one image ------------------------------------------------------------------------

    def _next(self) -> None:
        if self._cancelled or not self._queue or self._project is None or self._plan is None:
            self._finish()
            return
        self._key = self._queue.pop(0)
        self._in_flight = True
        self._ticket += 1
        total = len(self._plan.todo)
        self.progress.emit(total - len(self._queue) - 1, total, self._key)
        path = str(self._project.image_path(self._key))
        ticket, out = self._ticket, self._decoded
        self._pool.start(
            PoolJob(
                lambda: load_image(path),
                lambda image: out.loaded.emit(ticket, image),
                lambda message: out.failed.emit(ticket, message),
            )
        )

    @Slot(int, object)
    def _on_decoded(self, ticket: int, image: LoadedImage) -> None:
        if ticket != self._ticket or self._plan is None:
            return
        sampling, vision = self._settings()
        request = detection_request(image, self._plan.labels, sampling, vision)
        self._image, self._text = image, []
        self._rid = self._client.start_chat(request)

    @Slot(int, str)
    def _on_decode_failed(self, ticket: int, message: str) -> None:
        if ticket != self._ticket:
            return
        self._fail_image(message)
        self._in_flight = False
        self._next()

    @Slot(int, object)
    def _on_event(self, rid: int, event: object) -> None:
        if rid == self._rid and isinstance(event, TextDelta):
            self._text.append(event.text)

    @Slot(int)
    def _on_finished(self, rid: int) -> None:
        if rid != self._rid:
            return
        self._rid = None
        if self._cancelled:
            self._finish()
            return
        self._record()
        self._in_flight = False
        self._next()

    @Slot(int, str)
    def _on_failed(self, rid: int, message: str) -> None:
        if rid != self._rid:
            return
        self._rid = None
        if not self._cancelled:
            self._fail_image(message)
            self._cancelled = True
            self.problem.emit(f"{self._key}: {message}; Detect all again resumes from this image")
        self._finish()

    def _record(self) -> None:
        image, project, plan = self._image, self._project, self._plan
        if image is None or project is None or plan is None:
            return
        result = parse_detections("".join(self._text), image.width, image.height)
        try:
            ann = record_detections(project, self._key, image, result, plan.labels)
        except InputError as exc:  # a damaged annotation file or a full disk
            self._fail_image(str(exc))
            return
        if ann is None:  # a person edited it while the model was busy: theirs wins
            self._counts["skipped"] += 1
            return
        self._counts["annotated"] += 1
        self.imageAnnotated.emit(self._key, ann)

    def _fail_image(self, message: str) -> None:
        self._counts["failed"] += 1
        self.imageFailed.emit(self._key, message)

    def _finish(self) -> None:
        if self._plan is None:
            return
        stopped = self._cancelled and (bool(self._queue) or self._in_flight)
        summary = BatchFinished(
            self._counts["annotated"],
            self._counts["failed"],
            self._counts["skipped"],
            stopped,
            time.perf_counter() - self._began,
        )
        self._plan, self._project, self._image, self._rid = None, None, None, None
        self._queue, self._text, self._key, self._in_flight = [], [], "", False
        self.finished.emit(summary)
