"""Engines for an evaluation run from the window: each variant in its own engine process.

The window never runs MLX itself, and the chat keeps its own engine, so an evaluation starts
a separate engine process per variant (the same kind of engine the window uses: real, or
scripted in tests) and drives it synchronously from the evaluation's thread. Qt-free::

    engine = ProcessEngine.open(client.new_process, "4bit", "auto", cancel, on_phase)
    for event in engine.stream_chat(request, cancel=cancel): ...
    engine.unload()                     # ends the process and frees its memory
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator

from lfmdesk.core import (
    Cancel,
    CancelDownload,
    ChatEvent,
    ChatEventMsg,
    ChatFailed,
    ChatFinished,
    ChatRequest,
    DownloadProgress,
    EngineError,
    EngineProcess,
    LoadModel,
    ModelError,
    ModelFailed,
    ModelLoaded,
    ModelPhase,
    StartChat,
    format_size,
)

__all__ = ["ProcessEngine"]

_POLL_S = 0.1


class ProcessEngine:
    """A loaded variant in its own engine process, with the engine's ``stream_chat``.

    Args:
        process: a started engine process holding the model.
    """

    def __init__(self, process: EngineProcess) -> None:
        self._process = process
        self._ids = itertools.count(1)

    @classmethod
    def open(
        cls,
        new_process: Callable[[], EngineProcess],
        spec: str,
        compute: str,
        cancel: threading.Event,
        on_phase: Callable[[str], None],
    ) -> ProcessEngine:
        """Start a process and load ``spec`` in it (downloading it if needed).

        Raises:
            ModelError: the model cannot be found, downloaded or loaded.
            EngineError: the process died, or ``cancel`` was set while it loaded.
        """
        process = new_process()
        process.start()
        process.send(LoadModel(spec, compute))  # type: ignore[arg-type]
        try:
            cls._wait_loaded(process, spec, cancel, on_phase)
        except BaseException:
            process.stop()
            raise
        return cls(process)

    @staticmethod
    def _wait_loaded(
        process: EngineProcess,
        spec: str,
        cancel: threading.Event,
        on_phase: Callable[[str], None],
    ) -> None:
        while True:
            if cancel.is_set():
                process.send(CancelDownload())
                raise EngineError("evaluation cancelled")
            for event in process.wait_events(_POLL_S):
                if isinstance(event, ModelLoaded):
                    return
                if isinstance(event, ModelFailed):
                    raise ModelError(event.message)
                if isinstance(event, ModelPhase):
                    on_phase(f"{event.phase.capitalize()} {spec}…")
                elif isinstance(event, DownloadProgress):
                    done, total = format_size(event.done_bytes), format_size(event.total_bytes)
                    on_phase(f"Downloading {spec}: {done} of {total}")
            if not process.is_alive():
                raise EngineError(f"the engine process stopped while loading {spec}")

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]:
        """Answer ``request`` in the process; a set ``cancel`` stops it after a token.

        Raises:
            EngineError: the answer failed or the process died.
        """
        rid = next(self._ids)
        self._process.send(StartChat(rid, request))
        cancelled = False
        while True:
            if cancel is not None and cancel.is_set() and not cancelled:
                self._process.send(Cancel(rid))
                cancelled = True
            for event in self._process.wait_events(_POLL_S):
                if isinstance(event, ChatEventMsg) and event.request_id == rid:
                    yield event.event
                elif isinstance(event, ChatFinished) and event.request_id == rid:
                    return
                elif isinstance(event, ChatFailed) and event.request_id == rid:
                    raise EngineError(event.message)
            if not self._process.is_alive():
                raise EngineError("the engine process stopped during this answer")

    def unload(self) -> None:
        """End the process (its model's memory goes with it)."""
        self._process.stop()
