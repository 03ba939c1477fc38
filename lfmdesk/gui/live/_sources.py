"""Live frame sources for live mode: a camera, or a video file played as if it were one.

Both deliver every frame as a detached QImage with the ``time.perf_counter()`` of its
arrival; they throttle nothing (the live controller decides which frame to use)::

    source = CameraSource()                  # or VideoFileSource(Path("clip.mp4"))
    source.frameArrived.connect(controller.on_frame)     # (QImage, float)
    source.failed.connect(banner.show_message)           # (one line; the source stopped)
    source.start()

``failed`` is always queued: it arrives after ``start()`` has returned, so a controller can
mark itself running before calling ``start()`` and rely on ``failed``/``stopped`` to undo it.
Frames are emitted on the thread the source lives in (the GUI thread): when a camera backend
hands Qt frames on its own thread, the sink's signal reaches :meth:`FrameSource._on_frame`
queued, so connected slots never run on a foreign thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QCameraPermission,
    QCoreApplication,
    QObject,
    QPermission,
    Qt,
    QTimer,
    QUrl,
    Signal,
    Slot,
)
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import (
    QCamera,
    QCameraDevice,
    QMediaCaptureSession,
    QMediaDevices,
    QMediaPlayer,
    QVideoFrame,
    QVideoSink,
)

from lfmdesk.core import one_line

__all__ = [
    "CAMERA_DENIED",
    "NO_CAMERA",
    "CameraInfo",
    "CameraSource",
    "FrameSource",
    "VideoFileSource",
    "camera_device",
    "list_cameras",
]

NO_CAMERA = "No camera found: connect one or open a video file instead."
CAMERA_DENIED = (
    "lfmdesk may not use the camera: allow it in System Settings › Privacy & Security › Camera,"
    " then start live mode again."
)

# Formats a frame may keep as it comes out of toImage(); anything else becomes RGB32.
_KEPT_FORMATS = frozenset(
    {
        QImage.Format.Format_RGB32,
        QImage.Format.Format_ARGB32,
        QImage.Format.Format_ARGB32_Premultiplied,
    }
)


class FrameSource(QObject):
    """Base class of live sources: start/stop, and a signal per frame.

    Signals:
        frameArrived(QImage, float): the frame (RGB32 from video and cameras, ARGB32 or
            ARGB32_Premultiplied from animated images; a detached image that stays valid
            after the next frame) and ``time.perf_counter()`` when it arrived.
        started(): frames are on their way.
        stopped(): no more frames (``stop()`` or the end of a clip that does not loop).
        failed(str): one line a user understands; the source is stopped (no ``stopped``).
    """

    frameArrived = Signal(QImage, float)
    started = Signal()
    stopped = Signal()
    failed = Signal(str)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._running = False
        self._announced = False
        self._frames = 0
        self._pending_failure = ""
        self._sink = QVideoSink(self)
        self._sink.videoFrameChanged.connect(self._on_frame)

    def start(self) -> None:
        """Start delivering frames; ``started`` or ``failed`` follows. No-op when running."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop delivering frames and emit ``stopped`` (no-op when not running)."""
        if not self._running:
            return
        self._halt()
        self._running = False
        self.stopped.emit()

    def is_running(self) -> bool:
        """``start()`` was called and neither ``stop()``, the end nor a failure came since."""
        return self._running

    def _begin(self) -> None:
        self._running = True
        self._announced = False
        self._frames = 0

    def _announce(self) -> None:
        if self._running and not self._announced:
            self._announced = True
            self.started.emit()

    def _halt(self) -> None:
        """Stop the underlying player or camera (subclasses)."""

    def _fail(self, message: str) -> None:
        """Stop now; emit ``failed(message)`` from the event loop (after ``start()`` returns)."""
        self._halt()
        self._running = False
        self._pending_failure = message
        QTimer.singleShot(0, self, self._emit_failure)

    @Slot()
    def _emit_failure(self) -> None:
        self.failed.emit(self._pending_failure)

    @Slot(QVideoFrame)
    def _on_frame(self, frame: QVideoFrame) -> None:
        # Qt sends an empty frame when playback stops; late frames after stop() are dropped.
        if not self._running or not frame.isValid():
            return
        arrived = time.perf_counter()
        image = frame.toImage()  # a new image, not a view of the decoder's buffer
        if image.isNull():
            return
        if image.format() not in _KEPT_FORMATS:
            image = image.convertToFormat(QImage.Format.Format_RGB32)
        self._announce()
        self._frames += 1
        self.frameArrived.emit(image, arrived)


class VideoFileSource(FrameSource):
    """A video or animated image (MP4, MOV, GIF, WebP, APNG, ...) played as a live source.

    Args:
        path: the file.
        loop: start over at the end (else emit ``stopped`` there).
        rate: playback speed (1.0 = the file's own frame rate).
        parent: Qt parent.
    """

    def __init__(
        self,
        path: Path,
        *,
        loop: bool = True,
        rate: float = 1.0,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(Path(path).name, parent)
        self.path = Path(path)
        self.loop = loop
        self._player = QMediaPlayer(self)
        self._player.setVideoSink(self._sink)  # no audio output: live mode is silent
        self._player.setPlaybackRate(rate)
        self._player.errorOccurred.connect(self._on_error)
        self._player.mediaStatusChanged.connect(self._on_status)
        self._player.playbackStateChanged.connect(self._on_playback)

    @property
    def frameIndex(self) -> int:
        """Index of the last frame emitted since ``start()``, across loops (-1 before any)."""
        return self._frames - 1

    def start(self) -> None:
        """Play from the beginning; ``failed`` when the file is missing or unplayable."""
        if self._running:
            return
        self._begin()
        if not self.path.is_file():
            self._fail(f"cannot play {self.name}: the file does not exist")
            return
        self._player.setLoops(QMediaPlayer.Loops.Infinite if self.loop else QMediaPlayer.Loops.Once)
        url = QUrl.fromLocalFile(str(self.path.resolve()))
        if self._player.mediaStatus() == QMediaPlayer.MediaStatus.InvalidMedia:
            self._player.setSource(QUrl())  # load again: the file may have been fixed since
        if self._player.source() != url:
            self._player.setSource(url)
        self._player.setPosition(0)
        self._player.play()

    def _halt(self) -> None:
        self._player.stop()

    @Slot(QMediaPlayer.Error, str)
    def _on_error(self, error: QMediaPlayer.Error, message: str) -> None:
        if self._running:
            reason = one_line(message) or error.name
            self._fail(f"cannot play {self.name}: {reason}")

    @Slot(QMediaPlayer.MediaStatus)
    def _on_status(self, status: QMediaPlayer.MediaStatus) -> None:
        if status == QMediaPlayer.MediaStatus.EndOfMedia and self._running:
            self._running = False
            self.stopped.emit()
        elif status == QMediaPlayer.MediaStatus.InvalidMedia and self._running:
            # errorOccurred usually says why first; this covers a backend that only sets this.
            self._fail(f"cannot play {self.name}: the file holds no video Qt can decode")

    @Slot(QMediaPlayer.PlaybackState)
    def _on_playback(self, state: QMediaPlayer.PlaybackState) -> None:
        if state == QMediaPlayer.PlaybackState.PlayingState:
            self._announce()


@dataclass(frozen=True)
class CameraInfo:
    """A camera the user can pick.

    Attributes:
        id: Qt's stable device id (store it in settings; see :func:`camera_device`).
        name: the name to show, e.g. "FaceTime HD Camera".
        is_default: the system's default camera.
    """

    id: bytes
    name: str
    is_default: bool


def list_cameras() -> list[CameraInfo]:
    """The cameras connected now (empty when there are none)."""
    default = QMediaDevices.defaultVideoInput()
    default_id = bytes(default.id().data()) if not default.isNull() else None
    return [
        CameraInfo(bytes(d.id().data()), d.description(), bytes(d.id().data()) == default_id)
        for d in QMediaDevices.videoInputs()
    ]


def camera_device(camera_id: bytes) -> QCameraDevice | None:
    """The connected camera with ``camera_id``, or ``None`` when it is gone."""
    for device in QMediaDevices.videoInputs():
        if bytes(device.id().data()) == camera_id:
            return device
    return None


class CameraSource(FrameSource):
    """A camera as a live source (QMediaCaptureSession + QCamera + QVideoSink).

    Args:
        device: the camera; ``None`` = the system default when ``start()`` is called.
        parent: Qt parent.
    """

    def __init__(self, device: QCameraDevice | None = None, parent: QObject | None = None) -> None:
        chosen = device if device is not None else QMediaDevices.defaultVideoInput()
        super().__init__(chosen.description() or "Camera", parent)
        self._device = device
        self._session = QMediaCaptureSession(self)
        self._session.setVideoSink(self._sink)
        self._camera: QCamera | None = None

    def start(self) -> None:
        """Ask for permission where the platform needs it, then open the camera."""
        if self._running:
            return
        self._begin()
        permission = QCameraPermission()
        app = QCoreApplication.instance()
        status = app.checkPermission(permission) if app is not None else Qt.PermissionStatus.Denied
        if status == Qt.PermissionStatus.Undetermined and app is not None:
            # macOS shows its dialog once; the answer comes back on the event loop.
            app.requestPermission(permission, self, self._on_permission)
            return
        self._after_permission(status)

    def _on_permission(self, permission: QPermission) -> None:
        if self._running:
            self._after_permission(permission.status())

    def _after_permission(self, status: Qt.PermissionStatus) -> None:
        if status != Qt.PermissionStatus.Granted:
            self._fail(CAMERA_DENIED)
            return
        device = self._device if self._device is not None else QMediaDevices.defaultVideoInput()
        if device.isNull() or camera_device(bytes(device.id().data())) is None:
            self._fail(NO_CAMERA)
            return
        self.name = device.description() or self.name
        self._camera = QCamera(device, self)
        self._camera.errorOccurred.connect(self._on_error)
        self._camera.activeChanged.connect(self._on_active)
        self._session.setCamera(self._camera)
        self._camera.start()

    def _halt(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            camera.errorOccurred.disconnect(self._on_error)
            camera.activeChanged.disconnect(self._on_active)
            camera.stop()
            self._session.setCamera(None)  # type: ignore[arg-type]  # the stubs miss "or None"
            camera.deleteLater()

    @Slot(QCamera.Error, str)
    def _on_error(self, error: QCamera.Error, message: str) -> None:
        if self._running:
            self._fail(f"{self.name}: {(one_line(message) or error.name)}")

    @Slot(bool)
    def _on_active(self, active: bool) -> None:
        if active:
            self._announce()
        elif self._running:
            self._fail(f"{self.name} stopped: check that no other app is using it")
