"""Shared fixtures: isolated config/cache dirs and the tiny checkpoint family (built once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the user's settings or Hugging Face cache, and Qt never needs a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_LOGGING_RULES", "qt.multimedia*=false;qt.rhi*=false")


@pytest.fixture(autouse=True)
def _isolated_dirs(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path_factory.getbasetemp()
    monkeypatch.setenv("LFMDESK_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("HF_HUB_CACHE", str(base / "hf-cache"))
    monkeypatch.setenv("LFMDESK_DATA_DIR", str(base / "data"))


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight checkpoints: "hf", "v1", "4bit", "5bit", "6bit", "8bit", "bf16"."""
    from lfmdesk.core.testing import build_fixture_family

    root = Path(os.environ.get("LFMDESK_FIXTURE_DIR") or tmp_path_factory.mktemp("models"))
    return build_fixture_family(root)
