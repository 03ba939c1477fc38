"""The events a training run yields: plain, frozen, picklable (they cross the process pipe)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lfmdesk.core.train._store import AdapterInfo

__all__ = [
    "ExamplesProgress",
    "ScoringProgress",
    "TrainEvent",
    "TrainFinished",
    "TrainNote",
    "TrainStep",
    "TrainStopped",
    "TrainingStarted",
]


@dataclass(frozen=True)
class TrainNote:
    """Something the user should know about this run (e.g. how it computes on CPU)."""

    message: str


@dataclass(frozen=True)
class ExamplesProgress:
    """Pictures turned into model inputs so far."""

    done: int
    total: int


@dataclass(frozen=True)
class ScoringProgress:
    """Held-out pictures answered so far by the base model or the adapter."""

    which: Literal["base", "adapter"]
    done: int
    total: int


@dataclass(frozen=True)
class TrainingStarted:
    """The training set is ready and the first (or next) step is about to run.

    Attributes:
        name: the adapter's name.
        folder: its folder in the store.
        train_images: pictures trained on.
        validation_images: pictures held out.
        boxes: boxes in the training set.
        left_out: ``(image, why)`` for project images not used.
        step: steps already done (non-zero when resuming).
        steps: steps asked for.
        longest: the longest example in tokens (picture, prompt and answer).
    """

    name: str
    folder: Path
    train_images: int
    validation_images: int
    boxes: int
    left_out: tuple[tuple[str, str], ...]
    step: int
    steps: int
    longest: int = 0


@dataclass(frozen=True)
class TrainStopped:
    """Stopped on request; ``step`` steps are saved (none when ``folder`` is None)."""

    step: int
    steps: int
    folder: Path | None


@dataclass(frozen=True)
class TrainFinished:
    """The adapter is saved and scored."""

    info: AdapterInfo
    folder: Path


@dataclass(frozen=True)
class TrainStep:
    """One step done.

    Attributes:
        step: steps done so far (1-based).
        steps: steps asked for.
        loss: this step's loss (mean over the answer's tokens).
        seconds_per_step: recent average.
        eta_seconds: the steps left at that pace.
        seconds: this step alone.
    """

    step: int
    steps: int
    loss: float
    seconds_per_step: float
    eta_seconds: float
    seconds: float = 0.0


TrainEvent = (
    TrainNote
    | ExamplesProgress
    | ScoringProgress
    | TrainingStarted
    | TrainStep
    | TrainStopped
    | TrainFinished
)
