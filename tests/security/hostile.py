"""Helpers for the hostile-input tests: payloads that prove code ran, checks that nothing hangs."""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# C that writes the marker the moment the library is loaded, before any Python sees it.
_CONSTRUCTOR_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void pwned(void) {
    int fd = open("%s", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) { write(fd, "native code ran\n", 16); close(fd); }
}
"""


def python_payload(marker: Path) -> str:
    """Python source that writes ``marker`` when imported."""
    return f"open({str(marker)!r}, 'w').write('python code ran')\n"


def write_py(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(python_payload(marker))
    return path


def write_pyc(path: Path, marker: Path) -> Path:
    """A compiled module (no source beside it) that writes ``marker`` when imported."""
    source = write_py(path.with_name(path.stem + "_src.py"), marker)
    py_compile.compile(str(source), cfile=str(path), doraise=True)
    source.unlink()
    return path


def write_native(path: Path, marker: Path) -> Path:
    """A shared library whose constructor writes ``marker`` (a .pyc when there is no gcc)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        return write_pyc(path, marker)
    source = path.with_suffix(".c")
    source.write_text(_CONSTRUCTOR_C % str(marker))
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-o", str(path), str(source)],
        check=True,
        capture_output=True,
    )
    source.unlink()
    return path


def set_config(folder: Path, name: str = "config.json", **changes: Any) -> None:
    file = folder / name
    data = json.loads(file.read_text())
    data.update(changes)
    file.write_text(json.dumps(data))


def copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def one_line(message: str) -> str:
    assert "\n" not in message and "Traceback" not in message, message
    return message


def finishes_within(seconds: float, work: Callable[[], Any], *, unblock: Path | None = None) -> Any:
    """Run ``work`` and return its result, failing (never hanging) if it takes too long.

    ``unblock`` is a FIFO a stuck reader may wait on: it is opened for writing and closed, which
    lets the stuck thread go, so a failing test does not leave a thread blocked forever.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # handed to the test thread
            outcome["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if unblock is not None:
            with open(os.open(unblock, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
        pytest.fail(f"still running after {seconds} s (hung?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def lfmdesk_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lfmdesk", *args],
        text=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without warnings and library chatter."""
    return [
        ln
        for ln in proc.stderr.splitlines()
        if ln.strip() and "warning" not in ln.lower() and "PyTorch was not found" not in ln
    ]


def put_in_cache(cache: Path, repo_id: str, src: Path, commit: str = "c" * 40) -> Path:
    """Lay ``src`` out as huggingface_hub does (blobs, snapshot links, refs/main).

    Files become blobs; a symbolic link to a folder stays a link (as a tool could leave it).
    """
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir()
    for i, file in enumerate(sorted(src.iterdir())):
        if file.is_symlink() and file.is_dir():
            (snapshot / file.name).symlink_to(file.readlink())
            continue
        blob = storage / "blobs" / f"{i:040x}"
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(commit)
    return snapshot
