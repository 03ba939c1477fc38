"""The project panel: the folder's images, where each stands, and Detect over all of them.

    panel = ProjectPanel(project)
    panel.imageActivated.connect(window.open_project_image)       # (key)
    panel.batchRequested.connect(lambda labels, redo: runner.start(project, labels, redo))
    panel.cancelRequested.connect(runner.cancel)
    runner.started.connect(panel.batch_started)
    runner.progress.connect(panel.show_progress)
    runner.imageAnnotated.connect(panel.update_row)
    runner.imageFailed.connect(panel.mark_failed)
    runner.finished.connect(panel.batch_finished)

The widget never reads files itself: its rows come from
:func:`lfmdesk.core.datasets._status.project_rows`.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.datasets._batch import BatchFinished, BatchPlan
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.datasets._status import (
    DETECTED,
    EDITED,
    FAILED,
    NOT_RUN,
    ImageRow,
    batch_counts,
    image_row,
    project_rows,
)

__all__ = ["ProjectPanel"]

_KEY_ROLE = Qt.ItemDataRole.UserRole
# Status -> (mark, tooltip). The mark is text so it reads in any theme and in screenshots.
_MARKS: dict[str, tuple[str, str]] = {
    NOT_RUN: ("○", "not run yet"),
    DETECTED: ("●", "detected by the model"),
    EDITED: ("✎", "edited by you: Detect all leaves it alone"),
    FAILED: ("⚠", "failed"),
}


def _item_text(row: ImageRow) -> str:
    mark = _MARKS.get(row.status, _MARKS[NOT_RUN])[0]
    # Keys inside the folder are short relative paths; an outside image shows its file name.
    name = row.key.rsplit("/", 1)[-1] if row.key.startswith("/") else row.key
    count = f"{row.boxes} box" + ("" if row.boxes == 1 else "es")
    return f"{mark}  {name}  · {count}"


class ProjectPanel(QWidget):
    """The images of one project folder with their status, and the batch Detect controls.

    Args:
        project: the project to show, or None for "no folder open".
        parent: Qt parent.

    Signals:
        imageActivated(str key): the user picked an image to open.
        batchRequested(str labels, bool redo): "Detect all" / "Resume" was pressed.
        cancelRequested(): Cancel was pressed while a batch runs.
        openFolderRequested(): "Open folder…" was pressed.
        showFolderRequested(): "Show in Finder" / "Show Folder" was pressed.
    """

    imageActivated = Signal(str)
    batchRequested = Signal(str, bool)
    cancelRequested = Signal()
    openFolderRequested = Signal()
    showFolderRequested = Signal()

    def __init__(self, project: Project | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._project: Project | None = None
        self._rows: dict[str, ImageRow] = {}
        self._running = False
        self._redo = False
        self.folder_label = QLabel()
        self.folder_label.setObjectName("projectFolder")
        self.open_button = QPushButton("Open folder…")
        self.show_button = QPushButton("Show in Finder" if sys.platform == "darwin" else "Show")
        self.show_button.setToolTip("Open this folder in the file manager")
        self._suggested = ""  # the labels text last put in the field for the user
        self.list = QListWidget()
        self.list.setObjectName("projectImages")
        self.labels_edit = QLineEdit()
        self.labels_edit.setPlaceholderText("labels, e.g. car, person")
        self.detect_button = QPushButton("Detect all")
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.cancel_button = QPushButton("Cancel")
        self._layout()
        self.open_button.clicked.connect(self.openFolderRequested)
        self.show_button.clicked.connect(self.showFolderRequested)
        self.list.currentItemChanged.connect(self._on_current)
        self.labels_edit.textChanged.connect(self._update_button)
        self.labels_edit.returnPressed.connect(self._on_detect)
        self.detect_button.clicked.connect(self._on_detect)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.set_project(project)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.folder_label, 1)
        top.addWidget(self.show_button)
        top.addWidget(self.open_button)
        batch = QHBoxLayout()
        batch.addWidget(self.labels_edit, 1)
        batch.addWidget(self.detect_button)
        running = QHBoxLayout()
        running.addWidget(self.progress_bar, 1)
        running.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addLayout(batch)
        layout.addLayout(running)
        self._show_running(False)

    # --- model ----------------------------------------------------------------------------

    @property
    def project(self) -> Project | None:
        """The project shown."""
        return self._project

    @property
    def labels(self) -> str:
        """The labels field's text."""
        return self.labels_edit.text()

    def set_labels(self, labels: str | Sequence[str]) -> None:
        """Prefill the labels field (e.g. with the project's saved labels)."""
        text = labels if isinstance(labels, str) else ", ".join(labels)
        self._suggested = text
        self.labels_edit.setText(text)

    def suggest_labels(self, labels: Sequence[str]) -> None:
        """Offer ``labels`` (the label list changed) unless the user typed their own."""
        if self.labels_edit.text().strip() in ("", self._suggested):
            self.set_labels(labels)

    def set_project(self, project: Project | None) -> None:
        """Show ``project`` (None: no folder open) and read its images' status."""
        self._project = project
        self.folder_label.setText(project.root.name if project else "No folder open")
        self.folder_label.setToolTip(str(project.root) if project else "")
        self.refresh()

    def refresh(self) -> None:
        """Read the project's images and annotation status again (after a capture, a save)."""
        self.set_rows(project_rows(self._project) if self._project else [])

    def set_rows(self, rows: Sequence[ImageRow]) -> None:
        """Show ``rows`` (computed elsewhere, e.g. off the GUI thread for a huge folder)."""
        current = self.current_key()
        self._rows = {row.key: row for row in rows}
        self.list.blockSignals(True)  # rebuilding the list is not the user picking an image
        try:
            self.list.clear()
            for row in rows:
                item = QListWidgetItem(_item_text(row))
                item.setData(_KEY_ROLE, row.key)
                self._decorate(item, row)
                self.list.addItem(item)
        finally:
            self.list.blockSignals(False)
        if current is not None:
            self.set_current(current)
        self._update_button()

    def rows(self) -> list[ImageRow]:
        """The rows shown, in order."""
        return [self._rows[k] for k in self.keys()]

    def keys(self) -> list[str]:
        """The image keys listed, in order."""
        return [str(self.list.item(i).data(_KEY_ROLE)) for i in range(self.list.count())]

    def row(self, key: str) -> ImageRow | None:
        """The row of ``key``, if listed."""
        return self._rows.get(key)

    def current_key(self) -> str | None:
        """The highlighted image's key."""
        item = self.list.currentItem()
        return str(item.data(_KEY_ROLE)) if item is not None else None

    def set_current(self, key: str | None) -> None:
        """Highlight ``key`` (the image shown on the canvas) without emitting anything."""
        item = self._item(key) if key is not None else None
        self.list.blockSignals(True)
        try:
            self.list.setCurrentItem(item)  # type: ignore[arg-type]
            if item is not None:
                self.list.scrollToItem(item)
        finally:
            self.list.blockSignals(False)

    @Slot(str, object)
    def update_row(self, key: str, annotation: ImageAnnotation | None) -> None:
        """Show ``key``'s new annotation (a batch result or an edit in the canvas)."""
        self._set_row(image_row(key, annotation))

    @Slot(str, str)
    def mark_failed(self, key: str, message: str) -> None:
        """Mark ``key`` as failed with ``message`` as its tooltip."""
        old = self._rows.get(key) or ImageRow(key, 0, NOT_RUN)
        self._set_row(dataclasses.replace(old, status=FAILED, message=message))

    def _set_row(self, row: ImageRow) -> None:
        item = self._item(row.key)
        self._rows[row.key] = row
        if item is None:
            item = QListWidgetItem()
            item.setData(_KEY_ROLE, row.key)
            self.list.addItem(item)
        item.setText(_item_text(row))
        self._decorate(item, row)
        self._update_button()

    def _item(self, key: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(_KEY_ROLE) == key:
                return item
        return None

    @staticmethod
    def _decorate(item: QListWidgetItem, row: ImageRow) -> None:
        tip = _MARKS.get(row.status, _MARKS[NOT_RUN])[1]
        if row.status == DETECTED and row.detected:
            tip += f" ({', '.join(row.detected)})"
        if row.message:
            tip += f": {row.message}"
        item.setToolTip(f"{row.key}\n{tip}")

    # --- batch ----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A batch is shown as running."""
        return self._running

    @Slot(object)
    def batch_started(self, plan: BatchPlan) -> None:
        """A batch began: show the progress bar and Cancel."""
        self._running = True
        self.progress_bar.setRange(0, max(1, len(plan.todo)))
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat(f"0 / {len(plan.todo)}")
        self._show_running(True)

    @Slot(int, int, str)
    def show_progress(self, done: int, total: int, key: str) -> None:
        """``done`` of ``total`` finished; ``key`` is being detected now."""
        name = key.rsplit("/", 1)[-1]
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        # The highlight stays on the image the canvas shows; the bar names the one in work.
        self.progress_bar.setFormat(f"{min(done + 1, total)} / {total} · {name}")

    @Slot(object)
    def batch_finished(self, summary: BatchFinished | None = None) -> None:
        """The batch ended: back to the Detect button (which now says what is left)."""
        self._running = False
        self._show_running(False)
        self._update_button()

    def progress_text(self) -> str:
        """The progress bar's text, e.g. "3 / 12 · street.png"."""
        return self.progress_bar.format()

    def _show_running(self, running: bool) -> None:
        self.progress_bar.setVisible(running)
        self.cancel_button.setVisible(running)
        self.detect_button.setVisible(not running)
        self.labels_edit.setEnabled(not running)

    @Slot()
    def _update_button(self) -> None:
        done, left = batch_counts(list(self._rows.values()), self.labels)
        self._redo = done > 0 and left == 0
        if self._redo:
            text = "Detect all again"
        elif done > 0:
            text = f"Resume — {left} left"
        else:
            text = "Detect all"
        self.detect_button.setText(text)
        self.detect_button.setEnabled(
            self._project is not None and bool(self.labels.strip()) and bool(done + left)
        )

    @Slot()
    def _on_detect(self) -> None:
        if self._running or not self.detect_button.isEnabled():
            return
        self.batchRequested.emit(self.labels.strip(), self._redo)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current(self, item: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if item is not None:
            self.imageActivated.emit(str(item.data(_KEY_ROLE)))
