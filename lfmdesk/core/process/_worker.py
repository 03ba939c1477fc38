"""The engine process: one model, served over a pipe, so the GUI never waits on MLX.

MLX streams are thread-local, so the engine process's MAIN thread owns the engine and runs
LoadModel, StartChat and RenderPrompt one at a time, in order. A READER thread reads the pipe:
``Cancel`` and ``CancelDownload`` act at once (a running answer stops after its current
token; a queued request is dropped), ``Shutdown`` or end-of-file ends the process, the rest
is queued. A newer ``LoadModel`` cancels a download in progress and replaces queued loads.
``serve`` lives here so that a spawned child imports ``lfmdesk.core`` (and its BLAS preload)
before anything imports MLX.

Sequence (GUI side: :class:`~lfmdesk.core.EngineProcess`; ``…`` = repeated)::

    GUI                                engine process
     | start() ---------------------->  serve(): EngineStarted(pid)
     | LoadModel("8bit") ------------>  ModelPhase("resolving")
     |                                  [ModelPhase("downloading"), DownloadProgress…]
     |                                  ModelPhase("loading")
     |                        <-------  ModelLoaded(spec, info) | ModelFailed(spec, msg)
     | StartChat(7, request) -------->  ChatEventMsg(7, Notice)…
     |                        <-------  ChatEventMsg(7, TextDelta)…
     | Cancel(7) -------------------->  (stops after the current token)
     |                        <-------  ChatEventMsg(7, GenerationStats(finish="cancelled"))
     |                        <-------  ChatFinished(7)            | ChatFailed(7, msg)
     | RenderPrompt(8, request) ----->  PromptText(8, text)        | ChatFailed(8, msg)
     | Shutdown() ------------------->  (process exits; the pipe reads EOF)

``StartServing`` starts the OpenAI-compatible API (uvicorn on its own thread) on this same
engine: the worker is its ``GenerationHost``, so API requests are queued jobs the main thread
runs between the window's, and a LoadModel switches what the API serves too. A LoadModel whose
spec is a server URL swaps the engine for a :class:`~lfmdesk.core.remote.RemoteEngine`.

Guarantees: every StartChat ends in exactly one ChatFinished (after a GenerationStats) or
ChatFailed; a StartChat cancelled before it started gets a zero GenerationStats with
finish_reason "cancelled", then ChatFinished. Every LoadModel ends in one ModelLoaded or
ModelFailed (``cancelled=True`` when the user cancelled it or a newer load replaced it); a
failed load keeps the previous model. Errors are one-line messages; no request kills the
process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import DownloadCancelled, LfmdeskError, one_line
from lfmdesk.core.engine._chat import ChatRequest, GenerationStats
from lfmdesk.core.engine._engine import ModelInfo
from lfmdesk.core.models._download import DownloadDone
from lfmdesk.core.process._factories import ENGINE_FACTORIES, ChatEngine, EngineFactory
from lfmdesk.core.process._protocol import (
    Cancel,
    CancelDownload,
    ChatEventMsg,
    ChatFailed,
    ChatFinished,
    EngineStarted,
    Event,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ModelPhase,
    PromptText,
    RenderPrompt,
    ServingState,
    Shutdown,
    StartChat,
    StartServing,
    StopServing,
)
from lfmdesk.core.remote._engine import RemoteEngine, is_remote_spec
from lfmdesk.core.serve._host import Deliver, Failed, QueueFull, ServedJob, run_job

__all__ = ["serve"]

log = logging.getLogger("lfmdesk")

_MESSAGE_LIMIT = 300
MAX_SERVED_QUEUE = 16  # API requests that may wait for the engine; more get 429


def _exception_line(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, LfmdeskError) else f"{type(exc).__name__}: {exc}"
    return one_line(text, _MESSAGE_LIMIT)


def _cancelled_stats(request: ChatRequest) -> GenerationStats:
    return GenerationStats(0, 0, 0, 0, len(request.images), 0.0, 0.0, 0, 0.0, 0, "cancelled", ())


class _Worker:
    """The engine process's state; see the module docstring for the threads."""

    def __init__(self, conn: Connection, factory: EngineFactory, options: dict[str, Any]) -> None:
        self._conn = conn
        self._factory = factory
        self._local = factory.make(options)
        self._engine: ChatEngine = self._local  # the local engine, or a RemoteEngine
        self._server: Any = None  # the API's ServerThread while serving
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()  # guards everything below
        self._wake = threading.Condition(self._lock)
        self._jobs: deque[LoadModel | StartChat | RenderPrompt | ServedJob] = deque()
        self._stops: dict[int, threading.Event] = {}  # one per queued or running chat
        self._download: threading.Event | None = None
        self._stopping = False

    # --- main thread ---------------------------------------------------------------------

    def run(self) -> None:
        self._send(EngineStarted(os.getpid()))
        threading.Thread(target=self._read, name="lfmdesk-engine-reader", daemon=True).start()
        while (job := self._next_job()) is not None:
            try:
                _JOB_HANDLERS[type(job)](self, job)
            finally:
                with self._lock:
                    self._stops.pop(getattr(job, "request_id", -1), None)
        self._stop_server()

    def _next_job(self) -> LoadModel | StartChat | RenderPrompt | ServedJob | None:
        with self._wake:
            while not self._jobs and not self._stopping:
                self._wake.wait()
            if self._stopping:
                return None
            job = self._jobs.popleft()
            return job

    def _send(self, event: Event) -> None:
        try:
            with self._send_lock:
                self._conn.send(event)
        except (OSError, EOFError, ValueError):
            self._stop()  # the GUI is gone: finish quietly

    def _load(self, job: LoadModel) -> None:
        if is_remote_spec(job.spec):
            self._load_remote(job)
            return
        if self._engine is not self._local:
            self._engine.unload()
            self._engine = self._local
        cancel = threading.Event()
        try:
            path = self._prepare(job, cancel)
            if cancel.is_set():
                raise DownloadCancelled(f"loading {job.spec} was cancelled")
            adapter = self._factory.adapter(job.adapter, path) if job.adapter else None
            self._send(ModelPhase(job.spec, "loading"))
            self._engine.compute = job.compute
            self._send(ModelLoaded(job.spec, self._engine.load(path, adapter=adapter)))
        except DownloadCancelled as exc:
            self._send(ModelFailed(job.spec, _exception_line(exc), cancelled=True))
        except Exception as exc:  # one bad request must not end the process
            self._send(ModelFailed(job.spec, _exception_line(exc)))

    def _load_remote(self, job: LoadModel) -> None:
        self._send(ModelPhase(job.spec, "loading"))
        if job.adapter:
            line = "an adapter needs a local model: a remote server answers with its own"
            self._send(ModelFailed(job.spec, line))
            return
        try:
            remote = RemoteEngine(job.spec, api_key=job.api_key)
            info = remote.connect()
        except Exception as exc:  # the previous engine stays
            self._send(ModelFailed(job.spec, _exception_line(exc)))
            return
        self._engine.unload()  # the local model's memory is not needed while remote
        self._engine = remote
        self._send(ModelLoaded(job.spec, info))

    def _prepare(self, job: LoadModel, cancel: threading.Event) -> Path:
        self._send(ModelPhase(job.spec, "resolving"))
        with self._lock:
            self._download = cancel
        try:
            announced, path = False, None
            for event in self._factory.prepare(self._engine, job.spec, cancel):
                if isinstance(event, DownloadDone):
                    path = event.path
                    continue
                if not announced:
                    self._send(ModelPhase(job.spec, "downloading"))
                    announced = True
                self._send(event)
        finally:
            with self._lock:
                self._download = None
        if path is None:
            raise DownloadCancelled(f"download of {job.spec} ended without a model")
        return path

    def _chat(self, job: StartChat) -> None:
        rid = job.request_id
        with self._lock:
            stop = self._stops.setdefault(rid, threading.Event())
        if stop.is_set():
            self._send(ChatEventMsg(rid, _cancelled_stats(job.request)))
            self._send(ChatFinished(rid))
            return
        try:
            for event in self._engine.stream_chat(job.request, cancel=stop):
                self._send(ChatEventMsg(rid, event))
        except Exception as exc:  # LfmdeskError or an engine bug: the process carries on
            self._send(ChatFailed(rid, _exception_line(exc)))
            return
        self._send(ChatFinished(rid))

    def _serve_job(self, job: ServedJob) -> None:
        run_job(self._engine, job)

    # --- the API's GenerationHost (called from the server's threads) ----------------------

    def model_info(self) -> ModelInfo | None:
        return self._engine.info

    def submit(self, request: ChatRequest, cancel: threading.Event, deliver: Deliver) -> None:
        with self._wake:
            waiting = sum(isinstance(job, ServedJob) for job in self._jobs)
            if waiting >= MAX_SERVED_QUEUE or self._stopping:
                raise QueueFull(5)
            self._jobs.append(ServedJob(request, cancel, deliver))
            self._wake.notify()

    def _render(self, job: RenderPrompt) -> None:
        try:
            text = self._engine.render_prompt(job.request)
        except Exception as exc:
            self._send(ChatFailed(job.request_id, _exception_line(exc)))
            return
        self._send(PromptText(job.request_id, text))

    # --- reader thread -------------------------------------------------------------------

    def _read(self) -> None:
        while not self._stopping:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                self._stop()
                return
            except Exception as exc:  # a message that does not unpickle: skip it
                log.warning("engine process: unreadable request: %s", _exception_line(exc))
                continue
            handler = _READ_HANDLERS.get(type(message))
            if handler is None:
                log.warning("engine process: unknown request %s", type(message).__name__)
                continue
            handler(self, message)

    def _enqueue(self, job: StartChat | RenderPrompt) -> None:
        with self._wake:
            if isinstance(job, StartChat):
                self._stops[job.request_id] = threading.Event()
            self._jobs.append(job)
            self._wake.notify()

    def _on_load(self, job: LoadModel) -> None:
        with self._wake:
            if self._download is not None:
                self._download.set()
            replaced = [j for j in self._jobs if isinstance(j, LoadModel)]
            for old in replaced:
                self._jobs.remove(old)
            self._jobs.append(job)
            self._wake.notify()
        for old in replaced:
            self._send(ModelFailed(old.spec, "replaced by a newer model choice", cancelled=True))

    def _on_cancel(self, message: Cancel) -> None:
        rid = message.request_id
        with self._lock:
            dropped = [j for j in self._jobs if getattr(j, "request_id", None) == rid]
            for job in dropped:
                self._jobs.remove(job)
            if rid in self._stops:
                self._stops[rid].set()
            if dropped:
                self._stops.pop(rid, None)  # it never runs, so nothing else will
        for job in dropped:
            if isinstance(job, StartChat):
                self._send(ChatEventMsg(rid, _cancelled_stats(job.request)))
                self._send(ChatFinished(rid))
            else:
                self._send(ChatFailed(rid, "cancelled before it started"))

    def _on_cancel_download(self, _message: CancelDownload) -> None:
        with self._lock:
            if self._download is not None:
                self._download.set()

    def _on_start_serving(self, message: StartServing) -> None:
        from lfmdesk.core.serve._app import ServeOptions, create_app
        from lfmdesk.core.serve._server import ServerThread, check_exposure

        self._stop_server()
        try:
            check_exposure(message.host, message.api_key, insecure_no_auth=False)
            app = create_app(self, ServeOptions(api_key=message.api_key))
            server = ServerThread(app, message.host, message.port)
            url = server.start()
        except Exception as exc:
            self._send(ServingState(None, _exception_line(exc)))
            return
        self._server = server
        self._send(ServingState(url))

    def _on_stop_serving(self, _message: StopServing) -> None:
        self._stop_server()
        self._send(ServingState(None))

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def _on_shutdown(self, _message: Shutdown) -> None:
        self._stop()

    def _stop(self) -> None:
        with self._wake:
            self._stopping = True
            for job in self._jobs:
                if isinstance(job, ServedJob):
                    job.deliver(Failed(503, "the engine is stopping"))
            self._jobs.clear()
            if self._download is not None:
                self._download.set()
            for stop in self._stops.values():
                stop.set()
            self._wake.notify_all()


_JOB_HANDLERS: dict[type, Callable[[_Worker, Any], None]] = {
    LoadModel: _Worker._load,
    StartChat: _Worker._chat,
    RenderPrompt: _Worker._render,
    ServedJob: _Worker._serve_job,
}
_READ_HANDLERS: dict[type, Callable[[_Worker, Any], None]] = {
    LoadModel: _Worker._on_load,
    StartChat: _Worker._enqueue,
    RenderPrompt: _Worker._enqueue,
    Cancel: _Worker._on_cancel,
    CancelDownload: _Worker._on_cancel_download,
    StartServing: _Worker._on_start_serving,
    StopServing: _Worker._on_stop_serving,
    Shutdown: _Worker._on_shutdown,
}


ENGINE_NICENESS = 10


def _yield_cpu_to_the_window() -> None:
    """Run the engine at a lower CPU priority than the window.

    On a CPU-only machine MLX and OpenBLAS keep every core busy during prefill; at equal
    priority the window's thread then waits its turn for 100 ms and more. A nicer engine
    costs it almost nothing (the window needs a few ms now and then) and keeps the window
    responsive. On Apple Silicon the heavy work is on the GPU anyway.
    """
    with contextlib.suppress(OSError, AttributeError):
        os.nice(ENGINE_NICENESS)


def serve(
    conn: Connection, engine_factory: str = "real", options: dict[str, Any] | None = None
) -> None:
    """The engine process's main: serve requests from ``conn`` until Shutdown or EOF.

    Args:
        conn: this process's end of a duplex pipe.
        engine_factory: a key of :data:`ENGINE_FACTORIES` ("real" or "scripted").
        options: keyword arguments for the engine (``Engine(compute=...)``,
            ``ScriptedEngine(answers=..., token_delay=...)``).
    """
    # Ctrl-C in a terminal reaches the whole process group; the GUI decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _yield_cpu_to_the_window()
    try:
        _Worker(conn, ENGINE_FACTORIES[engine_factory], dict(options or {})).run()
    finally:
        conn.close()
