"""The real engine on the 8-bit fixture, loaded once per test module that asks for it."""

from __future__ import annotations

from pathlib import Path

import pytest

from lfmdesk.core import Engine


@pytest.fixture(scope="module")
def engine(fixture_models: dict[str, Path]) -> Engine:
    """A loaded :class:`~lfmdesk.core.Engine` (tests of one module share it)."""
    e = Engine()
    e.load(fixture_models["8bit"])
    return e
