"""RemoteEngine: the engine's interface, answered by an OpenAI-compatible server.

    engine = RemoteEngine("http://gpu-box:8000/v1", api_key=os.environ["KEY"])
    engine.connect()                                  # checks the server, picks its model
    for event in engine.stream_chat(ChatRequest.single("What is this?", [image])):
        ...                                           # TextDelta..., GenerationStats

Answers go through the same parsers as local ones (tool calls come back as LFM2's call text),
so a project annotated remotely is indistinguishable from one annotated locally. Safe to use
from many threads at once (``annotate --concurrency``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2

from lfmdesk.core._errors import EngineError, InputError, ModelNotFoundError, one_line
from lfmdesk.core._net import is_loopback
from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, Notice, TextDelta
from lfmdesk.core.engine._engine import ModelInfo
from lfmdesk.core.engine._tiling import plan_tiles
from lfmdesk.core.engine.prompt._render import TOOLS_OFF_WITH_IMAGES
from lfmdesk.core.remote._http import Cancelled, RetryPolicy, Sender, server_message
from lfmdesk.core.remote._wire import Answer, chat_body

__all__ = ["PARITY_WARNING", "RemoteEngine", "is_remote_spec"]

log = logging.getLogger("lfmdesk")

# The parity guard's reference picture: small, so its request costs little.
_REFERENCE_SIZE = (256, 256)

PARITY_WARNING = (
    "{url} preprocesses images differently from lfmdesk ({got} prompt tokens where the local "
    "tiling planner expects {want}); boxes may not line up with the picture"
)


def is_remote_spec(spec: str) -> bool:
    """Whether a model spec is a server URL (``http://`` or ``https://``)."""
    return spec.lower().startswith(("http://", "https://"))


class RemoteEngine:
    """An OpenAI-compatible server with :class:`~lfmdesk.core.Engine`'s interface.

    Args:
        base_url: the API's base, e.g. ``http://gpu-box:8000/v1``.
        api_key: the server's key; never printed, logged or kept in ``repr``.
        model: the server's model id; None takes the first one ``/models`` lists.
        stream: stream answers (server-sent events); False asks for whole answers, which a
            dropped connection can retry without repeating text (batch work).
        timeout: seconds to connect and the longest silence while an answer comes.
        retry: the retry policy for 429/503/timeouts/lost connections.
        transport: an httpx transport (tests).
    """

    compute: ComputeMode = "auto"  # the engine-process protocol sets it; the server decides

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        stream: bool = True,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{base_url!r} is not a server URL; use e.g. http://gpu-box:8000/v1")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            log.warning(
                "%s is plain http to another machine: prompts, images and the API key travel "
                "unencrypted (use https, or an SSH tunnel)",
                base_url,
            )
        self.base_url = base_url.rstrip("/")
        self.stream = stream
        self._sender = Sender(
            self.base_url, api_key, timeout=timeout, retry=retry, transport=transport
        )
        self._model = model
        self._info: ModelInfo | None = None
        self._cancel = threading.Event()
        self._parity_lock = threading.Lock()
        self._parity_checked: set[tuple[object, ...]] = set()
        self.parity_problem: str | None = None

    def __repr__(self) -> str:
        return f"RemoteEngine({self.base_url!r}, model={self._model!r})"

    @property
    def info(self) -> ModelInfo | None:
        """The server's model, once :meth:`connect` succeeded."""
        return self._info

    def connect(self) -> ModelInfo:
        """Check the server and choose its model.

        Raises:
            ModelNotFoundError: the server cannot be reached, refuses the key, or does not
                serve the model asked for.
        """
        started = time.perf_counter()
        try:
            response = self._sender.get("/models")
        except httpx2.TransportError as exc:
            raise ModelNotFoundError(
                f"cannot reach {self.base_url}: {one_line(str(exc) or type(exc).__name__, 120)}"
            ) from None
        if response.status_code == 401:
            raise ModelNotFoundError(
                f"{self.base_url} refused the API key (HTTP 401); give it with --api-key-env VAR"
            )
        if response.status_code != 200:
            raise ModelNotFoundError(
                f"{self.base_url}/models answered HTTP {response.status_code}: "
                f"{server_message(response)} (is this an OpenAI-compatible /v1 URL?)"
            )
        ids = _model_ids(response)
        if not ids:
            raise ModelNotFoundError(f"{self.base_url} serves no model")
        if self._model is not None and self._model not in ids:
            raise ModelNotFoundError(
                f"{self.base_url} does not serve {self._model!r}; it serves {', '.join(ids)}"
            )
        self._model = self._model or ids[0]
        self._info = ModelInfo(
            path=Path(),
            name=self._model,
            bits=None,
            compute_dtype="remote",
            device="remote",
            blas=None,
            load_seconds=time.perf_counter() - started,
        )
        return self._info

    def load(self, _model_dir: str | Path, adapter: str | Path | None = None) -> ModelInfo:
        """Connect (the engine-process protocol's ``load``); the folder is not used.

        Raises:
            InputError: ``adapter`` is given: adapters apply to a local model only.
        """
        if adapter is not None:
            raise InputError("an adapter needs a local model: a remote server answers with its own")
        return self.connect()

    def unload(self) -> None:
        """Nothing is held locally; close the connection pool."""
        self._sender.close()

    def close(self) -> None:
        self._sender.close()

    def cancel(self) -> None:
        """Stop the answer in progress (the connection is closed). Safe from any thread."""
        self._cancel.set()

    def render_prompt(self, request: ChatRequest) -> str:
        """The server renders prompts itself; only a summary of the request can be shown."""
        raise EngineError(
            f"the prompt is rendered by the server at {self.base_url}; use a local model to see it"
        )

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]:
        """Answer ``request`` on the server: TextDelta/Notice events, then one GenerationStats.

        Raises:
            EngineError: the server refused the request (its message), or never answered.
        """
        if self._info is None:
            self.connect()
        stop = cancel if cancel is not None else self._fresh_cancel()
        started = time.perf_counter()
        use_tools = bool(request.tools) and not request.images
        if request.tools and request.images:
            yield Notice(TOOLS_OFF_WITH_IMAGES)
        body = chat_body(request, self._model or "", stream=self.stream, tools=use_tools)
        answer, first = Answer(), None
        try:
            for text in self._answer(body, answer, stop):
                first = first or time.perf_counter()
                yield TextDelta(text)
        except Cancelled:
            answer.finish_reason = "cancelled"
        calls = answer.calls.text()
        if calls and answer.finish_reason != "cancelled":
            first = first or time.perf_counter()
            yield TextDelta(calls)
        notice = self._parity_notice(request, answer, stop)
        if notice is not None:
            yield Notice(notice)
        yield self._stats(request, answer, started, first)

    def _fresh_cancel(self) -> threading.Event:
        self._cancel = threading.Event()
        return self._cancel

    def _answer(
        self, body: dict[str, Any], answer: Answer, cancel: threading.Event
    ) -> Iterator[str]:
        """Text pieces as they arrive; a whole answer may be retried, a half-streamed one not."""
        for attempt in range(self._sender.retry.attempts):
            sent = False
            try:
                with self._sender.post("/chat/completions", body, cancel) as response:
                    if not body["stream"]:
                        _whole(response, answer)
                        if answer.texts:
                            yield "".join(answer.texts)
                        return
                    for text in _chunks(response, answer, cancel):
                        sent = True
                        yield text
                    return
            except httpx2.TransportError as exc:
                if cancel.is_set():
                    raise Cancelled from None
                if sent or attempt + 1 >= self._sender.retry.attempts:
                    raise EngineError(
                        f"the connection to {self.base_url} was lost mid-answer "
                        f"({type(exc).__name__})"
                    ) from None
                answer.texts.clear()
                if cancel.wait(self._sender.retry.delay(attempt, None)):
                    raise Cancelled from None

    def _stats(
        self, request: ChatRequest, answer: Answer, started: float, first: float | None
    ) -> GenerationStats:
        end = time.perf_counter()
        first = first or end
        tokens = answer.completion_tokens
        if tokens is None:
            tokens = len(answer.texts)
        planned = sum(
            plan_tiles(i.width, i.height, request.vision).image_tokens for i in request.images
        )
        reason = answer.finish_reason or "stop"
        return GenerationStats(
            prompt_tokens=answer.prompt_tokens or 0,
            image_tokens=planned,
            cached_prompt_tokens=answer.cached_tokens,
            vision_cache_hits=0,
            images=len(request.images),
            vision_seconds=0.0,
            ttft_seconds=first - started,
            decode_tokens=tokens,
            decode_tps=(tokens - 1) / (end - first) if tokens > 1 and end > first else 0.0,
            peak_memory_bytes=0,
            finish_reason={"tool_calls": "stop"}.get(reason, reason),
            token_ids=(),
        )

    def _parity_notice(
        self, request: ChatRequest, answer: Answer, cancel: threading.Event
    ) -> str | None:
        """Once per tiling setting: does the server count image tokens as the planner does?

        Compares this answer's ``usage.prompt_tokens`` with a reference request whose images
        are a small square: the difference must be what the planner says the real images
        cost beyond the squares.
        """
        got = answer.prompt_tokens
        key = request.vision.key()
        if got is None or not request.images or cancel.is_set():
            return None
        with self._parity_lock:
            if key in self._parity_checked:
                return None
            self._parity_checked.add(key)
            reference = self._reference_tokens(request)
            if reference is None:
                return None
            plans = [plan_tiles(i.width, i.height, request.vision) for i in request.images]
            small = plan_tiles(*_REFERENCE_SIZE, request.vision)
            want = reference + sum(
                p.image_tokens + p.marker_tokens - small.image_tokens - small.marker_tokens
                for p in plans
            )
            if got == want:
                return None
            self.parity_problem = PARITY_WARNING.format(url=self.base_url, got=got, want=want)
            log.warning("%s", self.parity_problem)
            return self.parity_problem

    def _reference_tokens(self, request: ChatRequest) -> int | None:
        """Prompt tokens of the same request with every image a small grey square.

        Both requests take the server's image path, so everything but the images' own
        tokens (template, BOS, text) cancels out of the comparison.
        """
        from PIL import Image

        from lfmdesk.core.images._load import load_image
        from lfmdesk.core.remote._wire import image_data_url

        grey = image_data_url(load_image(Image.new("RGB", _REFERENCE_SIZE, (128, 128, 128))))
        body = chat_body(request, self._model or "", stream=False, stand_in=grey, tools=False)
        body["max_tokens"] = 1
        answer = Answer()
        try:
            for _text in self._answer(body, answer, threading.Event()):
                pass
        except (EngineError, Cancelled):
            return None
        return answer.prompt_tokens


def _model_ids(response: httpx2.Response) -> list[str]:
    try:
        data = response.json()
    except ValueError:
        return []
    items = data.get("data") if isinstance(data, dict) else None
    return [str(m["id"]) for m in items or [] if isinstance(m, dict) and m.get("id")]


def _whole(response: httpx2.Response, answer: Answer) -> None:
    response.read()
    try:
        data = response.json()
    except ValueError:
        raise EngineError("the server's answer is not JSON") from None
    if not isinstance(data, dict) or not data.get("choices"):
        raise EngineError(f"the server's answer has no choices: {one_line(response.text, 200)}")
    answer.add_choice(data["choices"][0], "message")
    answer.usage = data.get("usage")


def _chunks(response: httpx2.Response, answer: Answer, cancel: threading.Event) -> Iterator[str]:
    for line in response.iter_lines():
        if cancel.is_set():
            raise Cancelled
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except ValueError:
            continue
        if isinstance(chunk, dict) and chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise EngineError(f"the server failed mid-answer: {one_line(str(message), 300)}")
        text = answer.add_chunk(chunk) if isinstance(chunk, dict) else ""
        if text:
            yield text
    if cancel.is_set():
        raise Cancelled
