"""The GUI's side of the engine process: spawn it, send requests, read events, stop it.

The protocol and the engine process itself are in :mod:`lfmdesk.core.process._worker`; this client
never blocks the caller's thread (requests are pickled and written by a sender thread).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from lfmdesk.core.process._protocol import Event, Request, Shutdown

__all__ = ["EngineProcess"]

log = logging.getLogger("lfmdesk")


class EngineProcess:
    """The GUI's handle on the engine process (Qt-free; wrap it in a QObject).

    ``send`` never blocks: requests are pickled and written by a sender thread. Events are
    read without blocking by ``poll_events`` whenever ``fileno()`` is readable (watch it with
    a ``QSocketNotifier``); after the process ends, ``poll_events`` returns what was left and
    ``is_alive()`` turns False (the descriptor stays readable at EOF: stop watching it then).

    Example::

        engine = EngineProcess("scripted", {"token_delay": 0.0})
        engine.start()
        engine.send(LoadModel("8bit"))
        events = engine.wait_events(5.0)     # EngineStarted, ModelPhase, ..., ModelLoaded
        engine.stop()

    Args:
        engine_factory: "real" (:class:`Engine`) or "scripted" (``ScriptedEngine``).
        options: keyword arguments for the engine; must be picklable.

    Raises:
        ValueError: an unknown ``engine_factory`` (a programming error).
    """

    def __init__(self, engine_factory: str = "real", options: dict[str, Any] | None = None) -> None:
        from lfmdesk.core.process._factories import ENGINE_FACTORIES

        if engine_factory not in ENGINE_FACTORIES:
            raise ValueError(f"unknown engine factory {engine_factory!r}")
        self._factory = engine_factory
        self._options = dict(options or {})
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._outbox: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._alive = False

    def start(self) -> None:
        """Spawn the engine process (a fresh interpreter; it takes a second or two to start)."""
        if self._process is not None:
            raise RuntimeError("the engine process was already started")
        from lfmdesk.core.process._worker import serve

        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=serve,
            args=(theirs, self._factory, self._options),
            name="lfmdesk-engine",
            daemon=True,
        )
        process.start()
        theirs.close()  # or this end never sees EOF when the child dies
        self._process, self._conn, self._alive = process, mine, True
        self._sender = threading.Thread(target=self._send_loop, name="lfmdesk-sender", daemon=True)
        self._sender.start()

    def _send_loop(self) -> None:
        assert self._conn is not None
        while (request := self._outbox.get()) is not None:
            try:
                self._conn.send(request)
            except (OSError, EOFError, ValueError):
                self._alive = False
                return
            except Exception as exc:  # an unpicklable request: nothing was written
                log.error("cannot send %s to the engine: %s", type(request).__name__, exc)

    def send(self, request: Request) -> None:
        """Queue ``request`` for the engine process; never blocks. Dropped once it has died."""
        if self._process is None:
            raise RuntimeError("start() the engine process before sending to it")
        if self._alive:
            self._outbox.put(request)

    def fileno(self) -> int:
        """The pipe's descriptor: readable when events (or EOF) are waiting."""
        if self._conn is None:
            raise RuntimeError("the engine process is not started")
        return self._conn.fileno()

    def poll_events(self, max_events: int = 10_000) -> list[Event]:
        """Every event available now, without blocking (at most ``max_events``)."""
        return self._drain(0.0, max_events)

    def wait_events(self, timeout: float, max_events: int = 10_000) -> list[Event]:
        """Wait up to ``timeout`` seconds for an event, then return all that are available."""
        return self._drain(timeout, max_events)

    def _drain(self, timeout: float, max_events: int) -> list[Event]:
        events: list[Event] = []
        conn = self._conn
        if conn is None or conn.closed:
            return events
        try:
            while len(events) < max_events and conn.poll(timeout if not events else 0.0):
                events.append(conn.recv())
        except (EOFError, OSError):
            self._alive = False
        return events

    def is_alive(self) -> bool:
        """Whether the engine process runs and its pipe is open."""
        return self._alive and self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The engine process's id, once started."""
        return self._process.pid if self._process is not None else None

    @property
    def exitcode(self) -> int | None:
        """None while running; 0 after a clean stop; -9 after :meth:`kill`."""
        return self._process.exitcode if self._process is not None else None

    def kill(self) -> None:
        """SIGKILL the engine process (tests; a hung engine) and reap it."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the process to shut down, wait ``timeout`` seconds, then kill it; close the pipe."""
        if self._process is None:
            return
        if self.is_alive():
            self._outbox.put(Shutdown())
            self._process.join(timeout)
        self.kill()
        self._outbox.put(None)
        if self._sender is not None:
            self._sender.join(timeout)
        if self._conn is not None:
            self._conn.close()
        self._alive = False

    def __enter__(self) -> EngineProcess:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
