"""Fetching one file of a repo into the hub cache's blobs, resumably.

huggingface_hub 2.x downloads into a temporary file it deletes when the transfer stops, so a
cancelled 500 MB download would start again from zero. lfmdesk streams each file itself into
``blobs/<etag>.incomplete`` (the name older huggingface_hub versions used for the same purpose)
and asks for the rest with an HTTP ``Range`` next time; the finished file is checked against its
sha256 (when the etag is one) and renamed to ``blobs/<etag>``, where huggingface_hub finds it.
The same lock file as huggingface_hub's keeps two processes from writing one blob. The ETag
becomes that file name, so it must be plain hex: a hostile hub cannot name ``../`` anything.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx2
from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import (
    OfflineModeIsEnabled,
    WeakFileLock,
    build_hf_headers,
    hf_raise_for_status,
    http_stream_backoff,
)

from lfmdesk.core._errors import DownloadCancelled, DownloadError, ModelError, ModelNotFoundError

__all__ = ["FileReport", "HubErrors", "Job", "cancelled", "fetch_file", "not_cached_message"]

_MAX_RETRIES = 5  # consecutive failures without a single new byte
_SHA256 = re.compile(r"[0-9a-f]{64}")
_BLOB_NAME = re.compile(r"[0-9a-f]{32,128}")  # git blob ids (40) and LFS sha256s (64)


@dataclass(frozen=True)
class Job:
    """One repo download: what, where to, from where."""

    repo_id: str
    cache: Path
    endpoint: str | None
    revision: str | None

    @property
    def storage(self) -> Path:
        """The repo's folder in the hub cache (``models--org--name``)."""
        return self.cache / str(repo_folder_name(repo_id=self.repo_id, repo_type="model"))


class FileReport(Protocol):
    """Where :func:`fetch_file` reports bytes on disk."""

    def start_file(self, name: str, on_disk: int) -> None: ...
    def file_bytes(self, n: int) -> None: ...
    def finish_file(self, name: str, size: int) -> None: ...


def not_cached_message(repo_id: str, reason: str) -> str:
    """The one-line error for a repo that can be neither found in the cache nor downloaded."""
    return (
        f"cannot download {repo_id} ({reason}) and it is not in the cache; "
        "download it elsewhere and use it as a local folder "
        "(--model /path/to/folder, or “Use a local folder…” in the window)"
    )


def cancelled(job: Job) -> DownloadCancelled:
    """The error for a cancelled download."""
    return DownloadCancelled(f"download of {job.repo_id} cancelled; run it again to resume")


class _ShortBody(Exception):
    """The server closed a response before the whole file arrived."""


# First match wins: (errors, what the user is told, whether to append the original error).
# ``where`` is the hub's host name. Order matters: LocalEntryNotFoundError is an
# EntryNotFoundError and an OSError; the *NotFound errors are HfHubHTTPErrors.
_ErrorText = Callable[["Job", str, bool], ModelError]
_ErrorRow = tuple[type[BaseException] | tuple[type[BaseException], ...], _ErrorText, bool]
_ERROR_TABLE: tuple[_ErrorRow, ...] = (
    (
        OfflineModeIsEnabled,
        lambda job, where, listing: ModelNotFoundError(
            not_cached_message(job.repo_id, "offline mode: HF_HUB_OFFLINE is set")
        ),
        False,
    ),
    (
        RepositoryNotFoundError,  # also gated and private repos
        lambda job, where, listing: ModelNotFoundError(
            f"no model repo {job.repo_id} on {where} (or it is private or gated); "
            "check the name, or pass --model /path/to/folder"
        ),
        False,
    ),
    (
        RevisionNotFoundError,
        lambda job, where, listing: ModelNotFoundError(
            f"{job.repo_id} has no revision {job.revision!r} on {where}"
        ),
        False,
    ),
    (
        (httpx2.TransportError, LocalEntryNotFoundError),
        lambda job, where, listing: (
            ModelNotFoundError(not_cached_message(job.repo_id, f"cannot reach {where}"))
            if listing
            else DownloadError(
                f"download of {job.repo_id} interrupted (cannot reach {where}); "
                "run it again to resume"
            )
        ),
        True,
    ),
    (
        EntryNotFoundError,
        lambda job, where, listing: DownloadError(
            f"a file of {job.repo_id} vanished from {where} while downloading; run it again"
        ),
        False,
    ),
    (
        HfHubHTTPError,
        lambda job, where, listing: DownloadError(
            f"{where} failed to serve {job.repo_id}; try again later"
        ),
        True,
    ),
    (
        OSError,
        lambda job, where, listing: DownloadError(
            f"cannot write {job.repo_id} into the cache {job.cache}"
        ),
        True,
    ),
)


class HubErrors:
    """Context manager turning huggingface_hub and network errors into one-line lfmdesk errors.

    Args:
        job: The download, for the messages.
        listing: Whether this is the first contact with the hub (an unreachable hub then means
            "not found", later it means "interrupted").
    """

    def __init__(self, job: Job, *, listing: bool) -> None:
        self._job, self._listing = job, listing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: Any
    ) -> None:
        if err is None or isinstance(err, ModelError):
            return
        where = urlparse(self._job.endpoint or constants.ENDPOINT).netloc
        for types, text, explain in _ERROR_TABLE:
            if isinstance(err, types):
                mapped = text(self._job, where, self._listing)
                if not explain:
                    raise mapped from err
                raise type(mapped)(f"{mapped} ({_detail(err)})") from err


def _detail(err: BaseException) -> str:
    """The first line of the original error, for the curious."""
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first[:160]}" if first else type(err).__name__


def fetch_file(
    job: Job, commit: str, name: str, size: int, progress: FileReport, stopped: Callable[[], bool]
) -> None:
    """Make sure ``snapshots/<commit>/<name>`` links a complete ``blobs/<etag>``, resuming.

    Args:
        job: The download.
        commit: The commit being downloaded.
        name: The file's path in the repo.
        size: Its size from the listing (used if the hub sends none).
        progress: Told about bytes on disk.
        stopped: Polled between chunks; when true, :class:`DownloadCancelled` is raised.
    """
    if (job.storage / "snapshots" / commit / name).exists():
        progress.finish_file(name, size)
        return
    url = hf_hub_url(job.repo_id, name, revision=commit, endpoint=job.endpoint)
    headers: dict[str, str] = build_hf_headers()
    with HubErrors(job, listing=False):
        meta = get_hf_file_metadata(
            url, headers=headers, endpoint=job.endpoint, retry_on_errors=True
        )
    if meta.etag is None or meta.location is None:
        raise DownloadError(
            f"the hub sent no file version for {job.repo_id}/{name}; try again later"
        )
    if not _BLOB_NAME.fullmatch(meta.etag):  # it becomes a file name in the cache
        raise DownloadError(
            f"the hub sent an invalid file version for {job.repo_id}/{name} "
            f"({meta.etag[:80]!r}); not downloading"
        )
    blob = job.storage / "blobs" / meta.etag
    expected = meta.size if meta.size is not None else size
    if urlparse(meta.location).netloc != urlparse(url).netloc:
        headers.pop("authorization", None)  # a signed CDN url: the token must not leave the hub
    lock = job.cache / ".locks" / job.storage.name / f"{meta.etag}.lock"
    with HubErrors(job, listing=False):
        lock.parent.mkdir(parents=True, exist_ok=True)
    with HubErrors(job, listing=False), WeakFileLock(lock):
        if not blob.exists():
            partial = blob.with_name(blob.name + ".incomplete")
            partial.parent.mkdir(parents=True, exist_ok=True)
            progress.start_file(name, partial.stat().st_size if partial.exists() else 0)
            _stream_with_retries(job, meta.location, partial, expected, headers, progress, stopped)
            _check_digest(job, partial, meta.etag, name, stopped)
            os.replace(partial, blob)
        _link(job.storage / "snapshots" / commit / name, blob)
    progress.finish_file(name, expected)


def _link(pointer: Path, blob: Path) -> None:
    """Point ``pointer`` at ``blob`` with a relative link, as huggingface_hub lays out a snapshot.

    lfmdesk links the snapshot itself so that huggingface_hub never asks the hub for a file's
    ETag again (it would build a blob path from the answer without checking it).
    """
    pointer.parent.mkdir(parents=True, exist_ok=True)
    staged = pointer.with_name(f".{pointer.name}.{os.getpid()}.link")
    staged.unlink(missing_ok=True)
    os.symlink(os.path.relpath(blob, pointer.parent), staged)
    os.replace(staged, pointer)


def _stream_with_retries(
    job: Job,
    url: str,
    partial: Path,
    expected: int,
    headers: dict[str, str],
    progress: FileReport,
    stopped: Callable[[], bool],
) -> None:
    failures = 0
    while True:
        have = partial.stat().st_size if partial.exists() else 0
        if have > expected:  # not this file's prefix: start over
            partial.unlink()
            have = 0
        if have == expected:
            return
        try:
            _stream_once(job, url, partial, have, headers, progress, stopped)
            if partial.stat().st_size < expected:
                raise _ShortBody("the server closed the response early")
        except (httpx2.TransportError, _ShortBody) as err:
            grew = partial.exists() and partial.stat().st_size > have
            failures = 0 if grew else failures + 1
            if failures > _MAX_RETRIES:
                raise DownloadError(
                    f"download of {job.repo_id} keeps failing ({type(err).__name__}); "
                    "run it again to resume"
                ) from err
            # Wait before retrying, but let a cancel cut the wait short.
            deadline = time.monotonic() + min(0.5 * 2**failures, 8.0)
            while time.monotonic() < deadline:
                if stopped():
                    raise cancelled(job) from None
                time.sleep(0.05)


def _stream_once(
    job: Job,
    url: str,
    partial: Path,
    have: int,
    headers: dict[str, str],
    progress: FileReport,
    stopped: Callable[[], bool],
) -> None:
    request_headers = {**headers, "Accept-Encoding": "identity"}
    if have:
        request_headers["Range"] = f"bytes={have}-"
    with http_stream_backoff(
        "GET",
        url,
        headers=request_headers,
        timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
        retry_on_exceptions=(),
        retry_on_status_codes=(408, 429, 500, 502, 503, 504),
    ) as response:
        if response.status_code == 416:  # the server has less than we hold: start over
            partial.unlink(missing_ok=True)
            raise _ShortBody("range not satisfiable")
        hf_raise_for_status(response)
        resumed = have > 0 and response.status_code == 206
        written = have if resumed else 0
        with partial.open("ab" if resumed else "wb") as fh:
            for chunk in response.iter_bytes():
                if stopped():
                    raise cancelled(job)
                fh.write(chunk)
                written += len(chunk)
                progress.file_bytes(written)


def _check_digest(
    job: Job, partial: Path, etag: str, name: str, stopped: Callable[[], bool]
) -> None:
    # Git blob ids (the etags of small files) are not plain content hashes: nothing to check.
    if not _SHA256.fullmatch(etag):
        return
    digest = hashlib.sha256()
    with partial.open("rb") as fh:
        while block := fh.read(1 << 22):
            if stopped():
                raise cancelled(job)
            digest.update(block)
    if digest.hexdigest() != etag:
        partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{name} of {job.repo_id} arrived corrupted (checksum mismatch); run it again"
        )
