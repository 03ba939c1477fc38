"""The "window visible" milestone of ``python -m lfmdesk.bench --startup``.

Only when the benchmark asked for a start-up trace (``LFMDESK_STARTUP_TRACE``): the window's
first paint is recorded, then the filter removes itself.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QWidget

from lfmdesk._trace import TRACE_FILE, mark

__all__ = ["trace_first_paint"]


class _FirstPaint(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Paint:
            mark("window-visible")
            watched.removeEventFilter(self)
        return super().eventFilter(watched, event)


def trace_first_paint(window: QWidget) -> None:
    """Mark "window-visible" at ``window``'s first paint, if a trace was asked for."""
    if os.environ.get(TRACE_FILE):
        window.installEventFilter(_FirstPaint(window))
