"""The model switcher at the top of the window: pick a variant or a folder, see download/load state.

The window builds the rows (from ``VARIANTS``, ``list_cached()`` and ``format_size``) and feeds
engine progress back in; the bar never touches the disk or the hub itself::

    rows = [ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 568_000_000, True, is_default=True)]
    bar = ModelBar(rows, current="8bit")
    bar.modelRequested.connect(controller.switch_model)   # spec: variant key or folder path
    bar.cancelRequested.connect(controller.cancel_load)
    bar.set_state("downloading")
    bar.set_progress(212_000_000, 568_000_000)           # "Downloading 212 MB / 568 MB"
    bar.set_state("ready", "8-bit · float32 on CPU")     # "Ready · 8-bit · float32 on CPU"
    bar.remoteRequested.connect(client.load_model)       # "Remote server…": (url, api key)
    bar.serveToggled.connect(window.set_serving)         # the Serve button
    bar.set_serving("http://127.0.0.1:8000/v1")          # "Serving at http://127.0.0.1:8000/v1"
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QWidget,
)

from lfmdesk.core import format_size
from lfmdesk.gui.models._remote_dialog import RemoteDialog

__all__ = ["STATES", "ModelBar", "ModelRow", "remote_title", "row_key", "row_text"]


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    # objectName lets tests and style sheets find parts; the stubs reject it as a keyword.
    widget.setObjectName(name)
    return widget


_PRIMARY_FAMILY = "LFM2.5-VL-450M"
_FOLDER_GROUP = "Local folders"
_PICK_FOLDER = "\x00pick-folder"  # item data of the "Local folder…" entry; never a real spec
_PICK_REMOTE = "\x00pick-remote"  # item data of the "Remote server…" entry
_REMOTE_GROUP = "Remote servers"
_SPEC_ROLE = Qt.ItemDataRole.UserRole
_ADAPTER_SEP = "\x1f"  # never in a spec or an adapter name
_PROGRESS_STEPS = 1000  # QProgressBar is int32; byte counts are scaled to this range

# state -> (label prefix, progress + Cancel visible)
_STATE_TABLE: dict[str, tuple[str, bool]] = {
    "none": ("No model loaded", False),
    "downloading": ("Downloading…", True),
    "loading": ("Loading…", True),
    "ready": ("Ready", False),
    "error": ("", False),
}
STATES = tuple(_STATE_TABLE)


@dataclass(frozen=True)
class ModelRow:
    """One entry of the switcher, built by the window.

    Attributes:
        spec: What ``modelRequested`` carries: a variant key ("8bit") or a folder path.
        title: Shown text, e.g. "LFM2.5-VL-450M · 8-bit"; the part before " · " is its group.
        size_bytes: Size on disk (estimate for variants not downloaded); 0 hides it.
        downloaded: Whether the weights are on disk (shows a ✓).
        is_default: The recommended variant (marked "default").
        adapter: A trained adapter's name: the row loads ``spec`` with it (listed under it).
    """

    spec: str
    title: str
    size_bytes: int
    downloaded: bool
    is_default: bool = False
    adapter: str = ""

    @property
    def key(self) -> str:
        """What the combo holds for this row: the spec, or spec and adapter."""
        return row_key(self.spec, self.adapter)


def row_key(spec: str, adapter: str | None = None) -> str:
    """The bar's key for ``spec`` loaded with ``adapter`` (just ``spec`` without one)."""
    return f"{spec}{_ADAPTER_SEP}{adapter}" if adapter else spec


def _is_folder(spec: str) -> bool:
    return os.path.isabs(spec) or spec.startswith("~")


def _is_remote(spec: str) -> bool:
    return spec.lower().startswith(("http://", "https://"))


def remote_title(url: str) -> str:
    """How a server row reads: "Remote · gpu-box:8000"."""
    from urllib.parse import urlsplit

    return f"Remote · {urlsplit(url).netloc or url}"


def _group(row: ModelRow) -> str:
    if _is_remote(row.spec):
        return _REMOTE_GROUP
    return _FOLDER_GROUP if _is_folder(row.spec) else row.title.partition(" · ")[0]


def row_text(row: ModelRow) -> str:
    """The combo text of a row: "LFM2.5-VL-450M · 8-bit — 568 MB ✓ (default)"; an adapter's
    row is indented under its base: "    ↳ adapter cats"."""
    if row.adapter:
        return "    " + row.title.partition(" · ")[2]
    text = row.title
    if row.size_bytes > 0:
        text += f" — {format_size(row.size_bytes)}"
    if row.downloaded:
        text += " ✓"
    if row.is_default:
        text += " (default)"
    return text


def _ordered(rows: Sequence[ModelRow]) -> list[list[ModelRow]]:
    # Groups in first-seen order, except the flagship family first and folders last.
    groups: dict[str, list[ModelRow]] = {}
    for row in rows:
        groups.setdefault(_group(row), []).append(row)

    def rank(name: str) -> int:
        return {_PRIMARY_FAMILY: 0, _FOLDER_GROUP: 2, _REMOTE_GROUP: 3}.get(name, 1)

    return [groups[name] for name in sorted(groups, key=rank)]


class ModelBar(QWidget):
    """Combo of models, a state line, and a progress bar with Cancel while downloading/loading.

    Signals:
        modelRequested(str): the user picked another row (its spec) or a folder (its path).
        remoteRequested(str, object): "Remote server…" was confirmed: the URL and the API key
            (a str, or None).
        adapterRequested(str, str): the user picked an adapter's row (base spec, adapter).
        cancelRequested(): the user pressed Cancel during a download or load.
        serveToggled(bool): the user turned the Serve button on or off.
    """

    modelRequested = Signal(str)
    remoteRequested = Signal(str, object)
    adapterRequested = Signal(str, str)
    cancelRequested = Signal()
    serveToggled = Signal(bool)

    def __init__(
        self, rows: Sequence[ModelRow], current: str, parent: QWidget | None = None
    ) -> None:
        """Build the bar with ``rows`` and ``current`` (a spec, "" for no model) selected."""
        super().__init__(parent)
        self._rows: tuple[ModelRow, ...] = ()
        self._current = ""
        self._state = "none"
        self._combo = _named(QComboBox(), "modelCombo")
        self._combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._combo.setPlaceholderText("Choose a model…")
        self._combo.setToolTip("Model used for the next answer")
        self._icon = _named(QLabel(), "modelStateIcon")
        warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
        self._icon.setPixmap(warn.pixmap(16, 16))
        self._label = _named(QLabel(), "modelState")
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # A long error line must not widen the window (the tooltip keeps all of it): the label
        # may shrink below its text; the stretch after Cancel keeps the bar next to the text.
        self._label.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self._label.setMinimumWidth(40)
        self._progress = _named(QProgressBar(), "modelProgress")
        self._progress.setTextVisible(False)
        self._progress.setFixedWidth(180)
        self._cancel = _named(QPushButton("Cancel"), "modelCancel")
        self._serve = _named(QPushButton("Serve"), "modelServe")
        self._serve.setCheckable(True)
        self._serve.setToolTip(
            "Serve the loaded model to other apps over an OpenAI-compatible API on this Mac"
        )
        self._serving = _named(QLabel(), "modelServing")
        self._serving.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._serving.hide()
        self._build_layout()
        self._combo.activated.connect(self._on_activated)
        self._cancel.clicked.connect(self._on_cancel)
        self._serve.toggled.connect(self._on_serve_toggled)
        self.set_rows(rows, current)
        self.set_state("none")

    def _build_layout(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(self._combo)
        layout.addSpacing(8)
        layout.addWidget(self._icon)
        layout.addWidget(self._label)
        layout.addWidget(self._progress)
        layout.addWidget(self._cancel)
        layout.addStretch(1)
        layout.addWidget(self._serving)
        layout.addWidget(self._serve)

    # ----------------------------------------------------------------------------- public API

    @property
    def current(self) -> str:
        """The key (:func:`row_key`) the bar considers selected ("" when none)."""
        return self._current

    @property
    def state(self) -> str:
        """The last state given to ``set_state``."""
        return self._state

    def set_rows(self, rows: Sequence[ModelRow], current: str) -> None:
        """Replace the rows and select ``current`` (a spec or :func:`row_key`; a spec that is
        not listed is added as a folder row)."""
        self._rows = tuple(rows)
        self._current = current
        self._rebuild()

    def set_state(self, state: str, detail: str = "") -> None:
        """Show "none", "downloading", "loading", "ready" or "error", with an optional detail.

        Raises:
            ValueError: for an unknown state (a programming error, not a user one).
        """
        if state not in _STATE_TABLE:
            raise ValueError(f"unknown model state {state!r}; use one of {', '.join(STATES)}")
        self._state = state
        prefix, busy = _STATE_TABLE[state]
        self._label.setText(" · ".join(part for part in (prefix, detail) if part))
        self._label.setToolTip(detail)
        self._progress.setVisible(busy)
        self._cancel.setVisible(busy)
        if busy:
            self._progress.setRange(0, 0)  # busy until the first set_progress
        self._icon.setVisible(state == "error")

    def set_serving(self, url: str | None, message: str = "") -> None:
        """Show the API's URL while it is served; otherwise why it stopped (if it failed)."""
        self._serve.blockSignals(True)
        self._serve.setChecked(url is not None)
        self._serve.setText("Stop serving" if url is not None else "Serve")
        self._serve.blockSignals(False)
        if url is not None:
            self._serving.setText(f"Serving at {url}")
            self._serving.setStyleSheet("")
        else:
            self._serving.setText(f"Not serving: {message}" if message else "")
            self._serving.setStyleSheet("color: #b00020" if message else "")
        self._serving.setToolTip(url or message)
        self._serving.setVisible(bool(self._serving.text()))

    def set_progress(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bytes; ``total`` 0 shows a busy indicator."""
        if total <= 0:
            self._progress.setRange(0, 0)
            return
        self._progress.setRange(0, _PROGRESS_STEPS)
        self._progress.setValue(min(_PROGRESS_STEPS, done * _PROGRESS_STEPS // total))
        if self._state == "downloading":
            self._label.setText(f"Downloading {format_size(done)} / {format_size(total)}")

    # ----------------------------------------------------------------------------- internals

    def _rebuild(self) -> None:
        rows = list(self._rows)
        current = self._current
        if current and _ADAPTER_SEP not in current and all(r.key != current for r in rows):
            title = remote_title(current) if _is_remote(current) else None
            title = title or os.path.basename(current) or "?"
            rows.append(ModelRow(current, title, 0, not _is_remote(current)))
        combo = self._combo
        combo.clear()
        for group in _ordered(rows):
            if combo.count():
                combo.insertSeparator(combo.count())
            for row in group:
                combo.addItem(row_text(row), row.key)
                tip = f"{row.spec} with adapter {row.adapter}" if row.adapter else row.spec
                combo.setItemData(combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        if combo.count():
            combo.insertSeparator(combo.count())
        combo.addItem("Local folder…", _PICK_FOLDER)
        combo.addItem("Remote server…", _PICK_REMOTE)
        combo.setCurrentIndex(combo.findData(self._current) if self._current else -1)

    def _restore_selection(self) -> None:
        self._combo.setCurrentIndex(self._combo.findData(self._current) if self._current else -1)

    @Slot(int)
    def _on_activated(self, index: int) -> None:
        spec = self._combo.itemData(index, _SPEC_ROLE)
        if spec == _PICK_FOLDER:
            self._pick_folder()
            return
        if spec == _PICK_REMOTE:
            self._pick_remote()
            return
        if not isinstance(spec, str):
            return
        # Re-picking the current model is a no-op, except to retry after an error.
        if spec == self._current and self._state != "error":
            return
        self._current = spec
        base, _sep, adapter = spec.partition(_ADAPTER_SEP)
        if adapter:
            self.adapterRequested.emit(base, adapter)
        else:
            self.modelRequested.emit(spec)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if not path:
            self._restore_selection()
            return
        self._current = path
        self._rebuild()
        self.modelRequested.emit(path)

    def _pick_remote(self) -> None:
        dialog = RemoteDialog(self, self._current if _is_remote(self._current) else "")
        if not dialog.exec():
            self._restore_selection()
            return
        self._current = dialog.url
        self._rebuild()
        self.remoteRequested.emit(dialog.url, dialog.api_key)

    @Slot()
    def _on_cancel(self) -> None:
        self.cancelRequested.emit()

    @Slot(bool)
    def _on_serve_toggled(self, on: bool) -> None:
        self.serveToggled.emit(on)
