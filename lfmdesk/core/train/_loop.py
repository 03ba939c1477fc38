"""Training an adapter: a plain generator of frozen progress events over mlx-vlm's trainer.

mlx-vlm's ``Trainer.train()`` runs to the end and reports through a callback; lfmdesk needs to
stop at any step, save and continue later, so the loop is here, built from mlx-vlm's own parts:
``prepare_model_for_training`` (LoRA on the language model, vision frozen), its supervised
loss, batch collation and gradient step. The examples come from the engine itself
(:meth:`~lfmdesk.core.Engine.training_example`), so the model learns on exactly the prompt,
tokens and tiling Detect sends. MLX stays on the consumer's thread::

    for event in train_adapter(plan_run(config), model_dir, cancel=stop):
        ...   # TrainNote, ExamplesProgress, ScoringProgress("base"), TrainStep...,
              # ScoringProgress("adapter"), TrainFinished -- or TrainStopped after ``stop``
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lfmdesk.core._errors import InputError
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.engine._chat import ChatRequest
from lfmdesk.core.engine._engine import Engine
from lfmdesk.core.images._load import LoadedImage, load_image
from lfmdesk.core.train._base import base_model
from lfmdesk.core.train._dataset import TrainingRow, TrainingSet, build_training_set
from lfmdesk.core.train._events import (
    ExamplesProgress,
    ScoringProgress,
    TrainEvent,
    TrainFinished,
    TrainingStarted,
    TrainNote,
    TrainStep,
    TrainStopped,
)
from lfmdesk.core.train._run import (
    OPTIMIZER,
    RunState,
    TrainConfig,
    load_checkpoint_rows,
    save_training_set,
)
from lfmdesk.core.train._score import ScoreProgress, ValidationScore, score_validation
from lfmdesk.core.train._steps import StepsOutcome, run_steps
from lfmdesk.core.train._store import (
    METADATA,
    TRAINING_DIR,
    AdapterInfo,
    BaseModel,
    adapter_folder,
    precision_text,
    read_state,
    utc_now,
    write_info,
)

__all__ = [
    "ExamplesProgress",
    "PlannedRun",
    "ScoringProgress",
    "TrainEvent",
    "TrainFinished",
    "TrainNote",
    "TrainStep",
    "TrainStopped",
    "TrainingStarted",
    "plan_resume",
    "plan_run",
    "train_adapter",
]

_LOSS_WINDOW = 10
_SCORE_SLACK = 32


@dataclass(frozen=True)
class PlannedRun:
    """A run whose input is checked and whose training set is built; no model needed yet.

    Attributes:
        config: the run's settings (a resumed run's saved ones).
        training: the training set (a resumed run's saved one).
        saved: the saved state of a resumed run, else None.
    """

    config: TrainConfig
    training: TrainingSet
    saved: RunState | None = None


def plan_run(config: TrainConfig) -> PlannedRun:
    """Check a new run's input and build its training set (fast: no model is loaded).

    Raises:
        InputError: the name is taken, or the project has no usable boxes.
    """
    folder = adapter_folder(config.name)
    if (folder / METADATA).exists():
        raise InputError(
            f"an adapter named {config.name!r} exists; choose another --name or remove it "
            f"(lfmdesk adapters remove {config.name})"
        )
    if folder.exists():
        raise InputError(
            f"an interrupted run named {config.name!r} exists: add --resume to continue it, "
            f"or remove it (lfmdesk adapters remove {config.name})"
        )
    training = build_training_set(
        Project(config.project), config.labels, validation_share=config.validation_share
    )
    return PlannedRun(config, training)


def plan_resume(name: str) -> PlannedRun:
    """The interrupted run called ``name``, with its saved settings and training set.

    Raises:
        InputError: no such run, it is finished, or its files are damaged.
    """
    folder = adapter_folder(name)
    if (folder / METADATA).exists():
        raise InputError(f"adapter {name!r} is finished: there is nothing to resume")
    if not read_state(folder):
        hint = f" (remove it: lfmdesk adapters remove {name})" if folder.exists() else ""
        raise InputError(f"nothing to resume: no interrupted run named {name!r}{hint}")
    state = RunState.read(folder)
    return PlannedRun(state.config, load_checkpoint_rows(folder, state), state)


def _cpu_note(base: BaseModel, engine: Engine) -> str | None:
    info = engine.info
    if info is None or info.device != "cpu" or info.compute_dtype != "float32":
        return None
    expanded = (
        f"its {precision_text(base.bits)} weights are expanded to float32; "
        if base.bits
        else "its bf16 weights are widened to float32; "
    )
    return (
        "training on the CPU in float32: "
        + expanded
        + "quantized weights train ~20x slower on a CPU. The adapter is for "
        + f"{base.name} ({precision_text(base.bits)})"
    )


def _picture(project: Project, row: TrainingRow) -> LoadedImage:
    image = load_image(project.image_path(row.image))
    if image.content_hash != row.content_hash:
        raise InputError(
            f"{row.image}: the picture changed since this run's training set was built; "
            "start a new run (without --resume)"
        )
    return image


Prepared = tuple[list[dict[str, Any]], list[dict[str, Any]], list[LoadedImage]]


def _prepare(
    engine: Engine,
    project: Project,
    training: TrainingSet,
    config: TrainConfig,
    stop: threading.Event,
) -> Generator[ExamplesProgress, None, Prepared | None]:
    """Every row as model inputs (train, validation) plus the held-out pictures; None if
    stopped. Raises InputError naming the first example longer than ``max_seq_length``."""
    rows = [*training.split("train"), *training.split("validation")]
    examples: list[dict[str, Any]] = []
    pictures: list[LoadedImage] = []
    too_long: list[tuple[str, int]] = []
    for done, row in enumerate(rows, 1):
        if stop.is_set():
            return None
        image = _picture(project, row)
        request = ChatRequest.single(row.prompt, [image], vision=config.vision)
        example = engine.training_example(request, row.answer)
        length = int(example["input_ids"].shape[0])
        if length > config.max_seq_length:
            too_long.append((row.image, length))
        examples.append(example)
        pictures.append(image)
        yield ExamplesProgress(done, len(rows))
    if too_long:
        raise _too_long_error(too_long, config.max_seq_length)
    n_train = len(training.split("train"))
    return examples[:n_train], examples[n_train:], pictures[n_train:]


def _too_long_error(too_long: Sequence[tuple[str, int]], limit: int) -> InputError:
    name, length = too_long[0]
    others = f" (and {len(too_long) - 1} more pictures)" if len(too_long) > 1 else ""
    need = -(-max(n for _, n in too_long) // 256) * 256
    return InputError(
        f"{name}: its example is {length} tokens, more than --max-seq-length {limit}{others}; "
        f"raise --max-seq-length to {need}, or make pictures cost fewer tokens "
        "(--max-image-tokens, --max-tiles or --no-image-splitting)"
    )


def _score(
    engine: Engine,
    which: Literal["base", "adapter"],
    training: TrainingSet,
    pictures: Sequence[LoadedImage],
    config: TrainConfig,
    stop: threading.Event,
) -> Generator[ScoringProgress, None, ValidationScore | None]:
    """The validation Detect score of the loaded model; None if stopped part-way."""
    rows = training.split("validation")
    items = [(r.image, p, r.prompt, r.answer) for r, p in zip(rows, pictures, strict=True)]
    budget = max(_answer_tokens(engine, r.answer) for r in rows) * 2 + _SCORE_SLACK
    for event in score_validation(engine, items, config.vision, cancel=stop, answer_tokens=budget):
        if isinstance(event, ScoreProgress):
            yield ScoringProgress(which, event.done, event.total)
        elif stop.is_set():
            return None
        else:
            return event
    return None  # pragma: no cover - score_validation always ends with the score


def _answer_tokens(engine: Engine, answer: str) -> int:
    _model, processor = engine.training_handles()
    tok = getattr(processor, "tokenizer", processor)
    return len(tok(answer, add_special_tokens=False)["input_ids"]) + 1


def train_adapter(
    plan: PlannedRun, model_dir: Path, *, cancel: threading.Event | None = None
) -> Iterator[TrainEvent]:
    """Train the planned run on the base in ``model_dir`` (or resume it), yielding progress.

    Nothing is written until every example fits; from then on the run is saved every
    ``config.save_every`` steps and when ``cancel`` is set, and a resumed run
    (:func:`plan_resume`) continues from the last saved step with the same pictures in the
    same order.

    Args:
        plan: from :func:`plan_run` or :func:`plan_resume`.
        model_dir: the base model's folder (downloaded).
        cancel: set it to stop after the current step (or picture) and save.

    Yields:
        ``TrainNote`` (CPU), ``ExamplesProgress``, ``ScoringProgress("base")``,
        ``TrainingStarted``, ``TrainStep`` per step, ``ScoringProgress("adapter")`` and
        ``TrainFinished``; or ``TrainStopped`` once ``cancel`` is set.

    Raises:
        InputError: an example too long, another base or a changed picture on resume:
            nothing is written then.
    """
    stop = cancel or threading.Event()
    config, training, resume = plan.config, plan.training, plan.saved is not None
    base = base_model(config.model, model_dir)
    if plan.saved is not None and plan.saved.base.content_hash != base.content_hash:
        raise InputError(
            f"run {config.name!r} trains {plan.saved.base.name}; resume it with --model "
            f"{plan.saved.base.spec}"
        )
    state = plan.saved or RunState(config, base, digest=training.digest())
    folder = adapter_folder(config.name)
    saved = folder if resume else None
    engine = Engine(compute=config.compute)
    engine.load(model_dir)
    try:
        note = _cpu_note(base, engine)
        if note:
            yield TrainNote(note)
        prepared = yield from _prepare(engine, Project(config.project), training, config, stop)
        if prepared is None:
            yield TrainStopped(state.step, config.steps, saved)
            return
        train_examples, val_examples, val_pictures = prepared
        if config.evaluate and state.base_score is None and val_examples:
            score = yield from _score(engine, "base", training, val_pictures, config, stop)
            if score is None:
                yield TrainStopped(state.step, config.steps, saved)
                return
            state = dataclasses.replace(state, base_score=score)
        if not resume:
            save_training_set(folder, training)
        yield TrainingStarted(
            config.name,
            folder,
            len(train_examples),
            len(val_examples),
            training.boxes,
            training.left_out,
            state.step,
            config.steps,
            max(int(e["input_ids"].shape[0]) for e in [*train_examples, *val_examples]),
        )
        outcome = yield from run_steps(engine, folder, state, train_examples, val_examples, stop)
    finally:
        engine.unload()
    if outcome.stopped:
        yield TrainStopped(outcome.state.step, config.steps, folder)
        return
    yield from _finish(model_dir, folder, outcome, training, val_pictures, stop)


def _finish(
    model_dir: Path,
    folder: Path,
    outcome: StepsOutcome,
    training: TrainingSet,
    pictures: Sequence[LoadedImage],
    stop: threading.Event,
) -> Iterator[TrainEvent]:
    state = outcome.state
    config = state.config
    adapter_score = None
    if config.evaluate and pictures:
        engine = Engine(compute=config.compute)
        engine.load(model_dir, adapter=folder)  # the way every user of the adapter loads it
        try:
            adapter_score = yield from _score(engine, "adapter", training, pictures, config, stop)
        finally:
            engine.unload()
    recent = [loss for _, loss in state.losses[-_LOSS_WINDOW:]]
    info = AdapterInfo(
        name=config.name,
        base=state.base,
        prompt=training.prompt,
        labels=config.labels,
        vision=config.vision,
        train_images=len(training.split("train")),
        validation_images=len(training.split("validation")),
        boxes=training.boxes,
        steps=config.steps,
        rank=config.rank,
        learning_rate=config.learning_rate,
        compute_dtype=outcome.compute_dtype,
        train_loss=sum(recent) / len(recent) if recent else None,
        validation_loss=outcome.validation_loss,
        created=utc_now(),
        project=str(config.project),
        base_score=state.base_score,
        adapter_score=adapter_score,
    )
    (folder / TRAINING_DIR / OPTIMIZER).unlink(missing_ok=True)  # only a resume needs it
    write_info(folder, info)
    yield TrainFinished(info, folder)
