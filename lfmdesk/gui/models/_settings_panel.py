"""The settings panel: sampling and vision (tiling) settings, validated as they change.

::

    panel = SettingsPanel(app_settings.sampling, app_settings.vision)
    panel.settingsChanged.connect(controller.apply_settings)   # (SamplingSettings, VisionSettings)
    panel.set_plan_summary("1920×1080 → 2×4 tiles + thumbnail = 2,300 image tokens")

Widget ranges come from ``RANGES`` in ``lfmdesk.core._settings``; invalid combinations
(min above max) show the core's one-line message under their group and emit nothing.
Changes are emitted 100 ms after the last one, so holding a spin box arrow stays smooth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from PySide6.QtCore import QEvent, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import SamplingSettings, SettingsError, VisionSettings
from lfmdesk.core._settings import RANGES

__all__ = ["DEBOUNCE_MS", "SettingsPanel"]

DEBOUNCE_MS = 100
_INT_MAX = 2**31 - 1  # QSpinBox holds a C int; wider integer ranges use a 0-decimal QDoubleSpinBox
_ERROR_TINT = QColor(220, 40, 40)
_SPLITTING_NOTE = "LiquidAI's MLX repos ship splitting off; the official behaviour is on."


@dataclass(frozen=True)
class _Field:
    """One numeric setting: its dataclass field (and ``RANGES`` key) and how to edit it."""

    name: str
    label: str
    tip: str
    step: float
    decimals: int = 0


_SAMPLING_FIELDS = (
    _Field(
        "temperature",
        "Temperature",
        "How random the answer is; 0 always picks the most likely next token.",
        0.05,
        2,
    ),
    _Field(
        "min_p",
        "Min p",
        "Ignores tokens less likely than this fraction of the most likely token.",
        0.01,
        2,
    ),
    _Field(
        "repetition_penalty",
        "Repetition penalty",
        "Makes tokens already in the answer less likely; 1.00 turns it off.",
        0.01,
        2,
    ),
    _Field(
        "max_tokens", "Max tokens", "The longest answer, in tokens; generation stops there.", 64
    ),
)
_VISION_FIELDS = (
    _Field(
        "min_image_tokens",
        "Min image tokens",
        "Small images are upscaled until they give at least this many tokens.",
        16,
    ),
    _Field(
        "max_image_tokens",
        "Max image tokens",
        "Token budget of a single view or the thumbnail; larger images are split or shrunk.",
        16,
    ),
    _Field("min_tiles", "Min tiles", "The fewest 512 px tiles a split image is cut into.", 1),
    _Field("max_tiles", "Max tiles", "The most 512 px tiles a split image is cut into.", 1),
)
_SEED_TIP = "Fixes the random draws so an answer can be repeated; 'random' draws a fresh seed."
_CONSTRAINED_TIP = (
    "Detect, Detect all and live detect answers follow the box grammar: always valid JSON, "
    "only the labels you asked for, no empty or repeated box. Chat is never constrained."
)
_SPLIT_TIP = "Cuts large images into 512 px tiles so the model sees fine detail."
_THUMB_TIP = "Adds a downscaled view of the whole image after the tiles, for overall layout."


_Spin = QSpinBox | QDoubleSpinBox


def _spin_box(name: str, step: float, decimals: int, tip: str) -> _Spin:
    low, high = RANGES[name]
    bottom = -float(_INT_MAX) if low is None else float(low)
    top = float(_INT_MAX) if high is None else float(high)
    spin: _Spin
    if decimals == 0 and top <= _INT_MAX and bottom >= -_INT_MAX:
        spin = QSpinBox()
        spin.setRange(int(bottom), int(top))
        spin.setSingleStep(max(1, int(step)))
    else:
        spin = QDoubleSpinBox()
        spin.setDecimals(decimals)
        spin.setRange(bottom, top)
        spin.setSingleStep(step)
    # Emit on Enter, focus-out, arrows and wheel rather than on every keystroke: "30" on
    # the way to "300" would flash a min/max error.
    spin.setKeyboardTracking(False)
    spin.setAlignment(Qt.AlignmentFlag.AlignRight)
    spin.setToolTip(tip)
    spin.setObjectName(name)
    return spin


def _value(spin: _Spin, decimals: int) -> float | int:
    raw = spin.value()
    return round(raw) if decimals == 0 else round(float(raw), decimals)


def _error_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setObjectName("settingsError")
    label.hide()
    return label


class SettingsPanel(QWidget):
    """Sampling and vision settings with live validation and a reset button.

    Signals:
        settingsChanged(SamplingSettings, VisionSettings): valid settings, debounced.
    """

    settingsChanged = Signal(object, object)

    def __init__(
        self, sampling: SamplingSettings, vision: VisionSettings, parent: QWidget | None = None
    ) -> None:
        """Build the panel showing ``sampling`` and ``vision``."""
        super().__init__(parent)
        self._sampling = sampling
        self._vision = vision
        self._spins: dict[str, tuple[_Spin, int]] = {}
        self._sent = (sampling, vision)  # what the window has: set_settings or the last emit
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit_now)
        self._seed = _spin_box("seed", 1, 0, _SEED_TIP)
        self._seed_random = QCheckBox("random")
        self._seed_random.setToolTip(_SEED_TIP)
        self._constrained = QCheckBox("Constrain Detect answers to valid boxes")
        self._constrained.setToolTip(_CONSTRAINED_TIP)
        self._splitting = QCheckBox("Split large images into tiles")
        self._splitting.setToolTip(_SPLIT_TIP)
        self._thumbnail = QCheckBox("Add a thumbnail of the whole image")
        self._thumbnail.setToolTip(_THUMB_TIP)
        self._sampling_error = _error_label()
        self._vision_error = _error_label()
        self._summary = QLabel()
        self._summary.setWordWrap(True)
        self._summary.setObjectName("planSummary")
        self._summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._summary.hide()
        self._reset = QPushButton("Reset to model card defaults")
        self._reset.setToolTip("Restore the LFM2.5-VL-450M model card's recommended settings.")
        layout = QVBoxLayout(self)
        layout.addWidget(self._sampling_group())
        layout.addWidget(self._vision_group())
        layout.addWidget(self._reset, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self._connect()
        self.set_settings(sampling, vision)
        self._update_error_colors()

    # ------------------------------------------------------------------ layout
    def _add_fields(self, form: QFormLayout, fields: tuple[_Field, ...]) -> None:
        for field in fields:
            spin = _spin_box(field.name, field.step, field.decimals, field.tip)
            self._spins[field.name] = (spin, field.decimals)
            label = QLabel(field.label)
            label.setToolTip(field.tip)
            label.setBuddy(spin)
            form.addRow(label, spin)

    @staticmethod
    def _form(group: QGroupBox) -> QFormLayout:
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        return form

    def _sampling_group(self) -> QGroupBox:
        group = QGroupBox("Sampling")
        form = self._form(group)
        self._add_fields(form, _SAMPLING_FIELDS)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self._seed, 1)
        seed_row.addWidget(self._seed_random)
        seed_label = QLabel("Seed")
        seed_label.setToolTip(_SEED_TIP)
        form.addRow(seed_label, seed_row)
        form.addRow(self._constrained)
        form.addRow(self._sampling_error)
        return group

    def _vision_group(self) -> QGroupBox:
        group = QGroupBox("Vision")
        form = self._form(group)
        self._add_fields(form, _VISION_FIELDS[:2])
        form.addRow(self._splitting)
        self._add_fields(form, _VISION_FIELDS[2:])
        form.addRow(self._thumbnail)
        form.addRow(self._vision_error)
        form.addRow(self._summary)
        note = QLabel(_SPLITTING_NOTE)
        note.setWordWrap(True)
        note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        font = note.font()
        font.setPointSizeF(font.pointSizeF() * 0.9)
        note.setFont(font)
        form.addRow(note)
        return group

    def _connect(self) -> None:
        for spin, _ in self._spins.values():
            spin.valueChanged.connect(self._on_changed)
        self._seed.valueChanged.connect(self._on_changed)
        for box in (self._seed_random, self._constrained, self._splitting, self._thumbnail):
            box.toggled.connect(self._on_changed)
        self._reset.clicked.connect(self._on_reset)

    # --------------------------------------------------------------- public API
    def set_settings(self, sampling: SamplingSettings, vision: VisionSettings) -> None:
        """Show ``sampling`` and ``vision`` without emitting settingsChanged."""
        self._timer.stop()
        self._sampling, self._vision = sampling, vision
        self._sent = (sampling, vision)
        widgets: list[QWidget] = [spin for spin, _ in self._spins.values()]
        widgets += [self._seed, self._seed_random, self._constrained]
        widgets += [self._splitting, self._thumbnail]
        blocked = [w.blockSignals(True) for w in widgets]
        try:
            for name, (spin, _) in self._spins.items():
                spin.setValue(getattr(vision if hasattr(vision, name) else sampling, name))
            self._seed.setValue(sampling.seed or 0)
            self._seed_random.setChecked(sampling.seed is None)
            self._constrained.setChecked(sampling.constrained)
            self._splitting.setChecked(vision.do_image_splitting)
            self._thumbnail.setChecked(vision.use_thumbnail)
        finally:
            for widget, was in zip(widgets, blocked, strict=True):
                widget.blockSignals(was)
        self._show_error(self._sampling_error, "")
        self._show_error(self._vision_error, "")
        self._update_enabled()

    def sampling(self) -> SamplingSettings:
        """The last valid sampling settings shown."""
        return self._sampling

    def vision(self) -> VisionSettings:
        """The last valid vision settings shown."""
        return self._vision

    def plan_summary(self) -> str:
        """The tile-plan line shown under the vision settings."""
        return str(self._summary.text())

    def set_plan_summary(self, text: str) -> None:
        """Show the current image's tiling summary under the vision settings ("" hides it)."""
        self._summary.setText(text)
        self._summary.setVisible(bool(text))

    # ---------------------------------------------------------------- behaviour
    def _values(self, names: tuple[_Field, ...]) -> dict[str, float | int]:
        return {f.name: _value(*self._spins[f.name]) for f in names}

    def _build(self) -> tuple[SamplingSettings | None, VisionSettings | None]:
        """Both settings from the widgets; None for a group whose values are invalid."""
        sampling: SamplingSettings | None = None
        vision: VisionSettings | None = None
        seed = None if self._seed_random.isChecked() else int(_value(self._seed, 0))
        try:
            values = self._values(_SAMPLING_FIELDS)
            sampling = dataclasses.replace(
                self._sampling,
                seed=seed,
                constrained=self._constrained.isChecked(),
                **values,  # type: ignore[arg-type]
            )
            self._show_error(self._sampling_error, "")
        except SettingsError as exc:
            self._show_error(self._sampling_error, str(exc))
        try:
            vision = VisionSettings(
                **self._values(_VISION_FIELDS),  # type: ignore[arg-type]
                do_image_splitting=self._splitting.isChecked(),
                use_thumbnail=self._thumbnail.isChecked(),
            )
            self._show_error(self._vision_error, "")
        except SettingsError as exc:
            self._show_error(self._vision_error, str(exc))
        return sampling, vision

    @Slot()
    def _on_changed(self) -> None:
        self._update_enabled()
        sampling, vision = self._build()
        if sampling is None or vision is None:
            self._timer.stop()  # a pending emit would carry values the user has moved past
            return
        self._sampling, self._vision = sampling, vision
        if (sampling, vision) != self._sent:
            self._timer.start()
        else:
            self._timer.stop()  # changed and changed back: the window already has these

    @Slot()
    def _emit_now(self) -> None:
        self._sent = (self._sampling, self._vision)
        self.settingsChanged.emit(self._sampling, self._vision)

    @Slot()
    def _on_reset(self) -> None:
        self.set_settings(SamplingSettings(), VisionSettings())
        self._emit_now()

    def _update_enabled(self) -> None:
        split = self._splitting.isChecked()
        for name in ("min_tiles", "max_tiles"):
            self._spins[name][0].setEnabled(split)
        self._thumbnail.setEnabled(split)
        self._seed.setEnabled(not self._seed_random.isChecked())

    @staticmethod
    def _show_error(label: QLabel, message: str) -> None:
        label.setText(message)
        label.setVisible(bool(message))

    def _update_error_colors(self) -> None:
        # The palette's text colour pulled towards red stays legible in light and dark mode.
        text = self.palette().color(QPalette.ColorRole.WindowText)
        mix = QColor(
            (text.red() + 2 * _ERROR_TINT.red()) // 3,
            (text.green() + 2 * _ERROR_TINT.green()) // 3,
            (text.blue() + 2 * _ERROR_TINT.blue()) // 3,
        )
        for label in (self._sampling_error, self._vision_error):
            palette = label.palette()
            palette.setColor(QPalette.ColorRole.WindowText, mix)
            label.setPalette(palette)

    def changeEvent(self, event: QEvent) -> None:
        """Recolour the error labels when the system switches light/dark mode."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._update_error_colors()
