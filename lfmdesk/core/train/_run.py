"""One training run's settings and its saved state: what ``--resume`` continues from.

A run lives in its adapter's folder (see ``_store``)::

    NAME/adapters.safetensors, adapter_config.json     the weights so far (mlx-vlm's format)
    NAME/training/state.json                            settings, step, losses, base score
    NAME/training/optimizer.safetensors                 the optimizer's moments at that step
    NAME/training/train.jsonl, validation.jsonl         the training set, as built

The state is written last and atomically, after the weights and moments of the same step, so
an interrupted save leaves the previous step's checkpoint whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfmdesk.core._atomic import write_bytes_atomic, write_text_atomic
from lfmdesk.core._errors import InputError, SettingsError
from lfmdesk.core._settings import VisionSettings
from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.core.train._dataset import (
    DEFAULT_VALIDATION_SHARE,
    Split,
    TrainingRow,
    TrainingSet,
)
from lfmdesk.core.train._score import ValidationScore
from lfmdesk.core.train._store import (
    MLX_CONFIG,
    STATE,
    TRAINING_DIR,
    WEIGHTS,
    BaseModel,
    read_state,
)

__all__ = [
    "LORA_ALPHA",
    "RunState",
    "TrainConfig",
    "load_checkpoint_rows",
    "save_checkpoint",
    "save_training_set",
]

SCHEMA_VERSION = 1
LORA_ALPHA = 16.0  # mlx-vlm's default; the update's scale is alpha / rank
OPTIMIZER = "optimizer.safetensors"
_SPLIT_FILES: dict[Split, str] = {"train": "train.jsonl", "validation": "validation.jsonl"}
_LIMITS: dict[str, tuple[float, float]] = {
    "steps": (1, 1_000_000),
    "rank": (1, 256),
    "learning_rate": (1e-7, 1.0),
    "max_seq_length": (64, 65_536),
    "validation_share": (0.0, 0.9),
}


@dataclass(frozen=True)
class TrainConfig:
    """What one run trains, on what, and how.

    Attributes:
        project: the project folder whose boxes are learned.
        labels: the labels taught (the Detect prompt lists them).
        model: the base model as the user named it ("8bit", a repo id or a folder).
        name: the adapter's name in the store.
        steps: optimizer steps (one picture each).
        rank: LoRA rank.
        learning_rate: AdamW's learning rate (constant).
        max_seq_length: longest example in tokens; a longer one is an error, never cut.
        vision: the tiling, exactly as Detect will use it.
        validation_share: the share of pictures held out and scored.
        seed: the adapter's initial weights and the order pictures are seen in.
        compute: the engine's compute mode ("auto": float32 on CPU).
        evaluate: score base and adapter on the held-out pictures.
        save_every: steps between checkpoints (Ctrl-C always saves too).
    """

    project: Path
    labels: tuple[str, ...]
    model: str
    name: str
    steps: int = 200
    rank: int = 8
    learning_rate: float = 2e-4
    max_seq_length: int = 2048
    vision: VisionSettings = field(default_factory=VisionSettings)
    validation_share: float = DEFAULT_VALIDATION_SHARE
    seed: int = 0
    compute: ComputeMode = "auto"
    evaluate: bool = True
    save_every: int = 25

    def __post_init__(self) -> None:
        for name, (low, high) in _LIMITS.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise SettingsError(f"{name} must be a number, not {value!r}")
            if not low <= value <= high:
                raise SettingsError(f"{name} must be between {low:g} and {high:g}, not {value}")
        if not self.labels:
            raise InputError('no labels to learn: give some, e.g. --labels "car, person"')

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (saved with the run)."""
        data = dataclasses.asdict(self)
        data.update(project=str(self.project), labels=list(self.labels))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Read :meth:`to_dict`'s output; unknown keys are ignored.

        Raises:
            InputError: damaged settings.
        """
        try:
            names = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in data.items() if k in names}
            vision_names = {f.name for f in dataclasses.fields(VisionSettings)}
            values["vision"] = VisionSettings(
                **{k: v for k, v in data["vision"].items() if k in vision_names}
            )
            values["project"] = Path(data["project"])
            values["labels"] = tuple(str(x) for x in data["labels"])
            return cls(**values)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"damaged training run settings ({exc})") from None


@dataclass(frozen=True)
class RunState:
    """Where a run stands (``training/state.json``).

    Attributes:
        config: the run's settings.
        base: the base model it trains on.
        step: steps done and saved.
        losses: ``(step, loss)`` for every step done.
        base_score: the base model's validation score, once measured.
        seconds: time spent training so far.
        digest: the training set's digest (see :meth:`TrainingSet.digest`).
    """

    config: TrainConfig
    base: BaseModel
    step: int = 0
    losses: tuple[tuple[int, float], ...] = ()
    base_score: ValidationScore | None = None
    seconds: float = 0.0
    digest: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; ``steps`` and ``project`` are repeated for ``adapters list``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "step": self.step,
            "steps": self.config.steps,
            "project": str(self.config.project),
            "config": self.config.to_dict(),
            "base": dataclasses.asdict(self.base),
            "losses": [[s, round(v, 6)] for s, v in self.losses],
            "base_score": self.base_score.to_dict() if self.base_score else None,
            "seconds": round(self.seconds, 3),
            "digest": self.digest,
        }

    @classmethod
    def read(cls, folder: Path) -> RunState:
        """The saved state of the run in ``folder``.

        Raises:
            InputError: there is none, or it is damaged.
        """
        data = read_state(folder)
        if not data:
            raise InputError(f"nothing to resume in {folder}: no saved training state")
        try:
            base = {f.name: data["base"][f.name] for f in dataclasses.fields(BaseModel)}
            score = data.get("base_score")
            return cls(
                config=TrainConfig.from_dict(data["config"]),
                base=BaseModel(**base),
                step=int(data["step"]),
                losses=tuple((int(s), float(v)) for s, v in data["losses"]),
                base_score=ValidationScore.from_dict(score) if score else None,
                seconds=float(data.get("seconds", 0.0)),
                digest=str(data.get("digest", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{folder}: damaged training state ({exc})") from None


def save_training_set(folder: Path, training: TrainingSet) -> None:
    """Write both sides of the split into the run's ``training/`` folder."""
    for which, name in _SPLIT_FILES.items():
        write_bytes_atomic(folder / TRAINING_DIR / name, training.jsonl(which))


def load_checkpoint_rows(folder: Path, state: RunState) -> TrainingSet:
    """The training set a run was started with, as saved (rows in their saved order).

    Raises:
        InputError: the files are missing or damaged.
    """
    rows: list[TrainingRow] = []
    for name in _SPLIT_FILES.values():
        path = folder / TRAINING_DIR / name
        try:
            lines = path.read_text("utf-8").splitlines()
        except OSError as exc:
            raise InputError(f"{path}: cannot read the saved training set ({exc})") from None
        for line in lines:
            try:
                rows.append(TrainingRow.from_dict(json.loads(line)))
            except ValueError as exc:
                raise InputError(f"{path}: damaged training set ({exc})") from None
    labels = state.config.labels
    return TrainingSet(labels, rows[0].prompt if rows else "", tuple(rows))


def _save_arrays(path: Path, arrays: dict[str, Any]) -> None:
    import mlx.core as mx

    # mx.save_safetensors writes in place: write a temp file, then rename over the old one.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".safetensors", dir=path.parent)
    os.close(fd)
    try:
        mx.save_safetensors(tmp, arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_checkpoint(
    folder: Path, state: RunState, weights: dict[str, Any], lora: dict[str, Any], moments: Any
) -> None:
    """Save one step: weights, mlx-vlm's adapter config, optimizer moments, then the state.

    Args:
        folder: the adapter's folder.
        state: the state at this step.
        weights: the trainable arrays by name (``tree_flatten(trainable_parameters())``).
        lora: mlx-vlm's adapter config (rank, scale, layer keys, base quantization).
        moments: ``dict(tree_flatten(optimizer.state))``, or None to keep none.
    """
    (folder / TRAINING_DIR).mkdir(parents=True, exist_ok=True)
    _save_arrays(folder / WEIGHTS, weights)
    write_text_atomic(folder / MLX_CONFIG, json.dumps(lora, indent=2, sort_keys=True) + "\n")
    if moments is not None:
        _save_arrays(folder / TRAINING_DIR / OPTIMIZER, moments)
    text = json.dumps(state.to_dict(), ensure_ascii=False, indent=1) + "\n"
    write_text_atomic(folder / TRAINING_DIR / STATE, text)
