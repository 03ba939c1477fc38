"""A scripted training run: the events of ``train_adapter`` at test speed, without MLX.

The window's train dialog and model bar are tested against it (``TrainingProcess("scripted")``):
the loss falls along a fixed curve, Cancel stops at the next step, and a finished run writes a
real ``lfmdesk-adapter.json`` into the adapter store, so the model bar lists it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import grounding_prompt
from lfmdesk.core.models._download import DownloadProgress
from lfmdesk.core.train._loop import (
    ExamplesProgress,
    ScoringProgress,
    TrainEvent,
    TrainFinished,
    TrainingStarted,
    TrainNote,
    TrainStep,
    TrainStopped,
)
from lfmdesk.core.train._score import ValidationScore
from lfmdesk.core.train._store import (
    AdapterInfo,
    BaseModel,
    adapter_folder,
    new_adapter_name,
    utc_now,
    write_info,
)

if TYPE_CHECKING:
    from lfmdesk.core.train._process import TrainRequest

__all__ = ["SCRIPTED_STEP_DELAY", "scripted_loss", "scripted_training"]

SCRIPTED_STEP_DELAY = 0.03
_PICTURES = (8, 2)


def scripted_loss(step: int) -> float:
    """The loss the scripted run reports at ``step``: 4 falling towards 0.5."""
    return 0.5 + 3.5 * math.exp(-step / 15)


def scripted_training(
    request: TrainRequest, cancel: threading.Event, *, step_delay: float = SCRIPTED_STEP_DELAY
) -> Iterator[TrainEvent | DownloadProgress]:
    """Pretend to train ``request``; labels containing "fail" raise an InputError."""
    if any("fail" in label for label in request.labels):
        raise InputError(f"{request.project}: no image has boxes (scripted failure)")
    name = request.name or new_adapter_name(request.project)
    folder = adapter_folder(name)
    yield TrainNote("scripted training: no model runs")
    for done in range(1, sum(_PICTURES) + 1):
        yield ExamplesProgress(done, sum(_PICTURES))
    yield TrainingStarted(name, folder, *_PICTURES, 10, (), 0, request.steps)
    for step in range(1, request.steps + 1):
        if cancel.is_set():
            yield TrainStopped(step - 1, request.steps, folder)
            return
        time.sleep(step_delay)
        yield TrainStep(step, request.steps, scripted_loss(step), step_delay, 0.0)
    for done in range(1, _PICTURES[1] + 1):
        yield ScoringProgress("adapter", done, _PICTURES[1])
    info = _info(request, name)
    write_info(folder, info)
    yield TrainFinished(info, folder)


def _info(request: TrainRequest, name: str) -> AdapterInfo:
    base = BaseModel(request.model, request.model, request.model, "0" * 64, None)
    return AdapterInfo(
        name=name,
        base=base,
        prompt=grounding_prompt(request.labels),
        labels=request.labels,
        vision=request.vision,
        train_images=_PICTURES[0],
        validation_images=_PICTURES[1],
        boxes=10,
        steps=request.steps,
        rank=request.rank,
        learning_rate=request.learning_rate,
        compute_dtype="float32",
        train_loss=scripted_loss(request.steps),
        validation_loss=scripted_loss(request.steps) + 0.1,
        created=utc_now(),
        project=str(request.project),
        base_score=ValidationScore(2, 1, 2, 0, 0, 0, 1.0),
        adapter_score=ValidationScore(2, 2, 2, 2, 1, 0, 1.0),
    )
