"""A fake Hugging Face hub for tests: serves local folders as model repos over HTTP.

Like httpx's ``MockTransport``, it ships with the library so that every consumer (the CLI's and
the GUI's tests, an app embedding lfmdesk) can exercise the real download path without a
network. It implements what huggingface_hub 2.x calls to download a model:

* ``GET /api/models/{repo}[/revision/{rev}]`` - repo info with ``sha`` and ``siblings``
  (``?blobs=true`` adds sizes, blob ids and LFS info);
* ``GET /api/models/{repo}/tree/{rev}`` - the file listing ``snapshot_download`` reads;
* ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` with ``ETag``, ``X-Repo-Commit``,
  ``X-Linked-Etag``/``X-Linked-Size`` (for LFS files) and HTTP ``Range`` support.

Faults to inject: a delay per chunk (to cancel mid-file), a connection cut after N bytes, 404s
for unknown repos, and the answers of a hostile hub (an ETag, a file name or a commit id that
would be a path outside the cache). Every request is recorded (method, path, ``Range`` header).

    with FakeHub({"LiquidAI/LFM2.5-VL-450M-MLX-8bit": folder}) as hub:
        download("LiquidAI/LFM2.5-VL-450M-MLX-8bit", endpoint=hub.endpoint, cache_dir=tmp)

It only ever binds to 127.0.0.1, serves only the files it listed at start (no path escapes),
keeps a bounded request log, serves one request per connection and at most
``max_connections`` connections at once.
"""

from __future__ import annotations

import collections
import contextlib
import fnmatch
import hashlib
import json
import re
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["FakeHub", "RequestRecord"]

_API = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?")
_TREE = re.compile(r"/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/.*)?")
_RESOLVE = re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True)
class RequestRecord:
    """One request the hub received."""

    method: str
    path: str
    range: str | None


@dataclass(frozen=True)
class _File:
    name: str
    path: Path
    size: int
    sha256: str
    git_oid: str
    lfs: bool

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass(frozen=True)
class _Repo:
    repo_id: str
    commit: str
    files: dict[str, _File]


def _scan(repo_id: str, folder: Path, lfs_patterns: tuple[str, ...]) -> _Repo:
    files: dict[str, _File] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        name = path.relative_to(folder).as_posix()
        git_oid = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        lfs = any(fnmatch.fnmatch(name, pattern) for pattern in lfs_patterns)
        files[name] = _File(name, path, len(data), hashlib.sha256(data).hexdigest(), git_oid, lfs)
    commit = hashlib.sha1(
        json.dumps([[f.name, f.sha256] for f in files.values()]).encode()
    ).hexdigest()
    return _Repo(repo_id, commit, files)


class FakeHub:
    """Serves local folders as Hugging Face model repos on ``http://127.0.0.1:<random port>``.

    Args:
        repos: Repo id -> folder. Files are read and hashed at start; later edits are not seen.
        chunk_size: Bytes per write of a file body.
        chunk_delay: Seconds to sleep before each chunk (change it at any time).
        lfs_patterns: Files served as LFS files (sha256 ETag, ``X-Linked-*`` headers).
        max_connections: Connections served at once; more wait.
        max_log: Requests kept in :attr:`requests`.
    """

    def __init__(
        self,
        repos: Mapping[str, Path | str],
        *,
        chunk_size: int = 64 * 1024,
        chunk_delay: float = 0.0,
        lfs_patterns: tuple[str, ...] = ("*.safetensors",),
        max_connections: int = 32,
        max_log: int = 10_000,
    ) -> None:
        self._repos = {rid: _scan(rid, Path(folder), lfs_patterns) for rid, folder in repos.items()}
        self.chunk_size = max(1, chunk_size)
        self.chunk_delay = chunk_delay
        self._cuts: dict[str, list[int]] = {}
        self._etags: dict[str, str] = {}
        self._listed_as: dict[str, str] = {}
        self._commit: str | None = None
        self._log: collections.deque[RequestRecord] = collections.deque(maxlen=max_log)
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._slots = threading.BoundedSemaphore(max_connections)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeHub:
        """Bind to 127.0.0.1 on a free port and serve in a background thread."""
        if self._server is None:
            self._server = _Server(("127.0.0.1", 0), _Handler, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; slow responses in flight are cut short."""
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what tests look at ------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The hub URL to pass as ``endpoint=``."""
        if self._server is None:
            raise RuntimeError("FakeHub is not started; use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Requests received so far, oldest first."""
        with self._lock:
            return list(self._log)

    def commit(self, repo_id: str) -> str:
        """The commit hash the hub reports for ``repo_id``."""
        return self._repos[repo_id].commit

    def cut_after(self, filename: str, n_bytes: int, *, times: int = 1) -> None:
        """Drop the connection after ``n_bytes`` of body in the next ``times`` GETs of a file."""
        with self._lock:
            self._cuts.setdefault(filename, []).extend([n_bytes] * times)

    # -- hostile answers ----------------------------------------------------------------------

    def send_etag(self, filename: str, etag: str) -> None:
        """Answer with ``etag`` as the ETag of ``filename`` (``X-Linked-Etag`` too)."""
        with self._lock:
            self._etags[filename] = etag

    def list_as(self, filename: str, listed: str) -> None:
        """List ``filename`` under the name ``listed`` (and serve it under that name)."""
        with self._lock:
            self._listed_as[filename] = listed

    def report_commit(self, sha: str) -> None:
        """Report ``sha`` as the commit of every repo (files are still served for the real one)."""
        with self._lock:
            self._commit = sha

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._log.clear()

    # -- used by the handler -----------------------------------------------------------------

    def _record(self, method: str, path: str, range_header: str | None) -> None:
        with self._lock:
            self._log.append(RequestRecord(method, path, range_header))

    def _listed(self, f: _File) -> str:
        with self._lock:
            return self._listed_as.get(f.name, f.name)

    def _etag(self, f: _File, real: str) -> str:
        with self._lock:
            return self._etags.get(f.name, real)

    def _reported_commit(self, repo: _Repo) -> str:
        with self._lock:
            return self._commit or repo.commit

    def _take_cut(self, filename: str) -> int | None:
        with self._lock:
            pending = self._cuts.get(filename)
            return pending.pop(0) if pending else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[_Handler], hub: FakeHub) -> None:
        self.hub = hub
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Bounded: wait for a free slot instead of spawning without limit.
        self.hub._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.hub._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.hub._slots.release()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def end_headers(self) -> None:
        # One request per connection: no idle keep-alive connection ever holds a slot.
        self.send_header("Connection", "close")
        super().end_headers()

    def do_HEAD(self) -> None:
        self._dispatch(body=False)

    def do_GET(self) -> None:
        self._dispatch(body=True)

    def _dispatch(self, *, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        self.hub._record(self.command, path, self.headers.get("Range"))
        try:
            if match := _TREE.fullmatch(path):
                self._tree(match["repo"], match["rev"], body=body)
            elif match := _API.fullmatch(path):
                blobs = "blobs=true" in urlsplit(self.path).query.lower()
                self._info(match["repo"], match["rev"] or "main", blobs=blobs, body=body)
            elif match := _RESOLVE.fullmatch(path):
                self._resolve(match["repo"], match["rev"], match["file"], body=body)
            else:
                self._error(404, "EntryNotFound", "no such route", body=body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (cancelled): nothing to do

    # -- routes ------------------------------------------------------------------------------

    def _repo(self, repo_id: str, revision: str, *, body: bool) -> _Repo | None:
        repo = self.hub._repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", body=body)
            return None
        if revision not in ("main", repo.commit, self.hub._reported_commit(repo)):
            self._error(404, "RevisionNotFound", "Invalid rev id", body=body)
            return None
        return repo

    def _info(self, repo_id: str, revision: str, *, blobs: bool, body: bool) -> None:
        repo = self._repo(repo_id, revision, body=body)
        if repo is None:
            return
        siblings = [
            {"rfilename": self.hub._listed(f), **(self._blob_fields(f) if blobs else {})}
            for f in repo.files.values()
        ]
        info = {
            "_id": repo.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": self.hub._reported_commit(repo),
            "private": False,
            "gated": False,
            "disabled": False,
            "tags": [],
            "siblings": siblings,
        }
        self._json(info, body=body)

    @staticmethod
    def _blob_fields(f: _File) -> dict[str, Any]:
        fields: dict[str, Any] = {"size": f.size, "blobId": f.git_oid}
        if f.lfs:
            fields["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": 134}
        return fields

    def _tree(self, repo_id: str, revision: str, *, body: bool) -> None:
        repo = self._repo(repo_id, revision, body=body)
        if repo is None:
            return
        entries = []
        for f in repo.files.values():
            entry: dict[str, Any] = {
                "type": "file",
                "oid": f.git_oid,
                "size": f.size,
                "path": self.hub._listed(f),
            }
            if f.lfs:
                entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": 134}
            entries.append(entry)
        self._json(entries, body=body)

    def _resolve(self, repo_id: str, revision: str, filename: str, *, body: bool) -> None:
        repo = self._repo(repo_id, revision, body=body)
        if repo is None:
            return
        listed = {self.hub._listed(f): f for f in repo.files.values()}
        f = listed.get(filename)
        if f is None:
            self._error(404, "EntryNotFound", "Entry not found", body=body)
            return
        start, end = 0, f.size - 1
        status = 200
        if (wanted := self.headers.get("Range")) and (match := _RANGE.fullmatch(wanted.strip())):
            start = int(match[1])
            end = min(int(match[2]), f.size - 1) if match[2] else f.size - 1
            if start >= f.size or start > end:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{f.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{self.hub._etag(f, f.etag)}"')
        self.send_header("X-Repo-Commit", self.hub._reported_commit(repo))
        if f.lfs:
            self.send_header("X-Linked-Etag", f'"{self.hub._etag(f, f.sha256)}"')
            self.send_header("X-Linked-Size", str(f.size))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{f.size}")
        self.end_headers()
        if body:
            self._send_body(f, start, end + 1)

    def _send_body(self, f: _File, start: int, stop: int) -> None:
        cut = self.hub._take_cut(f.name)
        sent = 0
        with f.path.open("rb") as fh:
            fh.seek(start)
            while start + sent < stop:
                if self.hub.chunk_delay and self.hub._closing.wait(self.hub.chunk_delay):
                    break
                if self.hub._closing.is_set():
                    break
                size = min(self.hub.chunk_size, stop - start - sent)
                if cut is not None:
                    size = min(size, cut - sent)
                    if size <= 0:
                        break
                self.wfile.write(fh.read(size))
                sent += size
        if start + sent < stop:  # cut short on purpose: drop the connection mid-body
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)

    # -- helpers -----------------------------------------------------------------------------

    def _json(self, data: Any, *, body: bool) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        if body:
            self.wfile.write(raw)

    def _error(self, status: int, code: str, message: str, *, body: bool) -> None:
        raw = json.dumps({"error": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.end_headers()
        if body:
            self.wfile.write(raw)
