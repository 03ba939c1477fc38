"""Live mode's loop in the window: the newest frame wins, one request in flight.

Frames come from a :class:`~lfmdesk.gui.live._sources.FrameSource` on the GUI thread. Every
frame is shown; only the newest waiting one is analysed when the engine is free, so a slow
model never builds a queue and the boxes are always about a recent frame. The engine process
serves the chat too: while a chat answer runs, live mode waits its turn.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage

from lfmdesk.core import (
    LatestSlot,
    LfmdeskError,
    LiveResult,
    LiveSettings,
    LiveStats,
    SamplingSettings,
    TextDelta,
    frame_image,
    live_request,
    read_live_answer,
)
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.support._qtimage import qimage_to_pil

if TYPE_CHECKING:  # QtMultimedia loads when live mode is first used, not at start-up
    from lfmdesk.gui.live._sources import FrameSource

__all__ = ["LiveController"]

SettingsNow = Callable[[], tuple[LiveSettings, SamplingSettings]]

_HUD_REFRESH_MS = 500


@dataclass(frozen=True)
class _Frame:
    index: int
    image: QImage
    captured: float  # time.perf_counter() when it arrived


@dataclass
class _InFlight:
    request_id: int
    frame: _Frame
    started: float
    width: int
    height: int
    settings: LiveSettings  # the answer is read the way it was asked, whatever changed since
    text: str = ""
    discard: bool = False  # stopped meanwhile: the answer is no longer about what is shown


class LiveController(QObject):
    """Shows every frame, analyses the newest one whenever the engine is free.

    Signals:
        frameShown(QImage): every frame of the source, for the preview.
        resultShown(object): a :class:`~lfmdesk.core.LiveResult`, the moment it is complete.
        hudChanged(object): a :class:`~lfmdesk.core.LiveHud` (analysed frames/s, latency).
        runningChanged(bool): the source started or stopped.
        analysingChanged(bool): live analysis turned on or off.
        problem(str): one line for the status bar or a banner.
        resumed(): an answer arrived after a problem (the problem is gone).

    Settings that cannot make a request (Detect with nothing to find) pause the analysis,
    not end it: "Analyse frames live" stays on and the next settings change resumes it.
    """

    frameShown = Signal(QImage)
    resultShown = Signal(object)
    hudChanged = Signal(object)
    runningChanged = Signal(bool)
    analysingChanged = Signal(bool)
    problem = Signal(str)
    resumed = Signal()

    def __init__(
        self, client: EngineClient, settings_now: SettingsNow, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.client, self._settings_now = client, settings_now
        self.source: FrameSource | None = None
        self.stats = LiveStats()
        self._slot: LatestSlot[_Frame] = LatestSlot()
        self._latest: _Frame | None = None
        self._analysed_frame: QImage | None = None
        self._busy: _InFlight | None = None
        self._analysing = False
        self._paused = ""  # why the settings cannot make a request ("" when they can)
        self._troubled = False  # a problem was reported; the next answer says it is gone
        self._model_ready = False
        self._frames = 0
        self._hud_timer = QTimer(self, interval=_HUD_REFRESH_MS)
        self._hud_timer.timeout.connect(self._emit_hud)
        client.chatEvent.connect(self.on_chat_event)
        client.chatFinished.connect(self.on_chat_finished)
        client.chatFailed.connect(self.on_chat_failed)
        client.modelLoaded.connect(self.on_model_loaded)
        client.modelPhase.connect(self.on_model_phase)
        client.modelFailed.connect(self.on_model_failed)
        client.crashed.connect(self.on_engine_crashed)

    # --- source --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while a source delivers frames."""
        return self.source is not None and self.source.is_running()

    @property
    def analysing(self) -> bool:
        """True while frames are being sent to the model."""
        return self._analysing

    @property
    def analysed_frame(self) -> QImage | None:
        """The frame the latest shown result was computed on."""
        return self._analysed_frame

    @property
    def latest_frame(self) -> QImage | None:
        """The newest frame shown (what a snapshot freezes)."""
        return self._latest.image if self._latest else None

    def set_source(self, source: FrameSource | None) -> None:
        """Replace the frame source (the old one is stopped) and start the new one."""
        if self.source is not None:
            old, self.source = self.source, None
            old.stop()
            old.deleteLater()
        self._slot = LatestSlot()
        self._latest, self._frames, self._analysed_frame = None, 0, None
        self.stats = LiveStats()
        self.source = source
        if source is None:
            self.runningChanged.emit(False)
            return
        source.frameArrived.connect(self.on_frame, Qt.ConnectionType.QueuedConnection)
        source.failed.connect(self.on_source_failed)
        source.stopped.connect(self.on_source_stopped)
        source.start()
        self._hud_timer.start()
        self.runningChanged.emit(True)
        if self._troubled and not self._paused:  # a new source: the old one's failure is gone
            self._troubled = False
            self.resumed.emit()

    def stop(self) -> None:
        """Stop the source and the analysis; an answer in flight is cancelled and not shown."""
        self.set_analysing(False)
        if self._busy is not None:
            self._busy.discard = True
            self.client.cancel(self._busy.request_id)
        self.set_source(None)
        self._hud_timer.stop()

    @Slot(str)
    def on_source_failed(self, message: str) -> None:
        self._report(message)
        self.stop()

    def _report(self, message: str) -> None:
        self._troubled = True
        self.problem.emit(message)

    @Slot()
    def on_source_stopped(self) -> None:
        self._hud_timer.stop()
        self.runningChanged.emit(False)

    # --- analysis ------------------------------------------------------------------------

    def set_analysing(self, on: bool) -> None:
        """Turn live analysis on or off; frames keep showing either way."""
        self._paused = ""  # ticking the box again is a reason to try the settings again
        if on == self._analysing:
            return
        self._analysing = on
        self.analysingChanged.emit(on)
        if on:
            self._dispatch()

    @property
    def paused(self) -> str:
        """Why analysis waits for other settings ("" when it does not)."""
        return self._paused

    def settings_changed(self) -> None:
        """The live settings changed: paused analysis tries them."""
        if self._paused:
            self._paused = ""
            self._dispatch()

    def set_model_ready(self, ready: bool) -> None:
        """Whether the engine has a model (nothing is sent before)."""
        self._model_ready = ready
        self._dispatch()

    @Slot(QImage, float)
    def on_frame(self, image: QImage, captured: float) -> None:
        """Show the frame; keep it as the one to analyse next (replacing a waiting one)."""
        frame = _Frame(self._frames, image, captured)
        self._frames += 1
        self._latest = frame
        self.frameShown.emit(image)
        if self._analysing:
            self._slot.offer(frame)
            self._dispatch()

    def _dispatch(self) -> None:
        if self._busy is not None or not self._analysing or not self._model_ready:
            return
        if self._paused:
            return
        if self.client.busy:  # a chat answer is running: live mode waits for it
            return
        frame = self._slot.take()
        if frame is None:
            return
        live, sampling = self._settings_now()
        try:
            # Scaling in Qt first keeps the copy to Pillow small.
            image = frame_image(qimage_to_pil(frame.image, live.frame_side), live.frame_side)
            request = live_request(image, live, sampling)
        except LfmdeskError as exc:
            self._paused = str(exc)
            self._report(f"{exc}; live analysis resumes once you do")
            return
        started = time.perf_counter()
        rid = self.client.start_chat(request)
        self._busy = _InFlight(rid, frame, started, image.width, image.height, live)

    @Slot(int, object)
    def on_chat_event(self, request_id: int, event: object) -> None:
        busy = self._busy
        if busy is None or request_id != busy.request_id:
            return
        if isinstance(event, TextDelta):
            busy.text += event.text

    @Slot(int)
    def on_chat_finished(self, request_id: int) -> None:
        busy = self._busy
        if busy is None or request_id != busy.request_id:
            self._dispatch()  # a chat answer ended: live mode's turn again
            return
        self._busy = None
        if busy.discard:
            self._dispatch()
            return
        text, detections = read_live_answer(busy.text, busy.settings, busy.width, busy.height)
        result = LiveResult(
            frame=busy.frame.index,
            captured=busy.frame.captured,
            started=busy.started,
            shown=time.perf_counter(),
            text=text,
            detections=detections,
            width=busy.width,
            height=busy.height,
        )
        self.stats.add(result)
        self.stats.set_dropped(self._slot.dropped)
        self._analysed_frame = busy.frame.image
        if self._troubled:
            self._troubled = False
            self.resumed.emit()
        self.resultShown.emit(result)
        self._emit_hud()
        self._dispatch()

    @Slot(int, str)
    def on_chat_failed(self, request_id: int, message: str) -> None:
        busy = self._busy
        if busy is None or request_id != busy.request_id:
            self._dispatch()
            return
        self._busy = None
        if busy.discard:
            return
        self._report(f"Live mode stopped: {message}")
        self.set_analysing(False)

    @Slot(str, object)
    def on_model_loaded(self, _spec: str, _info: object) -> None:
        self.set_model_ready(True)

    @Slot(str, str)
    def on_model_phase(self, _spec: str, _phase: str) -> None:
        self._model_ready = False  # switching models: wait for modelLoaded

    @Slot(str, str, bool)
    def on_model_failed(self, _spec: str, _message: str, _cancelled: bool) -> None:
        # A switch that failed before the old model was freed leaves it answering.
        self.set_model_ready(self.client.loaded_spec is not None)

    @Slot(str)
    def on_engine_crashed(self, _message: str) -> None:
        self._busy = None
        self._model_ready = False  # the new engine reloads the model; modelLoaded resumes

    @Slot()
    def _emit_hud(self) -> None:
        if not self._analysing or self._paused:  # nothing is analysed: nothing to report
            return
        self.stats.set_dropped(self._slot.dropped)
        self.hudChanged.emit(self.stats.hud(time.perf_counter()))
