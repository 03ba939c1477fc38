"""``lfmdesk-bundle-check VIDEO``: prove the bundle's Qt can decode video and draw the icon.

Built into the Linux one-folder bundle beside ``lfmdesk`` (it shares its libraries and Qt
plugins), run by ``build.py self-test``: it plays ``VIDEO`` through ``QMediaPlayer`` into a
``QVideoSink`` (the FFmpeg multimedia plugin, as live mode's video source does) and renders
the app icon from the bundled SVG. Exit 0 and one line of facts, or 1 and the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QTimer, QUrl, Slot
from PySide6.QtGui import QGuiApplication, QIcon
from PySide6.QtMultimedia import QMediaPlayer, QVideoFrame, QVideoSink

MIN_FRAMES = 10
TIMEOUT_MS = 30_000


class Playback(QObject):
    """Plays a file into a video sink and counts the frames that arrive."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.frames = 0
        self.size = ""
        self.error = ""
        self.sink = QVideoSink(self)
        self.player = QMediaPlayer(self)
        self.player.setVideoSink(self.sink)
        self.sink.videoFrameChanged.connect(self.on_frame)
        self.player.mediaStatusChanged.connect(self.on_status)
        self.player.errorOccurred.connect(self.on_error)
        self.player.setSource(QUrl.fromLocalFile(str(path)))
        self.player.play()
        QTimer.singleShot(TIMEOUT_MS, self.on_timeout)

    @Slot(QVideoFrame)
    def on_frame(self, frame: QVideoFrame) -> None:
        if frame.isValid():
            self.frames += 1
            self.size = f"{frame.width()}x{frame.height()}"

    @Slot(QMediaPlayer.MediaStatus)
    def on_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status in (QMediaPlayer.MediaStatus.EndOfMedia, QMediaPlayer.MediaStatus.InvalidMedia):
            QCoreApplication.exit(0)

    @Slot(QMediaPlayer.Error, str)
    def on_error(self, _error: QMediaPlayer.Error, message: str) -> None:
        self.error = message or "unknown player error"
        QCoreApplication.exit(0)

    @Slot()
    def on_timeout(self) -> None:
        self.error = self.error or "timed out"
        QCoreApplication.exit(0)


def icon_sizes() -> list[int]:
    """The sizes the app icon renders at (empty when the SVG or the SVG plugin is missing).

    Looks where ``lfmdesk.gui._icon.app_icon`` does in a bundle, without importing lfmdesk:
    this check stays a small program that shares the app's libraries.
    """
    bundle = Path(getattr(sys, "_MEIPASS", Path(__file__).resolve().parent.parent))
    paths = [bundle / "lfmdesk" / "gui" / "lfmdesk.svg", bundle / "resources" / "lfmdesk.svg"]
    if not all(p.is_file() for p in paths):
        return []
    icon = QIcon(str(paths[0]))
    return [
        s for s in (16, 32, 256) if icon.pixmap(s, s).toImage().pixelColor(s // 2, s // 2).alpha()
    ]


def main(argv: list[str]) -> int:
    """Check video playback and the icon; returns the exit code."""
    if len(argv) != 1 or not Path(argv[0]).is_file():
        print("usage: lfmdesk-bundle-check VIDEO (an existing video file)", file=sys.stderr)
        return 2
    app = QGuiApplication(sys.argv[:1])
    playback = Playback(Path(argv[0]))
    app.exec()
    sizes = icon_sizes()
    problems = []
    if playback.frames < MIN_FRAMES:
        problems.append(f"video: {playback.frames} frames decoded ({playback.error or 'no error'})")
    if len(sizes) < 3:
        problems.append(f"icon renders at {sizes} only")
    if problems:
        print("bundle-check: FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"bundle-check: ok: {playback.frames} video frames ({playback.size}), icon {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
