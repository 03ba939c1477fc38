"""The adapter store: trained adapters in lfmdesk's data folder, their metadata, the base check.

Layout::

    data_dir()/adapters/
        NAME/
            adapters.safetensors     the LoRA weights (mlx-vlm's format)
            adapter_config.json      mlx-vlm's adapter settings (rank, scale, layers)
            lfmdesk-adapter.json     lfmdesk's metadata; written last: the adapter is complete
            training/                the run: state.json, the training set, resume state
        .base-fingerprints.json      content hashes of base model folders, by size and mtime

An adapter belongs to one base model: the metadata keeps its name, folder and a content hash
of its files (``_base`` computes it and refuses any other base before anything loads).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core._settings import VisionSettings
from lfmdesk.core.chat._store import data_dir
from lfmdesk.core.models._verify import safetensors_problem
from lfmdesk.core.train._score import ValidationScore

__all__ = [
    "METADATA",
    "MLX_CONFIG",
    "TRAINING_DIR",
    "WEIGHTS",
    "AdapterEntry",
    "AdapterInfo",
    "BaseModel",
    "adapter_folder",
    "adapters_dir",
    "find_adapter",
    "interrupted_runs",
    "list_adapters",
    "new_adapter_name",
    "precision_text",
    "read_info",
    "remove_adapter",
    "write_info",
]

SCHEMA_VERSION = 1
WEIGHTS = "adapters.safetensors"
MLX_CONFIG = "adapter_config.json"
METADATA = "lfmdesk-adapter.json"
TRAINING_DIR = "training"
STATE = "state.json"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def adapters_dir() -> Path:
    """Where adapters live: ``data_dir()/adapters``."""
    return data_dir() / "adapters"


def precision_text(bits: int | None) -> str:
    """ "8-bit" or "bf16": how messages name a base's precision."""
    return f"{bits}-bit" if bits else "bf16"


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"adapter name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def adapter_folder(name: str) -> Path:
    """The folder of the adapter called ``name`` (it may not exist yet).

    Raises:
        InputError: the name could name a path outside the store.
    """
    return adapters_dir() / _check_name(name)


# --- metadata -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseModel:
    """The model an adapter was trained on.

    Attributes:
        name: repo id for a Hugging Face cache snapshot, else the folder's name.
        spec: what ``--model`` and the model bar call it ("8bit" or a folder path).
        folder: where it was when training ran.
        content_hash: :func:`base_fingerprint` of that folder.
        bits: quantization bits, None for bf16.
    """

    name: str
    spec: str
    folder: str
    content_hash: str
    bits: int | None


@dataclass(frozen=True)
class AdapterInfo:
    """What ``lfmdesk-adapter.json`` says about an adapter.

    Attributes:
        name: the adapter's name (its folder's name).
        base: the model it belongs to.
        prompt: the Detect prompt it was trained on.
        labels: the labels it was taught.
        vision: the tiling it was trained with (use the same for the best results).
        train_images: pictures trained on.
        validation_images: pictures held out and scored.
        boxes: boxes in the training set (both sides).
        steps: training steps.
        rank: LoRA rank.
        learning_rate: the optimizer's learning rate.
        compute_dtype: what training computed in ("float32" on CPU).
        train_loss: mean loss over the last steps.
        validation_loss: loss on the held-out pictures at the end.
        created: when training finished (UTC, ISO 8601).
        project: the project folder the boxes came from.
        base_score: the validation Detect score of the base model.
        adapter_score: the same with the adapter.
    """

    name: str
    base: BaseModel
    prompt: str
    labels: tuple[str, ...]
    vision: VisionSettings
    train_images: int
    validation_images: int
    boxes: int
    steps: int
    rank: int
    learning_rate: float
    compute_dtype: str
    train_loss: float | None
    validation_loss: float | None
    created: str
    project: str
    base_score: ValidationScore | None = None
    adapter_score: ValidationScore | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document saved as ``lfmdesk-adapter.json`` (with ``schema_version``)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["base"] = dataclasses.asdict(self.base)
        data["labels"] = list(self.labels)
        data["vision"] = dataclasses.asdict(self.vision)
        for key in ("base_score", "adapter_score"):
            score = getattr(self, key)
            data[key] = score.to_dict() if score is not None else None
        return {"schema_version": SCHEMA_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdapterInfo:
        """Read :meth:`to_dict`'s output; unknown keys are ignored.

        Raises:
            InputError: a field is missing or has the wrong type.
        """
        try:
            names = {f.name for f in dataclasses.fields(cls)}
            values = {k: v for k, v in data.items() if k in names}
            base = {f.name: data["base"][f.name] for f in dataclasses.fields(BaseModel)}
            vision_names = {f.name for f in dataclasses.fields(VisionSettings)}
            values["base"] = BaseModel(**base)
            values["labels"] = tuple(str(x) for x in data["labels"])
            values["vision"] = VisionSettings(
                **{k: v for k, v in data["vision"].items() if k in vision_names}
            )
            for key in ("base_score", "adapter_score"):
                raw = data.get(key)
                values[key] = ValidationScore.from_dict(raw) if raw else None
            return cls(**values)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError(f"not an lfmdesk adapter ({type(exc).__name__}: {exc})") from None


def utc_now() -> str:
    """The time now, as the metadata writes it."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def write_info(folder: Path, info: AdapterInfo) -> None:
    """Save the metadata atomically (the last file of a finished adapter)."""
    text = json.dumps(info.to_dict(), ensure_ascii=False, indent=1)
    write_text_atomic(folder / METADATA, text + "\n")


def _regular_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def read_info(folder: Path) -> AdapterInfo:
    """The metadata of the adapter in ``folder``.

    Raises:
        InputError: missing, not a regular file, or damaged.
    """
    path = folder / METADATA
    if not _regular_file(path):
        raise InputError(f"{folder}: not a finished lfmdesk adapter ({METADATA} is missing)")
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an lfmdesk adapter")
    return AdapterInfo.from_dict(data)


def read_state(folder: Path) -> dict[str, Any]:
    """The saved training state of a run (``{}`` when there is none or it is damaged)."""
    path = folder / TRAINING_DIR / STATE
    try:
        data = json.loads(path.read_text("utf-8")) if _regular_file(path) else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --- listing and removing -----------------------------------------------------------------


@dataclass(frozen=True)
class AdapterEntry:
    """One folder of the store.

    Attributes:
        name: the adapter's name.
        folder: its folder.
        info: the metadata of a finished adapter, else None.
        step: for an unfinished run, the last saved step.
        steps: for an unfinished run, the steps it was asked for.
        problem: why a folder is neither (damaged metadata), else "".
    """

    name: str
    folder: Path
    info: AdapterInfo | None
    step: int = 0
    steps: int = 0
    problem: str = ""


def list_adapters() -> list[AdapterEntry]:
    """Every adapter and interrupted run in the store, by name."""
    root = adapters_dir()
    entries = []
    for folder in sorted(root.iterdir() if root.is_dir() else (), key=lambda p: p.name.lower()):
        if folder.is_symlink() or not folder.is_dir() or not _NAME.fullmatch(folder.name):
            continue
        if (folder / METADATA).exists():
            try:
                entries.append(AdapterEntry(folder.name, folder, read_info(folder)))
            except InputError as exc:
                entries.append(AdapterEntry(folder.name, folder, None, problem=str(exc)))
            continue
        state = read_state(folder)
        step, steps = int(state.get("step", 0) or 0), int(state.get("steps", 0) or 0)
        entries.append(AdapterEntry(folder.name, folder, None, step, steps))
    return entries


def remove_adapter(name: str) -> Path:
    """Delete the adapter (or interrupted run) called ``name``; returns its folder.

    Raises:
        InputError: no such adapter.
    """
    folder = adapter_folder(name)
    if folder.is_symlink() or not folder.is_dir():
        raise InputError(f"no adapter named {name!r}; see lfmdesk adapters list")
    shutil.rmtree(folder)
    return folder


def find_adapter(name_or_folder: str | Path) -> Path:
    """The folder of an adapter given by name (the store) or by folder path.

    Raises:
        InputError: nothing there, or it is not a finished adapter (an interrupted run says
            how to resume it).
    """
    text = str(name_or_folder)
    looks_like_path = isinstance(name_or_folder, Path) or "/" in text or text.startswith(".")
    folder = Path(text).expanduser() if looks_like_path else adapter_folder(text)
    if folder.is_symlink() or not folder.is_dir():
        raise InputError(f"no adapter named {text!r}; see lfmdesk adapters list")
    if not (folder / METADATA).exists():
        state = read_state(folder)
        if state:
            raise InputError(
                f"adapter {text!r} is not finished (training stopped at step "
                f"{state.get('step', 0)}/{state.get('steps', '?')}); resume it with lfmdesk "
                f"train {state.get('project', 'PROJECT')} --name {folder.name} --resume"
            )
    for name in (WEIGHTS, MLX_CONFIG):
        if not _regular_file(folder / name):
            raise InputError(f"{folder}: not an adapter ({name} is missing)")
    problem = safetensors_problem(folder / WEIGHTS)
    if problem:
        raise InputError(f"{folder / WEIGHTS}: {problem}")
    return folder.resolve()


# --- names for new runs -------------------------------------------------------------------


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:56]
    return slug or "adapter"


def interrupted_runs(project: Path) -> list[str]:
    """Names of the unfinished runs that train on the project at ``project``."""
    root = project.resolve()
    return [
        e.name
        for e in list_adapters()
        if e.info is None
        and not e.problem
        and Path(str(read_state(e.folder).get("project", ""))).resolve() == root
    ]


def new_adapter_name(project: Path) -> str:
    """A free name for a new adapter of ``project``: its folder's name, numbered if taken."""
    base = _slug(project.resolve().name)
    name, number = base, 1
    while adapter_folder(name).exists():
        number += 1
        name = f"{base}-{number}"
    return name
