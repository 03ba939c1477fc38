"""Running the API: safe defaults checked up front, uvicorn on a background thread.

The socket is bound before uvicorn starts, so "address already in use" is a one-line error
and port 0 picks a free port that :attr:`ServerThread.url` then names.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from lfmdesk.core._errors import InputError
from lfmdesk.core._net import is_loopback

__all__ = ["ServerThread", "check_exposure", "is_loopback"]

_START_TIMEOUT_S = 30.0


def check_exposure(host: str, api_key: str | None, insecure_no_auth: bool) -> None:
    """Refuse to listen beyond this machine without an API key, unless asked explicitly.

    Raises:
        InputError: a non-loopback host with neither a key nor ``--insecure-no-auth``.
    """
    if is_loopback(host) or api_key or insecure_no_auth:
        return
    raise InputError(
        f"serving on {host} lets other machines use the model: give an API key with "
        "--api-key-env VAR (or --api-key KEY), or pass --insecure-no-auth"
    )


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"cannot serve on {host}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot serve on {host}:{port}: {exc.strerror or exc}"
            + (" (choose another --port)" if exc.errno in (98, 48) else "")
        ) from None
    sock.set_inheritable(False)
    return sock


class ServerThread:
    """uvicorn serving ``app`` on ``host:port`` from a daemon thread.

    Args:
        app: an ASGI application.
        host: the address to bind ("127.0.0.1" unless told otherwise).
        port: the port; 0 picks a free one.
        access_log: log one line per request (the CLI does; the engine process does not).
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 8000, *, access_log: bool = False
    ) -> None:
        self.app, self.host, self._access_log = app, host, access_log
        self._sock = _bind(host, port)
        self.port = int(self._sock.getsockname()[1])
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The API's base URL, e.g. ``http://127.0.0.1:8000/v1``."""
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/v1"

    def start(self) -> str:
        """Start serving; returns :attr:`url` once the server accepts connections."""
        import uvicorn

        config = uvicorn.Config(
            self.app,
            log_level="info" if self._access_log else "warning",
            access_log=self._access_log,
            timeout_graceful_shutdown=2,
            lifespan="off",
            interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="lfmdesk-serve-http",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise InputError(f"the server on {self.url} did not start")
            time.sleep(0.02)
        return self.url

    def is_alive(self) -> bool:
        """Whether the server thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, end open responses, close the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        self._sock.close()
