"""The one seam between the server's asyncio side and the thread that owns the engine.

MLX streams belong to one thread, so the server never calls the engine itself: it
:meth:`~GenerationHost.submit`\\ s a request with its own cancel flag and a ``deliver``
callback, and the engine's owner calls ``deliver`` with every event: ``TextDelta``/``Notice``,
then exactly one ``GenerationStats`` or one :class:`Failed`. ``lfmdesk serve`` uses
:class:`EngineThread`; the window's engine process implements the same protocol on its main
thread; a batching engine can replace either without the server changing.

    host = EngineThread(lambda: loaded_engine("8bit"), max_queue=16)
    host.start()
    host.submit(request, cancel, deliver)   # raises QueueFull when max_queue are waiting
"""

from __future__ import annotations

import gc
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from lfmdesk.core._errors import InputError, LfmdeskError, one_line
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats
from lfmdesk.core.engine._engine import ModelInfo

__all__ = [
    "Deliver",
    "EngineThread",
    "Failed",
    "GenerationHost",
    "QueueFull",
    "ServedEngine",
    "ServedJob",
    "run_job",
]

log = logging.getLogger("lfmdesk")


@dataclass(frozen=True)
class Failed:
    """The last event of a request that could not be answered.

    Attributes:
        status: the HTTP status to answer with (400 for the client's input, 503 when the
            engine failed and is restarting).
        message: one line.
    """

    status: int
    message: str


Delivered = ChatEvent | Failed
Deliver = Callable[[Delivered], None]


class QueueFull(Exception):
    """Too many requests are waiting; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"the server is busy; retry in {retry_after} s")
        self.retry_after = retry_after


class ServedEngine(Protocol):
    """What serving needs of an engine (:class:`~lfmdesk.core.Engine`, ``ScriptedEngine``)."""

    @property
    def info(self) -> ModelInfo | None: ...

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]: ...


class GenerationHost(Protocol):
    """Where the server sends work: the submit/stream seam."""

    def model_info(self) -> ModelInfo | None:
        """The model answering now; None while none is loaded (or it is restarting)."""
        ...

    def submit(self, request: ChatRequest, cancel: threading.Event, deliver: Deliver) -> None:
        """Queue ``request``; ``deliver`` gets its events from the engine's thread.

        Raises:
            QueueFull: the queue is full (answer 429 with ``Retry-After``).
        """
        ...


@dataclass(frozen=True)
class ServedJob:
    """One queued API request."""

    request: ChatRequest
    cancel: threading.Event
    deliver: Deliver


def cancelled_stats(request: ChatRequest) -> GenerationStats:
    """The stats of a request cancelled before it started."""
    return GenerationStats(0, 0, 0, 0, len(request.images), 0.0, 0.0, 0, 0.0, 0, "cancelled", ())


def run_job(engine: ServedEngine, job: ServedJob) -> bool:
    """Answer ``job`` on the calling (engine-owning) thread.

    Returns:
        False when the engine failed (the caller may restart it), True otherwise.
    """
    if job.cancel.is_set():
        job.deliver(cancelled_stats(job.request))
        return True
    try:
        for event in engine.stream_chat(job.request, cancel=job.cancel):
            job.deliver(event)
    except InputError as exc:
        job.deliver(Failed(400, str(exc)))
    except Exception as exc:  # an engine failure: answered 503, the engine is restarted
        text = str(exc) if isinstance(exc, LfmdeskError) else f"{type(exc).__name__}: {exc}"
        log.warning("engine failed: %s", one_line(text, 300))
        job.deliver(Failed(503, f"the engine failed ({one_line(text, 200)}); retry shortly"))
        return False
    return True


class _Timing:
    """Recent seconds per request, for a ``Retry-After`` that means something."""

    def __init__(self) -> None:
        self.average = 2.0

    def add(self, seconds: float) -> None:
        self.average = 0.8 * self.average + 0.2 * seconds

    def retry_after(self, waiting: int) -> int:
        return max(1, min(60, math.ceil(self.average * max(1, waiting))))


class EngineThread:
    """A dedicated thread that owns one engine and answers queued requests in order.

    Args:
        make_engine: builds and loads an engine; called on the engine thread at start, and
            again to restart after the engine failed.
        max_queue: requests that may wait while one runs; more get :class:`QueueFull`.
    """

    def __init__(self, make_engine: Callable[[], ServedEngine], *, max_queue: int = 16) -> None:
        self._make = make_engine
        self.max_queue = max_queue
        self._engine: ServedEngine | None = None
        self._info: ModelInfo | None = None  # kept through a restart: requests queue meanwhile
        self._jobs: deque[ServedJob] = deque()
        self._wake = threading.Condition()
        self._stopping = False
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._timing = _Timing()
        self._thread = threading.Thread(target=self._run, name="lfmdesk-serve-engine", daemon=True)
        self.restarts = 0

    def start(self) -> ModelInfo:
        """Start the thread and load the model on it.

        Raises:
            LfmdeskError: the model could not be loaded.
        """
        self._thread.start()
        self._ready.wait()
        if self._load_error is not None:
            raise self._load_error
        info = self.model_info()
        assert info is not None
        return info

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel everything, end the thread."""
        with self._wake:
            self._stopping = True
            for job in self._jobs:
                job.cancel.set()
            self._wake.notify_all()
        self._thread.join(timeout)

    def model_info(self) -> ModelInfo | None:
        return self._info

    def submit(self, request: ChatRequest, cancel: threading.Event, deliver: Deliver) -> None:
        with self._wake:
            if len(self._jobs) >= self.max_queue or self._stopping:
                raise QueueFull(self._timing.retry_after(len(self._jobs) + 1))
            self._jobs.append(ServedJob(request, cancel, deliver))
            self._wake.notify()

    def _next(self) -> ServedJob | None:
        with self._wake:
            while not self._jobs and not self._stopping:
                self._wake.wait()
            return None if self._stopping else self._jobs.popleft()

    def _load(self) -> None:
        self._engine = None
        try:
            self._engine = self._make()
            self._info = self._engine.info
        except BaseException as exc:
            self._load_error = exc

    def _run(self) -> None:
        self._load()
        self._ready.set()
        if self._load_error is not None:
            return
        while (job := self._next()) is not None:
            began = time.perf_counter()
            assert self._engine is not None
            healthy = run_job(self._engine, job)
            self._timing.add(time.perf_counter() - began)
            if not healthy:
                self._restart()
        self._release()

    def _release(self) -> None:
        # The model's memory goes back now, freed by the thread that owns its MLX arrays.
        engine, self._engine = self._engine, None
        unload = getattr(engine, "unload", None)
        if unload is not None:
            unload()
        del engine
        gc.collect()

    def _restart(self) -> None:
        self.restarts += 1
        log.warning("restarting the engine (restart %d)", self.restarts)
        self._load()
        if self._load_error is not None:
            log.error("the engine could not be restarted: %s", self._load_error)
            self._info = None
            with self._wake:
                self._stopping = True
                for job in self._jobs:
                    job.deliver(Failed(503, "the engine could not be restarted"))
                self._jobs.clear()
