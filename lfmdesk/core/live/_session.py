"""The Qt-free live loop: newest frame wins, one request in flight, flat memory.

:func:`live_session` plays a frame source (a generated video, a GIF, a folder of images) into
a :class:`~lfmdesk.core.live._loop.LatestSlot` from a producer thread, at the frames' own pace,
while the calling thread (the one that owns the MLX engine) analyses whatever frame is newest
when the previous answer is done::

    for item in live_session(engine, animation_frames(Path("clip.gif")), LiveSettings(), sampling):
        if isinstance(item, LiveResult):
            print(item.frame, item.text)
        else:                            # LiveFinished, always last
            print(item.analysed, "of", item.offered)
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageSequence

from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core._settings import LiveSettings, SamplingSettings
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES
from lfmdesk.core.engine._chat import ChatEvent, ChatRequest, GenerationStats, TextDelta
from lfmdesk.core.images._load import load_image, open_image
from lfmdesk.core.live._loop import (
    LatestSlot,
    LiveHud,
    LiveResult,
    LiveStats,
    frame_image,
    live_prompt,
    live_request,
    read_live_answer,
)

__all__ = [
    "ANIMATION_FORMATS",
    "NOT_AN_ANIMATION",
    "ChatEngineLike",
    "LiveFinished",
    "animation_frames",
    "live_session",
]

ANIMATION_FORMATS = frozenset({"GIF", "WEBP", "PNG"})
NOT_AN_ANIMATION = (
    "lfmdesk live reads GIF, WebP or APNG animations or a folder of images; "
    "open MP4/MOV videos in the app"
)
# GIFs often say 0 ms; browsers show such frames for 100 ms, and so does lfmdesk.
_DEFAULT_FRAME_MS = 100
# Summary medians cover this many recent frames, so an hours-long session stays flat.
_SUMMARY_FRAMES = 1000
_POLL_S = 0.1  # how often the loop looks at the cancel flag while no frame is waiting


class ChatEngineLike(Protocol):
    """What live mode needs of an engine (:class:`~lfmdesk.core.Engine`, ``ScriptedEngine``)."""

    def stream_chat(
        self, request: ChatRequest, *, cancel: threading.Event | None = None
    ) -> Iterator[ChatEvent]: ...


@dataclass(frozen=True)
class LiveFinished:
    """The last item of a live session.

    ``offered == analysed + dropped + pending``: ``pending`` counts the frames a cancel left
    unanalysed (the one still waiting, and the one whose answer was cut short: 0 to 2). When
    the source runs out it is 0: the last frame is always analysed.

    Attributes:
        offered: frames the source delivered while the session ran.
        analysed: frames answered (one :class:`LiveResult` each).
        dropped: frames replaced by a newer one before the model got to them.
        pending: frames left unanalysed by a cancel (0 to 2).
        cancelled: the session was stopped before the source ran out.
        seconds: wall time of the session.
        latency_ms: median frame-to-answer time over the last 1000 analysed frames.
        inference_ms: median model time over the same frames.
        hud: the HUD numbers at the end.
    """

    offered: int
    analysed: int
    dropped: int
    pending: int
    cancelled: bool
    seconds: float
    latency_ms: float
    inference_ms: float
    hud: LiveHud

    @property
    def analysed_fps(self) -> float:
        """Frames analysed per second over the whole session."""
        return self.analysed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _Frame:
    index: int
    image: Image.Image
    captured: float


class _Producer(threading.Thread):
    """Offers frames to the slot at their timestamps, or each as soon as the last was taken."""

    def __init__(
        self,
        frames: Iterable[tuple[Image.Image, float]],
        slot: LatestSlot[_Frame],
        realtime: bool,
    ) -> None:
        super().__init__(name="lfmdesk-live-frames", daemon=True)
        self._frames, self._slot, self._realtime = frames, slot, realtime
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._play()
        except BaseException as exc:  # handed to the consuming thread, which re-raises it
            self.error = exc
        finally:
            self._slot.close()

    def _play(self) -> None:
        began = time.perf_counter()
        for index, (image, timestamp) in enumerate(self._frames):
            if self._realtime:
                delay = began + timestamp - time.perf_counter()
                if delay > 0 and self.stop.wait(delay):
                    return
            else:
                while not self._slot.wait_empty(_POLL_S):
                    if self.stop.is_set():
                        return
            if self.stop.is_set():
                return
            self._slot.offer(_Frame(index, image, time.perf_counter()))


def _answer(engine: ChatEngineLike, request: ChatRequest, cancel: threading.Event) -> str | None:
    """The whole answer text, or None when it was cancelled part-way."""
    pieces: list[str] = []
    for event in engine.stream_chat(request, cancel=cancel):
        if isinstance(event, TextDelta):
            pieces.append(event.text)
        elif isinstance(event, GenerationStats) and event.finish_reason == "cancelled":
            return None
    return None if cancel.is_set() else "".join(pieces)


def _analyse(
    engine: ChatEngineLike,
    frame: _Frame,
    settings: LiveSettings,
    sampling: SamplingSettings,
    cancel: threading.Event,
) -> LiveResult | None:
    image = frame_image(frame.image, settings.frame_side)
    started = time.perf_counter()
    text = _answer(engine, live_request(image, settings, sampling), cancel)
    if text is None:
        return None
    shown, detections = read_live_answer(text, settings, image.width, image.height)
    return LiveResult(
        frame.index,
        frame.captured,
        started,
        time.perf_counter(),
        shown,
        detections,
        image.width,
        image.height,
    )


def live_session(
    engine: ChatEngineLike,
    frames: Iterable[tuple[Image.Image, float]],
    settings: LiveSettings,
    sampling: SamplingSettings,
    *,
    realtime: bool = True,
    cancel: threading.Event | None = None,
) -> Generator[LiveResult | LiveFinished, None, None]:
    """Analyse the newest frame of ``frames`` again and again until they run out.

    Call it from the thread that owns ``engine`` (MLX streams are thread-local); the frames
    are read and offered on a producer thread, which never touches the engine.

    Args:
        engine: the loaded engine.
        frames: ``(image, seconds from the start)`` pairs, in order.
        settings: live mode, prompt/labels, vision preset, token budget, frame size.
        sampling: sampling settings (``max_tokens`` is replaced by the live one).
        realtime: offer each frame at its timestamp, dropping frames the model has no time
            for; False offers the next frame as soon as the previous one was taken, so every
            frame is analysed once (offline processing, benchmarks).
        cancel: set it to stop; the answer in progress stops after its current token.

    Yields:
        One :class:`LiveResult` per analysed frame, then one :class:`LiveFinished`.
        Closing the generator early stops the producer thread too.

    Raises:
        InputError: detect mode without labels (before any frame is read).
        LfmdeskError: the engine failed, or the frame source raised it.
    """
    live_prompt(settings)  # bad settings fail before a thread starts
    stop = cancel or threading.Event()
    slot: LatestSlot[_Frame] = LatestSlot()
    producer = _Producer(frames, slot, realtime)
    stats = LiveStats()
    recent: deque[tuple[float, float]] = deque(maxlen=_SUMMARY_FRAMES)
    began = time.perf_counter()
    producer.start()
    try:
        while not stop.is_set():
            frame = slot.wait(_POLL_S)
            if frame is None:
                if slot.closed and not slot.pending:
                    break
                continue
            result = _analyse(engine, frame, settings, sampling, stop)
            if result is None:
                break
            stats.add(result)
            stats.set_dropped(slot.dropped)
            recent.append((result.latency, result.inference))
            yield result
    finally:
        producer.stop.set()
        slot.close()
        producer.join()
    if producer.error is not None:
        raise producer.error
    yield _finished(slot, stats, recent, stop.is_set(), time.perf_counter() - began)


def _finished(
    slot: LatestSlot[_Frame],
    stats: LiveStats,
    recent: deque[tuple[float, float]],
    cancelled: bool,
    seconds: float,
) -> LiveFinished:
    stats.set_dropped(slot.dropped)
    latency = statistics.median(r[0] for r in recent) if recent else 0.0
    inference = statistics.median(r[1] for r in recent) if recent else 0.0
    return LiveFinished(
        offered=slot.offered,
        analysed=stats.analysed,
        dropped=slot.dropped,
        # the frame waiting, and the one whose answer a cancel cut short
        pending=slot.offered - slot.dropped - stats.analysed,
        cancelled=cancelled,
        seconds=seconds,
        latency_ms=latency * 1000,
        inference_ms=inference * 1000,
        hud=stats.hud(),
    )


def _gif_frames(path: Path) -> Iterator[tuple[Image.Image, float]]:
    with open_image(path, formats=ANIMATION_FORMATS) as image:
        elapsed_ms = 0
        for frame in ImageSequence.Iterator(image):
            yield frame.convert("RGB"), elapsed_ms / 1000
            duration = frame.info.get("duration") or _DEFAULT_FRAME_MS
            elapsed_ms += int(duration)


def _folder_frames(files: list[Path], fps: float) -> Iterator[tuple[Image.Image, float]]:
    for index, file in enumerate(files):
        try:
            image = load_image(file).image
        except ImageError:
            continue  # one unreadable picture must not stop a live run
        yield image, index / fps


def animation_frames(path: Path, *, fps: float = 2.0) -> Iterator[tuple[Image.Image, float]]:
    """The frames of a GIF/WebP/APNG animation, or of a folder of images, with timestamps.

    The file is checked at once; frames are decoded lazily as they are iterated.

    Args:
        path: an animation file or a folder of images (played in name order).
        fps: frames per second for a folder (animations carry their own frame durations).

    Raises:
        InputError: the path is missing, an empty folder, or not a GIF/WebP/PNG image.
    """
    path = Path(path)
    if fps <= 0:
        raise InputError(f"--fps must be more than 0, got {fps:g}")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: no images in this folder")
        return _folder_frames(files, fps)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    try:
        with open_image(path, formats=ANIMATION_FORMATS):
            pass  # opening it is the check: a GIF, WebP or PNG that is a regular file
    except ImageError:
        raise InputError(f"{path}: {NOT_AN_ANIMATION}") from None
    return _gif_frames(path)
