"""Live mode's building blocks: newest-frame-wins hand-over, live requests, results, the HUD.

Live mode captions or detects continuously on the NEWEST frame of a camera, the screen or a
video. Exactly one request is in flight; frames that arrive meanwhile replace each other in a
:class:`LatestSlot` (they are never queued), so the answer on screen is never more than one
inference plus one frame interval old.

The window drives these pieces with its own Qt frame sources; :func:`live_session` (in
``_live_session``) is the same loop without Qt, for the CLI, the soak test and the bench::

    slot = LatestSlot[Frame]()
    slot.offer(frame)                 # camera thread; True when it replaced an unanalysed frame
    frame = slot.wait(0.1)            # the engine's thread: the newest frame, or None
    image = frame_image(frame.image, settings.frame_side)
    request = live_request(image, settings, sampling)
"""

from __future__ import annotations

import dataclasses
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

from PIL import Image

from lfmdesk.core._errors import InputError
from lfmdesk.core._settings import LiveSettings, SamplingSettings
from lfmdesk.core.answers._grounding import (
    Detection,
    grounding_prompt,
    parse_detections,
    split_labels,
)
from lfmdesk.core.datasets._batch import detection_request
from lfmdesk.core.engine._chat import ChatRequest
from lfmdesk.core.images._load import LoadedImage, load_image

__all__ = [
    "DEFAULT_CAPTION_PROMPT",
    "NO_LABELS",
    "LatestSlot",
    "LiveHud",
    "LiveResult",
    "LiveStats",
    "frame_image",
    "live_prompt",
    "live_request",
    "read_live_answer",
]

DEFAULT_CAPTION_PROMPT = "Describe what you see in one short sentence."
NO_LABELS = "live detect needs something to watch for: type labels, e.g. 'person, cup'"

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A one-item hand-over where the newest item wins; safe between threads.

    A producer :meth:`offer`\\ s items as they come; a consumer :meth:`take`\\ s or
    :meth:`wait`\\ s for the one waiting. An item offered while another is still waiting
    replaces it, and the replaced one counts as dropped. After :meth:`close` offers are
    ignored (not counted), but an item already waiting can still be taken, so the last frame
    of a video is not lost. At any moment ``offered == taken + dropped + pending``.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._item: T | None = None
        self._full = False
        self._closed = False
        self._offered = self._dropped = self._taken = 0

    @property
    def offered(self) -> int:
        """Items accepted by :meth:`offer` (before close)."""
        return self._offered

    @property
    def dropped(self) -> int:
        """Items replaced by a newer one before anyone took them."""
        return self._dropped

    @property
    def taken(self) -> int:
        """Items handed out by :meth:`take` / :meth:`wait`."""
        return self._taken

    @property
    def pending(self) -> int:
        """1 while an item is waiting, else 0."""
        return int(self._full)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def offer(self, item: T) -> bool:
        """Put ``item`` in the slot; True when it replaced a waiting item (now dropped)."""
        with self._cond:
            if self._closed:
                return False
            replaced = self._full
            self._item, self._full = item, True
            self._offered += 1
            self._dropped += replaced
            self._cond.notify_all()
            return replaced

    def take(self) -> T | None:
        """The waiting item (the slot empties), or None when there is none."""
        with self._cond:
            return self._take_locked()

    def _take_locked(self) -> T | None:
        if not self._full:
            return None
        item, self._item, self._full = self._item, None, False
        self._taken += 1
        self._cond.notify_all()
        return item

    def wait(self, timeout: float | None = None) -> T | None:
        """Like :meth:`take`, blocking until an item comes, the slot is closed or time runs out."""
        with self._cond:
            self._cond.wait_for(lambda: self._full or self._closed, timeout)
            return self._take_locked()

    def wait_empty(self, timeout: float | None = None) -> bool:
        """Block until no item is waiting (or closed); True when the slot is empty."""
        with self._cond:
            self._cond.wait_for(lambda: not self._full or self._closed, timeout)
            return not self._full

    def close(self) -> None:
        """No more items: wake every waiter; later offers are ignored."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def frame_image(image: Image.Image, max_side: int) -> LoadedImage:
    """A frame ready for the model: scaled down (aspect kept) to ``max_side``, then loaded.

    Args:
        image: the frame as captured (any mode; it is not modified).
        max_side: the longest side allowed, in pixels.
    """
    width, height = image.size
    scale = max_side / max(width, height)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # BILINEAR with a reducing gap: nearly LANCZOS quality at a fraction of the cost.
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return load_image(image)


def _labels(settings: LiveSettings) -> tuple[str, ...]:
    labels = split_labels(settings.watch)
    if not labels:
        raise InputError(NO_LABELS)
    return labels


def live_prompt(settings: LiveSettings) -> str:
    """The text the model gets with every live frame.

    Raises:
        InputError: detect mode with no labels to watch for.
    """
    if settings.mode == "detect":
        return grounding_prompt(_labels(settings))
    return settings.watch.strip() or DEFAULT_CAPTION_PROMPT


def live_request(
    image: LoadedImage, settings: LiveSettings, sampling: SamplingSettings
) -> ChatRequest:
    """The one-turn request for one live frame (live vision preset, live token budget).

    Raises:
        InputError: detect mode with no labels to watch for.
    """
    live_sampling = dataclasses.replace(sampling, max_tokens=settings.max_tokens)
    if settings.mode == "detect":
        return detection_request(image, _labels(settings), live_sampling, settings.vision)
    return ChatRequest.single(
        live_prompt(settings), [image], sampling=live_sampling, vision=settings.vision
    )


def read_live_answer(
    text: str, settings: LiveSettings, width: int, height: int
) -> tuple[str, tuple[Detection, ...]]:
    """What to show for one answer: caption text, or the raw answer and its boxes.

    Args:
        text: the model's whole answer.
        settings: the live settings the request was made with.
        width: width of the image the model saw.
        height: its height.
    """
    if settings.mode == "detect":
        return text, parse_detections(text, width, height).detections
    return text.strip(), ()


@dataclass(frozen=True)
class LiveResult:
    """One analysed frame.

    Attributes:
        frame: the frame's index in its source.
        captured: ``time.perf_counter()`` when the frame arrived.
        started: when its request was sent.
        shown: when the complete answer was available (in the window: drawn).
        text: the caption, or the raw detection answer.
        detections: the boxes (detect mode), in pixels of the image the model saw.
        width: width of the image the model saw.
        height: its height.
    """

    frame: int
    captured: float
    started: float
    shown: float
    text: str
    detections: tuple[Detection, ...]
    width: int
    height: int

    @property
    def latency(self) -> float:
        """Seconds from the frame's arrival to its answer: what the user perceives."""
        return self.shown - self.captured

    @property
    def inference(self) -> float:
        """Seconds the model took for this frame."""
        return self.shown - self.started


@dataclass(frozen=True)
class LiveHud:
    """The numbers shown over the live video.

    Attributes:
        analysed_fps: frames analysed per second over the last window.
        latency_ms: median frame-to-answer time over the window.
        inference_ms: median model time over the window.
        analysed: frames analysed in total.
        dropped: frames skipped in total (a newer frame replaced them).
    """

    analysed_fps: float
    latency_ms: float
    inference_ms: float
    analysed: int
    dropped: int

    def text(self) -> str:
        """A short line for the video, e.g. ``2.9 frames/s · 340 ms latency · 12 skipped``."""
        fps, latency = f"{self.analysed_fps:.1f} frames/s", f"{self.latency_ms:.0f} ms latency"
        return f"{fps} · {latency} · {self.dropped} skipped"


class LiveStats:
    """Rolling live statistics: frames per second and medians over the last ``window_s``.

    Memory stays flat: only results inside the window are kept.
    """

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._recent: deque[LiveResult] = deque()
        self._analysed = 0
        self._dropped = 0
        self._began: float | None = None

    @property
    def analysed(self) -> int:
        """Frames added so far."""
        return self._analysed

    def add(self, result: LiveResult) -> None:
        """Count one analysed frame."""
        if self._began is None:
            self._began = result.captured
        self._analysed += 1
        self._recent.append(result)
        self._prune(result.shown)

    def set_dropped(self, dropped: int) -> None:
        """The total of skipped frames so far (the frame source counts them)."""
        self._dropped = dropped

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0].shown < now - self.window_s:
            self._recent.popleft()

    def hud(self, now: float | None = None) -> LiveHud:
        """The HUD numbers at ``now`` (default: ``time.perf_counter()``)."""
        now = time.perf_counter() if now is None else now
        self._prune(now)
        recent = [r for r in self._recent if r.shown <= now]
        span = min(self.window_s, now - self._began) if self._began is not None else 0.0
        fps = len(recent) / span if span > 0 else 0.0
        latency = statistics.median(r.latency for r in recent) if recent else 0.0
        inference = statistics.median(r.inference for r in recent) if recent else 0.0
        return LiveHud(fps, latency * 1000, inference * 1000, self._analysed, self._dropped)
