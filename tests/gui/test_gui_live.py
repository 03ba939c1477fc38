"""Live mode in the window, driven by a generated video file: newest frame wins, one request in
flight, boxes that follow the video, the HUD, snapshots, and the real engine on a fixture."""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
from pathlib import Path

import pytest

pytest.importorskip("PySide6")

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Slot
from PySide6.QtGui import QImage
from test_gui_app import closing, load, make_window  # noqa: F401

from lfmdesk.core import AppSettings, LiveResult, LiveSettings, SamplingSettings
from lfmdesk.core.testing import moving_box_frames
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.live._loop import LiveController
from lfmdesk.gui.live._panel import LivePanel
from lfmdesk.gui.live._sources import CameraInfo, VideoFileSource
from lfmdesk.gui.live._video_writer import write_video
from lfmdesk.gui.support._qtimage import pil_to_qimage, qimage_to_pil

FPS = 30.0
SIZE = (320, 240)
DETECT = LiveSettings(mode="detect", watch="square")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six seconds of the sliding red square at 30 frames/s, as an MP4."""
    path = tmp_path_factory.mktemp("video") / "square.mp4"
    frames = (pil_to_qimage(f) for f in moving_box_frames(int(6 * FPS), *SIZE))
    return write_video(path, frames, fps=FPS)


class Recorder(QObject):
    """Checks that no live request starts while another request is in flight; keeps results."""

    def __init__(self, controller: LiveController) -> None:
        super().__init__()
        client = controller.client
        self.live_starts = 0
        self.overlapping_starts = 0
        self.results: list[LiveResult] = []
        self.frames = 0
        self.squares: list[tuple[int, int, int, int] | None] = []  # per frame shown, in order
        start_chat = client.start_chat

        def counting_start(request: object) -> int:
            self.live_starts += 1
            self.overlapping_starts += client.busy  # something still in flight
            return start_chat(request)  # type: ignore[arg-type]

        # The chat controller keeps its own reference to the client: only live mode's
        # requests come through the proxy.
        controller.client = _Proxy(client, counting_start)  # type: ignore[assignment]
        controller.resultShown.connect(self.on_result)
        controller.frameShown.connect(self.on_frame)

    @Slot(object)
    def on_result(self, result: LiveResult) -> None:
        self.results.append(result)

    @Slot(object)
    def on_frame(self, image: QImage) -> None:
        self.squares.append(red_square(image))
        self.frames += 1


def red_square(image: QImage) -> tuple[int, int, int, int] | None:
    """Where the red square is in a decoded frame (the player may skip frames)."""
    pixels = np.asarray(qimage_to_pil(image), dtype=np.int16)
    ys, xs = np.nonzero((pixels[..., 0] > 160) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110))
    if not len(xs):
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


class _Proxy:
    """The engine client with its start_chat replaced (everything else passes through)."""

    def __init__(self, client: EngineClient, start_chat: object) -> None:
        self._client, self.start_chat = client, start_chat

    def __getattr__(self, name: str) -> object:
        return getattr(self._client, name)


def live_window(
    qtbot, tmp_path, close_later, options, live: LiveSettings = DETECT, model: str | None = "8bit"
):
    """A window whose engine (scripted, or real when ``options`` is None) has ``model`` loaded."""
    settings = AppSettings(sampling=SamplingSettings(temperature=0.0), live=live)
    factory = "real" if options is None else "scripted"
    window = make_window(qtbot, tmp_path, factory, options, settings=settings)
    close_later(window)
    if model is not None:
        load(qtbot, window, model, timeout=120_000)
    return window


def test_live_video_keeps_one_request_in_flight_drops_stale_frames_and_boxes_follow(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    # ~12 tokens at 25 ms: one answer takes ~300 ms, about nine video frames.
    window = live_window(qtbot, tmp_path, closing, {"token_delay": 0.025, "red_boxes": True})
    recorder = Recorder(window.live.controller)
    window.live.open_video(clip)
    assert window.view_area.currentWidget() is window.live.view
    qtbot.waitUntil(lambda: len(recorder.results) >= 8, timeout=30_000)
    hud = window.live.controller.stats.hud()
    window.live.stop()

    results = recorder.results
    assert recorder.overlapping_starts == 0  # one request in flight, ever
    indices = [r.frame for r in results]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert recorder.frames > 2 * len(results)  # frames that arrived meanwhile were dropped
    assert max(b - a for a, b in itertools.pairwise(indices)) > 1
    # Shown results are fresh: frame arrival → answer shown within 1.2 × one inference.
    latency = statistics.median(r.latency for r in results[1:])
    inference = statistics.median(r.inference for r in results[1:])
    print(
        f"live: {len(results)} answers, median latency {latency * 1000:.0f} ms, "
        f"inference {inference * 1000:.0f} ms ({latency / inference:.2f}x)"
    )
    assert latency <= 1.2 * inference, (latency, inference)
    # Every box is around the square of the frame it was computed on.
    for r in results:
        (d,) = r.detections
        square = recorder.squares[r.frame]
        assert square is not None
        assert abs(d.box[0] * SIZE[0] - square[0]) <= 3, (r, square)
        assert abs(d.box[2] * SIZE[0] - square[2]) <= 3, (r, square)
    # ... and the square does move: the boxes are not all in one place.
    assert len({round(r.detections[0].box[0], 2) for r in results}) > 3
    assert hud.analysed >= 8 and hud.analysed_fps > 0 and hud.dropped > 0


def test_live_boxes_hud_and_caption_are_drawn_over_the_video(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    window = live_window(qtbot, tmp_path, closing, {"token_delay": 0.005, "red_boxes": True})
    window.live.open_video(clip)
    view = window.live.view
    qtbot.waitUntil(lambda: len(view.box_items()) == 1, timeout=20_000)
    qtbot.waitUntil(lambda: view.hud.isVisible() and "frames/s" in view.hud.text(), timeout=5000)
    assert "square" in view.caption.text()
    assert window.live_dock.isVisible()
    # Preview only: the boxes and numbers go (they would describe old frames), video goes on.
    window.live.panel.analyse.setChecked(False)
    assert not view.box_items() and not view.hud.isVisible() and not view.caption.isVisible()
    shown = window.live.controller.latest_frame
    qtbot.waitUntil(lambda: window.live.controller.latest_frame is not shown, timeout=5000)
    window.live.stop()
    assert window.view_area.currentWidget() is window.canvas


def test_snapshot_freezes_the_frame_into_the_chat_and_the_project(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    window = live_window(qtbot, tmp_path, closing, {"token_delay": 0.005}, LiveSettings())
    window.live.open_video(clip)
    qtbot.waitUntil(lambda: window.live.controller.latest_frame is not None, timeout=10_000)
    before = set(window.workspace.project.root.glob("*.png"))
    with qtbot.waitSignal(window.workspace.capture_loader.loaded, timeout=10_000):
        window.live.snapshot()
    assert not window.live.controller.running
    assert window.view_area.currentWidget() is window.canvas
    image = window.controller.chat_thread.last_image() or window._current_image
    assert image is not None and (image.width, image.height) == SIZE
    (saved,) = set(window.workspace.project.root.glob("*.png")) - before
    assert Image.open(saved).size == SIZE


def test_chat_answers_are_not_starved_by_live_mode(qtbot, tmp_path, clip, closing) -> None:  # noqa: F811
    window = live_window(qtbot, tmp_path, closing, {"token_delay": 0.01}, LiveSettings())
    window.live.open_video(clip)
    recorder = Recorder(window.live.controller)
    qtbot.waitUntil(lambda: len(recorder.results) >= 2, timeout=20_000)
    window.chat.sendRequested.emit("Hello there")
    thread = window.controller.chat_thread
    qtbot.waitUntil(lambda: thread.turns and thread.turns[-1].role == "assistant", timeout=20_000)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=20_000)
    settled = len(recorder.results)
    qtbot.waitUntil(lambda: len(recorder.results) > settled, timeout=20_000)  # live resumes
    assert recorder.overlapping_starts == 0
    window.live.stop()


def test_detect_without_labels_waits_for_them_and_starts_once_they_are_typed(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    options = {"token_delay": 0.005, "red_boxes": True}
    window = live_window(qtbot, tmp_path, closing, options, LiveSettings(mode="detect", watch=""))
    with qtbot.waitSignal(window.live.problem, timeout=10_000) as problem:
        window.live.open_video(clip)
    assert "watch for" in problem.args[0] and "\n" not in problem.args[0]
    banner = window.banner
    assert banner.isVisible() and "watch for" in banner.message
    # Paused, not stopped: the box stays ticked and typing labels (no Enter) resumes.
    assert window.live.panel.analyse.isChecked() and window.live.controller.analysing
    window.live.panel.watch.setFocus()
    with qtbot.waitSignal(window.live.controller.resultShown, timeout=20_000):
        qtbot.keyClicks(window.live.panel.watch, "square")
    assert window.live.settings.watch == "square"
    qtbot.waitUntil(lambda: len(window.live.view.box_items()) == 1, timeout=10_000)
    assert banner.isHidden()  # the problem is gone, so is its banner
    window.live.stop()


def test_live_panel_changes_are_saved_and_used_for_the_next_frame(
    qtbot,
    tmp_path,
    closing,  # noqa: F811
) -> None:
    saved: list[AppSettings] = []
    window = make_window(qtbot, tmp_path, "scripted", {}, save_settings=saved.append)
    closing(window)
    panel = window.live.panel
    panel.mode.setCurrentIndex(panel.mode.findData("detect"))
    panel.watch.setText("cup, person")
    panel.watch.editingFinished.emit()
    panel.tokens.setValue(128)
    live = saved[-1].live
    assert (live.mode, live.watch, live.vision.max_image_tokens) == ("detect", "cup, person", 128)
    assert not live.vision.do_image_splitting
    assert window.live.settings == live


def test_no_camera_is_said_plainly(qtbot, tmp_path, closing) -> None:  # noqa: F811
    window = make_window(qtbot, tmp_path, "scripted", {})
    closing(window)
    panel = window.live.panel
    assert panel.camera.currentText() == "No camera found"
    assert not panel.start_button.isEnabled()
    with qtbot.waitSignal(window.live.problem, timeout=5000) as problem:
        window.live.start_default_camera()
    assert "camera" in problem.args[0].lower() and "\n" not in problem.args[0]
    assert not window.live.controller.running
    assert window.view_area.currentWidget() is window.canvas  # the picture is back


def test_real_engine_live_captions_a_video(qtbot, tmp_path, clip, fixture_models, closing) -> None:  # noqa: F811
    live = dataclasses.replace(LiveSettings(), max_tokens=6)
    window = live_window(qtbot, tmp_path, closing, None, live, str(fixture_models["8bit"]))
    recorder = Recorder(window.live.controller)
    window.live.open_video(clip)
    qtbot.waitUntil(lambda: len(recorder.results) >= 3, timeout=60_000)
    window.live.stop()
    assert recorder.overlapping_starts == 0
    assert all(r.width <= 512 and r.text for r in recorder.results)
    assert recorder.frames > len(recorder.results)


def test_dropping_a_video_starts_live_mode_and_images_still_go_to_the_chat(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    window = live_window(qtbot, tmp_path, closing, {}, LiveSettings(), model=None)
    window.canvas.filesDropped.emit([str(clip)])
    assert window.view_area.currentWidget() is window.live.view
    qtbot.waitUntil(lambda: window.live.controller.latest_frame is not None, timeout=10_000)
    window.live.stop()


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or 'self'}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc")
def test_soak_thousands_of_frames_through_the_real_engine_keep_memory_flat(
    qtbot,
    tmp_path,
    clip,
    fixture_models,
    closing,  # noqa: F811
) -> None:
    live = dataclasses.replace(LiveSettings(), max_tokens=4)
    window = live_window(qtbot, tmp_path, closing, None, live, str(fixture_models["8bit"]))
    recorder = Recorder(window.live.controller)
    window.live.start_source(VideoFileSource(clip, rate=4.0))  # 120 frames/s
    qtbot.waitUntil(lambda: recorder.frames >= 400, timeout=60_000)
    warm = (rss_mb(), rss_mb(window.client.pid), len(recorder.results))
    qtbot.waitUntil(lambda: recorder.frames >= 3000, timeout=120_000)
    end = (rss_mb(), rss_mb(window.client.pid), len(recorder.results))
    window.live.stop()
    print(
        f"soak: frames={recorder.frames} analysed={end[2]} window {warm[0]:.0f}→{end[0]:.0f} MB,"
        f" engine {warm[1]:.0f}→{end[1]:.0f} MB"
    )
    assert end[2] - warm[2] >= 50  # the engine really worked through the soak
    assert recorder.overlapping_starts == 0
    assert abs(end[0] - warm[0]) <= 0.05 * warm[0], (warm, end)
    assert abs(end[1] - warm[1]) <= 0.05 * warm[1], (warm, end)


def test_choosing_another_camera_while_running_switches_to_it(qtbot) -> None:
    cameras = [CameraInfo(b"front", "FaceTime HD Camera", True), CameraInfo(b"usb", "USB", False)]
    panel = LivePanel(LiveSettings(), cameras)
    qtbot.addWidget(panel)
    assert panel.camera.currentText() == "FaceTime HD Camera" and panel.start_button.isEnabled()
    with qtbot.waitSignal(panel.startRequested) as started:
        panel.start_button.click()
    assert started.args == [b"front"]
    panel.set_running(True, "FaceTime HD Camera")
    assert panel.start_button.text() == "Stop" and panel.snapshot_button.isEnabled()
    with qtbot.waitSignal(panel.startRequested) as switched:
        panel.camera.setCurrentIndex(1)
        panel.camera.activated.emit(1)
    assert switched.args == [b"usb"]


def test_holding_the_analysed_frame_shows_the_boxes_on_the_picture_they_were_found_on(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    live = dataclasses.replace(DETECT, hold_frame=True)
    window = live_window(qtbot, tmp_path, closing, {"token_delay": 0.02, "red_boxes": True}, live)
    assert window.live.panel.hold.isChecked()
    view = window.live.view
    checked: list[tuple[float, tuple[int, int, int, int] | None]] = []

    def check(result: LiveResult) -> None:  # runs right after the view drew the result
        checked.append((result.detections[0].box[0] * SIZE[0], red_square(view.shown_frame())))

    window.live.controller.resultShown.connect(check)
    window.live.open_video(clip)
    qtbot.waitUntil(lambda: len(checked) >= 5, timeout=20_000)
    window.live.stop()
    for box_x, square in checked:
        assert square is not None and abs(box_x - square[0]) <= 3, (box_x, square)


def test_live_mode_goes_on_after_a_model_switch_that_failed(
    qtbot,
    tmp_path,
    clip,
    closing,  # noqa: F811
) -> None:
    options = {"token_delay": 0.005, "red_boxes": True, "fail_models": ["4bit"]}
    window = live_window(qtbot, tmp_path, closing, options)
    with qtbot.waitSignal(window.client.modelFailed, timeout=20_000):
        window.load_model("4bit")  # fails: the 8-bit model stays loaded
    with qtbot.waitSignal(window.live.controller.resultShown, timeout=20_000):
        window.live.open_video(clip)
    window.live.stop()
