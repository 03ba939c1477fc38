"""Live sources: a generated clip written with write_video, played back as a live source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QImage

from lfmdesk.core.testing import box_at, moving_box_frames
from lfmdesk.gui.annotate._capture import qimage_to_pil
from lfmdesk.gui.live._sources import (
    NO_CAMERA,
    CameraSource,
    VideoFileSource,
    list_cameras,
)
from lfmdesk.gui.live._video_writer import write_video
from lfmdesk.gui.support._qtimage import pil_to_qimage

W, H, COUNT = 320, 240, 45  # the box slides right through all 45 frames (no bounce yet)


class _Collector(QObject):
    """Records what a source emits (slots on a QObject, as the app connects them)."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[tuple[int, int]] = []
        self.box_x: list[float] = []
        self.times: list[float] = []
        self.failures: list[str] = []
        self.started = 0
        self.stopped = 0

    def watch(self, source: VideoFileSource | CameraSource) -> _Collector:
        source.frameArrived.connect(self.on_frame)
        source.failed.connect(self.on_failed)
        source.started.connect(self.on_started)
        source.stopped.connect(self.on_stopped)
        return self

    @Slot(QImage, float)
    def on_frame(self, image: QImage, arrived: float) -> None:
        self.sizes.append((image.width(), image.height()))
        self.box_x.append(_red_box_left(image))
        self.times.append(arrived)

    @Slot(str)
    def on_failed(self, message: str) -> None:
        self.failures.append(message)

    @Slot()
    def on_started(self) -> None:
        self.started += 1

    @Slot()
    def on_stopped(self) -> None:
        self.stopped += 1


def _red_box_left(image: QImage) -> float:
    """Left edge of the red box (codec blur allowed: strongly red pixels only), -1 if none."""
    pixels = np.asarray(qimage_to_pil(image)).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 120) & (pixels[..., 2] < 120)
    columns = np.flatnonzero(red.sum(axis=0) > H // 10)
    return float(columns[0]) if columns.size else -1.0


@pytest.fixture(scope="module")
def clip(qapp: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = (pil_to_qimage(im) for im in moving_box_frames(COUNT, W, H))
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", frames, fps=30)


def test_write_video_leaves_only_the_finished_file(clip: Path) -> None:
    assert [p.name for p in clip.parent.iterdir()] == ["clip.mp4"]
    assert clip.read_bytes()[4:8] == b"ftyp"  # an MP4 container


def test_clip_frames_arrive_in_order_with_the_box_moving(qtbot, clip: Path) -> None:
    source = VideoFileSource(clip, loop=False, rate=2.0)
    seen = _Collector().watch(source)
    with qtbot.waitSignal(source.stopped, timeout=10_000):
        source.start()
    assert seen.started == 1 and seen.stopped == 1 and not seen.failures
    assert not source.is_running()
    assert len(seen.sizes) >= COUNT * 0.8
    assert set(seen.sizes) == {(W, H)}
    assert seen.times == sorted(seen.times)
    assert source.frameIndex == len(seen.sizes) - 1
    assert min(seen.box_x) >= 0  # the box is found in every frame
    first_x = box_at(0, W, H)[0]
    assert abs(seen.box_x[0] - first_x) <= 4
    assert seen.box_x[-1] >= box_at(COUNT - 1, W, H)[0] - 12
    assert seen.box_x == sorted(seen.box_x)  # it only moves right in this clip


def test_looping_clip_keeps_going_past_its_end(qtbot, clip: Path) -> None:
    source = VideoFileSource(clip, loop=True, rate=4.0)
    seen = _Collector().watch(source)
    source.start()
    qtbot.waitUntil(lambda: source.frameIndex >= COUNT + 20, timeout=10_000)
    assert source.is_running() and seen.stopped == 0 and min(seen.box_x) >= 0
    # The box went back to the left edge when the clip started over.
    assert min(seen.box_x[COUNT // 2 :]) <= box_at(0, W, H)[0] + 12
    source.stop()
    assert seen.stopped == 1 and not source.is_running()


def test_stop_stops_the_frames(qtbot, clip: Path) -> None:
    source = VideoFileSource(clip, loop=True)
    seen = _Collector().watch(source)
    source.start()
    qtbot.waitUntil(lambda: len(seen.sizes) >= 3, timeout=5_000)
    source.stop()
    count = len(seen.sizes)
    qtbot.wait(300)
    assert len(seen.sizes) == count
    assert seen.stopped == 1
    source.stop()  # a second stop changes nothing
    assert seen.stopped == 1


def test_a_stopped_clip_starts_again_from_the_beginning(qtbot, clip: Path) -> None:
    source = VideoFileSource(clip, loop=False, rate=4.0)
    seen = _Collector().watch(source)
    for _ in range(2):
        with qtbot.waitSignal(source.stopped, timeout=10_000):
            source.start()
        assert abs(seen.box_x[0] - box_at(0, W, H)[0]) <= 4
        seen.box_x.clear()
    assert seen.started == 2


@pytest.mark.parametrize("kind", ["missing", "text"])
def test_unplayable_files_fail_with_one_line(qtbot, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "clip.mp4"
    if kind == "text":
        path.write_text("not a video\n")
    source = VideoFileSource(path)
    seen = _Collector().watch(source)
    with qtbot.waitSignal(source.failed, timeout=5_000):
        source.start()
        assert not seen.failures  # queued: the caller finishes start() first
    assert len(seen.failures) == 1
    message = seen.failures[0]
    assert message.startswith("cannot play clip.mp4: ") and "\n" not in message
    assert not source.is_running() and seen.stopped == 0 and not seen.sizes


def test_animated_gif_plays_as_a_source(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    first, *rest = moving_box_frames(20, W, H)
    first.save(path, save_all=True, append_images=rest, duration=33, loop=0)
    source = VideoFileSource(path, loop=False, rate=2.0)
    seen = _Collector().watch(source)
    with qtbot.waitSignal(source.stopped, timeout=10_000):
        source.start()
    assert len(seen.sizes) >= 15 and set(seen.sizes) == {(W, H)}
    assert min(seen.box_x) >= 0 and seen.box_x[-1] > seen.box_x[0] + 40


def test_without_a_camera_start_fails_with_a_hint(qtbot) -> None:
    if list_cameras():
        pytest.skip("this machine has a camera")
    source = CameraSource()
    seen = _Collector().watch(source)
    with qtbot.waitSignal(source.failed, timeout=5_000):
        source.start()
    assert seen.failures == [NO_CAMERA]
    assert not source.is_running() and seen.started == 0
    source.stop()
    assert seen.stopped == 0


def test_write_video_into_a_missing_folder_raises_and_writes_nothing(
    qapp: object, tmp_path: Path
) -> None:
    target = tmp_path / "nowhere" / "clip.mp4"
    frames = (pil_to_qimage(im) for im in moving_box_frames(3, W, H))
    with pytest.raises(OSError, match="does not exist"):
        write_video(target, frames)
    assert list(tmp_path.iterdir()) == []


def test_write_video_needs_frames(qapp: object, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        write_video(tmp_path / "clip.mp4", [])
    assert list(tmp_path.iterdir()) == []


def test_write_video_that_times_out_raises_and_leaves_nothing(qapp: object, tmp_path: Path) -> None:
    frames = (pil_to_qimage(im) for im in moving_box_frames(200, W, H))
    with pytest.raises(OSError, match="timed out"):
        write_video(tmp_path / "clip.mp4", frames, timeout_s=0.05)
    assert list(tmp_path.iterdir()) == []
