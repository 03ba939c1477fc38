"""Screen capture: a region dragged on a real X server is exactly the pixels under it, the
lfmdesk window is hidden while grabbing, Esc cancels; plus the Qt-free helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.core.images._capture import (
    EMPTY_CAPTURE,
    PERMISSION_HELP,
    looks_blank,
    save_capture,
    screen_capture_allowed,
)

XVFB = Path("/usr/bin/Xvfb")
ROOT = Path(__file__).resolve().parents[2]

# The target window is 200×150 at (100, 80): red left half, blue right half, a green square
# at (20, 20)-(40, 40). The stand-in lfmdesk window (yellow) sits on top of it and must be
# hidden while the screen is grabbed, or yellow would show in the crop.
SCRIPT = r"""
import json, sys
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget
from lfmdesk.gui.annotate._capture import ScreenCapturer

mode, out = sys.argv[1], sys.argv[2]
app = QApplication([])

class Pattern(QWidget):
    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(0, 0, 100, 150, QColor(255, 0, 0))
        p.fillRect(100, 0, 100, 150, QColor(0, 0, 255))
        p.fillRect(20, 20, 20, 20, QColor(0, 255, 0))
        p.end()

class Main(QWidget):
    def paintEvent(self, event):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(255, 255, 0))
        p.end()

def frameless(widget, x, y, w, h):
    widget.setWindowFlags(Qt.WindowType.FramelessWindowHint)
    widget.setGeometry(x, y, w, h)
    widget.show()
    QTest.qWaitForWindowExposed(widget)
    return widget

target = frameless(Pattern(), 100, 80, 200, 150)
main = frameless(Main(), 150, 100, 120, 100)
QTest.qWait(200)
before = app.primaryScreen().grabWindow(0).toImage()
report = {"main_on_screen_before": before.pixelColor(160, 110).name()}
capturer = ScreenCapturer(main)
events = []
capturer.captured.connect(lambda image: (events.append("captured"), image.save(out + "/crop.png")))
capturer.cancelled.connect(lambda: events.append("cancelled"))
capturer.problem.connect(lambda message: events.append("problem: " + message))
capturer.capture_screen() if mode == "screen" else capturer.capture_region()
report["main_visible_at_start"] = main.isVisible()
for _ in range(100):
    if capturer.overlay is not None or events:
        break
    QTest.qWait(50)
overlay = capturer.overlay
report["main_visible_during"] = main.isVisible()
if overlay is not None:
    QTest.qWaitForWindowExposed(overlay)
    if mode == "drag":
        left, none = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
        QTest.mousePress(overlay, left, none, QPoint(100, 80))
        QTest.mouseMove(overlay, QPoint(200, 150))
        report["size_text_rect"] = [overlay.selection.width(), overlay.selection.height()]
        QTest.mouseRelease(overlay, left, none, QPoint(300, 230))
    else:
        QTest.keyClick(overlay, Qt.Key.Key_Escape)
QTest.qWait(50)
report["events"] = events
report["main_visible_after"] = main.isVisible()
with open(out + "/report.json", "w") as fh:
    json.dump(report, fh)
"""


@pytest.fixture(scope="module")
def display():
    if not XVFB.exists():
        pytest.skip("Xvfb is not installed")
    number = next(n for n in range(151, 200) if not Path(f"/tmp/.X{n}-lock").exists())
    proc = subprocess.Popen(
        [str(XVFB), f":{number}", "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path(f"/tmp/.X11-unix/X{number}")
    deadline = time.monotonic() + 10
    while not socket.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    if not socket.exists():
        proc.kill()
        pytest.fail(f"Xvfb :{number} did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def _run(display: str, mode: str, out: Path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb", "DISPLAY": display}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads((out / "report.json").read_text())


def test_region_capture_is_the_dragged_pixels_without_the_app_window(display, tmp_path) -> None:
    report = _run(display, "drag", tmp_path)
    assert report["main_on_screen_before"] == "#ffff00"  # the stand-in window covers the target
    assert report["main_visible_at_start"] is False  # hidden before the grab
    assert report["main_visible_during"] is False
    assert report["events"] == ["captured"]
    assert report["main_visible_after"] is True
    assert report["size_text_rect"] == [100, 70]
    crop = Image.open(tmp_path / "crop.png").convert("RGB")
    assert crop.size == (200, 150)
    assert crop.getpixel((5, 5)) == (255, 0, 0)
    assert crop.getpixel((99, 149)) == (255, 0, 0)
    assert crop.getpixel((100, 0)) == (0, 0, 255)
    assert crop.getpixel((199, 149)) == (0, 0, 255)
    assert crop.getpixel((20, 20)) == crop.getpixel((39, 39)) == (0, 255, 0)
    assert crop.getpixel((19, 19)) == crop.getpixel((40, 40)) == (255, 0, 0)
    colours = {c for _, c in crop.getcolors(maxcolors=10) or []}
    assert colours == {(255, 0, 0), (0, 0, 255), (0, 255, 0)}  # no yellow: window was hidden


def test_full_screen_capture_hides_the_app_window(display, tmp_path) -> None:
    report = _run(display, "screen", tmp_path)
    assert report["main_visible_at_start"] is False and report["main_visible_after"] is True
    assert report["events"] == ["captured"]
    shot = Image.open(tmp_path / "crop.png").convert("RGB")
    assert shot.size == (800, 600)
    assert shot.getpixel((105, 85)) == shot.getpixel((160, 110)) == (255, 0, 0)  # not yellow
    assert shot.getpixel((125, 105)) == (0, 255, 0)


def test_escape_cancels_and_captures_nothing(display, tmp_path) -> None:
    report = _run(display, "escape", tmp_path)
    assert report["events"] == ["cancelled"]
    assert report["main_visible_after"] is True
    assert not (tmp_path / "crop.png").exists()


# --- Qt-free helpers ------------------------------------------------------------------------


def test_looks_blank_tells_a_refused_grab_from_a_screen() -> None:
    assert looks_blank(Image.new("RGB", (1920, 1080), (0, 0, 0)))
    wallpaper = Image.new("RGB", (1920, 1080), (40, 90, 160))
    wallpaper.putpixel((5, 5), (255, 255, 255))  # a cursor-sized speck is still blank
    assert looks_blank(wallpaper)
    screen = wallpaper.copy()
    screen.paste((250, 250, 250), (200, 200, 900, 700))  # a window
    assert not looks_blank(screen)
    gradient = Image.linear_gradient("L").resize((800, 600))  # grey, not RGB
    assert not looks_blank(gradient)


def test_screen_capture_permission_is_unknown_off_macos() -> None:
    if sys.platform == "darwin":
        assert screen_capture_allowed() in (True, False, None)
    else:
        assert screen_capture_allowed() is None
    assert "\n" not in PERMISSION_HELP and "Screen & System Audio Recording" in PERMISSION_HELP
    assert "\n" not in EMPTY_CAPTURE


def test_save_capture_names_by_time_and_never_overwrites(tmp_path) -> None:
    now = datetime(2026, 11, 21, 10, 30, 5)
    image = Image.new("RGB", (30, 20), (10, 200, 30))
    first = save_capture(image, tmp_path / "shots", now=now)
    second = save_capture(Image.new("RGB", (5, 5)), tmp_path / "shots", now=now)
    third = save_capture(image, tmp_path / "shots", now=now)
    assert first.name == "Capture 2026-11-21 at 10.30.05.png"
    assert second.name == "Capture 2026-11-21 at 10.30.05-2.png"
    assert third.name == "Capture 2026-11-21 at 10.30.05-3.png"
    with Image.open(first) as saved:
        assert saved.size == (30, 20) and saved.getpixel((0, 0)) == (10, 200, 30)
    assert sorted(p.name for p in (tmp_path / "shots").iterdir()) == sorted(
        p.name for p in (first, second, third)
    )  # no temp files left behind


def test_save_capture_failure_leaves_nothing_and_says_so(tmp_path, monkeypatch) -> None:
    from lfmdesk.core import InputError
    from lfmdesk.core.images import _capture

    def broken(path: Path, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_capture, "write_bytes_atomic", broken)
    with pytest.raises(InputError, match="No space left") as info:
        save_capture(Image.new("RGB", (4, 4)), tmp_path, now=datetime(2026, 1, 1))
    assert "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


# --- in-process (offscreen) ------------------------------------------------------------------


def _capturer(qtbot):
    pytest.importorskip("PySide6")
    from PySide6.QtWidgets import QWidget

    from lfmdesk.gui.annotate._capture import ScreenCapturer

    window = QWidget()
    qtbot.addWidget(window)
    window.show()
    return window, ScreenCapturer(window, delay_ms=10)


def test_clipboard_image_data_a_file_or_nothing(qtbot, tmp_path) -> None:
    from PySide6.QtCore import QMimeData, QUrl
    from PySide6.QtGui import QGuiApplication

    from lfmdesk.gui.annotate._capture import NO_CLIPBOARD_IMAGE
    from lfmdesk.gui.support._qtimage import pil_to_qimage

    _, capturer = _capturer(qtbot)
    got: list[object] = []
    problems: list[str] = []
    capturer.captured.connect(got.append)
    capturer.problem.connect(problems.append)
    clipboard = QGuiApplication.clipboard()
    clipboard.setImage(pil_to_qimage(Image.new("RGB", (12, 7), (1, 2, 3))))
    capturer.capture_clipboard()
    assert got[-1].size == (12, 7) and got[-1].getpixel((0, 0)) == (1, 2, 3)

    path = tmp_path / "copied.png"
    Image.new("RGB", (9, 4), (200, 0, 0)).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    clipboard.setMimeData(mime)
    capturer.capture_clipboard()
    assert len(got) == 2 and got[-1].size == (9, 4)

    clipboard.setText("just words")
    capturer.capture_clipboard()
    assert len(got) == 2 and problems == [NO_CLIPBOARD_IMAGE]


def test_an_empty_grab_is_a_problem_and_the_window_comes_back(qtbot, monkeypatch) -> None:
    from PySide6.QtGui import QPixmap, QScreen

    window, capturer = _capturer(qtbot)
    black = QPixmap(64, 48)
    black.fill()  # one flat colour, like a grab the system refused
    monkeypatch.setattr(QScreen, "grabWindow", lambda self, wid=0, *a: black)
    with qtbot.waitSignal(capturer.problem, timeout=5000) as blocker:
        capturer.capture_screen()
        assert not window.isVisible() and capturer.busy
    assert blocker.args == [PERMISSION_HELP if sys.platform == "darwin" else EMPTY_CAPTURE]
    assert window.isVisible() and not capturer.busy
