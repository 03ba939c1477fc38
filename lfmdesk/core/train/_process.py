"""Training in a child process, for the window: MLX never runs in the GUI process.

The window sends one :class:`TrainRequest`; the child plans the run, makes sure the base model
is on disk, trains with :func:`train_adapter` and sends every event back, then exits. Cancel
asks it to stop after the current step (the run is saved); a child that dies or fails sends
:class:`TrainFailed` (or the pipe closes), never a traceback::

    proc = TrainingProcess()
    proc.start(TrainRequest(project, ("car",), "8bit", steps=200))
    ...                    # watch proc.fileno(); proc.poll_events() -> TrainStep, ...
    proc.cancel()          # -> TrainStopped
    proc.stop()
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

from lfmdesk.core._errors import LfmdeskError, one_line
from lfmdesk.core._settings import VisionSettings
from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.models._download import DownloadDone, DownloadProgress
from lfmdesk.core.models._store import ensure_model, resolve_model
from lfmdesk.core.train._loop import TrainEvent, plan_resume, plan_run, train_adapter
from lfmdesk.core.train._run import TrainConfig
from lfmdesk.core.train._store import new_adapter_name

__all__ = [
    "TRAINERS",
    "TrainFailed",
    "TrainRequest",
    "TrainingProcess",
    "TrainingProcessEvent",
]

_CANCEL = "cancel"
_MESSAGE_LIMIT = 400


@dataclass(frozen=True)
class TrainRequest:
    """What the window asks for (picklable).

    Attributes:
        project: the project folder.
        labels: the labels to teach.
        model: the base model spec ("8bit", a repo id or a folder).
        steps: training steps.
        name: the adapter's name; "" picks one from the project folder's name.
        resume: continue the interrupted run ``name`` instead (its saved settings win).
        vision: the tiling Detect uses.
        rank: LoRA rank.
        learning_rate: the learning rate.
        compute: the engine's compute mode.
    """

    project: Path
    labels: tuple[str, ...]
    model: str
    steps: int = 200
    name: str = ""
    resume: bool = False
    vision: VisionSettings = field(default_factory=VisionSettings)
    rank: int = 8
    learning_rate: float = 2e-4
    compute: ComputeMode = "auto"


@dataclass(frozen=True)
class TrainFailed:
    """The run could not start or stopped on an error; ``message`` is one line."""

    message: str


TrainingProcessEvent = TrainEvent | DownloadProgress | TrainFailed
Trainer = Callable[[TrainRequest, threading.Event], Iterator[TrainEvent | DownloadProgress]]


def _train_real(
    request: TrainRequest, cancel: threading.Event
) -> Iterator[TrainEvent | DownloadProgress]:
    if request.resume:
        plan = plan_resume(request.name)
    else:
        config = TrainConfig(
            project=request.project,
            labels=request.labels,
            model=request.model,
            name=request.name or new_adapter_name(request.project),
            steps=request.steps,
            rank=request.rank,
            learning_rate=request.learning_rate,
            vision=request.vision,
            compute=request.compute,
        )
        plan = plan_run(config)
    folder = None
    for event in ensure_model(resolve_model(plan.config.model), cancel=cancel):
        if isinstance(event, DownloadDone):
            folder = event.path
        else:
            yield event
    if folder is None:
        raise LfmdeskError(f"{plan.config.model}: the download was cancelled")
    yield from train_adapter(plan, folder, cancel=cancel)


def _train_scripted(
    request: TrainRequest, cancel: threading.Event
) -> Iterator[TrainEvent | DownloadProgress]:
    from lfmdesk.core.testing._scripted_train import scripted_training

    return scripted_training(request, cancel)


TRAINERS: dict[str, Trainer] = {"real": _train_real, "scripted": _train_scripted}


def _watch_for_cancel(conn: Connection, cancel: threading.Event) -> None:
    with contextlib.suppress(EOFError, OSError):
        while conn.recv() != _CANCEL:
            pass
    cancel.set()  # Cancel, or the window went away: stop and save either way


def _serve(conn: Connection, trainer: str, request: TrainRequest) -> None:
    """The child's main: train, sending every event, then exit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in the terminal is the window's
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # like the engine process: the window stays responsive on a CPU
    cancel = threading.Event()
    threading.Thread(target=_watch_for_cancel, args=(conn, cancel), daemon=True).start()
    try:
        for event in TRAINERS[trainer](request, cancel):
            conn.send(event)
    except LfmdeskError as exc:
        conn.send(TrainFailed(one_line(str(exc), _MESSAGE_LIMIT)))
    except Exception as exc:  # an MLX or mlx-vlm failure: one line, the window carries on
        conn.send(TrainFailed(one_line(f"{type(exc).__name__}: {exc}", _MESSAGE_LIMIT)))
    finally:
        conn.close()


class TrainingProcess:
    """The window's handle on one training run in a child process (Qt-free).

    Args:
        trainer: "real" (MLX) or "scripted" (tests and screenshots: fast, fake losses).
    """

    def __init__(self, trainer: str = "real") -> None:
        if trainer not in TRAINERS:
            raise ValueError(f"unknown trainer {trainer!r}")
        self._trainer = trainer
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def start(self, request: TrainRequest) -> None:
        """Spawn the child and send it ``request`` (returns at once)."""
        if self._process is not None:
            raise RuntimeError("this training process was already started")
        ctx = multiprocessing.get_context("spawn")
        mine, theirs = ctx.Pipe(duplex=True)
        self._process = ctx.Process(
            target=_serve, args=(theirs, self._trainer, request), name="lfmdesk-train", daemon=True
        )
        self._process.start()
        theirs.close()
        self._conn = mine

    def fileno(self) -> int:
        """The pipe's descriptor: readable when events (or the end) are waiting."""
        if self._conn is None:
            raise RuntimeError("the training process is not started")
        return self._conn.fileno()

    def poll_events(self, timeout: float = 0.0) -> list[TrainingProcessEvent]:
        """Every event available now (waiting up to ``timeout`` for the first)."""
        events: list[TrainingProcessEvent] = []
        conn = self._conn
        if conn is None or conn.closed:
            return events
        with contextlib.suppress(EOFError, OSError):
            while conn.poll(timeout if not events else 0.0):
                events.append(conn.recv())
        return events

    def is_alive(self) -> bool:
        """Whether the child still runs."""
        return self._process is not None and self._process.is_alive()

    def cancel(self) -> None:
        """Ask the run to stop after the current step and save."""
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(_CANCEL)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancel, wait up to ``timeout`` seconds for the save, then kill; close the pipe."""
        if self._process is None:
            return
        if self._process.is_alive():
            self.cancel()
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        if self._conn is not None:
            self._conn.close()
