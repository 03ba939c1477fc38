"""The model store: what the user asked for, what is cached, getting what is missing.

Models live in the standard Hugging Face hub cache (shared with mlx-vlm and other tools), or in
any local folder the user points at. Nothing is loaded before :func:`verify_model_dir` passes.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import constants, snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError
from huggingface_hub.file_download import repo_folder_name

from lfmdesk.core._errors import InputError, ModelInvalidError, ModelNotFoundError
from lfmdesk.core.models._download import (
    ALLOW_PATTERNS,
    IGNORE_PATTERNS,
    DownloadDone,
    DownloadProgress,
    cache_root,
    download,
    not_cached_message,
)
from lfmdesk.core.models._variants import VARIANTS, Variant, find_variant
from lfmdesk.core.models._verify import MODEL_TYPES, read_model_type, verify_model_dir

__all__ = [
    "CachedModel",
    "DownloadDone",
    "DownloadProgress",
    "ModelRef",
    "download",
    "ensure_model",
    "format_size",
    "list_cached",
    "local_snapshot",
    "remove_cached",
    "resolve_model",
    "verify_model_dir",
]

# Hugging Face repo ids: "org/name", letters, digits, "-", "_", "."; never "--" or "..".
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")
_PATH_PREFIXES = ("/", "~", "./", "../", ".\\", "..\\")


@dataclass(frozen=True)
class ModelRef:
    """A model the user asked for, resolved.

    Attributes:
        spec: As typed: ``"8bit"``, ``"LiquidAI/..."``, ``"/path/to/folder"``.
        repo_id: Hub repo id; ``None`` for a local folder.
        folder: The folder, when ``spec`` named a local folder.
        variant: The known variant, when the repo is one of :data:`VARIANTS`.
    """

    spec: str
    repo_id: str | None
    folder: Path | None
    variant: Variant | None

    @property
    def label(self) -> str:
        """A short name for menus and messages."""
        if self.folder is not None:
            return str(self.folder)
        return self.variant.key if self.variant is not None else str(self.repo_id)


def _valid_keys() -> str:
    return ", ".join(v.key for v in VARIANTS)


def _is_repo_id(text: str) -> bool:
    return bool(_REPO_ID.fullmatch(text)) and "--" not in text and ".." not in text


def resolve_model(spec: str) -> ModelRef:
    """Resolve what the user typed: a folder, a variant key, or a repo id.

    An existing folder wins; then a known key or repo id (case-insensitive); then any
    ``org/name`` repo id.

    Raises:
        InputError: An empty spec, a path that is not a folder, or an unknown name (the message
            lists the valid keys).
    """
    text = spec.strip()
    if not text:
        raise InputError(f"no model given; use one of {_valid_keys()}, a repo id or a folder")
    path = Path(text).expanduser()
    if path.is_dir():
        return ModelRef(spec, None, path.resolve(), None)
    if path.exists():
        raise InputError(f"model {text} is a file; pass the folder that holds config.json")
    variant = find_variant(text)
    if variant is not None:
        return ModelRef(spec, variant.repo_id, None, variant)
    if text.startswith(_PATH_PREFIXES) or re.match(r"[A-Za-z]:[\\/]", text):
        raise InputError(f"model folder {text} does not exist")
    if _is_repo_id(text):
        return ModelRef(spec, text, None, None)
    raise InputError(
        f"unknown model {text!r}; use one of {_valid_keys()}, a Hugging Face repo id (org/name) "
        "or a model folder"
    )


def _snapshots(storage: Path) -> list[Path]:
    """Snapshot folders of a cached repo, the one ``refs/main`` names first, then newest first."""
    folder = storage / "snapshots"
    if not folder.is_dir():
        return []
    found = sorted(
        (p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    try:
        main = folder / (storage / "refs" / "main").read_text().strip()
    except OSError:
        return found
    return [main, *(p for p in found if p != main)] if main in found else found


def _verifies(path: Path) -> bool:
    try:
        verify_model_dir(path)
    except ModelInvalidError:
        return False
    return True


def local_snapshot(repo_id: str, *, cache_dir: Path | None = None) -> Path | None:
    """The complete, verified snapshot of ``repo_id`` in the cache, or ``None``.

    No network access. Prefers what huggingface_hub itself resolves offline (``refs/main`` plus
    its tree listing), then any other snapshot folder of the repo that verifies.
    """
    root = cache_root(cache_dir)
    candidates: list[Path] = []
    try:
        folder = snapshot_download(
            repo_id,
            cache_dir=root,
            local_files_only=True,
            allow_patterns=list(ALLOW_PATTERNS),
            ignore_patterns=list(IGNORE_PATTERNS),
        )
        candidates.append(Path(folder))
    except (LocalEntryNotFoundError, HFValidationError, OSError):
        pass  # IncompleteSnapshotError is a LocalEntryNotFoundError too
    if _is_repo_id(repo_id):
        candidates += _snapshots(root / repo_folder_name(repo_id=repo_id, repo_type="model"))
    return next((c for c in candidates if _verifies(c)), None)


def _offline_env() -> bool:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; honour a later setting too.
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.is_offline_mode() or value in {"1", "ON", "YES", "TRUE"}


def ensure_model(
    ref: ModelRef,
    *,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    offline: bool | None = None,
    cancel: threading.Event | None = None,
) -> Iterator[DownloadProgress | DownloadDone]:
    """Make the model available locally: verify a folder, find it cached, or download it.

    Args:
        ref: From :func:`resolve_model`.
        cache_dir: Hub cache folder; ``None`` means the default.
        endpoint: Hub URL; ``None`` means the default.
        offline: Never touch the network; ``None`` means "when ``HF_HUB_OFFLINE`` is set".
        cancel: Set it to stop a download (see :func:`download`).

    Yields:
        :class:`DownloadProgress` events while downloading, then one :class:`DownloadDone`.

    Raises:
        ModelInvalidError: The folder (or the downloaded snapshot) fails verification.
        ModelNotFoundError: Not cached and offline, unreachable or unknown on the hub.
        DownloadError: The download failed part-way (running again resumes).
    """
    if ref.folder is not None:
        verify_model_dir(ref.folder)
        yield DownloadDone(None, ref.folder)
        return
    if ref.repo_id is None:
        raise InputError(f"model {ref.spec!r} names neither a folder nor a repo")
    cached = local_snapshot(ref.repo_id, cache_dir=cache_dir)
    if cached is not None:
        yield DownloadDone(ref.repo_id, cached)
        return
    if offline or (offline is None and _offline_env()):
        reason = "offline mode" if offline else "offline mode: HF_HUB_OFFLINE is set"
        raise ModelNotFoundError(not_cached_message(ref.repo_id, reason))
    yield from download(ref.repo_id, cache_dir=cache_dir, endpoint=endpoint, cancel=cancel)


@dataclass(frozen=True)
class CachedModel:
    """An LFM2-VL repo found in the hub cache.

    Attributes:
        repo_id: Hub repo id.
        path: Its current snapshot folder (the repo folder if no snapshot exists yet).
        size_bytes: Space it takes on disk, partial downloads included.
        variant: The known variant, if it is one.
        complete: Whether the snapshot passes :func:`verify_model_dir`.
    """

    repo_id: str
    path: Path
    size_bytes: int
    variant: Variant | None
    complete: bool


def _disk_usage(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not os.path.islink(os.path.join(dirpath, name)):
                total += st.st_size
    return total


def list_cached(cache_dir: Path | None = None) -> list[CachedModel]:
    """LFM2-VL repos in the hub cache (by config ``model_type``, or known variants), by repo id.

    A known variant whose download has not finished is listed with ``complete=False``.
    """
    root = cache_root(cache_dir)
    found: list[CachedModel] = []
    for storage in sorted(root.glob("models--*")):
        repo_id = "/".join(storage.name.split("--")[1:])
        snapshots = _snapshots(storage)
        variant = find_variant(repo_id)
        if variant is None and not any(read_model_type(s) in MODEL_TYPES for s in snapshots):
            continue
        good = next((s for s in snapshots if _verifies(s)), None)
        path = good or (snapshots[0] if snapshots else storage)
        found.append(CachedModel(repo_id, path, _disk_usage(storage), variant, good is not None))
    return found


def remove_cached(repo_id: str, cache_dir: Path | None = None) -> int:
    """Delete a repo (every revision and partial download) from the hub cache.

    Args:
        repo_id: Repo id, or a variant key such as ``"8bit"``.
        cache_dir: Hub cache folder; ``None`` means the default.

    Returns:
        Bytes freed.

    Raises:
        InputError: The repo is not in the cache.
    """
    variant = find_variant(repo_id)
    repo = variant.repo_id if variant is not None else repo_id.strip()
    root = cache_root(cache_dir)
    storage = (
        root / repo_folder_name(repo_id=repo, repo_type="model") if _is_repo_id(repo) else None
    )
    if storage is None or not storage.is_dir():
        raise InputError(f"{repo} is not in the model cache {root}; nothing to remove")
    freed = _disk_usage(storage)
    shutil.rmtree(storage)
    shutil.rmtree(root / ".locks" / storage.name, ignore_errors=True)
    return freed


_UNITS = ("B", "KB", "MB", "GB", "TB")


def format_size(n: int) -> str:
    """A byte count for people, in decimal units: ``"512 B"``, ``"480 MB"``, ``"1.2 GB"``."""
    value = float(n)
    for unit in _UNITS:
        shown = f"{value:.1f}" if unit != "B" and abs(value) < 9.95 else f"{value:.0f}"
        if abs(float(shown)) < 1000 or unit == _UNITS[-1]:
            return f"{shown} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover
