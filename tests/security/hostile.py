"""Helpers for the hostile-input tests: snapshots, projects, FIFOs, CLI runs, one-line checks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from PIL import Image

from lfmdesk.core.datasets._annotations import add_box, make_box
from lfmdesk.core.datasets._project import Project


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
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
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
