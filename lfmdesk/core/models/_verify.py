"""Checks a model folder must pass before lfmdesk loads it, and what the loader may read from it.

A model folder is data, never code. It passes when it is a complete LFM2-VL checkpoint:
``config.json`` names an LFM2-VL model, every weight file named by the index (or, without an
index, every top-level ``*.safetensors``) is a complete safetensors file, no download is still
in progress and no file asks for ``trust_remote_code``. Every file lfmdesk reads must be a
regular file (a FIFO named ``config.json`` would hang the reader) that stays inside the folder,
or inside its repo's ``blobs/`` for a Hugging Face snapshot (whose files are links there).

What would pick code is ignored, never refused: ``model_file`` and ``auto_map`` keys and the
``*.py``/``*.so`` files that other tools (mlx-vlm, ``hf download``) put into a shared snapshot.
mlx-vlm's own LFM2-VL classes load every folder; :class:`ModelFolder` lists what was ignored
so the caller can say so once.
"""

from __future__ import annotations

import json
import os
import re
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import ModelInvalidError
from lfmdesk.core._files import NotRegularFileError, open_regular, read_regular

__all__ = [
    "CODE_KEYS",
    "INDEX",
    "MAX_SUPPORT_BYTES",
    "MODEL_TYPES",
    "SUPPORT_FILES",
    "ModelFolder",
    "clean_relative_name",
    "read_model_type",
    "safetensors_problem",
    "verify_model_dir",
]

MODEL_TYPES = frozenset({"lfm2-vl", "lfm2_vl"})
INDEX = "model.safetensors.index.json"
# The files besides the weights that the loader hands to mlx-vlm, and whether each is a JSON
# object lfmdesk parses (and cleans) itself.
SUPPORT_FILES: dict[str, bool] = {
    "config.json": True,
    "generation_config.json": True,
    "processor_config.json": True,
    "preprocessor_config.json": True,
    "tokenizer_config.json": True,
    "special_tokens_map.json": True,
    "chat_template.json": True,
    INDEX: True,
    "tokenizer.json": False,
    "chat_template.jinja": False,
}
# Keys that make mlx-vlm or transformers import code named by the folder.
CODE_KEYS = ("model_file", "auto_map")
_CODE_SUFFIX = re.compile(r"\.(py|pyc|pyo|pyd|so|dylib|dll)(\.[0-9.]+)?$", re.IGNORECASE)
MAX_SUPPORT_BYTES = 64_000_000  # tokenizer.json of large vocabularies is ~20 MB
_MAX_HEADER = 100_000_000  # the safetensors format's own limit on the JSON header


@dataclass(frozen=True)
class ModelFolder:
    """A model folder that passed :func:`verify_model_dir`.

    Attributes:
        path: The folder.
        support: The files of :data:`SUPPORT_FILES` it has, in that order.
        weights: The weight files to load, relative to ``path``.
        ignored: What would have picked code and is ignored, e.g. ``"modeling_lfm2_vl.py"``
            or ``"auto_map (config.json)"``.
    """

    path: Path
    support: tuple[str, ...]
    weights: tuple[str, ...]
    ignored: tuple[str, ...]

    @property
    def notice(self) -> str | None:
        """One line saying what was ignored, or ``None``.

        ``auto_map`` alone is not worth a word: Liquid AI's first-generation repos all carry
        it, and without the code it names beside it there is nothing to run anyway.
        """
        if all(item.startswith("auto_map (") for item in self.ignored):
            return None
        names = [item for item in self.ignored if " (" not in item]
        for key in CODE_KEYS:
            files = [i.split(" (")[1].rstrip(")") for i in self.ignored if i.startswith(f"{key} (")]
            names += [f"{key} in {', '.join(files)}"] if files else []
        return (
            f"{self.path.name}: ignored {'; '.join(names)}: lfmdesk never runs code from a "
            "model folder (mlx-vlm's built-in LFM2-VL loads it)"
        )


def _fail(path: Path, problem: str) -> ModelInvalidError:
    return ModelInvalidError(f"model folder {path} is not usable: {problem}")


def clean_relative_name(name: object) -> bool:
    """Whether ``name`` is a plain relative path (``a/b.x``): no ``..``, no root, no drive."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        return False
    if name.startswith("/") or re.match(r"[A-Za-z]:", name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def _allowed_root(folder: Path) -> Path:
    """Where the folder's files may really live: the folder, or its repo for an HF snapshot."""
    real = folder.resolve()
    if real.parent.name == "snapshots" and real.parent.parent.name.startswith("models--"):
        return real.parent.parent
    return real


def _member(folder: Path, root: Path, name: str) -> Path | None:
    """``folder/name`` if it exists, checked: inside ``root`` and a regular file."""
    file = folder / name
    if not os.path.lexists(file):
        return None
    try:
        real = file.resolve()
    except (OSError, RuntimeError):  # a link loop
        raise _fail(folder, f"{name} is a link that leads nowhere") from None
    if not real.is_relative_to(root):
        raise _fail(folder, f"{name} points outside the model folder (to {real})")
    try:
        mode = file.stat().st_mode
    except OSError as err:  # a dangling link
        raise _fail(folder, f"{name} cannot be read ({err.strerror or err})") from None
    if not stat.S_ISREG(mode):
        raise _fail(folder, f"{name} is not a regular file (a FIFO, a device or a folder?)")
    return file


def _read_json(file: Path) -> Any:
    return json.loads(read_regular(file, limit=MAX_SUPPORT_BYTES))


def read_model_type(folder: Path) -> str | None:
    """Return ``model_type`` from ``folder/config.json``, or ``None`` if it cannot be read."""
    try:
        config = _read_json(folder / "config.json")
    except (OSError, ValueError, RecursionError):
        return None
    value = config.get("model_type") if isinstance(config, dict) else None
    return value if isinstance(value, str) else None


def _walk_trust_flags(value: Any) -> Iterator[bool]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "trust_remote_code":
                yield bool(item)
            else:
                yield from _walk_trust_flags(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk_trust_flags(item)


def _json_member(folder: Path, root: Path, name: str) -> dict[str, Any] | None:
    file = _member(folder, root, name)
    if file is None:
        return None
    try:
        data = _read_json(file)
        asks_for_code = any(_walk_trust_flags(data))
    except (OSError, ValueError, RecursionError) as err:
        raise _fail(folder, f"{name} cannot be read ({type(err).__name__})") from None
    if not isinstance(data, dict):
        raise _fail(folder, f"{name} is not a JSON object")
    if asks_for_code:
        raise _fail(folder, f"{name} asks for trust_remote_code, which lfmdesk never allows")
    return data


def _check_support_files(folder: Path, root: Path) -> tuple[tuple[str, ...], list[str]]:
    """The support files present, and the code-picking keys found in them."""
    present: list[str] = []
    keys: list[str] = []
    for name, is_json in SUPPORT_FILES.items():
        data = _json_member(folder, root, name) if is_json else None
        if (data if is_json else _member(folder, root, name)) is None:
            if name == "config.json":
                raise _fail(
                    folder, "config.json is missing; pass the folder that holds config.json"
                )
            continue
        present.append(name)
        if name == "config.json" and data is not None:
            model_type = data.get("model_type")
            if model_type not in MODEL_TYPES:
                raise _fail(
                    folder, f"config.json says model_type {model_type!r}, expected 'lfm2-vl'"
                )
        keys += [f"{key} ({name})" for key in CODE_KEYS if data is not None and key in data]
    return tuple(present), keys


def safetensors_problem(file: Path) -> str | None:
    """Return why ``file`` is not a complete safetensors file, or ``None`` if it is."""
    try:
        with open_regular(file) as fh:
            size = os.fstat(fh.fileno()).st_size
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                return "file shorter than a safetensors header"
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(_MAX_HEADER, size - 8):
                return "header cut off (incomplete download?)"
            header = json.loads(fh.read(header_len))
    except FileNotFoundError:
        return "file missing (a broken link into the cache?)"
    except NotRegularFileError:
        return "not a regular file (a FIFO, a device or a folder?)"
    except (OSError, ValueError, RecursionError) as err:
        return f"unreadable safetensors header ({type(err).__name__})"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    try:
        ends = [
            int(entry["data_offsets"][1])
            for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
        ]
    except (TypeError, ValueError, IndexError, KeyError):
        return "header has malformed data offsets"
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{size} bytes on disk, header describes {expected} (incomplete download?)"
    return None


def _weight_names(folder: Path, root: Path) -> list[str]:
    index = _json_member(folder, root, INDEX)
    if index is None:
        # What mlx-vlm loads without an index: the top-level safetensors files.
        return sorted(
            entry.name
            for entry in os.scandir(folder)
            if entry.name.endswith(".safetensors") and entry.name != "consolidated.safetensors"
        )
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise _fail(folder, f"{INDEX} has no weight_map")
    names = sorted({str(v) for v in weight_map.values()})
    for name in names:
        if not clean_relative_name(name) or not name.endswith(".safetensors"):
            raise _fail(folder, f"{INDEX} names {name!r}, which is not a file inside the folder")
    return names


def _check_weights(folder: Path, root: Path) -> tuple[str, ...]:
    names = _weight_names(folder, root)
    if not names:
        raise _fail(folder, "no *.safetensors weight files")
    for name in names:
        file = _member(folder, root, name)
        if file is None:
            raise _fail(folder, f"weight shard {name} named by the index is missing")
        problem = safetensors_problem(file)
        if problem is not None:
            raise _fail(folder, f"{name}: {problem}")
    return tuple(names)


def _code_files(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder) if _CODE_SUFFIX.search(entry.name))


def verify_model_dir(path: Path) -> ModelFolder:
    """Check ``path`` is a complete LFM2-VL folder and say what the loader may read from it.

    Args:
        path: The model folder (a Hugging Face snapshot or any local copy).

    Returns:
        The folder's support and weight files, and what was ignored because it would pick code.

    Raises:
        ModelInvalidError: One line naming the folder and the first problem found.
    """
    path = Path(path)
    if not path.is_dir():
        raise _fail(path, "no such folder")
    partial = next(iter(sorted(path.glob("*.incomplete"))), None)
    if partial is not None:
        raise _fail(path, f"{partial.name} is still being downloaded")
    root = _allowed_root(path)
    support, keys = _check_support_files(path, root)
    weights = _check_weights(path, root)
    return ModelFolder(path, support, weights, (*_code_files(path), *keys))
