"""A long session must not run ``None`` out of references (shiboken6 6.12 on CPython 3.11)."""

from __future__ import annotations

import os
import subprocess
import sys

_SESSION = """
import lfmdesk.gui
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
for _ in range(200_000):  # each void Qt call drops one reference to None here
    label.setText("x")
print("alive")
"""


def test_a_long_session_of_qt_calls_does_not_abort() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", _SESSION], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "alive"
