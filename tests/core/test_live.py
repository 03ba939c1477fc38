"""Live mode's core: newest frame wins, one request in flight, honest numbers, flat memory."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from lfmdesk.core import (
    DEFAULT_CAPTION_PROMPT,
    LIVE_VISION,
    AppSettings,
    ChatRequest,
    Engine,
    InputError,
    LatestSlot,
    LiveFinished,
    LiveResult,
    LiveSettings,
    LiveStats,
    SamplingSettings,
    SettingsError,
    animation_frames,
    frame_image,
    grounding_prompt,
    live_request,
    live_session,
    load_settings,
    read_live_answer,
    save_settings,
)
from lfmdesk.core.engine._chat import ChatEvent
from lfmdesk.core.testing import ScriptedEngine, moving_box_frames

SAMPLING = SamplingSettings(temperature=0.0)


class Watched:
    """Wraps an engine and records each request's prompt and image hashes, and how many ran at
    once (not the requests themselves: their frames would make the soak test's memory grow)."""

    def __init__(self, engine: object) -> None:
        self.engine = engine
        self.requests: list[tuple[str, tuple[str, ...]]] = []
        self.threads: set[int] = set()
        self.active = self.most_active = 0
        self._lock = threading.Lock()

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            hashes = tuple(i.content_hash for i in request.images)
            self.requests.append((request.messages[-1].text, hashes))
            self.threads.add(threading.get_ident())
        try:
            yield from self.engine.stream_chat(request, cancel=cancel)  # type: ignore[attr-defined]
        finally:
            with self._lock:
                self.active -= 1


def scripted(token_delay: float = 0.01) -> Watched:
    engine = ScriptedEngine(token_delay=token_delay, load_delay=0.0)
    engine.load("scripted")
    return Watched(engine)


def video(count: int, fps: float, width: int = 160, height: int = 120):
    return ((frame, i / fps) for i, frame in enumerate(moving_box_frames(count, width, height)))


def run(engine: Watched, frames, settings: LiveSettings | None = None, **kw):
    items = list(live_session(engine, frames, settings or LiveSettings(), SAMPLING, **kw))
    results = [i for i in items if isinstance(i, LiveResult)]
    assert isinstance(items[-1], LiveFinished) and len(results) == len(items) - 1
    return results, items[-1]


def live_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lfmdesk-live-frames"]


# --- LatestSlot ---------------------------------------------------------------------------


def test_slot_newest_wins_and_counts_what_it_dropped() -> None:
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take() is None
    assert slot.offer(1) is False
    assert slot.offer(2) is True and slot.offer(3) is True
    assert slot.take() == 3 and slot.take() is None
    assert (slot.offered, slot.dropped, slot.taken, slot.pending) == (3, 2, 1, 0)


def test_slot_wait_times_out_and_close_wakes_a_waiter() -> None:
    slot: LatestSlot[str] = LatestSlot()
    tic = time.perf_counter()
    assert slot.wait(0.05) is None
    assert time.perf_counter() - tic >= 0.04
    got: list[str | None] = []
    waiter = threading.Thread(target=lambda: got.append(slot.wait()))
    waiter.start()
    time.sleep(0.05)
    slot.close()
    waiter.join(2)
    assert got == [None] and not waiter.is_alive()


def test_slot_after_close_keeps_the_last_item_and_ignores_new_ones() -> None:
    slot: LatestSlot[int] = LatestSlot()
    slot.offer(7)
    slot.close()
    assert slot.offer(8) is False
    assert slot.wait() == 7 and slot.wait() is None
    assert (slot.offered, slot.taken) == (1, 1)


def test_slot_between_threads_never_hands_an_item_twice_or_out_of_order() -> None:
    slot: LatestSlot[int] = LatestSlot()
    taken: list[int] = []

    def consume() -> None:
        while (item := slot.wait()) is not None:
            taken.append(item)
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(20000):
        slot.offer(i)
    slot.close()
    consumer.join(10)
    assert taken == sorted(set(taken)) and taken[-1] == 19999
    assert 0 < len(taken) < 20000
    assert slot.offered == slot.taken + slot.dropped + slot.pending == 20000


# --- requests and answers -----------------------------------------------------------------


def test_caption_request_uses_the_live_preset_and_budget(tmp_path: Path) -> None:
    image = frame_image(Image.new("RGB", (64, 48), "red"), 512)
    request = live_request(image, LiveSettings(max_tokens=12), SamplingSettings(max_tokens=512))
    assert request.messages[-1].text == DEFAULT_CAPTION_PROMPT
    assert request.messages[-1].images == (image,)
    assert request.sampling.max_tokens == 12 and request.vision == LIVE_VISION
    assert not LIVE_VISION.do_image_splitting and LIVE_VISION.max_image_tokens == 64
    asked = live_request(image, LiveSettings(watch="  Is the door open? "), SAMPLING)
    assert asked.messages[-1].text == "Is the door open?"


def test_detect_request_is_the_grounding_prompt_and_needs_labels() -> None:
    image = frame_image(Image.new("RGB", (64, 48)), 512)
    settings = LiveSettings(mode="detect", watch="person, cup,, person")
    request = live_request(image, settings, SAMPLING)
    assert request.messages[-1].text == grounding_prompt(["person", "cup"])
    assert len(request.messages) == 1
    with pytest.raises(InputError, match="live detect needs something to watch for"):
        live_request(image, LiveSettings(mode="detect", watch=" , "), SAMPLING)


def test_caption_and_detect_answers_read_differently() -> None:
    caption = LiveSettings()
    assert read_live_answer("  A red square.\n", caption, 100, 100) == ("A red square.", ())
    detect = LiveSettings(mode="detect", watch="box")
    answer = '[{"label": "box", "bbox": [0.1, 0.2, 0.5, 0.6]}]'
    text, boxes = read_live_answer(answer, detect, 200, 100)
    assert text == answer
    assert [(d.label, d.box_px) for d in boxes] == [("box", (20, 20, 100, 60))]


def test_frames_are_scaled_down_keeping_their_shape() -> None:
    big = frame_image(Image.new("RGB", (1280, 720)), 512)
    assert (big.width, big.height) == (512, 288)
    small = frame_image(Image.new("RGBA", (200, 100)), 512)
    assert (small.width, small.height, small.image.mode) == (200, 100, "RGB")


# --- settings -----------------------------------------------------------------------------


def test_live_settings_round_trip_and_old_files_get_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    live = LiveSettings(mode="detect", watch="cat", max_tokens=20, frame_side=384)
    save_settings(AppSettings(live=live), path)
    assert load_settings(path).live == live
    old = json.loads(path.read_text())
    del old["live"]
    path.write_text(json.dumps(old))
    assert load_settings(path).live == LiveSettings()
    path.write_text(json.dumps({"live": {"vision": {"max_image_tokens": 128}, "new": 1}}))
    assert load_settings(path).live.vision == LIVE_VISION.__class__(
        min_image_tokens=32, max_image_tokens=128, do_image_splitting=False
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"max_tokens": 600}, "max_tokens must be between 1 and 512"),
        ({"frame_side": 32}, "frame_side must be between 64 and 2048"),
        ({"mode": "track"}, "live mode must be one of caption, detect"),
        ({"watch": 5}, "live watch must be text"),
    ],
)
def test_bad_live_settings_are_refused(tmp_path: Path, data: dict, message: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"live": data}))
    with pytest.raises(SettingsError, match=message):
        load_settings(path)


# --- LiveStats ----------------------------------------------------------------------------


def _result(frame: int, captured: float, started: float, shown: float) -> LiveResult:
    return LiveResult(frame, captured, started, shown, "x", (), 10, 10)


def test_stats_give_rate_over_the_window_and_median_times() -> None:
    stats = LiveStats(window_s=2.0)
    # one answer every 0.5 s: 0.1 s waiting for the model, then 0.3 s of inference
    for i in range(9):
        t = i * 0.5
        stats.add(_result(i * 3, t, t + 0.1, t + 0.4))
    stats.set_dropped(20)
    hud = stats.hud(now=4.6)
    assert hud.analysed_fps == pytest.approx(4 / 2.0)  # shown at 2.9, 3.4, 3.9, 4.4
    assert hud.latency_ms == pytest.approx(400) and hud.inference_ms == pytest.approx(300)
    assert (hud.analysed, hud.dropped) == (9, 20)
    assert hud.text() == "2.0 frames/s · 400 ms latency · 20 skipped"
    assert LiveStats().hud(now=1.0).analysed_fps == 0.0


def test_stats_before_a_full_window_divide_by_the_time_so_far() -> None:
    stats = LiveStats(window_s=5.0)
    stats.add(_result(0, 10.0, 10.0, 10.5))
    stats.add(_result(1, 10.5, 10.5, 11.0))
    assert stats.hud(now=11.0).analysed_fps == pytest.approx(2 / 1.0)


# --- live_session with the scripted engine ------------------------------------------------


def test_session_analyses_newest_frames_once_with_bounded_latency() -> None:
    engine = scripted(token_delay=0.01)  # 16 tokens: ~160 ms per answer
    fps = 30.0
    results, end = run(engine, video(60, fps))
    frames = [r.frame for r in results]
    assert frames == sorted(set(frames)) and frames[-1] == 59  # never twice; last one shown
    assert 5 <= end.analysed < end.offered == 60
    assert end.dropped == end.offered - end.analysed and end.pending == 0
    assert engine.most_active == 1 and engine.threads == {threading.get_ident()}
    assert all(r.inference > 0.1 for r in results)
    # A frame waits at most until the next one arrives; only the source's last frame has no
    # successor, so it may wait out the whole answer before it.
    for r in results[:-1]:
        assert r.latency <= 1.2 * r.inference + 1 / fps
    assert results[-1].latency <= 2.2 * results[-1].inference
    assert end.latency_ms >= end.inference_ms > 100
    assert end.hud.analysed == end.analysed and end.hud.dropped == end.dropped


def test_not_realtime_analyses_every_frame() -> None:
    engine = scripted(token_delay=0.0)
    results, end = run(engine, video(25, 1.0), realtime=False)
    assert [r.frame for r in results] == list(range(25))
    assert (end.offered, end.analysed, end.dropped, end.pending) == (25, 25, 0, 0)


def test_detect_session_gives_boxes_in_frame_pixels() -> None:
    settings = LiveSettings(mode="detect", watch="box, cup")
    results, _ = run(scripted(0.0), video(3, 1.0, 400, 200), settings, realtime=False)
    assert [d.label for d in results[0].detections] == ["box", "cup"]
    assert (results[0].width, results[0].height) == (400, 200)
    assert all(0 <= d.box_px[2] <= 400 for d in results[0].detections)


def test_cancel_stops_at_once_and_the_counts_still_add_up() -> None:
    engine = scripted(token_delay=0.02)
    cancel = threading.Event()
    items = []
    tic = time.perf_counter()
    for item in live_session(engine, video(1000, 30.0), LiveSettings(), SAMPLING, cancel=cancel):
        items.append(item)
        if len(items) == 2:
            cancel.set()
    end = items[-1]
    assert isinstance(end, LiveFinished) and end.cancelled and end.analysed == 2
    assert time.perf_counter() - tic < 5
    assert end.offered == end.analysed + end.dropped + end.pending and end.pending <= 2
    assert not live_threads()


def test_closing_the_session_early_stops_its_frame_thread() -> None:
    session = live_session(scripted(0.0), video(10000, 100.0), LiveSettings(), SAMPLING)
    assert isinstance(next(session), LiveResult)
    assert live_threads()
    session.close()
    assert not live_threads()


def test_a_failing_frame_source_fails_the_session() -> None:
    def broken():
        yield Image.new("RGB", (32, 32)), 0.0
        raise InputError("camera unplugged")

    with pytest.raises(InputError, match="camera unplugged"):
        run(scripted(0.0), broken(), realtime=False)
    assert not live_threads()


def test_detect_without_labels_fails_before_reading_frames() -> None:
    def never():
        raise AssertionError("frames were read")
        yield

    with pytest.raises(InputError, match="something to watch for"):
        next(live_session(scripted(), never(), LiveSettings(mode="detect"), SAMPLING))


# --- animation sources ----------------------------------------------------------------------


def test_gif_frames_carry_their_timestamps(tmp_path: Path) -> None:
    frames = list(moving_box_frames(4, 64, 48))
    path = tmp_path / "clip.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=[100, 200, 50, 80])
    got = list(animation_frames(path))
    assert [round(t, 3) for _, t in got] == [0.0, 0.1, 0.3, 0.35]
    assert got[2][0].size == (64, 48) and got[2][0].mode == "RGB"


def test_folder_frames_play_at_fps_in_name_order(tmp_path: Path) -> None:
    for i, frame in enumerate(moving_box_frames(3, 32, 32)):
        frame.save(tmp_path / f"f{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "f9.png").write_text("broken")  # skipped, not fatal
    got = list(animation_frames(tmp_path, fps=4.0))
    assert [t for _, t in got] == [0.0, 0.25, 0.5]


@pytest.mark.parametrize("name", ["clip.mp4", "photo.jpg"])
def test_videos_and_stills_are_refused_with_a_hint(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".jpg"):
        Image.new("RGB", (8, 8)).save(path)
    else:
        path.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    with pytest.raises(InputError, match="open MP4/MOV videos in the app") as info:
        animation_frames(path)
    assert "\n" not in str(info.value)


def test_missing_source_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file or folder"):
        animation_frames(tmp_path / "missing.gif")
    with pytest.raises(InputError, match="no images in this folder"):
        animation_frames(tmp_path)
    with pytest.raises(InputError, match="--fps must be more than 0"):
        animation_frames(tmp_path, fps=0)


# --- soak: the real engine over thousands of frames ----------------------------------------


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_soak_memory_stays_flat_over_3000_frames(fixture_models: dict[str, Path]) -> None:
    engine = Engine()
    engine.load(fixture_models["8bit"])
    watched = Watched(engine)
    settings = LiveSettings(max_tokens=8)
    run(watched, video(3, 1.0, 320, 240), settings, realtime=False)  # compile kernels once
    watched.requests.clear()
    rss: list[int] = []
    results: list[LiveResult] = []
    end = None
    # 3000 frames at 60 frames/s: 50 s, a few hundred answers at ~100 ms each.
    for item in live_session(watched, video(3000, 60.0, 320, 240), settings, SAMPLING):
        if isinstance(item, LiveResult):
            results.append(item)
            rss.append(_rss())
        else:
            end = item
    assert end is not None and len(results) > 100
    warm, last = rss[len(rss) // 10], rss[-1]
    assert abs(last - warm) <= 0.05 * warm, f"RSS {warm >> 20} MiB -> {last >> 20} MiB"
    assert end.analysed == len(results) < end.offered == 3000
    assert end.dropped == end.offered - end.analysed and end.pending == 0
    assert watched.most_active == 1 and len(watched.requests) == end.analysed
    assert len({hashes for _, hashes in watched.requests}) == end.analysed  # no frame twice
    assert [r.frame for r in results] == sorted({r.frame for r in results})
