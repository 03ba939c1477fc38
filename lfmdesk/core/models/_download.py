"""Downloading a model repo into the Hugging Face cache, with progress, cancel and resume.

Files land in the standard cache (``models--org--name/blobs``, ``snapshots/<commit>``,
``refs/main``), shared with mlx-vlm and every other Hugging Face tool. Each file is fetched
resumably and linked into the snapshot by :mod:`lfmdesk.core.models._transfer`; then
``snapshot_download`` writes the tree listing, so the result is a cache entry like any other.
Only the files a model needs are downloaded, never code or pickles; hub answers (commit ids,
file names, ETags) are checked before they become paths.
"""

from __future__ import annotations

import glob
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, constants, snapshot_download
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.utils import tqdm as hf_tqdm

from lfmdesk.core._atomic import write_text_atomic
from lfmdesk.core._errors import DownloadError
from lfmdesk.core.models._transfer import HubErrors, Job, cancelled, fetch_file, not_cached_message
from lfmdesk.core.models._verify import clean_relative_name, verify_model_dir

__all__ = [
    "ALLOW_PATTERNS",
    "IGNORE_PATTERNS",
    "DownloadDone",
    "DownloadProgress",
    "cache_root",
    "download",
    "not_cached_message",
]

# What a model needs, by exact name or strict suffix, plus the small metadata files (model card
# with the licence, .gitattributes) that make the snapshot complete for other Hugging Face tools
# (`snapshot_download(..., local_files_only=True)`, `hf download` offline).
ALLOW_PATTERNS: tuple[str, ...] = (
    "*.safetensors",
    "model.safetensors.index.json",
    "config.json",
    "generation_config.json",
    "*processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "README.md",
    "LICENSE",
    "LICENSE.md",
    "LICENSE.txt",
    ".gitattributes",
)
# Never code, never pickles (they can run code when loaded), whatever the names above match.
IGNORE_PATTERNS: tuple[str, ...] = (
    "*.py", "*.pyc", "*.pyo", "*.pyd", "*.so", "*.so.*", "*.dylib", "*.dll", "*.exe",
    "*.pkl", "*.pickle", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.npy", "*.npz",
)  # fmt: skip
_COMMIT = re.compile(r"[0-9a-f]{40}")

_EMIT_EVERY_S = 0.1
_CANCEL_GRACE_S = 1.0


@dataclass(frozen=True)
class DownloadProgress:
    """Bytes of the repo on disk so far (resumed bytes count as done)."""

    repo_id: str
    done_bytes: int
    total_bytes: int
    current_file: str


@dataclass(frozen=True)
class DownloadDone:
    """The model folder is complete and verified; ``repo_id`` is ``None`` for a local folder."""

    repo_id: str | None
    path: Path


def cache_root(cache_dir: Path | None) -> Path:
    """The hub cache in use: ``cache_dir``, else ``$HF_HUB_CACHE``, else HF's default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    # huggingface_hub reads HF_HUB_CACHE once, at import; a later setting (tests, an app that
    # sets it at startup) still counts here.
    return Path(os.environ.get("HF_HUB_CACHE") or str(constants.HF_HUB_CACHE)).expanduser()


class _Progress:
    """Turns bytes on disk into throttled DownloadProgress events."""

    def __init__(self, job: Job, total: int, emit: Callable[[DownloadProgress], None]) -> None:
        self._job, self._total, self._emit = job, total, emit
        self._finished = 0  # bytes of files already complete
        self._file = ""
        self._file_bytes = 0
        self._last = 0.0

    def start_file(self, name: str, on_disk: int) -> None:
        self._file, self._file_bytes = name, on_disk
        self._send(force=True)

    def file_bytes(self, n: int) -> None:
        self._file_bytes = n
        self._send(force=False)

    def finish_file(self, name: str, size: int) -> None:
        self._file = name
        self._finished += size
        self._file_bytes = 0
        self._send(force=True)

    def _send(self, *, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last >= _EMIT_EVERY_S:
            self._last = now
            done = min(self._finished + self._file_bytes, self._total)
            self._emit(DownloadProgress(self._job.repo_id, done, self._total, self._file))


def _list_files(job: Job) -> tuple[str, list[tuple[str, int]]]:
    """The commit and the (name, size) of every file to fetch, smallest first."""
    with HubErrors(job, listing=True):
        # huggingface_hub's client has no default timeout: a dead network would hang here.
        info = HfApi(endpoint=job.endpoint).model_info(
            job.repo_id,
            revision=job.revision,
            files_metadata=True,
            timeout=constants.HF_HUB_ETAG_TIMEOUT,
        )
    sizes = {s.rfilename: int(s.size or 0) for s in (info.siblings or [])}
    names = list(
        filter_repo_objects(
            items=list(sizes),
            allow_patterns=list(ALLOW_PATTERNS),
            ignore_patterns=list(IGNORE_PATTERNS),
        )
    )
    # The listing is untrusted: the commit and every name become paths in the cache.
    if not _COMMIT.fullmatch(str(info.sha)):
        raise DownloadError(f"the hub sent an invalid commit id for {job.repo_id}; not downloading")
    unsafe = next((n for n in names if not clean_relative_name(n)), None)
    if unsafe is not None:
        raise DownloadError(
            f"the hub listed a file of {job.repo_id} with an unsafe name ({unsafe[:80]!r}); "
            "not downloading"
        )
    # Small files (config.json first) before the weights, so a folder is inspectable early.
    return str(info.sha), sorted(((n, sizes[n]) for n in names), key=lambda f: (f[1], f[0]))


class _QuietTqdm(hf_tqdm):  # type: ignore[misc]
    """huggingface_hub's own bars stay hidden: lfmdesk reports progress itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["disable"] = True
        super().__init__(*args, **kwargs)


def _run(
    job: Job, emit: Callable[[DownloadProgress], None], stopped: Callable[[], bool]
) -> DownloadDone:
    commit, files = _list_files(job)
    progress = _Progress(job, sum(size for _, size in files), emit)
    for name, size in files:
        if stopped():
            raise cancelled(job)
        fetch_file(job, commit, name, size, progress, stopped)
    with HubErrors(job, listing=False):
        # Every file is linked into the snapshot. This only writes the tree listing other tools
        # check a snapshot against: asked for the commit id and the exact names, it finds every
        # file in place and asks the hub nothing about them (it would not check the answers).
        folder = snapshot_download(
            job.repo_id,
            revision=commit,
            cache_dir=job.cache,
            endpoint=job.endpoint,
            allow_patterns=[glob.escape(name) for name, _ in files],
            tqdm_class=_QuietTqdm,
        )
        write_text_atomic(job.storage / "refs" / (job.revision or "main"), commit)
    path = Path(folder)
    verify_model_dir(path)
    return DownloadDone(job.repo_id, path)


def download(
    repo_id: str,
    *,
    cache_dir: Path | None = None,
    endpoint: str | None = None,
    cancel: threading.Event | None = None,
    revision: str | None = None,
) -> Iterator[DownloadProgress | DownloadDone]:
    """Download ``repo_id`` into the Hugging Face cache, yielding progress, then the folder.

    The transfer runs in a worker thread; this generator relays its events. Setting ``cancel``
    (or abandoning the generator) stops it within a chunk; the partial file stays, and the next
    call resumes where it stopped.

    Args:
        repo_id: Hugging Face repo id, e.g. ``"LiquidAI/LFM2.5-VL-450M-MLX-8bit"``.
        cache_dir: Hub cache folder; ``None`` means the default (``HF_HUB_CACHE``).
        endpoint: Hub URL; ``None`` means ``HF_ENDPOINT`` or https://huggingface.co.
        cancel: Set it to stop the download.
        revision: Branch, tag or commit; ``None`` means the default branch.

    Yields:
        :class:`DownloadProgress` events with growing ``done_bytes``, then one
        :class:`DownloadDone` with the verified snapshot folder.

    Raises:
        DownloadCancelled: ``cancel`` was set.
        ModelNotFoundError: The hub cannot be reached or has no such repo.
        DownloadError: The transfer failed part-way (running again resumes).
        ModelInvalidError: The downloaded folder fails :func:`verify_model_dir`.
    """
    job = Job(repo_id, cache_root(cache_dir), endpoint, revision)
    abandoned = threading.Event()

    def stopped() -> bool:
        return abandoned.is_set() or (cancel is not None and cancel.is_set())

    events: queue.SimpleQueue[DownloadProgress | DownloadDone | BaseException] = queue.SimpleQueue()

    def work() -> None:
        try:
            events.put(_run(job, events.put, stopped))
        except BaseException as err:  # handed to the consumer, raised there
            events.put(err)

    worker = threading.Thread(target=work, name=f"lfmdesk-download-{repo_id}", daemon=True)
    worker.start()
    try:
        yield from _relay(job, events, worker, stopped)
    finally:
        abandoned.set()


def _relay(
    job: Job,
    events: queue.SimpleQueue[DownloadProgress | DownloadDone | BaseException],
    worker: threading.Thread,
    stopped: Callable[[], bool],
) -> Iterator[DownloadProgress | DownloadDone]:
    cancel_seen: float | None = None
    while True:
        try:
            item = events.get(timeout=0.05)
        except queue.Empty:
            if stopped():
                # A worker blocked on a silent connection notices only at its next chunk or
                # timeout; the caller gets its answer now.
                cancel_seen = cancel_seen or time.monotonic()
                if time.monotonic() - cancel_seen > _CANCEL_GRACE_S or not worker.is_alive():
                    raise cancelled(job) from None
            continue
        if isinstance(item, BaseException):
            raise item
        yield item
        if isinstance(item, DownloadDone):
            return
