"""Live mode in the window: the Live dock, the preview view and the loop, wired together.

The window gives it a stacked area where the preview replaces the image canvas while a
camera or video runs, and a way to store a snapshot (the workspace's capture path, so a
snapshot lands in the project like a screen capture and can be chatted about or annotated).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image
from PySide6.QtCore import QEvent, QObject, Signal, Slot
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QStackedWidget, QToolBar, QWidget

from lfmdesk.core import LiveResult, LiveSettings, SamplingSettings
from lfmdesk.gui._engine_client import EngineClient
from lfmdesk.gui.live._loop import LiveController
from lfmdesk.gui.live._panel import LivePanel
from lfmdesk.gui.live._view import LiveView
from lfmdesk.gui.support._qtimage import qimage_to_pil

if TYPE_CHECKING:  # QtMultimedia (sources) loads when live mode is first used, not at start-up
    from lfmdesk.gui.live._sources import FrameSource

__all__ = ["VIDEO_FILTER", "VIDEO_SUFFIXES", "LiveMode"]

VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"})
VIDEO_FILTER = "Videos (*.mp4 *.mov *.m4v *.avi *.mkv *.webm *.gif);;All files (*)"

AddAction = Callable[..., QAction]


class LiveMode(QObject):
    """Owns the live panel, view and controller; installs the Live menu actions.

    Signals:
        settingsChanged(object): the live settings changed (the window saves them).
        problem(str): one line for a banner (no camera, permission denied, engine failure).
        resumed(): live mode works again after a problem (its banner is stale).
        message(str): one line of passing news (a toast).
    """

    settingsChanged = Signal(object)
    problem = Signal(str)
    resumed = Signal()
    message = Signal(str)

    def __init__(
        self,
        parent: QWidget,
        area: QStackedWidget,
        client: EngineClient,
        settings: LiveSettings,
        sampling_now: Callable[[], SamplingSettings],
        store_snapshot: Callable[[Image.Image], None],
    ) -> None:
        super().__init__(parent)
        self._parent, self._area = parent, area
        home = area.currentWidget()
        assert home is not None, "the area must already show the canvas"
        self._home: QWidget = home
        self.settings = settings
        self._sampling_now, self._store_snapshot = sampling_now, store_snapshot
        self.view = LiveView()
        area.addWidget(self.view)
        self.panel = LivePanel(settings, [])  # cameras are listed when the panel first shows
        self.panel.installEventFilter(self)
        self.controller = LiveController(client, self._settings_now, self)
        self._connect()
        self.panel.set_running(False)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """List the cameras when the Live panel is first shown (QtMultimedia loads then)."""
        if watched is self.panel and event.type() == QEvent.Type.Show:
            from lfmdesk.gui.live._sources import list_cameras

            self.panel.removeEventFilter(self)
            self.panel.set_cameras(list_cameras())
        return super().eventFilter(watched, event)

    def _connect(self) -> None:
        c, panel = self.controller, self.panel
        c.frameShown.connect(self._on_frame)
        c.resultShown.connect(self._on_result)
        c.hudChanged.connect(self.view.show_hud)
        c.runningChanged.connect(self._on_running)
        c.analysingChanged.connect(self._on_analysing)
        c.problem.connect(self.problem)
        c.resumed.connect(self.resumed)
        panel.startRequested.connect(self.start_camera)
        panel.videoRequested.connect(self.choose_video)
        panel.stopRequested.connect(self.stop)
        panel.snapshotRequested.connect(self.snapshot)
        panel.analyseToggled.connect(c.set_analysing)
        panel.settingsChanged.connect(self._on_settings)

    def install_actions(self, add: AddAction, menus: dict[str, QMenu], toolbar: QToolBar) -> None:
        """Live actions in the Capture menu; Snapshot on the toolbar."""
        menus["&Capture"].addSeparator()
        add("&Capture", "Start &Camera", self.start_default_camera, "Ctrl+Shift+L")
        add("&Capture", "Open &Video…", self.choose_video)
        snap = add("&Capture", "S&napshot", self.snapshot, QKeySequence("Ctrl+Shift+N"))
        add("&Capture", "S&top Live", self.stop, "Ctrl+Shift+.")
        toolbar.addAction(snap)

    def _settings_now(self) -> tuple[LiveSettings, SamplingSettings]:
        return self.settings, self._sampling_now()

    # --- sources -------------------------------------------------------------------------

    @Slot()
    def start_default_camera(self) -> None:
        self.start_camera(b"")

    @Slot(bytes)
    def start_camera(self, camera_id: bytes) -> None:
        """Preview (and analyse) the camera with ``camera_id`` (b"": the default one)."""
        from lfmdesk.gui.live._sources import CameraSource, camera_device

        device = camera_device(camera_id) if camera_id else None
        self.start_source(CameraSource(device))

    @Slot()
    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._parent, "Open a video", "", VIDEO_FILTER)
        if path:
            self.open_video(Path(path))

    def open_video(self, path: Path) -> None:
        """Play ``path`` in a loop as the live source."""
        from lfmdesk.gui.live._sources import VideoFileSource

        self.start_source(VideoFileSource(path))

    def open_videos_among(self, paths: list[str]) -> list[str]:
        """Play the first video among dropped ``paths``; return the other paths."""
        videos = [p for p in paths if Path(p).suffix.lower() in VIDEO_SUFFIXES]
        if videos:
            self.open_video(Path(videos[0]))
        return [p for p in paths if p not in videos]

    def start_source(self, source: FrameSource) -> None:
        """Show ``source`` in the preview and analyse it if "Analyse frames live" is on."""
        self.view.clear(f"Starting {source.name}…")
        self._area.setCurrentWidget(self.view)
        self.controller.set_source(source)
        self.controller.set_analysing(self.panel.analyse.isChecked())

    @Slot()
    def stop(self) -> None:
        """Stop the source and go back to the image canvas."""
        self.controller.stop()
        self._area.setCurrentWidget(self._home)

    @Slot(bool)
    def _on_running(self, running: bool) -> None:
        source = self.controller.source
        self.panel.set_running(running, source.name if source else "")
        if not running and source is None:  # stopped, or the source failed: back to the picture
            self.view.clear()
            self._area.setCurrentWidget(self._home)

    @Slot(QImage)
    def _on_frame(self, image: QImage) -> None:
        if not (self.settings.hold_frame and self.controller.analysing):
            self.view.show_frame(image)

    @Slot(object)
    def _on_result(self, result: LiveResult) -> None:
        held = self.controller.analysed_frame
        if self.settings.hold_frame and held is not None:
            self.view.show_frame(held)  # the picture the boxes were found on
        self.view.show_result(result)

    @Slot(bool)
    def _on_analysing(self, analysing: bool) -> None:
        if not analysing:  # the numbers and boxes would describe frames long gone
            self.view.hud.hide()
            self.view.show_result(None)

    # --- snapshot and settings -----------------------------------------------------------

    @Slot()
    def snapshot(self) -> None:
        """Freeze the current frame into the chat (saved in the project like a capture)."""
        frame = self.controller.latest_frame
        if frame is None:
            self.message.emit("No live frame to snapshot: start a camera or a video first")
            return
        image = qimage_to_pil(frame)
        self.stop()
        self._store_snapshot(image)

    @Slot(object)
    def _on_settings(self, settings: LiveSettings) -> None:
        self.settings = settings
        self.settingsChanged.emit(settings)
        self.controller.settings_changed()  # e.g. labels typed: paused Detect goes on

    def close(self) -> None:
        """Stop the camera or video (the window is closing)."""
        self.controller.stop()
