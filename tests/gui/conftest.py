"""Every GUI test runs under the window's garbage-collection policy (``support/_gc``); a
small picture folder for the tests that open one."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication

from lfmdesk.gui.support._gc import GuiThreadCollector


@pytest.fixture(autouse=True)
def _collect_on_the_gui_thread(qapp: QApplication) -> Iterator[GuiThreadCollector]:
    """Garbage left by earlier tests goes now, on the GUI thread; during the test only the
    GUI thread collects, as in the app, so no worker thread ever destroys a Qt object."""
    gc.collect()
    collector = GuiThreadCollector(qapp)
    yield collector
    collector.stop()
    collector.deleteLater()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Two 200x100 pictures, frame0.png and frame1.png."""
    root = tmp_path / "street"
    root.mkdir()
    for i in range(2):
        Image.new("RGB", (200, 100), (30 + 80 * i, 120, 200)).save(root / f"frame{i}.png")
    return root
