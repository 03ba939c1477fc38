"""Lint and types are part of the test run: ruff clean everywhere, mypy --strict on the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_ruff_check_is_clean() -> None:
    proc = _run(sys.executable, "-m", "ruff", "check", "lfmdesk", "tests", "packaging")
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_is_clean() -> None:
    proc = _run(sys.executable, "-m", "ruff", "format", "--check", "lfmdesk", "tests", "packaging")
    assert proc.returncode == 0, proc.stdout


def test_mypy_strict_on_core() -> None:
    proc = _run(sys.executable, "-m", "mypy", "--strict", "lfmdesk/core")
    assert proc.returncode == 0, proc.stdout
