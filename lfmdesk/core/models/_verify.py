"""Checks a model folder must pass before lfmdesk loads it.

A folder passes when it is a complete LFM2-VL checkpoint that needs no code of its own: the
config names an LFM2-VL model, every weight file named by the index is there and every
safetensors file is as long as its own header says (a half-downloaded file fails), no download
is still in progress and there is no Python anywhere in it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import ModelInvalidError

__all__ = ["MODEL_TYPES", "read_model_type", "verify_model_dir"]

MODEL_TYPES = frozenset({"lfm2-vl", "lfm2_vl"})

# Files whose content could switch on remote code in transformers-style loaders.
_CONFIG_FILES = (
    "config.json",
    "tokenizer_config.json",
    "processor_config.json",
    "preprocessor_config.json",
)
_MAX_HEADER = 100_000_000  # the safetensors format's own limit on the JSON header


def _fail(path: Path, problem: str) -> ModelInvalidError:
    return ModelInvalidError(f"model folder {path} is not usable: {problem}")


def _read_json(path: Path) -> Any:
    with path.open("rb") as fh:
        return json.loads(fh.read())


def read_model_type(folder: Path) -> str | None:
    """Return ``model_type`` from ``folder/config.json``, or ``None`` if it cannot be read."""
    try:
        config = _read_json(folder / "config.json")
    except (OSError, ValueError):
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


def _check_config(path: Path) -> None:
    try:
        config = _read_json(path / "config.json")
    except FileNotFoundError:
        raise _fail(
            path, "config.json is missing; pass the folder that holds config.json"
        ) from None
    except (OSError, ValueError) as err:
        raise _fail(path, f"config.json cannot be read ({err})") from None
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in MODEL_TYPES:
        raise _fail(path, f"config.json says model_type {model_type!r}, expected 'lfm2-vl'")
    # auto_map alone is harmless (the real checkpoints carry it); only an explicit request to
    # run the repo's own code is refused.
    for name in _CONFIG_FILES:
        file = path / name
        try:
            data = config if name == "config.json" else _read_json(file)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as err:
            raise _fail(path, f"{name} cannot be read ({err})") from None
        if any(_walk_trust_flags(data)):
            raise _fail(path, f"{name} asks for trust_remote_code, which lfmdesk never allows")


def safetensors_problem(file: Path) -> str | None:
    """Return why ``file`` is not a complete safetensors file, or ``None`` if it is."""
    try:
        size = file.stat().st_size
        with file.open("rb") as fh:
            raw_len = fh.read(8)
            if len(raw_len) < 8:
                return "file shorter than a safetensors header"
            (header_len,) = struct.unpack("<Q", raw_len)
            if header_len > min(_MAX_HEADER, size - 8):
                return "header cut off (incomplete download?)"
            header = json.loads(fh.read(header_len))
    except FileNotFoundError:
        return "file missing (a broken link into the cache?)"
    except (OSError, ValueError) as err:
        return f"unreadable safetensors header ({err})"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    ends = [
        int(entry["data_offsets"][1])
        for name, entry in header.items()
        if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry
    ]
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f"{size} bytes on disk, header describes {expected} (incomplete download?)"
    return None


def _check_weights(path: Path) -> None:
    weights = sorted(path.rglob("*.safetensors"))
    if not weights:
        raise _fail(path, "no *.safetensors weight files")
    index = path / "model.safetensors.index.json"
    if index.exists():
        try:
            shards = set(_read_json(index).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError) as err:
            raise _fail(path, f"model.safetensors.index.json cannot be read ({err})") from None
        missing = sorted(s for s in shards if not (path / s).is_file())
        if missing:
            raise _fail(path, f"weight shard {missing[0]} named by the index is missing")
    for file in weights:
        problem = safetensors_problem(file)
        if problem is not None:
            raise _fail(path, f"{file.relative_to(path)}: {problem}")


def verify_model_dir(path: Path) -> None:
    """Raise :class:`ModelInvalidError` unless ``path`` is a complete, code-free LFM2-VL folder.

    Args:
        path: The model folder (a Hugging Face snapshot or any local copy).

    Raises:
        ModelInvalidError: One line naming the folder and the first problem found.
    """
    path = Path(path)
    if not path.is_dir():
        raise _fail(path, "no such folder")
    python = next(iter(sorted(path.rglob("*.py"))), None)
    if python is not None:
        raise _fail(
            path,
            f"it contains Python code ({python.relative_to(path)}); lfmdesk never runs model code",
        )
    partial = next(iter(sorted(path.rglob("*.incomplete"))), None)
    if partial is not None:
        raise _fail(path, f"{partial.relative_to(path)} is still being downloaded")
    _check_config(path)
    _check_weights(path)
