"""Write QImages to an MP4 file with Qt Multimedia (for tests, screenshots and demos).

Qt's recorder is asynchronous: frames are pushed whenever its input says it is ready, and the
file is complete only once the recorder reports it has stopped. :func:`write_video` hides that
behind one blocking call that runs a local event loop::

    frames = (pil_to_qimage(im) for im in moving_box_frames(60, 640, 360))
    write_video(tmp_path / "clip.mp4", frames, fps=30)

The video goes to a temporary name next to ``path`` and is renamed at the end, so a failure
never leaves a half-written file behind.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QSize, Qt, QTimer, QUrl, Slot
from PySide6.QtGui import QImage
from PySide6.QtMultimedia import (
    QMediaCaptureSession,
    QMediaFormat,
    QMediaRecorder,
    QVideoFrame,
    QVideoFrameFormat,
    QVideoFrameInput,
)

__all__ = ["write_video"]

# H.264 where the FFmpeg build has an encoder for it (macOS: VideoToolbox); Qt's LGPL Linux
# build only has the older MPEG-4 Part 2 encoder, which every player still decodes.
_CODECS = (QMediaFormat.VideoCodec.H264, QMediaFormat.VideoCodec.MPEG4)
_US = 1_000_000  # QVideoFrame times are in microseconds
_STOP_WAIT_MS = 5_000


def _media_format() -> QMediaFormat:
    fmt = QMediaFormat(QMediaFormat.FileFormat.MPEG4)
    supported = fmt.supportedVideoCodecs(QMediaFormat.ConversionMode.Encode)
    for codec in _CODECS:
        if codec in supported:
            fmt.setVideoCodec(codec)
            break
    return fmt


def _temp_path(path: Path) -> Path:
    # The recorder picks the container from the suffix, so the temporary name keeps ``.mp4``.
    return path.with_name(f".{path.stem}.{os.getpid()}.partial.mp4")


class _Recording(QObject):
    """One recording: pushes frames as the recorder asks for them, quits ``loop`` at the end."""

    def __init__(self, frames: Iterator[QImage], size: QSize, fps: float, target: Path) -> None:
        super().__init__()
        self._frames = frames
        self._size = size
        self._fps = fps
        self._index = 0
        self.error = ""
        self.finished = False
        self._pending: QVideoFrame | None = None
        self.loop = QEventLoop(self)
        self._session = QMediaCaptureSession(self)
        fmt = QVideoFrameFormat(size, QVideoFrameFormat.PixelFormat.Format_BGRA8888)
        self._input = QVideoFrameInput(fmt, self)
        self._recorder = QMediaRecorder(self)
        self._session.setVideoFrameInput(self._input)
        self._session.setRecorder(self._recorder)
        self._recorder.setMediaFormat(_media_format())
        self._recorder.setQuality(QMediaRecorder.Quality.VeryHighQuality)
        self._recorder.setVideoFrameRate(fps)
        self._recorder.setVideoResolution(size)
        self._recorder.setOutputLocation(QUrl.fromLocalFile(str(target)))
        self._recorder.setAutoStop(True)  # stops by itself after the end-of-stream frame
        self._recorder.errorOccurred.connect(self._on_error)
        self._recorder.recorderStateChanged.connect(self._on_state)
        self._input.readyToSendVideoFrame.connect(self._push)

    def run(self, timeout_s: float) -> None:
        """Record every frame; returns when the recorder stopped, failed or timed out."""
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.timeout.connect(self._on_timeout)
        timer.start(max(1, round(timeout_s * 1000)))
        # One frame per readyToSendVideoFrame, as Qt's own tools do: frames pushed in a burst
        # were all accepted, yet most of them never reached the file.
        self._recorder.record()
        self.loop.exec()
        if self._recorder.recorderState() != QMediaRecorder.RecorderState.StoppedState:
            # Failed or timed out: let the recorder finish its file before it is deleted.
            self._recorder.stop()
            timer.start(_STOP_WAIT_MS)
            self.loop.exec()
        timer.stop()

    @Slot()
    def _push(self) -> None:
        if self.error or self.finished:
            return
        if self._pending is None:
            self._pending = self._next_frame()
        if not self._input.sendVideoFrame(self._pending):
            return  # refused (queue full): sent again on the next readyToSendVideoFrame
        if not self._pending.isValid():
            self.finished = True  # the empty end-of-stream frame went out
        self._pending = None

    def _next_frame(self) -> QVideoFrame:
        """The next frame with its timestamps, or an empty frame (end of stream) at the end."""
        image = next(self._frames, None)
        if image is None:
            return QVideoFrame()
        if image.size() != self._size:
            image = image.scaled(
                self._size,
                Qt.AspectRatioMode.IgnoreAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        frame = QVideoFrame(image.convertToFormat(QImage.Format.Format_ARGB32))
        frame.setStartTime(round(self._index * _US / self._fps))
        frame.setEndTime(round((self._index + 1) * _US / self._fps))
        self._index += 1
        return frame

    @Slot(QMediaRecorder.Error, str)
    def _on_error(self, _error: QMediaRecorder.Error, message: str) -> None:
        self.error = " ".join(message.split()) or "the recorder failed"
        self.loop.quit()

    @Slot(QMediaRecorder.RecorderState)
    def _on_state(self, state: QMediaRecorder.RecorderState) -> None:
        if state == QMediaRecorder.RecorderState.StoppedState:
            self.loop.quit()

    @Slot()
    def _on_timeout(self) -> None:
        self.error = self.error or "timed out"
        self.loop.quit()


def write_video(
    path: Path, frames: Iterable[QImage], fps: float = 30.0, timeout_s: float = 60.0
) -> Path:
    """Encode ``frames`` as an MP4 video at ``path`` (blocks, running a local event loop).

    Args:
        path: where the video goes; an existing file is replaced only on success.
        frames: the images, all of the first one's size (others are scaled to it). Consumed
            lazily, so a generator of thousands of frames stays small in memory.
        fps: frames per second of the video.
        timeout_s: give up when encoding takes longer than this.

    Returns:
        ``path``.

    Raises:
        ValueError: ``frames`` is empty, or ``fps`` is not positive.
        RuntimeError: there is no QCoreApplication (Qt's recorder needs an event loop).
        OSError: the folder does not exist, or the recorder failed or timed out; no file is
            left at ``path`` or at the temporary name.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, not {fps}")
    if QCoreApplication.instance() is None:
        raise RuntimeError("write_video needs a QApplication: create one first")
    path = Path(path)
    if not path.parent.is_dir():
        raise OSError(f"cannot write {path.name}: the folder {path.parent} does not exist")
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None or first.isNull():
        raise ValueError("write_video needs at least one frame")
    temp = _temp_path(path)
    recording = _Recording(itertools.chain([first], iterator), first.size(), fps, temp)
    try:
        recording.run(timeout_s)
        if recording.error:
            raise OSError(f"cannot write {path.name}: {recording.error}")
        if not temp.is_file():
            raise OSError(f"cannot write {path.name}: the recorder wrote nothing")
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
    return path
