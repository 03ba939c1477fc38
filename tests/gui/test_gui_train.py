"""Training in the window: the dialog with its live loss plot, Cancel, and adapters in the bar."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QComboBox, QLabel
from test_gui_app import make_window

from lfmdesk.core import Project, VisionSettings
from lfmdesk.core.train._store import AdapterInfo, BaseModel, adapter_folder, utc_now, write_info
from lfmdesk.gui.models._model_bar import ModelBar, ModelRow, row_key
from lfmdesk.gui.train._dialog import TrainDialog
from lfmdesk.gui.train._rows import with_adapters

ROWS = [
    ModelRow("4bit", "LFM2.5-VL-450M · 4-bit", 233_000_000, False),
    ModelRow("8bit", "LFM2.5-VL-450M · 8-bit", 568_000_000, True, is_default=True),
]


def _texts(combo: QComboBox) -> list[str]:
    return [t for t in (combo.itemText(i) for i in range(combo.count())) if t]


def _shown(widget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def _store_adapter(name: str, spec: str, labels: tuple[str, ...] = ("cat",)) -> None:
    info = AdapterInfo(
        name=name,
        base=BaseModel(spec, spec, spec, "0" * 64, 8),
        prompt="p",
        labels=labels,
        vision=VisionSettings(),
        train_images=4,
        validation_images=1,
        boxes=5,
        steps=10,
        rank=8,
        learning_rate=2e-4,
        compute_dtype="float32",
        train_loss=0.5,
        validation_loss=0.6,
        created=utc_now(),
        project="/p",
    )
    write_info(adapter_folder(name), info)


def test_adapters_are_listed_under_their_base_and_picking_one_asks_for_both(
    qtbot, tmp_path, monkeypatch
):
    monkeypatch.setenv("LFMDESK_DATA_DIR", str(tmp_path / "data"))  # only these two adapters
    _store_adapter("cats", "8bit")
    folder = tmp_path / "my-model"
    folder.mkdir()
    _store_adapter("dogs", str(folder))
    rows = with_adapters(ROWS)
    assert [(r.spec, r.adapter) for r in rows] == [
        ("4bit", ""),
        ("8bit", ""),
        ("8bit", "cats"),
        (str(folder), ""),
        (str(folder), "dogs"),
    ]
    bar = ModelBar(rows, current="8bit")
    qtbot.addWidget(bar)
    bar.show()
    combo = bar.findChild(QComboBox, "modelCombo")
    texts = _texts(combo)
    assert (
        texts.index("    ↳ adapter cats")
        == texts.index("LFM2.5-VL-450M · 8-bit — 568 MB ✓ (default)") + 1
    )
    assert texts.index("    ↳ adapter dogs") == texts.index("my-model ✓") + 1
    index = combo.findText("    ↳ adapter cats")
    combo.setCurrentIndex(index)
    with (
        qtbot.waitSignal(bar.adapterRequested) as blocker,
        qtbot.assertNotEmitted(bar.modelRequested),
    ):
        combo.activated.emit(index)
    assert blocker.args == ["8bit", "cats"]
    assert bar.current == row_key("8bit", "cats")
    assert with_adapters(rows) == rows  # refreshing does not repeat them


@pytest.fixture
def dialog(qtbot, tmp_path):
    project = Project(tmp_path)
    project.save_labels(["square"])
    widget = TrainDialog(project, "8bit", VisionSettings(), trainer="scripted")
    qtbot.addWidget(widget)
    widget.show()
    yield widget
    widget.runner.stop()


def test_the_dialog_plots_the_loss_live_and_cancel_stops_with_a_visible_message(
    dialog, qtbot, tmp_path
):
    assert dialog.labels_edit.text() == "square"  # the project's labels
    dialog.steps_box.setValue(400)
    dialog.train_button.click()
    qtbot.waitUntil(lambda: len(dialog.plot.points) >= 5, timeout=60_000)
    assert _shown(dialog.plot) and _shown(dialog.status) and _shown(dialog.cancel_button)
    assert dialog.status.text().startswith("Step ") and "loss" in dialog.status.text()
    assert not dialog.close_button.isEnabled()
    losses = [loss for _, loss in dialog.plot.points]
    assert losses == sorted(losses, reverse=True)  # the scripted loss falls
    dialog.grab().save(str(tmp_path / "train-dialog.png"))
    with qtbot.waitSignal(dialog.runner.ended, timeout=30_000):
        dialog.cancel_button.click()
    assert "Stopped at step" in dialog.status.text() and "saved" in dialog.status.text()
    assert _shown(dialog.status) and _shown(dialog.train_button)
    assert len(dialog.plot.points) < 400


def test_a_finished_run_shows_the_report_and_offers_the_adapter(dialog, qtbot):
    dialog.steps_box.setValue(20)
    dialog.name_edit.setText("squares")
    with qtbot.waitSignal(dialog.adaptersChanged, timeout=60_000):
        dialog.train_button.click()
    assert _shown(dialog.report) and "held-out Detect" in dialog.report.toPlainText()
    assert "Saved adapter 'squares'" in dialog.status.text()
    assert _shown(dialog.use_button)
    with qtbot.waitSignal(dialog.adapterChosen) as blocker:
        dialog.use_button.click()
    assert blocker.args == ["8bit", "squares"]


def test_a_failure_is_one_visible_line_and_the_dialog_stays_usable(dialog, qtbot):
    dialog.labels_edit.setText("fail")
    with qtbot.waitSignal(dialog.runner.ended, timeout=60_000):
        dialog.train_button.click()
    assert dialog.status.text().startswith("⚠ ") and "\n" not in dialog.status.text()
    assert _shown(dialog.status) and dialog.train_button.isEnabled()
    dialog.labels_edit.setText("")
    dialog.train_button.click()
    assert "Give the labels" in dialog.status.text() and not dialog.running


def test_the_window_trains_then_loads_the_adapter_from_the_model_bar(qtbot, tmp_path):
    window = make_window(qtbot, tmp_path, "scripted", options={"load_delay": 0.0})
    try:
        with qtbot.waitSignal(window.client.modelLoaded, timeout=30_000):
            window.load_model("8bit")
        action = next(
            a
            for a in window.menuBar().actions()[0].menu().actions()
            if a.text() == "&Train on This Project…"
        )
        action.trigger()
        dialog = window.trainer.dialog
        assert dialog is not None and _shown(dialog)
        dialog.labels_edit.setText("square")
        dialog.steps_box.setValue(10)
        dialog.name_edit.setText("from-window")
        with qtbot.waitSignal(window.trainer.adaptersChanged, timeout=60_000):
            dialog.train_button.click()
        combo = window.model_bar.findChild(QComboBox, "modelCombo")
        assert "    ↳ adapter from-window" in _texts(combo)
        with qtbot.waitSignal(window.client.modelLoaded, timeout=30_000) as blocker:
            dialog.use_button.click()
        assert blocker.args[1].adapter == Path("from-window")
        state = window.model_bar.findChild(QLabel, "modelState")
        assert "adapter from-window" in state.text() and _shown(state)
        assert combo.currentText() == "    ↳ adapter from-window"
        dialog.close()
    finally:
        window.client.stop()
