""" "Train on this project…": labels, steps, a live loss plot, Cancel, and the held-out report.

The dialog only shows the run; the training child process does the work (``TrainRunner``)::

    action = TrainAction(window, project_now, base_now, trainer="real")
    action.install(window_add_action)               # File ▸ Train on This Project…
    action.adaptersChanged.connect(window.refresh_adapters)
    action.adapterChosen.connect(window.load_adapter)   # "Use This Adapter"
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QFontDatabase
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import Project, VisionSettings, split_labels
from lfmdesk.core.models._download import DownloadProgress
from lfmdesk.core.train._loop import (
    ExamplesProgress,
    ScoringProgress,
    TrainFinished,
    TrainingStarted,
    TrainNote,
    TrainStep,
    TrainStopped,
)
from lfmdesk.core.train._process import TrainFailed, TrainRequest
from lfmdesk.core.train._report import format_eta, left_out_line, report_lines
from lfmdesk.core.train._store import interrupted_runs
from lfmdesk.gui.train._plot import LossPlot
from lfmdesk.gui.train._runner import TrainRunner

__all__ = ["TrainAction", "TrainDialog"]

DEFAULT_STEPS = 200
_SCORING = {"base": "the base model", "adapter": "the adapter"}


class TrainDialog(QDialog):
    """One project's training runs, one at a time.

    Signals:
        adaptersChanged(): an adapter was saved (or a run stopped and saved).
        adapterChosen(str, str): "Use This Adapter": base spec and adapter name.
    """

    adaptersChanged = Signal()
    adapterChosen = Signal(str, str)

    def __init__(
        self,
        project: Project,
        base: str,
        vision: VisionSettings,
        trainer: str = "real",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.project, self.base, self.vision = project, base, vision
        self.setWindowTitle("Train on This Project")
        self.runner = TrainRunner(trainer, self)
        self.runner.event.connect(self.on_event)
        self.runner.ended.connect(self.on_ended)
        self._finished: TrainFinished | None = None
        self._build()
        self._offer_resume()

    # --- layout ----------------------------------------------------------------------------

    def _build(self) -> None:
        self.labels_edit = QLineEdit(", ".join(self.project.labels()))
        self.labels_edit.setPlaceholderText('What to teach, e.g. "car, person"')
        self.steps_box = QSpinBox()
        self.steps_box.setRange(1, 100_000)
        self.steps_box.setValue(DEFAULT_STEPS)
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("Named after the project folder")
        self.resume_box = QCheckBox()
        form = QFormLayout()
        form.addRow("Project:", QLabel(str(self.project.root)))
        form.addRow("Base model:", QLabel(self.base))
        form.addRow("Labels:", self.labels_edit)
        form.addRow("Steps:", self.steps_box)
        form.addRow("Adapter name:", self.name_edit)
        form.addRow("", self.resume_box)
        self.plot = LossPlot()
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.status = QLabel(
            "Only boxes you drew, fixed or imported are learned; a fifth of the pictures is "
            "held out to compare the base model and the adapter."
        )
        self.status.setWordWrap(True)
        self.status.setObjectName("trainStatus")
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.hide()
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setObjectName("trainReport")
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.report.hide()
        self._build_buttons()
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.notes)
        layout.addWidget(self.report)
        layout.addWidget(self.buttons)
        self.resize(620, 560)

    def _build_buttons(self) -> None:
        self.buttons = QDialogButtonBox()
        self.train_button = QPushButton("Train")
        self.train_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel Training")
        self.use_button = QPushButton("Use This Adapter")
        self.close_button = QPushButton("Close")
        role = QDialogButtonBox.ButtonRole
        self.buttons.addButton(self.train_button, role.ActionRole)
        self.buttons.addButton(self.cancel_button, role.ActionRole)
        self.buttons.addButton(self.use_button, role.ActionRole)
        self.buttons.addButton(self.close_button, role.RejectRole)
        self.train_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self._use)
        self.close_button.clicked.connect(self.close)
        self.cancel_button.hide()
        self.use_button.hide()

    def _offer_resume(self) -> None:
        runs = interrupted_runs(self.project.root)
        self.resume_box.setVisible(bool(runs))
        self.resume_box.setChecked(bool(runs))
        if runs:
            self.resume_box.setText(f"Continue the interrupted run {runs[0]!r}")
            self.resume_box.setProperty("run", runs[0])

    # --- running ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """A run is in progress."""
        return self.runner.running

    def request(self) -> TrainRequest:
        """The request the fields describe."""
        resume = self.resume_box.isVisible() and self.resume_box.isChecked()
        name = str(self.resume_box.property("run")) if resume else self.name_edit.text().strip()
        return TrainRequest(
            project=self.project.root,
            labels=split_labels(self.labels_edit.text()),
            model=self.base,
            steps=self.steps_box.value(),
            name=name,
            resume=resume,
            vision=self.vision,
        )

    @Slot()
    def start(self) -> None:
        """Start training (the window stays responsive: the work is in a child process)."""
        request = self.request()
        if not request.labels and not request.resume:
            self._say('⚠ Give the labels to teach, e.g. "car, person".')
            return
        self._finished = None
        self.plot.clear()
        self.plot.set_steps(request.steps)
        self.progress.setRange(0, 0)
        self.report.hide()
        self.notes.hide()
        self.use_button.hide()
        self._set_running(True)
        self._say("Starting… (loading the model)")
        self.runner.start(request)

    @Slot()
    def cancel(self) -> None:
        """Stop after the current step; the run is saved and can be continued."""
        self.runner.cancel()
        self.cancel_button.setEnabled(False)
        self._say("Stopping after the current step and saving…")

    def _set_running(self, running: bool) -> None:
        for widget in (self.labels_edit, self.steps_box, self.name_edit, self.resume_box):
            widget.setEnabled(not running)
        self.train_button.setVisible(not running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        self.close_button.setEnabled(not running)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    @Slot(object)
    def on_event(self, event: Any) -> None:
        """Show one progress event of the run."""
        handler = _EVENTS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _note(self, event: TrainNote) -> None:
        self.notes.setText(f"Note: {event.message}")
        self.notes.show()

    def _download(self, event: DownloadProgress) -> None:
        self._say("Downloading the base model…")
        self._show_progress(event.done_bytes, event.total_bytes)

    def _examples(self, event: ExamplesProgress) -> None:
        self._say(f"Preparing pictures: {event.done} of {event.total}")
        self._show_progress(event.done, event.total)

    def _scoring(self, event: ScoringProgress) -> None:
        self._say(
            f"Scoring {_SCORING[event.which]} on held-out pictures: {event.done} of {event.total}"
        )
        self._show_progress(event.done, event.total)

    def _started(self, event: TrainingStarted) -> None:
        text = (
            f"Training {event.name!r}: {event.train_images} pictures, "
            f"{event.validation_images} held out, {event.boxes} boxes"
        )
        left_out = left_out_line(event.left_out)
        self._say(text + (f"; {left_out}" if left_out else ""))
        self.plot.set_steps(event.steps)
        self._show_progress(event.step, event.steps)

    def _step(self, event: TrainStep) -> None:
        self.plot.add(event.step, event.loss)
        self._show_progress(event.step, event.steps)
        self._say(
            f"Step {event.step} of {event.steps} · loss {event.loss:.3f} · "
            f"about {format_eta(event.eta_seconds)} left"
        )

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))

    @Slot(object)
    def on_ended(self, event: TrainFinished | TrainStopped | TrainFailed) -> None:
        """The run ended: saved, stopped (saved) or failed."""
        self._set_running(False)
        self.progress.setRange(0, 1)
        if isinstance(event, TrainFinished):
            self._finished = event
            self.progress.setValue(1)
            self._say(f"Saved adapter {event.info.name!r}. It is in the model list under its base.")
            self.report.setPlainText("\n".join(report_lines(event.info)))
            self.report.show()
            self.use_button.show()
            self.adaptersChanged.emit()
        elif isinstance(event, TrainStopped):
            saved = (
                f"Stopped at step {event.step} of {event.steps}; saved. Press Train to continue."
                if event.folder is not None
                else "Stopped before training began; nothing was saved."
            )
            self._say(saved)
            self._offer_resume()
        else:
            self._say(f"⚠ {event.message}")
            self._offer_resume()

    @Slot()
    def _use(self) -> None:
        if self._finished is not None:
            info = self._finished.info
            self.adapterChosen.emit(info.base.spec, info.name)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:  # Close is disabled while running; the window's close lands here
            self.runner.stop()
        super().closeEvent(event)


_EVENTS: dict[type, Callable[[TrainDialog, Any], None]] = {
    TrainNote: TrainDialog._note,
    DownloadProgress: TrainDialog._download,
    ExamplesProgress: TrainDialog._examples,
    ScoringProgress: TrainDialog._scoring,
    TrainingStarted: TrainDialog._started,
    TrainStep: TrainDialog._step,
}


class TrainAction(QObject):
    """The File menu's "Train on This Project…" and the one dialog it opens.

    Signals:
        adaptersChanged(): relayed from the dialog.
        adapterChosen(str, str): relayed from the dialog.
    """

    adaptersChanged = Signal()
    adapterChosen = Signal(str, str)

    def __init__(
        self,
        window: QWidget,
        project_now: Callable[[], Project],
        base_now: Callable[[], tuple[str, VisionSettings]],
        trainer: str = "real",
    ) -> None:
        super().__init__(window)
        self.window, self.project_now, self.base_now = window, project_now, base_now
        self.trainer = trainer
        self.dialog: TrainDialog | None = None
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)

    def install(self, add: Callable[..., QAction]) -> QAction:
        """Add the menu entry with the window's action factory ``add(menu, text, slot)``."""
        return add("&File", "&Train on This Project…", self.open)

    @Slot()
    def open(self) -> TrainDialog:
        """Show the dialog for the project open now (the running one if a run is going)."""
        project = self.project_now()
        dialog = self.dialog
        if dialog is None or (not dialog.running and dialog.project.root != project.root):
            if dialog is not None:
                dialog.deleteLater()
            base, vision = self.base_now()
            dialog = TrainDialog(project, base, vision, self.trainer, self.window)
            dialog.adaptersChanged.connect(self.adaptersChanged)
            dialog.adapterChosen.connect(self.adapterChosen)
            self.dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    @Slot()
    def stop(self) -> None:
        """End a run in progress (the app quits); the last saved step stays resumable."""
        if self.dialog is not None and self.dialog.running:
            self.dialog.runner.stop()
