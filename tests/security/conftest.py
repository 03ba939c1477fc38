"""Fixtures for the hostile-input tests (helpers live in ``hostile.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Where a payload writes if it runs; tests assert it never appears."""
    return tmp_path / "PWNED"
