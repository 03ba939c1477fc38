"""The training child process as Qt signals (events read only when the pipe has data).

runner = TrainRunner("real")
runner.event.connect(dialog.on_event)    # TrainStep, ScoringProgress, ...
runner.ended.connect(dialog.on_ended)    # TrainFinished | TrainStopped | TrainFailed
runner.start(TrainRequest(project, ("car",), "8bit"))
runner.cancel()                          # stops after the current step; the run is saved
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QSocketNotifier, QTimer, Signal, Slot

from lfmdesk.core.train._loop import TrainFinished, TrainStopped
from lfmdesk.core.train._process import TrainFailed, TrainingProcess, TrainRequest

__all__ = ["TrainRunner"]

_ENDS = (TrainFinished, TrainStopped, TrainFailed)


class TrainRunner(QObject):
    """Runs one training request at a time in a child process.

    Signals:
        event(object): a progress event of the run.
        ended(object): the run's last event: TrainFinished, TrainStopped or TrainFailed.
    """

    event = Signal(object)
    ended = Signal(object)

    def __init__(self, trainer: str = "real", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._trainer = trainer
        self._proc: TrainingProcess | None = None
        self._notifier: QSocketNotifier | None = None
        self._watchdog = QTimer(self, interval=500)
        self._watchdog.timeout.connect(self._drain)

    @property
    def running(self) -> bool:
        """A run is in progress."""
        return self._proc is not None

    def start(self, request: TrainRequest) -> None:
        """Start a run in a fresh child process (returns at once)."""
        if self._proc is not None:
            raise RuntimeError("a training run is already in progress")
        self._proc = TrainingProcess(self._trainer)
        self._proc.start(request)
        self._notifier = QSocketNotifier(self._proc.fileno(), QSocketNotifier.Type.Read, self)
        self._notifier.activated.connect(self._drain)
        self._watchdog.start()

    @Slot()
    def cancel(self) -> None:
        """Stop after the current step; ``ended`` brings TrainStopped once it is saved."""
        if self._proc is not None:
            self._proc.cancel()

    def stop(self) -> None:
        """End the run now (the window closes): cancel, wait briefly for the save, kill."""
        if self._proc is not None:
            self._finish()

    @Slot()
    def _drain(self) -> None:
        proc = self._proc
        if proc is None:
            return
        alive = proc.is_alive()  # asked first: whatever a dead child sent is read below
        for item in proc.poll_events():
            if isinstance(item, _ENDS):
                self._finish()
                self.ended.emit(item)
                return
            self.event.emit(item)
        if not alive:
            self._finish()
            self.ended.emit(TrainFailed("the training process stopped unexpectedly"))

    def _finish(self) -> None:
        self._watchdog.stop()
        if self._notifier is not None:
            self._notifier.setEnabled(False)
            self._notifier.deleteLater()
            self._notifier = None
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
