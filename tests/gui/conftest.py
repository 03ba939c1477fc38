"""Every GUI test runs under the window's garbage-collection policy (``support/_gc``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

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
