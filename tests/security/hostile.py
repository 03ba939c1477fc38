"""Helpers for the hostile-input tests.

Payloads that prove code ran (Python, compiled, native), model folders and cache snapshots,
projects and pictures, FIFOs, CLI runs in a fresh process, and the checks every attack ends
with: one line, no traceback, nothing changed, nothing hung.
"""

from __future__ import annotations

import json
import os
import py_compile
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lfmdesk.core.datasets._annotations import add_box, make_box
from lfmdesk.core.datasets._project import Project

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


def snapshot(folder: Path) -> dict[str, object]:
    """Everything under ``folder`` as it is on disk (links not followed): proof of no change."""
    found: dict[str, object] = {}
    if not folder.exists():
        return found
    for current, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            path = Path(current) / name
            st = os.lstat(path)
            rel = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                found[rel] = ("file", stat.S_IMODE(st.st_mode), path.read_bytes())
            else:
                found[rel] = ("other", stat.S_IFMT(st.st_mode))
    return found


def picture(path: Path, size: tuple[int, int] = (64, 48), color: str = "red") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def make_project(root: Path) -> Project:
    """Three images: two with a person's box (one in a subfolder), one never opened."""
    picture(root / "a.png", (64, 48), "red")
    picture(root / "trips" / "b.png", (40, 30), "green")
    picture(root / "c.png", (20, 20), "blue")
    project = Project(root)
    for key, px in (("a.png", (1, 2, 30, 40)), ("trips/b.png", (0, 0, 10, 10))):
        ann = project.load_or_empty(key)
        project.save(add_box(ann, make_box("car", px, ann.width, ann.height)))
    return project


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``lfmdesk ARGS`` in a fresh process (a hang or a crash cannot take the test run down)."""
    return subprocess.run(
        [sys.executable, "-m", "lfmdesk", *args],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),  # the installed lfmdesk, not one that happens to be in cwd
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def assert_clean(proc: subprocess.CompletedProcess[str], *, code: int) -> None:
    """Exit ``code``, at most one ``lfmdesk: error:`` line, no traceback, nothing raw."""
    err = proc.stderr
    assert proc.returncode == code, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert sum(line.startswith("lfmdesk: error:") for line in err.splitlines()) <= 1, err
    assert "\x1b" not in err + proc.stdout


_START = textwrap.dedent(
    """
    import json, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from lfmdesk.gui._app import run_app
    from lfmdesk.gui._window import MainWindow

    def check():
        [window] = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
        banner = window.banner
        rows = window.workspace.panel.rows()
        print(json.dumps({
            "banner": banner.message if banner.isVisible() and banner.height() > 0 else "",
            "rows": [[r.key, r.status] for r in rows],
            "project": str(window.workspace.project.root),
        }))
        window.close()
        app.quit()

    QTimer.singleShot(3000, check)
    sys.exit(run_app(["--engine", "scripted"]))
    """
)


def start_window(tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """Start the real window (scripted engine, offscreen) on ``tmp_path``'s config and data
    folders; after 3 s report the banner, the project and its rows, then quit."""
    env = {
        **os.environ,
        "LFMDESK_CONFIG_DIR": str(tmp_path / "config"),
        "LFMDESK_DATA_DIR": str(tmp_path / "data"),
        "QT_QPA_PLATFORM": "offscreen",
    }
    proc = subprocess.run(
        [sys.executable, "-c", _START], capture_output=True, text=True, env=env, timeout=120
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, (json.loads(lines[-1]) if lines else {})
