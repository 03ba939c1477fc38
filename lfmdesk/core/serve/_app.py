"""The OpenAI-compatible HTTP API (FastAPI): chat completions, models, health.

    app = create_app(host, ServeOptions(api_key="s3cret"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Nothing is committed to a 200 until the engine has produced its first event (or failed), so
bad input and engine failures get a real status and OpenAI's error object, never a stream
that dies. A client that goes away is noticed while it waits and while it streams; its
cancel flag stops the engine after the current token.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from lfmdesk.core.engine._chat import GenerationStats, TextDelta
from lfmdesk.core.images._load import LoadedImage
from lfmdesk.core.serve._host import Delivered, Failed, GenerationHost, QueueFull
from lfmdesk.core.serve._images import ImagePolicy, image_from_url
from lfmdesk.core.serve._openai import (
    ApiError,
    ParsedChat,
    completion_body,
    completion_chunk,
    error_body,
    finish_reason,
    parse_chat,
    usage_body,
)
from lfmdesk.core.serve._text import AnswerText

__all__ = ["ServeOptions", "create_app"]

log = logging.getLogger("lfmdesk")

_POLL_S = 0.2  # how often a waiting request checks that its client is still there


@dataclass(frozen=True)
class ServeOptions:
    """How the server treats its clients.

    Attributes:
        api_key: clients must send ``Authorization: Bearer <api_key>``; None: no key.
        cors_origins: origins browsers may call from; empty: no CORS headers at all.
        max_images: the most images in one request.
        max_body_bytes: the largest request body.
        images: which image URLs are accepted (data URLs only by default).
        aliases: other names clients may use for the loaded model (e.g. "8bit").
    """

    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    max_images: int = 8
    max_body_bytes: int = 64 << 20
    images: ImagePolicy = field(default_factory=ImagePolicy)
    aliases: tuple[str, ...] = ()


class _Inbox:
    """Events of one request, handed from the engine's thread to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[Delivered] = asyncio.Queue()
        self.cancel = threading.Event()

    def deliver(self, item: Delivered) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the server is shutting down
            self.cancel.set()


def _error(exc: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.message, exc.kind, exc.code, exc.param),
        status_code=exc.status,
        headers=exc.headers,
    )


def _failed(item: Failed) -> ApiError:
    if item.status == 503:
        return ApiError(503, item.message, kind="server_error", headers={"Retry-After": "5"})
    return ApiError(item.status, item.message)


async def _read_json(request: Any, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request is larger than {limit >> 20} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the request is larger than {limit >> 20} MB")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None


async def _next(inbox: _Inbox, request: Any) -> Delivered | None:
    """The next event, or None when the client went away meanwhile (then it is cancelled)."""
    while True:
        try:
            return await asyncio.wait_for(inbox.queue.get(), _POLL_S)
        except asyncio.TimeoutError:
            if await request.is_disconnected():
                inbox.cancel.set()
                return None


def _sse(data: Any) -> str:
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


class _Chat:
    """One chat-completions request on its way through the engine."""

    def __init__(self, parsed: ParsedChat, model: str, inbox: _Inbox) -> None:
        self.parsed, self.model, self.inbox = parsed, model, inbox
        self.answer = AnswerText(parsed.stops, parsed.tools)

    def feed(self, item: Delivered) -> str:
        if isinstance(item, TextDelta):
            out = self.answer.feed(item.text)
            if self.answer.stopped:
                self.inbox.cancel.set()  # a stop string: no need for more tokens
            return out
        return ""

    async def collect(self, first: Delivered, request: Any) -> dict[str, Any] | None:
        pieces: list[str] = []
        item: Delivered | None = first
        while item is not None and not isinstance(item, (GenerationStats, Failed)):
            pieces.append(self.feed(item))
            item = await _next(self.inbox, request)
        if item is None:
            return None
        if isinstance(item, Failed):
            raise _failed(item)
        rest, calls, stopped = self.answer.finish()
        content = "".join(pieces) + rest
        reason = finish_reason(item, stopped, bool(calls))
        return completion_body(
            self.parsed, self.model, content.strip() if calls else content, calls, reason, item
        )

    def _chunk(
        self, delta: dict[str, Any] | None, reason: str | None = None, usage: Any = None
    ) -> str:
        return _sse(completion_chunk(self.parsed, self.model, delta, reason, usage))

    async def stream(self, first: Delivered) -> AsyncIterator[str]:
        finished = False
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            item = first
            while not isinstance(item, (GenerationStats, Failed)):
                text = self.feed(item)
                if text:
                    yield self._chunk({"content": text})
                item = await self.inbox.queue.get()
            if isinstance(item, Failed):
                yield _sse(error_body(item.message, "server_error", None, None))
            else:
                for piece in self._ending(item):
                    yield piece
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:  # the client went away (the response task was cancelled)
                self.inbox.cancel.set()

    def _ending(self, stats: GenerationStats) -> list[str]:
        rest, calls, stopped = self.answer.finish()
        out = [self._chunk({"content": rest})] if rest else []
        if calls:
            indexed = [{"index": i, **call} for i, call in enumerate(calls)]
            out.append(self._chunk({"tool_calls": indexed}))
        out.append(self._chunk({}, finish_reason(stats, stopped, bool(calls))))
        if self.parsed.include_usage:
            out.append(self._chunk(None, usage=usage_body(stats)))
        return out


def _model_id(host: GenerationHost) -> str:
    info = host.model_info()
    if info is None:
        raise ApiError(
            503,
            "no model is loaded yet; retry shortly",
            kind="server_error",
            headers={"Retry-After": "5"},
        )
    return info.name


def _check_model(asked: str, served: str, aliases: tuple[str, ...]) -> None:
    if asked and asked != served and asked not in aliases:
        raise ApiError(
            404,
            f"the model {asked!r} does not exist here; this server serves {served!r}",
            code="model_not_found",
            param="model",
        )


def _model_object(model: str, created: int) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": created, "owned_by": "lfmdesk"}


def _install_errors(app: FastAPI) -> None:
    """Every error is OpenAI's error object: the client's, a missing route, or a bug."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> Any:
        return _error(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(_request: Request, exc: HTTPException) -> Any:
        return _error(ApiError(exc.status_code, str(exc.detail), code="not_found"))

    @app.exception_handler(Exception)
    async def _bug(_request: Request, exc: Exception) -> Any:
        # A bug, not the client's fault: still one line in OpenAI's shape, never a traceback.
        log.error("internal error: %s: %s", type(exc).__name__, exc)
        message = f"internal error: {type(exc).__name__}"
        return _error(ApiError(500, message, kind="server_error"))


def _authorize(request: Request, api_key: str | None) -> None:
    if api_key is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), api_key.encode()
    ):
        raise ApiError(
            401,
            "missing or wrong API key (send Authorization: Bearer KEY)",
            code="invalid_api_key",
        )


def _submit(host: GenerationHost, parsed: ParsedChat, inbox: _Inbox) -> None:
    try:
        host.submit(parsed.request, inbox.cancel, inbox.deliver)
    except QueueFull as exc:
        raise ApiError(
            429,
            str(exc),
            code="rate_limit_exceeded",
            kind="rate_limit_error",
            headers={"Retry-After": str(exc.retry_after)},
        ) from None


def _gone() -> JSONResponse:
    # Nobody reads it: the client left while queued, in prefill or mid-answer.
    return JSONResponse(error_body("client disconnected", "cancelled", None, None), 499)


async def _chat_completions(request: Request, host: GenerationHost, opts: ServeOptions) -> Any:
    _authorize(request, opts.api_key)
    body = await _read_json(request, opts.max_body_bytes)

    def load(url: Any) -> LoadedImage:
        return image_from_url(url, opts.images)

    parsed = await run_in_threadpool(parse_chat, body, load, max_images=opts.max_images)
    served = _model_id(host)
    _check_model(parsed.model, served, opts.aliases)
    inbox = _Inbox(asyncio.get_running_loop())
    _submit(host, parsed, inbox)
    chat = _Chat(parsed, served, inbox)
    try:
        first = await _next(inbox, request)
    except asyncio.CancelledError:
        inbox.cancel.set()
        raise
    if first is None:
        return _gone()
    if isinstance(first, Failed):
        raise _failed(first)
    if not parsed.stream:
        completion = await chat.collect(first, request)
        return _gone() if completion is None else completion
    return StreamingResponse(
        chat.stream(first),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def create_app(host: GenerationHost, options: ServeOptions | None = None) -> FastAPI:
    """The FastAPI application serving ``host``'s model.

    Args:
        host: where generation happens (:class:`EngineThread`, the engine process).
        options: auth, CORS, limits.
    """
    opts = options or ServeOptions()
    started = int(time.time())
    app = FastAPI(title="lfmdesk", docs_url=None, redoc_url=None, openapi_url=None)
    if opts.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(opts.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type"],
        )
    _install_errors(app)

    @app.get("/health")
    async def health() -> Any:
        info = host.model_info()
        if info is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return {"status": "ok", "model": info.name}

    @app.get("/v1/models")
    async def models(request: Request) -> Any:
        _authorize(request, opts.api_key)
        return {"object": "list", "data": [_model_object(_model_id(host), started)]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str, request: Request) -> Any:
        _authorize(request, opts.api_key)
        served = _model_id(host)
        _check_model(model, served, opts.aliases)
        return _model_object(served, started)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        return await _chat_completions(request, host, opts)

    return app
