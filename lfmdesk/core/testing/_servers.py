"""Servers for tests of the API and the remote backend: a real ``lfmdesk serve``, and a faulty one.

:class:`ServeProcess` runs ``python -m lfmdesk serve`` as a user would (a subprocess on
127.0.0.1, a free port) and reads its URL from the first line it prints.

:class:`FaultyServer` is a small OpenAI-compatible ASGI app whose answers are scripted, one
:class:`Fault` per request, to exercise a client's retries: 429 with ``Retry-After``, 503, a
silence longer than the client's timeout, a connection dropped before or in the middle of
the answer, an error status with a message. It records every request body and how many
requests were in flight at once::

    with FaultyServer([Fault("status", 429, retry_after=1), Fault("ok")]) as server:
        RemoteEngine(server.url).stream_chat(...)
    server.bodies, server.max_in_flight
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Fault", "FaultyServer", "ServeProcess"]

_URL = re.compile(r"at (http://\S+/v1)")


class ServeProcess:
    """``lfmdesk serve --model MODEL --port 0 ARGS...`` in a subprocess.

    Args:
        model: a model folder (a fixture checkpoint).
        args: more command-line arguments.
        env: extra environment variables.
        timeout: seconds to wait for the URL line.
    """

    def __init__(
        self,
        model: Path | str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.command = [sys.executable, "-m", "lfmdesk", "serve", "--model", str(model)]
        self.command += ["--port", "0", *args]
        self.env = {**os.environ, **(env or {})}
        self.timeout = timeout
        self.url = ""
        self.stderr_lines: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> str:
        """Start and wait until it serves; returns the base URL (``.../v1``)."""
        self._proc = subprocess.Popen(
            self.command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        found = threading.Event()
        self._reader = threading.Thread(target=self._read, args=(found,), daemon=True)
        self._reader.start()
        if not found.wait(self.timeout) or not self.url:
            self.stop()
            raise RuntimeError("lfmdesk serve did not start: " + "".join(self.stderr_lines))
        return self.url

    def _read(self, found: threading.Event) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self.stderr_lines.append(line)
            match = _URL.search(line)
            if match and not self.url:
                self.url = match.group(1)
                found.set()
        found.set()

    @property
    def output(self) -> str:
        """Everything the server printed on stderr so far."""
        return "".join(self.stderr_lines)

    def stop(self) -> int | None:
        """Ctrl-C (SIGINT) it, as a user would; returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(2)
            try:
                self._proc.wait(15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)
        return self._proc.returncode

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Fault:
    """What the faulty server does with one request.

    Attributes:
        kind: "ok" (answer ``text``), "status" (answer ``status`` with ``message``), "hang"
            (say nothing for ``seconds``, then answer), "drop" (cut the connection before
            the answer is complete; streamed: after ``text``).
        status: the HTTP status of a "status" fault.
        message: its error message.
        retry_after: its ``Retry-After`` header, if any.
        seconds: how long a "hang" lasts (and how long "ok" takes to answer).
        text: the answer's text.
        prompt_tokens: ``usage.prompt_tokens`` to report.
    """

    kind: str = "ok"
    status: int = 200
    message: str = "scripted failure"
    retry_after: int | None = None
    seconds: float = 0.0
    text: str = "[]"
    prompt_tokens: int = 10


@dataclass
class _State:
    faults: list[Fault]
    default: Fault
    bodies: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    disconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _completion(body: dict[str, Any], fault: Fault) -> dict[str, Any]:
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "faulty"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": fault.text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": fault.prompt_tokens, "completion_tokens": 1, "total_tokens": 11},
    }


def _chunks(body: dict[str, Any], fault: Fault) -> list[bytes]:
    base = {"id": "chatcmpl-faulty", "object": "chat.completion.chunk", "created": 0}
    base["model"] = body.get("model", "faulty")
    pieces = [{"role": "assistant", "content": ""}, {"content": fault.text}]
    out = [{**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in pieces]
    out.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    usage = {"prompt_tokens": fault.prompt_tokens, "completion_tokens": 1, "total_tokens": 11}
    out.append({**base, "choices": [], "usage": usage})
    return [f"data: {json.dumps(c)}\n\n".encode() for c in out] + [b"data: [DONE]\n\n"]


class FaultyServer:
    """A scripted OpenAI-compatible server on 127.0.0.1 (see the module docstring).

    Args:
        faults: what to do with the first requests to ``/chat/completions``, in order.
        default: what to do with every later one.
        model: the model id ``/v1/models`` lists.
    """

    def __init__(
        self,
        faults: Sequence[Fault] = (),
        default: Fault | None = None,
        model: str = "faulty-model",
    ) -> None:
        from lfmdesk.core.serve._server import ServerThread

        self.model = model
        self._state = _State(list(faults), default or Fault())
        self._server = ServerThread(self._app, "127.0.0.1", 0)
        self.url = self._server.url

    @property
    def bodies(self) -> list[dict[str, Any]]:
        """Every chat request body received, in order."""
        return list(self._state.bodies)

    @property
    def times(self) -> list[float]:
        """When each chat request arrived (``time.monotonic()``)."""
        return list(self._state.times)

    @property
    def max_in_flight(self) -> int:
        """The most chat requests being answered at once."""
        return self._state.max_in_flight

    @property
    def disconnects(self) -> int:
        """Clients that went away before their answer was complete."""
        return self._state.disconnects

    def _next_fault(self, body: dict[str, Any]) -> Fault:
        with self._state.lock:
            self._state.bodies.append(body)
            self._state.times.append(time.monotonic())
            return self._state.faults.pop(0) if self._state.faults else self._state.default

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"].endswith("/models"):
            data = {"object": "list", "data": [{"id": self.model, "object": "model"}]}
            await _send_json(send, 200, data)
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = json.loads(raw or b"{}")
        fault = self._next_fault(body)
        state = self._state
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            await self._answer(body, fault, receive, send)
        finally:
            with state.lock:
                state.in_flight -= 1

    async def _answer(self, body: dict[str, Any], fault: Fault, receive: Any, send: Any) -> None:
        if fault.kind == "status":
            headers = (
                [(b"retry-after", str(fault.retry_after).encode())] if fault.retry_after else []
            )
            error = {"error": {"message": fault.message, "type": "error", "code": None}}
            await _send_json(send, fault.status, error, headers)
            return
        if fault.seconds and not await _wait_or_disconnect(receive, fault.seconds):
            with self._state.lock:
                self._state.disconnects += 1
            return
        if body.get("stream"):
            await self._stream(body, fault, send)
        elif fault.kind == "drop":
            data = json.dumps(_completion(body, fault)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", str(len(data)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": data[:5], "more_body": True})
            raise ConnectionAbortedError("scripted drop")
        else:
            await _send_json(send, 200, _completion(body, fault))

    async def _stream(self, body: dict[str, Any], fault: Fault, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        chunks = _chunks(body, fault)
        if fault.kind == "drop":
            chunks = chunks[:2]
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if fault.kind == "drop":
            raise ConnectionAbortedError("scripted drop")
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def __enter__(self) -> FaultyServer:
        self._server.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._server.stop()


async def _wait_or_disconnect(receive: Any, seconds: float) -> bool:
    """Sleep ``seconds``; False when the client went away first."""
    try:
        message = await asyncio.wait_for(receive(), seconds)
    except asyncio.TimeoutError:
        return True
    return bool(message.get("type") != "http.disconnect")


async def _send_json(
    send: Any, status: int, data: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    raw = json.dumps(data).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
