"""Fixtures for the hostile-input tests (helpers are in ``hostile.py``)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import make_project

from lfmdesk.core.datasets._project import Project

HANG_SECONDS = 10


class Hung(BaseException):
    """Raised in a read that blocked: not an OSError, so no ``except OSError`` can hide it."""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "proj")


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (instead of hanging the run) when a read blocks, e.g. on a FIFO."""

    def expired(signum: int, frame: object) -> None:
        raise Hung(f"hung for {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
