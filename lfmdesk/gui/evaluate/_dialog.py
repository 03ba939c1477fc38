"""File ▸ Evaluate Boxes…: the options of ``lfmdesk eval``, progress with Cancel, the report.

::

    saved = read_report(eval_folder(project) / REPORT_JSON)      # the last report, if any
    dialog = EvaluateDialog(project, client.new_process, "auto", "8bit", settings_now, saved)
    dialog.show()
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Slot
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import (
    VARIANTS,
    EngineProcess,
    InputError,
    Project,
    SamplingSettings,
    VisionSettings,
)
from lfmdesk.core.evaluate._configs import DECODINGS, make_configs
from lfmdesk.core.evaluate._report import EvalReport
from lfmdesk.core.evaluate._runner import AnswerFailed, AnswerScored, ConfigStarted, EvalStarted
from lfmdesk.gui.evaluate._report_view import ReportView
from lfmdesk.gui.evaluate._worker import EvalJob, EvalWorker

__all__ = ["TILING_CHOICES", "EvaluateDialog"]

TILING_CHOICES = ("default", "nosplit", "max64")
_FAMILY = "LFM2.5-VL-450M"

Settings = Callable[[], tuple[SamplingSettings, VisionSettings]]


def _row(boxes: list[QCheckBox]) -> QHBoxLayout:
    row = QHBoxLayout()
    for box in boxes:
        row.addWidget(box)
    row.addStretch(1)
    return row


class EvaluateDialog(QDialog):
    """Evaluate the project's ground truth across models, tiling and decoding.

    Args:
        project: the open project.
        new_process: makes an engine process like the window's (each model runs in its own).
        compute: the compute mode models load with.
        current_model: the model the window uses (checked by default).
        settings: returns the window's sampling and vision settings now.
        saved: the project's last report (``report.json``), shown at once; None if none.
    """

    def __init__(
        self,
        project: Project,
        new_process: Callable[[], EngineProcess],
        compute: str,
        current_model: str,
        settings: Settings,
        saved: dict[str, Any] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Evaluate Boxes — {project.root.name}")
        self.project, self._settings = project, settings
        self._plan_text = ""
        self.worker = worker = EvalWorker(new_process, compute, self)
        self.labels = QLineEdit(", ".join(project.labels()))
        self.labels.setPlaceholderText("What to find, e.g. car, person")
        keys = [v.key for v in VARIANTS if v.family == _FAMILY]
        keys += [] if current_model in keys else [current_model]
        self.models = [QCheckBox(key) for key in keys]
        self.tilings = [QCheckBox(name) for name in TILING_CHOICES]
        self.decodings = [QCheckBox(name) for name in DECODINGS]
        for box in self.models:
            box.setChecked(box.text() == current_model)
        for box in (*self.tilings[:1], *self.decodings):
            box.setChecked(True)
        self.status = QLabel("Ground truth: the boxes you drew or imported (✎).")
        self.status.setWordWrap(True)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.start_button = QPushButton("Evaluate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.close_button = QPushButton("Close")
        self.report = ReportView(project)
        self.report.hide()
        self._build()
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button.clicked.connect(self.close)
        worker.event.connect(self._on_event)
        worker.phase.connect(self.status.setText)
        worker.done.connect(self._on_done)
        worker.failed.connect(self._on_failed)
        if saved is not None:
            self._show(saved, "The last evaluation of this project.")

    def _build(self) -> None:
        form = QFormLayout()
        form.addRow("Labels:", self.labels)
        form.addRow("Models:", _row(self.models))
        form.addRow("Tiling:", _row(self.tilings))
        form.addRow("Decoding:", _row(self.decodings))
        buttons = QHBoxLayout()
        buttons.addWidget(self.progress, 1)
        for button in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        layout.addWidget(self.report, 1)
        self.resize(960, 420)

    def _show(self, report: dict[str, object], text: str) -> None:
        self.report.show_report(report)
        self.report.show()
        self.resize(max(self.width(), 1100), max(self.height(), 760))
        self.status.setText(text)

    @staticmethod
    def _chosen(boxes: list[QCheckBox]) -> list[str]:
        return [box.text() for box in boxes if box.isChecked()]

    @Slot()
    def start(self) -> None:
        """Evaluate the chosen configurations (problems are shown under the options)."""
        sampling, vision = self._settings()
        try:
            configs = make_configs(
                self._chosen(self.models),
                self._chosen(self.tilings),
                self._chosen(self.decodings),
                vision=vision,
            )
        except InputError as exc:
            self.status.setText(f"⚠ {exc}")
            return
        job = EvalJob(self.project, self.labels.text(), configs, sampling, vision)
        if not self.worker.start(job):
            self.status.setText("⚠ an evaluation is already running")
            return
        self._set_running(True)
        self.progress.setRange(0, 0)  # busy until the plan is known
        self.status.setText("Reading the project's ground truth…")

    @Slot()
    def cancel(self) -> None:
        """Stop after the current token; the answers so far are kept for the next run."""
        self.worker.cancel()
        self.cancel_button.setEnabled(False)
        self.status.setText("Stopping…")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for box in (*self.models, *self.tilings, *self.decodings):
            box.setEnabled(not running)
        self.labels.setEnabled(not running)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, EvalStarted):
            plan = event.plan
            self.progress.setRange(0, plan.answers)
            self.progress.setValue(0)
            self._plan_text = (
                f"{len(plan.images)} images with ground truth ({len(plan.skipped)} without, "
                f"skipped) · {plan.answers} answers, {plan.cached} already cached"
            )
            self.status.setText(self._plan_text)
        elif isinstance(event, ConfigStarted):
            where = f"{event.config.name} ({event.index} of {event.total})"
            self.status.setText(f"{where} · {self._plan_text}")
        elif isinstance(event, (AnswerScored, AnswerFailed)):
            self.progress.setValue(event.done)
            if isinstance(event, AnswerFailed):
                self.status.setText(f"⚠ {event.key}: {event.message}")

    @Slot(object, object)
    def _on_done(self, report: EvalReport, path: Path | None) -> None:
        self._set_running(False)
        if report.cancelled:
            done = len(report.results)
            text = f"Stopped — {done} configurations finished; Evaluate again resumes."
        else:
            text = f"Done: {len(report.results)} configurations. Report: {path}"
        if report.results:
            self._show(report.to_dict(), text)
        else:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
            self.status.setText(text)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status.setText(f"⚠ {message}")

    def closeEvent(self, event: QCloseEvent) -> None:
        """Closing the dialog stops a running evaluation (its answers stay cached)."""
        if self.worker.running:
            self.worker.cancel()
        super().closeEvent(event)
