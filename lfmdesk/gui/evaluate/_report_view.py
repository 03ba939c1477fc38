"""The evaluation report in the window: the table, then each configuration's images worst
first, the selected one on a canvas with the ground truth solid and the answer dashed.

::

    view = ReportView(project)
    view.show_report(report.to_dict())       # or read_report(PROJECT/.lfmdesk/eval/report.json)
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import LoadedImage, Project
from lfmdesk.core.evaluate._report import REVIEW_ORDERS, review_annotation, review_order
from lfmdesk.gui.canvas._canvas import ImageCanvas
from lfmdesk.gui.support._image_loader import ImageLoader

__all__ = ["COLUMNS", "ReportView"]

# (header, where the value is in a configuration's report entry, decimals; None: text)
COLUMNS: tuple[tuple[str, tuple[str, ...], int | None], ...] = (
    ("", ("best",), None),
    ("Configuration", ("name",), None),
    ("Precision", ("overall", "precision"), 3),
    ("Recall", ("overall", "recall"), 3),
    ("F1", ("overall", "f1"), 3),
    ("Mean IoU", ("overall", "mean_iou"), 3),
    ("Acc@0.5", ("overall", "acc50"), 3),
    ("mAP", ("overall", "map"), 3),
    ("AP50", ("overall", "ap50"), 3),
    ("Unparsed", ("parse_failure_rate",), 3),
    ("p50 ms", ("latency_p50_ms",), 0),
    ("p95 ms", ("latency_p95_ms",), 0),
    ("Image tokens", ("image_tokens",), 0),
    ("Peak MB", ("peak_memory_bytes",), None),
)
_LEGEND = "Solid: ground truth (✎ your boxes) · dashed: the model's answer"


def _cell(entry: dict[str, Any], path: tuple[str, ...], decimals: int | None) -> str:
    value: Any = entry
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if path == ("best",):
        return "★" if value else ""
    if path == ("peak_memory_bytes",):
        return "—" if not value else f"{value / (1 << 20):.0f}"
    if value is None:
        return "—"
    return str(value) if decimals is None else f"{float(value):.{decimals}f}"


class ReportView(QWidget):
    """Shows an evaluation report (the ``report.json`` document)."""

    def __init__(self, project: Project, parent: QWidget | None = None) -> None:
        """An empty view of ``project``'s reports."""
        super().__init__(parent)
        self.project = project
        self._report: dict[str, Any] = {}
        self._entries: list[dict[str, Any]] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([c[0] for c in COLUMNS])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.order = QComboBox()
        self.order.addItems(list(REVIEW_ORDERS))
        self.images = QListWidget()
        self.legend = QLabel(_LEGEND)
        self.canvas = ImageCanvas()
        self.canvas.setMinimumSize(320, 240)
        self._loader = ImageLoader(self)
        self._build()
        self.table.itemSelectionChanged.connect(self._on_config)
        self.order.currentIndexChanged.connect(self._on_config)
        self.images.currentItemChanged.connect(self._on_image)
        self._loader.loaded.connect(self._on_loaded)
        self._loader.failed.connect(self.legend.setText)

    def _build(self) -> None:
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.order)
        column.addWidget(self.images, 1)
        right = QWidget()
        picture = QVBoxLayout(right)
        picture.setContentsMargins(0, 0, 0, 0)
        picture.addWidget(self.canvas, 1)
        picture.addWidget(self.legend)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(left)
        lower.addWidget(right)
        lower.setStretchFactor(1, 3)
        outer = QSplitter(Qt.Orientation.Vertical)
        outer.addWidget(self.table)
        outer.addWidget(lower)
        outer.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(outer, 1)

    def show_report(self, report: dict[str, Any]) -> None:
        """Show ``report``; the best configuration is selected."""
        self._report = report
        configs = report.get("configurations", [])
        self.table.setRowCount(len(configs))
        best = 0
        for row, entry in enumerate(configs):
            best = row if entry.get("best") else best
            for col, (_, path, decimals) in enumerate(COLUMNS):
                item = QTableWidgetItem(_cell(entry, path, decimals))
                if decimals is not None or path == ("peak_memory_bytes",):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, col, item)
        self.summary.setText(
            f"{report.get('images', 0)} images with ground truth, "
            f"{report.get('skipped_without_ground_truth', 0)} without (not evaluated) · labels: "
            f"{', '.join(report.get('labels', []))} · ★ best F1 · {report.get('score_rule', '')}"
        )
        if configs:
            self.table.selectRow(best)

    def selected_config(self) -> dict[str, Any] | None:
        """The configuration whose images are listed."""
        rows = self.table.selectionModel().selectedRows()
        configs = self._report.get("configurations", [])
        return configs[rows[0].row()] if rows and rows[0].row() < len(configs) else None

    def listed_images(self) -> list[str]:
        """The image keys in the list, in order."""
        return [str(e["image"]) for e in self._entries]

    @Slot()
    def _on_config(self) -> None:
        config = self.selected_config()
        self.images.clear()
        self._entries = review_order(config["images"], self.order.currentText()) if config else []
        for entry in self._entries:
            text = f"{entry['image']} — {entry['fn']} missed, {entry['fp']} false"
            if entry.get("error"):
                text += " · ⚠ no answer"
            item = QListWidgetItem(text)
            item.setToolTip(str(entry.get("error") or ""))
            self.images.addItem(item)
        if self._entries:
            self.images.setCurrentRow(0)

    @Slot()
    def _on_image(self) -> None:
        row = self.images.currentRow()
        if 0 <= row < len(self._entries):
            path = self.project.image_path(str(self._entries[row]["image"]))
            self._loader.load_paths([str(path)])

    @Slot(object)
    def _on_loaded(self, image: LoadedImage) -> None:
        row = self.images.currentRow()
        if not 0 <= row < len(self._entries):
            return
        entry = self._entries[row]
        if self.project.key(image.source) != entry["image"]:
            return  # a slower load of an image no longer selected
        self.canvas.set_image(image)
        self.canvas.set_annotation(review_annotation(entry, image.width, image.height))
        self.legend.setText(
            f"{_LEGEND} · {entry['tp']} found, {entry['fn']} missed, {entry['fp']} false"
        )
