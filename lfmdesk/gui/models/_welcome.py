"""The first-run panel: shown instead of the chat while no model is on disk.

The window passes the default variant as a ``ModelRow`` and relays the download's progress::

    panel = WelcomePanel(ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 568_000_000, False, True))
    panel.downloadRequested.connect(controller.download)    # "8bit"
    panel.folderChosen.connect(controller.load_folder)      # "/path/to/model"
    panel.cancelRequested.connect(controller.cancel_download)
    panel.set_progress(212_000_000, 568_000_000)            # inline bar "212 MB of 568 MB"
    panel.set_error("Download failed: no connection. Check your network and try again.")
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import format_size
from lfmdesk.gui.models._model_bar import ModelRow

__all__ = ["WelcomePanel"]


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    # objectName lets tests and style sheets find parts; the stubs reject it as a keyword.
    widget.setObjectName(name)
    return widget


_TITLE = "Chat with images, on your Mac"
_BLURB = (
    "lfmdesk runs Liquid AI's LFM2.5-VL-450M, a small vision-language model, entirely on this "
    "computer: describe photos, read documents and screenshots, find objects. Nothing you show "
    "it leaves your machine. The model is downloaded once; after that everything works offline."
)
_PROGRESS_STEPS = 1000  # byte counts exceed QProgressBar's int32 range


def _default_text(row: ModelRow | None) -> str:
    if row is None:
        return ""
    size = f" · {format_size(row.size_bytes)}" if row.size_bytes > 0 else ""
    return f"{row.title}{size}"


class WelcomePanel(QWidget):
    """Title, a paragraph, the default model with its size, Download and "Use a local folder…".

    Signals:
        downloadRequested(str): Download pressed; carries the default row's spec.
        folderChosen(str): a folder was picked with "Use a local folder…".
        cancelRequested(): Cancel pressed while the download runs.
    """

    downloadRequested = Signal(str)
    folderChosen = Signal(str)
    cancelRequested = Signal()

    def __init__(self, default: ModelRow | None = None, parent: QWidget | None = None) -> None:
        """Build the panel offering ``default`` (set later with ``set_default`` if None)."""
        super().__init__(parent)
        self._default: ModelRow | None = None
        self._busy = False
        self._title = _named(QLabel(_TITLE), "welcomeTitle")
        font = QFont(self._title.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        self._title.setFont(font)
        self._blurb = _named(QLabel(_BLURB), "welcomeBlurb")
        self._blurb.setWordWrap(True)
        self._model = _named(QLabel(), "welcomeModel")
        self._download = _named(QPushButton("Download"), "welcomeDownload")
        self._download.setDefault(True)
        self._folder = _named(QPushButton("Use a local folder…"), "welcomeFolder")
        self._progress = _named(QProgressBar(), "welcomeProgress")
        self._progress.setTextVisible(False)
        self._progress_text = _named(QLabel(), "welcomeProgressText")
        self._cancel = _named(QPushButton("Cancel"), "welcomeCancel")
        self._error = _named(QLabel(), "welcomeError")
        self._error.setWordWrap(True)
        self._error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._build_layout()
        self._download.clicked.connect(self._on_download)
        self._folder.clicked.connect(self._on_folder)
        self._cancel.clicked.connect(self._on_cancel)
        self.set_default(default)
        self._show_busy(False)
        self._error.hide()

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self._download)
        buttons.addWidget(self._folder)
        buttons.addStretch(1)
        progress = QHBoxLayout()
        progress.addWidget(self._progress, 1)
        progress.addWidget(self._progress_text)
        progress.addWidget(self._cancel)
        column = QVBoxLayout()
        column.setSpacing(14)
        for widget in (self._title, self._blurb, self._model):
            column.addWidget(widget)
        column.addLayout(buttons)
        column.addLayout(progress)
        column.addWidget(self._error)
        # A readable column, centred in whatever space the window gives the panel.
        box = _named(QWidget(), "welcomeColumn")
        box.setLayout(column)
        # A fixed width: a centred box with only a maximum gets its size hint's width, and
        # the word-wrapped blurb then computes its height for another width and is clipped.
        box.setFixedWidth(560)
        # Stretches rather than an alignment flag: Qt layouts ignore height-for-width (the
        # wrapped blurb's height) for widgets placed with an alignment.
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(box)
        row.addStretch(1)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)

    # ----------------------------------------------------------------------------- public API

    def set_default(self, row: ModelRow | None) -> None:
        """Offer ``row`` as the model the Download button fetches."""
        self._default = row
        self._model.setText(_default_text(row))
        self._download.setEnabled(row is not None and not self._busy)

    def set_progress(self, done: int, total: int) -> None:
        """Show the running download inline; ``total`` 0 shows a busy bar."""
        self._error.hide()
        self._show_busy(True)
        if total <= 0:
            self._progress.setRange(0, 0)
            self._progress_text.setText(format_size(done) if done else "Starting…")
            return
        self._progress.setRange(0, _PROGRESS_STEPS)
        self._progress.setValue(min(_PROGRESS_STEPS, done * _PROGRESS_STEPS // total))
        self._progress_text.setText(f"{format_size(done)} of {format_size(total)}")

    def set_error(self, text: str) -> None:
        """Show ``text`` under the buttons and let the user try again."""
        self._show_busy(False)
        self._error.setText(text)
        self._error.show()
        self._download.setText("Try again")

    def reset(self) -> None:
        """Back to the idle look (e.g. after the user cancelled)."""
        self._show_busy(False)
        self._error.hide()
        self._download.setText("Download")

    # ----------------------------------------------------------------------------- internals

    def _show_busy(self, busy: bool) -> None:
        self._busy = busy
        for widget in (self._progress, self._progress_text, self._cancel):
            widget.setVisible(busy)
        self._download.setEnabled(not busy and self._default is not None)
        self._folder.setEnabled(not busy)

    @Slot()
    def _on_download(self) -> None:
        if self._default is not None:
            self.set_progress(0, 0)
            self.downloadRequested.emit(self._default.spec)

    @Slot()
    def _on_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if path:
            self.folderChosen.emit(path)

    @Slot()
    def _on_cancel(self) -> None:
        self.cancelRequested.emit()
