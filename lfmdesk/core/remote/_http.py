"""Talking to the server: retries with backoff, ``Retry-After``, and a cancel that really stops.

A cancel flag is watched while a request waits for its answer: when it is set, the
connection's socket is shut down, so the blocked read returns at once and the server sees
the client go (``lfmdesk serve`` and vLLM then stop generating). Connections are not reused,
which is what makes the socket reachable; a model answer costs far more than a TCP connect.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2

from lfmdesk.core._errors import EngineError, one_line

__all__ = ["Cancelled", "RetryPolicy", "Sender", "server_message"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
_WATCH_S = 0.05


class Cancelled(Exception):
    """The caller's cancel flag was set."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again.

    Attributes:
        attempts: tries in all (1: never retry).
        base_delay: the first backoff, doubled each time, with jitter.
        max_delay: the longest wait, ``Retry-After`` included.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try ``attempt + 1``."""
        if retry_after is not None:
            return min(self.max_delay, max(0.0, retry_after))
        backoff = self.base_delay * 2.0 ** float(attempt)
        return float(min(self.max_delay, backoff * (0.75 + random.random() / 2)))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


def server_message(response: httpx2.Response) -> str:
    """The error text a server sent: OpenAI's ``error.message``, vLLM's ``message``, or the body."""
    try:
        data: Any = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("error")
        for candidate in (
            inner.get("message") if isinstance(inner, dict) else inner,
            data.get("message"),
            data.get("detail"),
        ):
            if isinstance(candidate, str) and candidate:
                return one_line(candidate, 300)
    return one_line(response.text or response.reason_phrase or "no message", 300)


class _Watch:
    """Shuts the request's socket down when ``cancel`` is set (see the module docstring)."""

    def __init__(self, cancel: threading.Event) -> None:
        self.cancel = cancel
        self.sock: socket.socket | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lfmdesk-remote-cancel", daemon=True)

    def trace(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            self.sock = stream.get_extra_info("socket") if stream is not None else None

    def _run(self) -> None:
        while not self._done.is_set():
            if self.cancel.wait(_WATCH_S):
                if self.sock is not None:
                    with contextlib.suppress(OSError):
                        self.sock.shutdown(socket.SHUT_RDWR)
                return

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()


class Sender:
    """One server: its base URL, key, timeouts and retry policy.

    Args:
        base_url: e.g. ``http://gpu-box:8000/v1``.
        api_key: sent as ``Authorization: Bearer``; never printed or logged.
        timeout: seconds to connect, and the longest silence while reading.
        retry: the retry policy.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        timeout: float = 300.0,
        retry: RetryPolicy | None = None,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx2.Client(
            headers=headers,
            timeout=httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx2.Limits(max_keepalive_connections=0, max_connections=1024),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def get(self, path: str) -> httpx2.Response:
        """One GET, no retries (used to check the server when connecting)."""
        return self._http.get(self.base_url + path)

    @contextlib.contextmanager
    def post(
        self, path: str, body: dict[str, Any], cancel: threading.Event
    ) -> Iterator[httpx2.Response]:
        """POST ``body`` and yield the open (streamed) response of status 2xx.

        Retries connection failures, timeouts and 429/502/503/504 (waiting ``Retry-After``
        when the server gives one). Reading the body may still raise ``httpx2.TransportError``
        (the caller decides whether that can be retried) or :class:`Cancelled`.

        Raises:
            EngineError: another HTTP error (with the server's message), or every try failed.
            Cancelled: ``cancel`` was set.
        """
        last = ""
        for attempt in range(self.retry.attempts):
            if cancel.is_set():
                raise Cancelled
            retry_after: float | None = None
            watch = _Watch(cancel)
            with watch:
                try:
                    request = self._http.build_request(
                        "POST", self.base_url + path, json=body, extensions={"trace": watch.trace}
                    )
                    response = self._http.send(request, stream=True)
                except httpx2.TransportError as exc:
                    if cancel.is_set():
                        raise Cancelled from None
                    last = _transport_problem(exc)
                else:
                    if response.status_code < 400:
                        try:
                            yield response
                        finally:
                            response.close()
                        return
                    response.read()
                    response.close()
                    if response.status_code not in RETRY_STATUSES:
                        raise EngineError(_http_problem(self.base_url, response))
                    last = f"HTTP {response.status_code}: {server_message(response)}"
                    retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 < self.retry.attempts and cancel.wait(
                self.retry.delay(attempt, retry_after)
            ):
                raise Cancelled
        raise EngineError(
            f"{self.base_url} did not answer after {self.retry.attempts} tries ({last})"
        )


def _transport_problem(exc: httpx2.TransportError) -> str:
    if isinstance(exc, httpx2.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx2.ConnectError):
        return "cannot connect"
    return f"connection lost ({type(exc).__name__})"


def _http_problem(base_url: str, response: httpx2.Response) -> str:
    status, message = response.status_code, server_message(response)
    if status == 401:
        return (
            f"{base_url} refused the API key (HTTP 401: {message}); "
            "give the right one with --api-key-env VAR"
        )
    return f"the server refused the request (HTTP {status}): {message}"
