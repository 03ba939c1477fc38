"""Export and import dialogs: pick a format and a folder; the core does the work off the GUI thread.

::

    dialog = DatasetDialog("export", project, current_key="street.png", parent=window)
    dialog.finished_work.connect(window.on_dataset_done)   # ExportReport | ImportReport
    dialog.show()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QThreadPool, QUrl, Signal, Slot
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import (
    FORMATS,
    ExportReport,
    ImportReport,
    Project,
    export_dataset,
    import_dataset,
)
from lfmdesk.gui.support._jobs import PoolJob

__all__ = ["DatasetDialog", "report_text"]

Report = ExportReport | ImportReport


def report_text(report: Report) -> str:
    """One line for the status bar: what an export or import did."""
    if isinstance(report, ExportReport):
        return _export_text(report)
    text = f"Imported {report.images} images, {report.boxes} boxes"
    if report.skipped:
        text += f"; {len(report.skipped)} skipped (image not found)"
    if report.problems:
        name, why = report.problems[0]
        text += f"; {len(report.problems)} left out ({name}: {why})"
    if report.kept:
        text += f"; kept your edited boxes of {len(report.kept)} images"
    return text


def _export_text(report: ExportReport) -> str:
    title = FORMATS[report.format].title
    text = f"Exported {report.images} images, {report.boxes} boxes as {title} to {report.main}"
    if report.skipped:
        key, why = report.skipped[0]
        text += f"; skipped {len(report.skipped)} that could not be read ({key}: {why})"
    return text


class _Signals(QObject):
    done = Signal(object)
    failed = Signal(str)


def _write_failure(exc: Exception) -> str:
    if isinstance(exc, OSError):  # disk full, permissions: say so, keep the dialog open
        return f"{exc.filename or 'file'}: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


class DatasetDialog(QDialog):
    """Export the project (or one image) as a dataset, or import one into the project.

    Signals:
        finished_work(object): the ExportReport or ImportReport once the work succeeded.
    """

    finished_work = Signal(object)

    def __init__(
        self, mode: str, project: Project, current_key: str | None, parent: QWidget | None = None
    ) -> None:
        """``mode`` is "export" or "import"; ``current_key`` enables "This image only"."""
        super().__init__(parent)
        self.mode, self.project, self.current_key = mode, project, current_key
        self._out: Path | None = None
        self.setWindowTitle("Export Dataset" if mode == "export" else "Import Dataset")
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._build()

    def _build(self) -> None:
        self.format_box = QComboBox()
        for name, spec in FORMATS.items():
            self.format_box.addItem(spec.title, name)
        self.path_edit = QLineEdit()
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path_edit, 1)
        row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Format:", self.format_box)
        count = len(self.project.images())
        self.all_images = QRadioButton(f"Whole project ({count} images)")
        self.one_image = QRadioButton("This image only")
        if self.mode == "export":
            form.addRow("Images:", self.all_images)
            form.addRow("", self.one_image)
            self.all_images.setChecked(True)
            self.one_image.setEnabled(self.current_key is not None)
            self.path_edit.setPlaceholderText("A folder for the dataset (not inside the project)")
            form.addRow("To folder:", row)
            # Off by default: a folder of other files is refused unless this is ticked.
            self.overwrite = QCheckBox("Replace files in a folder that holds other files")
            form.addRow("", self.overwrite)
        else:
            self.path_edit.setPlaceholderText("The dataset folder (or a COCO .json file)")
            form.addRow("From:", row)
        self.message = QLabel(f"Project: {self.project.root}")
        self.message.setWordWrap(True)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Close
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Export" if self.mode == "export" else "Import")
        self.ok_button.clicked.connect(self.run)
        self.buttons.rejected.connect(self.reject)
        self.reveal = QPushButton("Show Folder")
        self.reveal.clicked.connect(self._reveal)
        self.buttons.addButton(self.reveal, QDialogButtonBox.ButtonRole.ActionRole)
        self.reveal.hide()  # after addButton, which shows it: only a finished export has a folder
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(560, self.sizeHint().height())

    @Slot()
    def _browse(self) -> None:
        if self.mode == "import" and self.format_box.currentData() == "coco":
            path, _ = QFileDialog.getOpenFileName(self, "COCO annotations", "", "JSON (*.json)")
        else:
            path = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if path:
            self.path_edit.setText(path)

    @Slot()
    def run(self) -> None:
        """Start the export or import in the thread pool (the window stays responsive)."""
        text = self.path_edit.text().strip()
        if not text:
            self._on_failed("Choose a folder first")
            return
        fmt, target = str(self.format_box.currentData()), Path(text)
        work: Callable[[], Report]
        if self.mode == "export":
            keys = [self.current_key] if self.one_image.isChecked() and self.current_key else None
            overwrite = self.overwrite.isChecked()
            work = lambda: export_dataset(  # noqa: E731
                self.project, fmt, target, images=keys, overwrite=overwrite
            )
        else:
            work = lambda: import_dataset(target, fmt, self.project)  # noqa: E731
        self.ok_button.setEnabled(False)
        self.message.setText("Working…")
        signals = self._signals
        job = PoolJob(work, signals.done.emit, signals.failed.emit, _write_failure)
        QThreadPool.globalInstance().start(job)

    @Slot(object)
    def _on_done(self, report: Report) -> None:
        self.ok_button.setEnabled(True)
        self.message.setText(report_text(report))
        self.reveal.setVisible(isinstance(report, ExportReport))
        self._out = report.out if isinstance(report, ExportReport) else None
        self.finished_work.emit(report)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self.ok_button.setEnabled(True)
        if self.mode == "export" and "allow replacing its files" in message:
            message += " — tick “Replace files…” above to export there anyway"
        self.message.setText(f"⚠ {message}")

    @Slot()
    def _reveal(self) -> None:
        if self._out is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._out)))
