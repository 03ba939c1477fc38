"""Which engine the engine process runs: the real one over mlx-vlm, or the scripted one the GUI
tests use, each with how it turns a model spec into a loadable folder and an adapter name
into a folder checked against that model. A table, looked up by name (``EngineProcess``'s
``engine_factory``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest
from lfmdesk.core.engine._engine import Engine, ModelInfo
from lfmdesk.core.models._download import DownloadDone, DownloadProgress
from lfmdesk.core.models._store import ensure_model, resolve_model

__all__ = ["ENGINE_FACTORIES", "ChatEngine", "EngineFactory"]


class ChatEngine(Protocol):
    """What the engine process needs of an engine (:class:`Engine`, ``ScriptedEngine``)."""

    compute: ComputeMode

    @property
    def info(self) -> ModelInfo | None: ...

    def load(self, model_dir: str | Path, adapter: str | Path | None = None) -> ModelInfo: ...

    def unload(self) -> None: ...

    def cancel(self) -> None: ...

    def render_prompt(self, request: ChatRequest) -> str: ...

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]: ...


Preparer = Callable[[ChatEngine, str, threading.Event], Iterator[DownloadProgress | DownloadDone]]
AdapterCheck = Callable[[str, Path], Path]


def _check_adapter(adapter: str, model_dir: Path) -> Path:
    from lfmdesk.core.train._base import check_adapter

    return check_adapter(adapter, model_dir)[0]


@dataclass(frozen=True)
class EngineFactory:
    """How to build an engine, how it turns a model spec into a loadable folder, and how an
    adapter name becomes a folder checked against that model."""

    make: Callable[[dict[str, Any]], ChatEngine]
    prepare: Preparer
    adapter: AdapterCheck = _check_adapter


def _make_real(options: dict[str, Any]) -> ChatEngine:
    return Engine(**options)


def _prepare_real(
    _engine: ChatEngine, spec: str, cancel: threading.Event
) -> Iterator[DownloadProgress | DownloadDone]:
    return ensure_model(resolve_model(spec), cancel=cancel)


def _make_scripted(options: dict[str, Any]) -> ChatEngine:
    from lfmdesk.core.testing._scripted import ScriptedEngine

    return ScriptedEngine(**options)


def _prepare_scripted(
    engine: ChatEngine, spec: str, cancel: threading.Event
) -> Iterator[DownloadProgress | DownloadDone]:
    from lfmdesk.core.testing._scripted import ScriptedEngine

    assert isinstance(engine, ScriptedEngine)
    return engine.prepare_model(spec, cancel)


ENGINE_FACTORIES: dict[str, EngineFactory] = {
    "real": EngineFactory(_make_real, _prepare_real),
    "scripted": EngineFactory(_make_scripted, _prepare_scripted, lambda name, _dir: Path(name)),
}
