"""Opening the engine for a command: the one place the CLI turns settings into a model.

With ``--backend URL`` every command runs on a remote OpenAI-compatible server (vLLM,
``lfmdesk serve``) through :class:`~lfmdesk.core.remote.RemoteEngine`, which has the local
engine's interface; otherwise the model is resolved, downloaded if needed and loaded here.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from lfmdesk.cli._output import consume_download
from lfmdesk.core import (
    AppSettings,
    ChatEvent,
    ChatRequest,
    Engine,
    InputError,
    ModelInfo,
    VisionSettings,
    ensure_model,
    resolve_model,
)
from lfmdesk.core.train._base import check_adapter
from lfmdesk.core.train._store import find_adapter

__all__ = ["CommandEngine", "add_backend_flags", "api_key_from_env", "open_engine"]


class CommandEngine(Protocol):
    """What commands use of an engine: the local :class:`Engine` or a ``RemoteEngine``."""

    @property
    def info(self) -> ModelInfo | None: ...

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]: ...

    def render_prompt(self, request: ChatRequest) -> str: ...

    def cancel(self) -> None: ...


def add_backend_flags(p: argparse.ArgumentParser) -> None:
    """``--backend URL``, ``--api-key-env VAR`` and ``--timeout``, for every model command."""
    g = p.add_argument_group("remote server")
    g.add_argument(
        "--backend",
        metavar="URL",
        help="run on an OpenAI-compatible server (vLLM, lfmdesk serve), e.g. "
        "http://gpu-box:8000/v1; --model then names the server's model",
    )
    g.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="send the API key held in environment variable VAR (never printed)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="longest wait for the server to connect or to say something (default 300)",
    )


def api_key_from_env(var: str) -> str:
    """The API key in environment variable ``var``.

    Raises:
        InputError: the variable is unset or empty (its name is said, never a value).
    """
    key = os.environ.get(var, "").strip()
    if not key:
        raise InputError(f"environment variable {var} is not set; put the API key in it")
    return key


def open_engine(
    args: argparse.Namespace, settings: AppSettings, *, stream: bool = True
) -> CommandEngine:
    """The engine a command runs on: remote with ``--backend``, else loaded here.

    Args:
        args: parsed flags (``backend``, ``api_key_env``, ``timeout``, ``model``, ``compute``,
            ``adapter``: a trained adapter applied on top, refused if another model's).
        settings: effective settings (the model spec).
        stream: remote only: stream answers (interactive); False asks for whole answers,
            which a lost connection can retry (batch work).

    Returns:
        An :class:`~lfmdesk.core.Engine` or a connected :class:`~lfmdesk.core.remote.RemoteEngine`;
        both have ``info``, ``stream_chat``, ``render_prompt`` and ``cancel``.
    """
    backend = getattr(args, "backend", None)
    adapter = getattr(args, "adapter", None)
    if backend and adapter:
        raise InputError("--adapter needs a local model: with --backend the server's model answers")
    if backend:
        from lfmdesk.core.remote import RemoteEngine

        var = getattr(args, "api_key_env", None)
        remote = RemoteEngine(
            backend,
            api_key=api_key_from_env(var) if var else None,
            model=getattr(args, "model", None),
            stream=stream,
            timeout=getattr(args, "timeout", 300.0),
        )
        remote.connect()
        return remote
    if getattr(args, "api_key_env", None):
        raise InputError("--api-key-env needs --backend URL (a local model has no key)")
    if adapter:
        find_adapter(adapter)  # a wrong name fails before any download
    folder = consume_download(ensure_model(resolve_model(settings.model)))
    adapter_dir = _checked_adapter(adapter, folder, settings) if adapter else None
    engine = Engine(compute=args.compute)
    engine.load(folder, adapter=adapter_dir)
    return engine


def _checked_adapter(name: str, folder: Path, settings: AppSettings) -> Path:
    adapter_dir, info = check_adapter(name, folder)
    if info.vision != settings.vision:
        sys.stderr.write(
            f"lfmdesk: note: adapter {info.name!r} was trained with "
            f"{_vision_diff(info.vision, settings.vision)}; answers are best with the same\n"
        )
    return adapter_dir


def _vision_diff(trained: VisionSettings, now: VisionSettings) -> str:
    return ", ".join(
        f"{f.name} {getattr(trained, f.name)} (now {getattr(now, f.name)})"
        for f in dataclasses.fields(trained)
        if getattr(trained, f.name) != getattr(now, f.name)
    )
