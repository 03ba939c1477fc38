"""The Live dock: choose a camera or a video, start and stop, what to watch for, the live preset.

The panel only collects choices; :class:`~lfmdesk.gui.live._mode.LiveMode` acts on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import LiveSettings

if TYPE_CHECKING:  # QtMultimedia loads when live mode is first used, not at start-up
    from lfmdesk.gui.live._sources import CameraInfo

__all__ = ["LivePanel"]

# What the watch field means in each mode: (label, placeholder).
_MODE_TEXT = {
    "caption": ("Ask", "e.g. Is anyone at the door? (empty: describe the scene)"),
    "detect": ("Find", "labels, e.g. person, cup, laptop"),
}
_MODE_TITLES = {"caption": "Caption", "detect": "Detect boxes"}
_TYPING_MS = 600


def _spin(low: int, high: int, value: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.setToolTip(tip)
    return spin


class LivePanel(QWidget):
    """Camera/video choice, Start/Stop, Snapshot, mode and prompt, and the live preset.

    Signals:
        startRequested(bytes): start the camera with this id (b"" = the default camera).
        videoRequested(): open a video file as the source.
        stopRequested(): stop the source.
        snapshotRequested(): freeze the current frame into the chat.
        analyseToggled(bool): analyse frames live, or only preview them.
        settingsChanged(object): the new :class:`~lfmdesk.core.LiveSettings`.
    """

    startRequested = Signal(bytes)
    videoRequested = Signal()
    stopRequested = Signal()
    snapshotRequested = Signal()
    analyseToggled = Signal(bool)
    settingsChanged = Signal(object)

    def __init__(self, settings: LiveSettings, cameras: Sequence[CameraInfo]) -> None:
        """Build the panel showing ``settings`` and the cameras found at start-up."""
        super().__init__()
        self._settings = settings
        self._running = False
        self.camera = QComboBox()
        self.start_button = QPushButton("Start Camera")
        self.video_button = QPushButton("Open Video…")
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip("Freeze the current frame into the chat as an image")
        self.analyse = QCheckBox("Analyse frames live")
        self.analyse.setChecked(True)
        self.mode = QComboBox()
        for mode, title in _MODE_TITLES.items():
            self.mode.addItem(title, mode)
        self.watch = QLineEdit(settings.watch)
        self.watch_label = QLabel()
        # Live frames are small and fast: up to 256 image tokens (one 512 px view) is plenty.
        self.tokens = _spin(16, 256, 64, "")
        self.split = QCheckBox("Split into 512 px tiles (slower)")
        self.answer = _spin(1, 512, settings.max_tokens, "The most tokens one live answer may have")
        self.hold = QCheckBox("Show the frame the model saw")
        self.hold.setToolTip(
            "Hold each analysed frame with its answer instead of the running video: boxes line "
            "up exactly, the picture moves at the model's pace"
        )
        self.status = QLabel()
        self.status.setWordWrap(True)
        # Typing in the watch field applies after a pause, without Enter: live mode waiting
        # for labels must start when they are typed.
        self._typing = QTimer(self)
        self._typing.setSingleShot(True)
        self._typing.setInterval(_TYPING_MS)
        self._layout()
        self.set_cameras(cameras)
        self.set_settings(settings)
        self._connect()

    def _layout(self) -> None:
        self.tokens.setToolTip(
            "Most image tokens per frame. Live mode keeps this low (64–128) so answers keep up."
        )
        buttons = QHBoxLayout()
        for button in (self.start_button, self.video_button, self.snapshot_button):
            buttons.addWidget(button)
        form = QFormLayout()
        form.addRow("Camera", self.camera)
        form.addRow("Mode", self.mode)
        form.addRow(self.watch_label, self.watch)
        form.addRow("Image tokens", self.tokens)
        form.addRow("", self.split)
        form.addRow("Answer tokens", self.answer)
        form.addRow("", self.hold)
        column = QVBoxLayout(self)
        column.addLayout(buttons)
        column.addWidget(self.analyse)
        column.addLayout(form)
        column.addWidget(self.status)
        column.addStretch(1)

    def _connect(self) -> None:
        self.start_button.clicked.connect(self._on_start_clicked)
        self.camera.activated.connect(self._on_camera_chosen)
        self.video_button.clicked.connect(self.videoRequested)
        self.snapshot_button.clicked.connect(self.snapshotRequested)
        self.analyse.toggled.connect(self.analyseToggled)
        self.mode.currentIndexChanged.connect(self._on_edited)
        self.watch.editingFinished.connect(self._on_edited)
        self.watch.textEdited.connect(self._typing.start)
        self._typing.timeout.connect(self._on_edited)
        self.tokens.valueChanged.connect(self._on_edited)
        self.split.toggled.connect(self._on_edited)
        self.answer.valueChanged.connect(self._on_edited)
        self.hold.toggled.connect(self._on_edited)

    # --- public API ----------------------------------------------------------------------

    def set_cameras(self, cameras: Sequence[CameraInfo]) -> None:
        """List ``cameras``; with none, say so and offer only a video file."""
        self.camera.clear()
        for info in cameras:
            self.camera.addItem(info.name, info.id)
            if info.is_default:
                self.camera.setCurrentIndex(self.camera.count() - 1)
        if not cameras:
            self.camera.addItem("No camera found", b"")
        self.camera.setEnabled(bool(cameras))
        self.start_button.setEnabled(bool(cameras) or self._running)

    def set_settings(self, settings: LiveSettings) -> None:
        """Show ``settings`` without emitting settingsChanged."""
        self._settings = settings
        widgets = (self.mode, self.watch, self.tokens, self.split, self.answer, self.hold)
        for widget in widgets:
            widget.blockSignals(True)
        self.mode.setCurrentIndex(max(0, self.mode.findData(settings.mode)))
        self.watch.setText(settings.watch)
        self.tokens.setValue(settings.vision.max_image_tokens)
        self.split.setChecked(settings.vision.do_image_splitting)
        self.answer.setValue(settings.max_tokens)
        self.hold.setChecked(settings.hold_frame)
        for widget in widgets:
            widget.blockSignals(False)
        self._show_mode_text(settings.mode)

    def settings(self) -> LiveSettings:
        """The settings the panel shows now."""
        s = self._settings
        vision = dataclasses.replace(
            s.vision,
            max_image_tokens=self.tokens.value(),
            min_image_tokens=min(s.vision.min_image_tokens, self.tokens.value()),
            do_image_splitting=self.split.isChecked(),
        )
        return dataclasses.replace(
            s,
            mode=self.mode.currentData(),
            watch=self.watch.text().strip(),
            vision=vision,
            max_tokens=self.answer.value(),
            hold_frame=self.hold.isChecked(),
        )

    def set_running(self, running: bool, name: str = "") -> None:
        """Reflect whether a source runs: the start button becomes Stop."""
        self._running = running
        self.start_button.setText("Stop" if running else "Start Camera")
        self.start_button.setEnabled(running or self.camera.isEnabled())
        self.snapshot_button.setEnabled(running)
        self.status.setText(f"Watching {name}" if running and name else "")

    # --- slots ---------------------------------------------------------------------------

    @Slot()
    def _on_start_clicked(self) -> None:
        if self._running:
            self.stopRequested.emit()
        else:
            self.startRequested.emit(bytes(self.camera.currentData() or b""))

    @Slot(int)
    def _on_camera_chosen(self, _index: int) -> None:
        if self._running:  # switch cameras without a Stop first
            self.startRequested.emit(bytes(self.camera.currentData() or b""))

    @Slot()
    def _on_edited(self, *_args: object) -> None:
        self._typing.stop()
        settings = self.settings()
        self._show_mode_text(settings.mode)
        if settings != self._settings:
            self._settings = settings
            self.settingsChanged.emit(settings)

    def _show_mode_text(self, mode: str) -> None:
        label, placeholder = _MODE_TEXT.get(mode, _MODE_TEXT["caption"])
        self.watch_label.setText(label)
        self.watch.setPlaceholderText(placeholder)
