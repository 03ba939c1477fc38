"""Messages between the GUI and the engine process: plain, frozen, picklable dataclasses.

Requests go GUI → engine process, events come back; :mod:`lfmdesk.core.process._worker`
documents the order they arrive in. Every request that carries a ``request_id`` ends with
exactly one terminal event for that id: ``ChatFinished`` or ``ChatFailed`` for ``StartChat``,
``PromptText`` or ``ChatFailed`` for ``RenderPrompt``. Every ``LoadModel`` ends with exactly one
``ModelLoaded`` or ``ModelFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest
from lfmdesk.core.engine._engine import ModelInfo
from lfmdesk.core.models._download import DownloadProgress

__all__ = [
    "Cancel",
    "CancelDownload",
    "ChatEventMsg",
    "ChatFailed",
    "ChatFinished",
    "DownloadProgress",
    "EngineEvent",
    "EngineRequest",
    "EngineStarted",
    "Event",
    "LoadModel",
    "ModelFailed",
    "ModelLoaded",
    "ModelPhase",
    "Phase",
    "PromptText",
    "RenderPrompt",
    "Request",
    "ServingState",
    "Shutdown",
    "StartChat",
    "StartServing",
    "StopServing",
]

Phase = Literal["resolving", "downloading", "loading"]


# --- requests: GUI → engine process ----------------------------------------------------------


@dataclass(frozen=True)
class LoadModel:
    """Resolve, download if needed (with progress), verify and load a model.

    Attributes:
        spec: a variant key ("8bit"), a Hugging Face repo id, a model folder, or the URL of
            an OpenAI-compatible server (``http(s)://…/v1``: answers then come from there).
        compute: "auto", "native" or "float32" (see :class:`~lfmdesk.core.Engine`).
        api_key: the remote server's key (never in ``repr``, never saved).
        adapter: an adapter's name (or folder) to apply; it is checked against the model
            once that is resolved, and a mismatch ends in ModelFailed.
    """

    spec: str
    compute: ComputeMode = "auto"
    api_key: str | None = field(default=None, repr=False)
    adapter: str | None = None


@dataclass(frozen=True)
class CancelDownload:
    """Stop the download in progress, if any (the partial files stay for a resume)."""


@dataclass(frozen=True)
class StartChat:
    """Generate an answer for ``request``; events come back tagged with ``request_id``."""

    request_id: int
    request: ChatRequest


@dataclass(frozen=True)
class Cancel:
    """Stop request ``request_id``: after the current token if running, at once if queued."""

    request_id: int


@dataclass(frozen=True)
class RenderPrompt:
    """Ask for the exact prompt text ``request`` renders to (answered with PromptText)."""

    request_id: int
    request: ChatRequest


@dataclass(frozen=True)
class StartServing:
    """Serve the loaded model over the OpenAI-compatible API from the engine process.

    API requests queue on the same engine as the window's chats. Answered by
    :class:`ServingState`.

    Attributes:
        host: the address to listen on (loopback unless ``api_key`` is given).
        port: the port; 0 picks a free one.
        api_key: required from clients when given (never in ``repr``).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StopServing:
    """Stop serving (answered by :class:`ServingState` with no URL)."""


@dataclass(frozen=True)
class Shutdown:
    """Stop whatever runs and end the engine process."""


Request = (
    LoadModel
    | CancelDownload
    | StartChat
    | Cancel
    | RenderPrompt
    | StartServing
    | StopServing
    | Shutdown
)
EngineRequest = Request  # the name lfmdesk.core exports


# --- events: engine process → GUI ------------------------------------------------------------


@dataclass(frozen=True)
class EngineStarted:
    """The engine process is up and reading requests."""

    pid: int


@dataclass(frozen=True)
class ModelPhase:
    """What a LoadModel is doing now: "resolving", then "downloading" (only when something is
    missing), then "loading"."""

    spec: str
    phase: Phase


@dataclass(frozen=True)
class ModelLoaded:
    """The model named by ``spec`` is loaded; chats now use it."""

    spec: str
    info: ModelInfo


@dataclass(frozen=True)
class ModelFailed:
    """The model named by ``spec`` could not be loaded; any previous model stays loaded.

    Attributes:
        spec: as in the LoadModel request.
        message: one line that says what is wrong and what to do.
        cancelled: the user cancelled the download, or a newer LoadModel replaced this one.
    """

    spec: str
    message: str
    cancelled: bool = False


@dataclass(frozen=True)
class ChatEventMsg:
    """One engine event (TextDelta, Notice or GenerationStats) of request ``request_id``."""

    request_id: int
    event: ChatEvent


@dataclass(frozen=True)
class ChatFinished:
    """Request ``request_id`` is over (its GenerationStats came just before)."""

    request_id: int


@dataclass(frozen=True)
class ChatFailed:
    """Request ``request_id`` failed; ``message`` is one line. Text already sent stays valid."""

    request_id: int
    message: str


@dataclass(frozen=True)
class PromptText:
    """The rendered prompt of a RenderPrompt request."""

    request_id: int
    text: str


@dataclass(frozen=True)
class ServingState:
    """Whether the API is being served: ``url`` while it is, None after a stop or a failure.

    Attributes:
        url: the API's base URL (``http://127.0.0.1:8000/v1``), or None.
        message: one line: why serving stopped or could not start ("" after a plain stop).
    """

    url: str | None
    message: str = ""


Event = (
    EngineStarted
    | ModelPhase
    | DownloadProgress
    | ModelLoaded
    | ModelFailed
    | ChatEventMsg
    | ChatFinished
    | ChatFailed
    | PromptText
    | ServingState
)
EngineEvent = Event  # the name lfmdesk.core exports
