"""The window's handle on the engine process: requests out, Qt signals in.

The engine (MLX) lives in a separate process so that an MLX abort or a kill never takes the
window down. Events are read on the GUI thread only when the pipe has data (a
``QSocketNotifier``), so nothing here ever blocks; requests are pickled and written by the
process client's own sender thread. If the process dies, the client says so, starts a new
one and reloads the model that was loaded.

    client = EngineClient()
    client.modelLoaded.connect(window.on_model_loaded)
    client.start()
    client.load_model("8bit")
    rid = client.start_chat(request)       # chatEvent(rid, TextDelta/Notice/GenerationStats)...
"""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal, Slot

from lfmdesk.core import (
    Cancel,
    CancelDownload,
    ChatEventMsg,
    ChatFailed,
    ChatFinished,
    ChatRequest,
    DownloadProgress,
    EngineProcess,
    EngineStarted,
    LoadModel,
    ModelFailed,
    ModelLoaded,
    ModelPhase,
    PromptText,
    RenderPrompt,
    ServingState,
    StartChat,
    StartServing,
    StopServing,
)

__all__ = ["EngineClient", "exit_reason"]

_REAP_SECONDS = 0.5


def exit_reason(code: int | None) -> str:
    """Why a process ended, as a clause: " (killed by SIGKILL)", " (exit code 3)" or ""."""
    if code is None:
        return ""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        memory = ", often the system running out of memory" if name == "SIGKILL" else ""
        return f" (killed by {name}{memory})"
    return f" (exit code {code})"


class EngineClient(QObject):
    """Owns one engine process at a time and turns its events into signals.

    Args:
        engine_factory: "real" (MLX) or "scripted" (tests, screenshots).
        options: passed to the scripted engine.
        compute: the real engine's compute mode.
    """

    started = Signal(int)  # pid
    modelPhase = Signal(str, str)  # spec, "resolving" | "downloading" | "loading"
    downloadProgress = Signal(object)  # DownloadProgress
    modelLoaded = Signal(str, object)  # spec, ModelInfo
    modelFailed = Signal(str, str, bool)  # spec, message, cancelled
    chatEvent = Signal(int, object)  # request id, TextDelta | Notice | GenerationStats
    chatFinished = Signal(int)
    chatFailed = Signal(int, str)
    promptText = Signal(int, str)
    servingChanged = Signal(object, str)  # the API's URL or None, why it stopped ("" if asked)
    crashed = Signal(str)  # the engine process died; a new one is starting

    def __init__(
        self,
        engine_factory: str = "real",
        options: dict[str, Any] | None = None,
        compute: str = "auto",
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._factory, self._options, self._compute = engine_factory, options, compute
        self._proc: EngineProcess | None = None
        self._notifier: QSocketNotifier | None = None
        self._ids = itertools.count(1)
        self._loaded_spec: str | None = None
        self._loading_phase: dict[str, str] = {}  # spec -> the last phase its load reached
        self._keys: dict[str, str | None] = {}  # a remote server's API key, in memory only
        self._serving: tuple[str, int] | None = None  # (host, port) while serving is wanted
        self._loaded_adapter: str | None = None
        self._active: set[int] = set()
        self._closing = False
        self._watchdog = QTimer(self, interval=500)
        self._watchdog.timeout.connect(self._check_alive)
        self._handlers: dict[type, Callable[[Any], None]] = {
            EngineStarted: lambda e: self.started.emit(e.pid),
            ModelPhase: self._on_phase,
            DownloadProgress: self.downloadProgress.emit,
            ModelLoaded: self._on_loaded,
            ModelFailed: self._on_model_failed,
            ChatEventMsg: lambda e: self.chatEvent.emit(e.request_id, e.event),
            ChatFinished: self._on_finished,
            ChatFailed: self._on_failed,
            PromptText: lambda e: self.promptText.emit(e.request_id, e.text),
            ServingState: self._on_serving,
        }

    @property
    def pid(self) -> int | None:
        """The engine process id (tests kill it to prove the window survives)."""
        return self._proc.pid if self._proc else None

    @property
    def loaded_spec(self) -> str | None:
        """The spec of the model the engine holds now (None: no model).

        A load that fails while resolving or downloading leaves the previous model in place;
        one that fails once loading began has already freed it.
        """
        return self._loaded_spec

    @property
    def compute(self) -> str:
        """The compute mode models are loaded with."""
        return self._compute

    def new_process(self) -> EngineProcess:
        """Another engine process of the same kind (real or scripted), not started yet: for
        work that must not hold up the chat, such as an evaluation loading its own models."""
        return EngineProcess(self._factory, self._options)

    @property
    def busy(self) -> bool:
        """A chat request is in flight."""
        return bool(self._active)

    def start(self) -> None:
        """Start the engine process (non-blocking: the spawn happens in the background)."""
        self._proc = EngineProcess(self._factory, self._options)
        self._proc.start()
        self._notifier = QSocketNotifier(self._proc.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._watchdog.start()

    def stop(self) -> None:
        """End the engine process (window closing)."""
        self._closing = True
        self._watchdog.stop()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
        if self._proc is not None:
            self._proc.stop()

    @property
    def engine_factory(self) -> str:
        """ "real" or "scripted": what runs behind this client (training follows it)."""
        return self._factory

    def load_model(
        self, spec: str, api_key: str | None = None, *, adapter: str | None = None
    ) -> None:
        """Resolve, download (with progress events) and load ``spec`` in the engine.

        ``spec`` may be an OpenAI-compatible server's URL: answers then come from there, sent
        with ``api_key`` (kept in memory for a reload after a crash, never saved). ``adapter``
        names a trained adapter to apply on top (checked against the model there).
        """
        if api_key is not None:
            self._keys[spec] = api_key
        key = self._keys.get(spec)
        self._send(LoadModel(spec, self._compute, key, adapter))  # type: ignore[arg-type]

    def start_serving(self, port: int = 8000, host: str = "127.0.0.1") -> None:
        """Serve the loaded model over the OpenAI-compatible API (answered by servingChanged)."""
        self._serving = (host, port)
        self._send(StartServing(host, port))

    def stop_serving(self) -> None:
        """Stop serving the API."""
        self._serving = None
        self._send(StopServing())

    def _on_serving(self, event: ServingState) -> None:
        if event.url is None and event.message:
            self._serving = None  # it failed: do not start it again after a restart
        self.servingChanged.emit(event.url, event.message)

    def cancel_download(self) -> None:
        """Stop a running download; partial files stay for resuming."""
        self._send(CancelDownload())

    def start_chat(self, request: ChatRequest) -> int:
        """Ask for an answer; returns the id its events carry."""
        rid = next(self._ids)
        self._active.add(rid)
        self._send(StartChat(rid, request))
        return rid

    def cancel(self, request_id: int) -> None:
        """Stop an answer after its current token."""
        self._send(Cancel(request_id))

    def render_prompt(self, request: ChatRequest) -> int:
        """Ask for the rendered prompt; answered by ``promptText``."""
        rid = next(self._ids)
        self._send(RenderPrompt(rid, request))
        return rid

    def _send(self, message: object) -> None:
        if self._proc is not None:
            self._proc.send(message)  # type: ignore[arg-type]

    @Slot()
    def _drain(self) -> None:
        if self._proc is None:
            return
        for event in self._proc.poll_events():
            handler = self._handlers.get(type(event))
            if handler is not None:
                handler(event)
        if not self._proc.is_alive():
            self._restart()

    @Slot()
    def _check_alive(self) -> None:
        if self._proc is not None and not self._proc.is_alive() and not self._closing:
            self._drain()

    def _on_phase(self, event: ModelPhase) -> None:
        self._loading_phase[event.spec] = event.phase
        self.modelPhase.emit(event.spec, event.phase)

    def _on_loaded(self, event: ModelLoaded) -> None:
        self._loading_phase.pop(event.spec, None)
        self._loaded_spec = event.spec
        self._loaded_adapter = event.info.adapter.name if event.info.adapter else None
        self.modelLoaded.emit(event.spec, event.info)

    def _on_model_failed(self, event: ModelFailed) -> None:
        # The engine frees the old model just before loading the new one (after the new
        # folder is verified): a failure from then on leaves no model at all.
        if self._loading_phase.pop(event.spec, "") == "loading":
            self._loaded_spec = None
        self.modelFailed.emit(event.spec, event.message, event.cancelled)

    def _on_finished(self, event: ChatFinished) -> None:
        self._active.discard(event.request_id)
        self.chatFinished.emit(event.request_id)

    def _on_failed(self, event: ChatFailed) -> None:
        self._active.discard(event.request_id)
        self.chatFailed.emit(event.request_id, event.message)

    def _exit_code(self) -> int | None:
        # The pipe reports EOF while the dying process closes its files, a moment before it
        # can be reaped: wait for its exit code, briefly (this only runs after a crash).
        deadline = time.monotonic() + _REAP_SECONDS
        code = self._proc.exitcode if self._proc else None
        while code is None and self._proc is not None and time.monotonic() < deadline:
            time.sleep(0.005)
            code = self._proc.exitcode
        return code

    def _restart(self) -> None:
        if self._closing:
            return
        code = self._exit_code()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._proc is not None:
            self._proc.stop(timeout=0)  # frees the dead process's pipe and sender thread
        lost = sorted(self._active)
        self._active.clear()
        for rid in lost:
            self.chatFailed.emit(rid, "the engine stopped during this answer")
        self.crashed.emit(f"the engine process stopped unexpectedly{exit_reason(code)}")
        self.start()
        if self._loaded_spec is not None:
            self.load_model(self._loaded_spec, adapter=self._loaded_adapter)
        if self._serving is not None:  # the API went down with the process: bring it back
            self._send(StartServing(*self._serving))
