"""Files macOS asks the app to open: dropped on the Dock icon, or "Open With ▸ lfmdesk".

macOS delivers them as ``QFileOpenEvent`` to the application (the bundle's Info.plist
declares the image and video types lfmdesk opens); they may arrive before the window exists,
when the drop is what launched the app, so they wait until it does::

    forwarder = FileOpenForwarder(app)
    app.installEventFilter(forwarder)
    forwarder.set_target(window.open_files)      # receives list[str] of paths
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QFileOpenEvent

__all__ = ["FileOpenForwarder"]


class FileOpenForwarder(QObject):
    """Hands the paths of file-open events to the window (or keeps them until there is one)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._target: Callable[[list[str]], object] | None = None
        self._waiting: list[str] = []

    def set_target(self, target: Callable[[list[str]], object]) -> None:
        """Send paths to ``target`` from now on, starting with those that already came."""
        self._target = target
        waiting, self._waiting = self._waiting, []
        if waiting:
            target(waiting)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Take file-open events; let everything else through."""
        if event.type() != QEvent.Type.FileOpen or not isinstance(event, QFileOpenEvent):
            return super().eventFilter(watched, event)
        path = event.file() or event.url().toLocalFile()
        if path:
            if self._target is None:
                self._waiting.append(path)
            else:
                self._target([path])
        return True
