"""Running an evaluation from the window: the core generator in a thread, events as signals.

::

    worker = EvalWorker(client.new_process, "auto")
    worker.event.connect(dialog.on_event)          # EvalStarted, AnswerScored, ...
    worker.done.connect(dialog.on_done)            # (EvalReport, Path | None)
    worker.start(EvalJob(project, "car", configs, sampling, vision))
    worker.cancel()                                # stops after the current token

The report is written to ``PROJECT/.lfmdesk/eval`` in the worker thread (never in a widget).
Every public signal is emitted on the GUI thread: the thread posts to a queued relay, so a
listener that is not a QObject slot (a lambda, a test's ``waitSignal``) never runs in the
worker thread, where touching Qt crashes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal, Slot

from lfmdesk.core import EngineProcess, LfmdeskError, Project, SamplingSettings, VisionSettings
from lfmdesk.core.evaluate._configs import EvalConfig
from lfmdesk.core.evaluate._report import write_report
from lfmdesk.core.evaluate._runner import EvalFinished, eval_folder, evaluate_project
from lfmdesk.core.live._session import ChatEngineLike
from lfmdesk.gui.evaluate._engines import ProcessEngine

__all__ = ["EvalJob", "EvalWorker"]


@dataclass(frozen=True)
class EvalJob:
    """What to evaluate (the dialog's choices)."""

    project: Project
    labels: str
    configs: Sequence[EvalConfig]
    sampling: SamplingSettings
    vision: VisionSettings


class EvalWorker(QObject):
    """Runs one evaluation at a time in a background thread.

    Args:
        new_process: makes an engine process like the window's (real or scripted).
        compute: the compute mode models are loaded with.

    Signals:
        event(object): each event of :func:`~lfmdesk.core.evaluate._runner.evaluate_project`.
        phase(str): what the engine is doing before answers come (loading, downloading).
        done(object, object): the EvalReport and the report.json written (None: nothing to
            write, the run was cancelled before a configuration finished).
        failed(str): the run stopped on an error (one line).
    """

    event = Signal(object)
    phase = Signal(str)
    done = Signal(object, object)
    failed = Signal(str)
    _posted = Signal(str, object)  # (signal name, args) from the thread, relayed on the GUI thread

    def __init__(
        self, new_process: Callable[[], EngineProcess], compute: str, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._new_process, self._compute = new_process, compute
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._posted.connect(self._relay, Qt.ConnectionType.QueuedConnection)

    @Slot(str, object)
    def _relay(self, name: str, args: object) -> None:
        getattr(self, name).emit(*args)

    def _post(self, name: str, *args: object) -> None:
        """Emit the public signal ``name`` on the GUI thread (called from the worker thread)."""
        try:
            self._posted.emit(name, args)
        except RuntimeError:  # the dialog (and this object) is gone: nobody is listening
            self._cancel.set()

    @property
    def running(self) -> bool:
        """An evaluation is in progress (or still stopping)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, job: EvalJob) -> bool:
        """Start ``job``; False when one is already running."""
        if self.running:
            return False
        self._cancel = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(job, self._cancel), name="lfmdesk-eval", daemon=True
        )
        self._thread.start()
        return True

    def cancel(self) -> None:
        """Stop after the current token; finished answers stay cached for the next run."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run has ended (window closing, tests)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _open(self, cancel: threading.Event) -> Callable[[str], ChatEngineLike]:
        def open_variant(variant: str) -> ChatEngineLike:
            return ProcessEngine.open(
                self._new_process, variant, self._compute, cancel, self._phase
            )

        return open_variant

    def _phase(self, text: str) -> None:
        self._post("phase", text)

    def _run(self, job: EvalJob, cancel: threading.Event) -> None:
        try:
            for event in evaluate_project(
                job.project,
                job.labels,
                job.configs,
                self._open(cancel),
                sampling=job.sampling,
                vision=job.vision,
                cancel=cancel,
            ):
                if isinstance(event, EvalFinished):
                    report = event.report
                    path: Path | None = None
                    if report.results:
                        path = write_report(report, eval_folder(job.project))[1]
                    self._post("done", report, path)
                else:
                    self._post("event", event)
        except LfmdeskError as exc:
            self._post("failed", "Evaluation cancelled" if cancel.is_set() else str(exc))
        except OSError as exc:
            self._post("failed", f"cannot write the report: {exc.strerror or exc}")
        except Exception as exc:  # the window must hear about it, never a silent thread death
            self._post("failed", f"evaluation failed: {type(exc).__name__}: {exc}")
