"""The base model an adapter belongs to: its identity, content hash, and the check on load.

:func:`check_adapter` runs before every load with an adapter (``--adapter``, the engine
process's ``LoadModel``): the adapter's metadata names the base's content hash; anything else
is refused in one line that says which model to use instead (the same model at another
precision gets its own message, since that is the usual slip).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core.engine._loader import display_name, quantization_bits
from lfmdesk.core.models._store import resolve_model
from lfmdesk.core.train._store import (
    AdapterInfo,
    BaseModel,
    adapters_dir,
    find_adapter,
    precision_text,
    read_info,
)

__all__ = ["base_fingerprint", "base_model", "check_adapter"]

_FINGERPRINTS = ".base-fingerprints.json"
# Files that say nothing about the weights; lfmdesk may fetch them later.
_NOT_MODEL = frozenset({"README.md", "LICENSE", "LICENSE.md", "LICENSE.txt", ".gitattributes"})
_CHUNK = 1 << 20


def _model_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.name not in _NOT_MODEL and not p.name.startswith(".")
    )


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def base_fingerprint(folder: Path) -> str:
    """A content hash of a model folder: its weights, configs, tokenizer and template.

    Hashing ~1 GB takes a second or two, so results are remembered by file size and mtime
    (in the store's ``.base-fingerprints.json``) and only changed folders are read again.
    """
    folder = folder.resolve()
    files = _model_files(folder)
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo_path = adapters_dir() / _FINGERPRINTS
    try:
        memo = json.loads(memo_path.read_text("utf-8"))
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    known = memo.get(str(folder))
    if isinstance(known, dict) and known.get("files") == stamp and known.get("sha256"):
        return str(known["sha256"])
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{_file_hash(path)}\n".encode())
    value = digest.hexdigest()
    memo[str(folder)] = {"files": stamp, "sha256": value}
    with contextlib.suppress(OSError):  # read-only: the next check only hashes again
        write_text_atomic(memo_path, json.dumps(memo, indent=1) + "\n")
    return value


def base_model(spec: str, model_dir: Path) -> BaseModel:
    """The identity of the model ``spec`` names, loaded from ``model_dir``."""
    ref = resolve_model(spec)
    canonical = ref.variant.key if ref.variant else str(ref.folder or ref.repo_id or model_dir)
    return BaseModel(
        name=display_name(model_dir),
        spec=canonical,
        folder=str(model_dir),
        content_hash=base_fingerprint(model_dir),
        bits=quantization_bits(model_dir),
    )


def check_adapter(name_or_folder: str | Path, model_dir: Path) -> tuple[Path, AdapterInfo]:
    """The adapter's folder and metadata, once sure it belongs to the model in ``model_dir``.

    Raises:
        InputError: no such adapter, or it was trained on another model or another
            quantization of it (one line that says which base to load instead).
    """
    folder = find_adapter(name_or_folder)
    info = read_info(folder)
    if info.base.content_hash == base_fingerprint(model_dir):
        return folder, info
    bits = quantization_bits(model_dir)
    if bits != info.base.bits:
        raise InputError(
            f"adapter {info.name!r} was trained on the {precision_text(info.base.bits)} model "
            f"({info.base.name}); this one is {precision_text(bits)}: use --model "
            f"{info.base.spec} with it"
        )
    raise InputError(
        f"adapter {info.name!r} was trained on another model ({info.base.name}, content "
        f"{info.base.content_hash[:12]}), not {model_dir.resolve().name} "
        f"({base_fingerprint(model_dir)[:12]}): use --model {info.base.spec} with it"
    )
