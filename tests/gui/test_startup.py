"""Start-up stays light: the window shows before anything heavy is imported.

MLX, mlx-vlm, transformers and torch belong to the engine process; QtMultimedia loads when
live mode is first used. A fresh ``lfmdesk`` process (scripted engine) records, at the
window's first paint, which of them it has imported: none.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ("mlx", "mlx_vlm", "transformers", "torch", "PySide6.QtMultimedia")

PROBE = r"""
import os, sys
import lfmdesk.gui.support._startup_trace as trace

def mark(name):
    heavy = [m for m in os.environ["HEAVY"].split() if m in sys.modules]
    with open(os.environ["LFMDESK_STARTUP_TRACE"], "a") as fh:
        fh.write(name + " " + ",".join(heavy) + "\n")
    os._exit(0)

trace.mark = mark
from lfmdesk.__main__ import main
main(["--engine", "scripted"])
"""


def test_the_window_shows_before_any_heavy_import(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    env = dict(
        os.environ,
        HEAVY=" ".join(HEAVY),
        LFMDESK_STARTUP_TRACE=str(trace),
        LFMDESK_STARTUP_T0=repr(time.time()),
        LFMDESK_CONFIG_DIR=str(tmp_path / "config"),
        LFMDESK_DATA_DIR=str(tmp_path / "data"),
        QT_QPA_PLATFORM="offscreen",
    )
    subprocess.run([sys.executable, "-c", PROBE], env=env, timeout=120, check=True)
    assert trace.read_text().split("\n")[0] == "window-visible "  # painted, nothing heavy
