"""The settings panel: valid changes reach the window, invalid ones explain themselves."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QAbstractSpinBox, QCheckBox, QLabel, QPushButton

from lfmdesk.core import SamplingSettings, VisionSettings
from lfmdesk.core._settings import RANGES
from lfmdesk.gui.models._settings_panel import DEBOUNCE_MS, SettingsPanel

QUIET_MS = DEBOUNCE_MS * 3


@pytest.fixture
def panel(qtbot) -> SettingsPanel:
    widget = SettingsPanel(SamplingSettings(), VisionSettings())
    qtbot.addWidget(widget)
    widget.show()
    return widget


def _spin(panel: SettingsPanel, name: str) -> QAbstractSpinBox:
    spin = panel.findChild(QAbstractSpinBox, name)
    assert spin is not None, name
    return spin


def _errors(panel: SettingsPanel) -> list[str]:
    return [
        label.text()
        for label in panel.findChildren(QLabel, "settingsError")
        if label.isVisibleTo(panel)
    ]


def test_widget_ranges_come_from_the_settings_table(panel) -> None:
    for name in ("temperature", "max_tokens", "min_image_tokens", "max_tiles", "seed"):
        low, high = RANGES[name]
        spin = _spin(panel, name)
        assert (spin.minimum(), spin.maximum()) == (low, high)


def test_changing_max_image_tokens_emits_new_vision_settings(qtbot, panel) -> None:
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        _spin(panel, "max_image_tokens").setValue(512)
    sampling, vision = blocker.args
    assert vision == VisionSettings(max_image_tokens=512)
    assert sampling == SamplingSettings()
    assert panel.vision().max_image_tokens == 512


def test_rapid_changes_are_debounced_into_one_emit(qtbot, panel) -> None:
    received: list[object] = []
    panel.settingsChanged.connect(lambda s, v: received.append(s))
    spin = _spin(panel, "max_tokens")
    for value in (600, 700, 800, 900):
        spin.setValue(value)
    qtbot.wait(QUIET_MS)
    assert [s.max_tokens for s in received] == [900]


def test_seed_checkbox_switches_between_random_and_fixed(qtbot, panel) -> None:
    random_box = next(b for b in panel.findChildren(QCheckBox) if b.text() == "random")
    assert random_box.isChecked() and not _spin(panel, "seed").isEnabled()
    _spin(panel, "seed").setValue(1234)  # disabled but settable: no effect while random
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        random_box.setChecked(False)
    assert blocker.args[0].seed == 1234
    assert _spin(panel, "seed").isEnabled()


def test_min_above_max_shows_the_error_and_emits_nothing(qtbot, panel) -> None:
    with qtbot.assertNotEmitted(panel.settingsChanged, wait=QUIET_MS):
        _spin(panel, "min_image_tokens").setValue(512)  # max is 256
    (message,) = _errors(panel)
    assert "min_image_tokens (512) must not exceed max_image_tokens (256)" in message
    assert panel.vision() == VisionSettings()  # still the last valid settings
    # Fixing it clears the message and emits the valid combination.
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        _spin(panel, "max_image_tokens").setValue(1024)
    assert _errors(panel) == []
    assert blocker.args[1].min_image_tokens == 512


def test_invalid_change_cancels_a_pending_emit(qtbot, panel) -> None:
    with qtbot.assertNotEmitted(panel.settingsChanged, wait=QUIET_MS):
        _spin(panel, "max_tiles").setValue(20)
        _spin(panel, "min_tiles").setValue(30)
    assert "min_tiles (30) must not exceed max_tiles (20)" in _errors(panel)[0]


def test_splitting_off_disables_the_tile_settings(qtbot, panel) -> None:
    split = next(b for b in panel.findChildren(QCheckBox) if "Split" in b.text())
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        split.setChecked(False)
    assert blocker.args[1].do_image_splitting is False
    assert not _spin(panel, "max_tiles").isEnabled()
    assert not _spin(panel, "min_tiles").isEnabled()


def test_reset_restores_model_card_defaults(qtbot, panel) -> None:
    _spin(panel, "temperature").setValue(1.5)
    _spin(panel, "max_image_tokens").setValue(128)
    qtbot.wait(QUIET_MS)
    reset = next(b for b in panel.findChildren(QPushButton) if "Reset" in b.text())
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        reset.click()
    assert blocker.args == [SamplingSettings(), VisionSettings()]
    assert _spin(panel, "temperature").value() == pytest.approx(0.1)
    assert _spin(panel, "max_image_tokens").value() == 256


def test_set_settings_shows_values_without_emitting(qtbot, panel) -> None:
    sampling = SamplingSettings(temperature=0.7, max_tokens=64, seed=3_000_000_000, top_p=0.9)
    vision = VisionSettings(max_image_tokens=128, do_image_splitting=False, max_tiles=4)
    with qtbot.assertNotEmitted(panel.settingsChanged, wait=QUIET_MS):
        panel.set_settings(sampling, vision)
    assert (panel.sampling(), panel.vision()) == (sampling, vision)
    assert _spin(panel, "temperature").value() == pytest.approx(0.7)
    assert _spin(panel, "seed").value() == 3_000_000_000
    assert _spin(panel, "max_image_tokens").value() == 128
    # top_p has no widget here; the next change keeps it.
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        _spin(panel, "max_tokens").setValue(128)
    assert blocker.args[0] == SamplingSettings(
        temperature=0.7, max_tokens=128, seed=3_000_000_000, top_p=0.9
    )


def test_plan_summary_is_shown_and_hidden(panel) -> None:
    summary = panel.findChild(QLabel, "planSummary")
    assert not summary.isVisibleTo(panel)
    panel.set_plan_summary("1920×1080 → 2×4 tiles + thumbnail = 2,300 image tokens")
    assert summary.isVisibleTo(panel)
    assert "2,300 image tokens" in summary.text()
    panel.set_plan_summary("")
    assert not summary.isVisibleTo(panel)


def test_every_setting_has_a_tooltip(panel) -> None:
    widgets = panel.findChildren(QAbstractSpinBox) + panel.findChildren(QCheckBox)
    assert widgets and all(w.toolTip() for w in widgets)
