"""The label list: each label's colour and how many boxes of it the current image has.

::

    panel = LabelsPanel(project.labels())
    panel.currentLabelChanged.connect(editor.set_current_label)
    panel.relabelRequested.connect(editor.relabel_selection)
    panel.labelsChanged.connect(project.save_labels)
    editor.annotationChanged.connect(panel.set_counts)

The selected row is the label new boxes get. Enter in the list, a double-click or Assign
gives it to the selected boxes. Labels that appear on an image but not in the list (the
model's, or an old file's) are added to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.images._draw import label_color

__all__ = ["LabelsPanel"]

_SWATCH = 14
_LABEL_ROLE = Qt.ItemDataRole.UserRole


def _clean(label: str) -> str:
    return " ".join(label.split())


def _swatch(label: str) -> QIcon:
    pixmap = QPixmap(_SWATCH, _SWATCH)
    pixmap.fill(QColor(*label_color(label)))
    return QIcon(pixmap)


class _LabelList(QListWidget):
    """A list where Enter assigns the current label (rather than doing nothing)."""

    assignPressed = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter/Return assigns; other keys navigate as usual."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.assignPressed.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class LabelsPanel(QWidget):
    """The project's labels with colour swatches and counts on the current image.

    Signals:
        currentLabelChanged(str): the label new boxes get ("" when the list is empty).
        relabelRequested(str): give this label to the selected boxes.
        labelsChanged(list): the label list after an add, a removal or an auto-add.
    """

    currentLabelChanged = Signal(str)
    relabelRequested = Signal(str)
    labelsChanged = Signal(list)

    def __init__(self, labels: Sequence[str] = (), parent: QWidget | None = None) -> None:
        """Show ``labels``; the first one is current."""
        super().__init__(parent)
        self._counts: Counter[str] = Counter()
        self.list = _LabelList()
        self.list.setObjectName("labelList")
        self.list.setIconSize(QSize(_SWATCH, _SWATCH))
        self.field = QLineEdit()
        self.field.setObjectName("labelField")
        self.field.setPlaceholderText("Add a label…")
        self.field.setClearButtonEnabled(True)
        self.assign_button = QPushButton("Assign to Selection")
        self.assign_button.setToolTip("Give the selected label to the selected boxes (Enter)")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the label from the list (boxes keep it)")
        self._layout()
        self.list.currentItemChanged.connect(self._current_changed)
        self.list.itemDoubleClicked.connect(self._assign)
        self.list.assignPressed.connect(self._assign)
        self.field.returnPressed.connect(self._add_from_field)
        self.assign_button.clicked.connect(self._assign)
        self.remove_button.clicked.connect(self._remove_current)
        self.set_labels(labels)

    def _layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.assign_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list)
        layout.addWidget(self.field)
        layout.addLayout(buttons)

    # ------------------------------------------------------------------ API
    def labels(self) -> list[str]:
        """The labels, in list order."""
        return [str(self.list.item(i).data(_LABEL_ROLE)) for i in range(self.list.count())]

    def current_label(self) -> str:
        """The selected label ("" when there is none)."""
        item = self.list.currentItem()
        return str(item.data(_LABEL_ROLE)) if item is not None else ""

    def set_labels(self, labels: Sequence[str]) -> None:
        """Replace the list (e.g. for another project); does not emit labelsChanged."""
        current = self.current_label()
        self.list.blockSignals(True)
        self.list.clear()
        for label in dict.fromkeys(_clean(x) for x in labels if x.strip()):
            self._append(label)
        self.list.blockSignals(False)
        self.set_current_label(current if current in self.labels() else "")
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(0)
        self._emit_current()

    @Slot(str)
    def set_current_label(self, label: str) -> None:
        """Select ``label``'s row, if it is in the list."""
        for i in range(self.list.count()):
            if self.list.item(i).data(_LABEL_ROLE) == label:
                self.list.setCurrentRow(i)
                return

    def add_label(self, label: str, *, select: bool = True) -> bool:
        """Add ``label``; False when blank.

        Args:
            label: the label; an existing one is not added twice.
            select: make it the current label (what a person adding it wants; not what
                Detect all, listing the labels it looks for, should do).
        """
        label = _clean(label)
        if not label:
            return False
        if label not in self.labels():
            self._append(label)
            self.labelsChanged.emit(self.labels())
            if self.list.currentItem() is None:
                self.list.setCurrentRow(0)
        if select:
            self.set_current_label(label)
        return True

    @Slot(object)
    def set_counts(self, ann: ImageAnnotation | None) -> None:
        """Show how many boxes of each label ``ann`` has; unknown labels join the list."""
        self._counts = Counter(b.label for b in ann.boxes) if ann is not None else Counter()
        missing = [x for x in dict.fromkeys(self._counts) if x not in self.labels()]
        for label in missing:
            self._append(label)
        for i in range(self.list.count()):
            self._render(self.list.item(i))
        if missing:
            self.labelsChanged.emit(self.labels())
            if self.list.currentItem() is None:
                self.list.setCurrentRow(0)

    def count_text(self, label: str) -> str:
        """The row text of ``label``: ``"car  (3)"``, or just the label when none."""
        count = self._counts.get(label, 0)
        return f"{label}  ({count})" if count else label

    # ------------------------------------------------------------------ internals
    def _append(self, label: str) -> None:
        item = QListWidgetItem(_swatch(label), label)
        item.setData(_LABEL_ROLE, label)
        self.list.addItem(item)
        self._render(item)

    def _render(self, item: QListWidgetItem) -> None:
        label = str(item.data(_LABEL_ROLE))
        item.setText(self.count_text(label))
        count = self._counts.get(label, 0)
        item.setToolTip(f"{label}: {count} box{'' if count == 1 else 'es'} on this image")

    @Slot()
    def _add_from_field(self) -> None:
        if self.add_label(self.field.text()):
            self.field.clear()

    @Slot()
    def _assign(self) -> None:
        label = self.current_label()
        if label:
            self.relabelRequested.emit(label)

    @Slot()
    def _remove_current(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self.list.takeItem(row)
        self.labelsChanged.emit(self.labels())
        self._emit_current()

    @Slot()
    def _current_changed(self) -> None:
        self._emit_current()

    def _emit_current(self) -> None:
        self.currentLabelChanged.emit(self.current_label())
        has = self.list.currentItem() is not None
        self.assign_button.setEnabled(has)
        self.remove_button.setEnabled(has)
