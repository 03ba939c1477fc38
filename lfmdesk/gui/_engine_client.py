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
    StartChat,
)

__all__ = ["EngineClient"]


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
        self._loaded_adapter: str | None = None
        self._active: set[int] = set()
        self._closing = False
        self._watchdog = QTimer(self, interval=500)
        self._watchdog.timeout.connect(self._check_alive)
        self._handlers: dict[type, Callable[[Any], None]] = {
            EngineStarted: lambda e: self.started.emit(e.pid),
            ModelPhase: lambda e: self.modelPhase.emit(e.spec, e.phase),
            DownloadProgress: self.downloadProgress.emit,
            ModelLoaded: self._on_loaded,
            ModelFailed: lambda e: self.modelFailed.emit(e.spec, e.message, e.cancelled),
            ChatEventMsg: lambda e: self.chatEvent.emit(e.request_id, e.event),
            ChatFinished: self._on_finished,
            ChatFailed: self._on_failed,
            PromptText: lambda e: self.promptText.emit(e.request_id, e.text),
        }

    @property
    def pid(self) -> int | None:
        """The engine process id (tests kill it to prove the window survives)."""
        return self._proc.pid if self._proc else None

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

    def load_model(self, spec: str, adapter: str | None = None) -> None:
        """Resolve, download (with progress events) and load ``spec`` in the engine, with
        the trained adapter named ``adapter`` on top (checked against the model there)."""
        self._send(LoadModel(spec, self._compute, adapter))  # type: ignore[arg-type]

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

    def _on_loaded(self, event: ModelLoaded) -> None:
        self._loaded_spec = event.spec
        self._loaded_adapter = event.info.adapter.name if event.info.adapter else None
        self.modelLoaded.emit(event.spec, event.info)

    def _on_finished(self, event: ChatFinished) -> None:
        self._active.discard(event.request_id)
        self.chatFinished.emit(event.request_id)

    def _on_failed(self, event: ChatFailed) -> None:
        self._active.discard(event.request_id)
        self.chatFailed.emit(event.request_id, event.message)

    def _restart(self) -> None:
        if self._closing:
            return
        code = self._proc.exitcode if self._proc else None
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
        self.crashed.emit(f"the engine process stopped unexpectedly (exit code {code})")
        self.start()
        if self._loaded_spec is not None:
            self.load_model(self._loaded_spec, self._loaded_adapter)
