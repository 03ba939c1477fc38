"""File ▸ Evaluate Boxes… and the constrained-Detect setting, on screen (scripted engine
processes: the engine is not what is under test here; tests/core runs the real one)."""

from __future__ import annotations

import math

import pytest
from PIL import Image

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QCheckBox, QWidget
from test_gui_app import make_window

from lfmdesk.core import (
    AppSettings,
    EngineProcess,
    Project,
    SamplingSettings,
    VisionSettings,
    make_box,
)
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.core.evaluate._report import read_report
from lfmdesk.core.evaluate._runner import AnswerScored, eval_folder
from lfmdesk.core.testing._scripted import scripted_boxes
from lfmdesk.gui.evaluate._dialog import EvaluateDialog
from lfmdesk.gui.models._settings_panel import SettingsPanel

LABELS = ("cat", "dog")


def visible(widget: QWidget) -> bool:
    return widget.isVisible() and widget.width() > 0 and widget.height() > 0


def _pixels(box: tuple[float, ...], w: int, h: int) -> tuple[int, ...]:
    return tuple(math.floor(v * s + 0.5) for v, s in zip(box, (w, h, w, h), strict=True))


@pytest.fixture
def project(tmp_path) -> Project:
    """Three pictures whose truth is where the scripted engine answers, but on the last one
    the dog is elsewhere (one miss, one false box), and one picture with no truth."""
    root = tmp_path / "pets"
    root.mkdir()
    proj = Project(root)
    proj.save_labels(LABELS)
    answer = scripted_boxes(2)
    for n, (w, h) in enumerate(((200, 120), (160, 160), (240, 100))):
        Image.new("RGB", (w, h), (40 * n, 120, 200)).save(root / f"pet{n}.png")
        truth = [("cat", _pixels(answer[0], w, h)), ("dog", _pixels(answer[1], w, h))]
        if n == 2:
            truth[1] = ("dog", (0, 0, 20, 20))
        boxes = tuple(make_box(label, px, w, h) for label, px in truth)
        proj.save(ImageAnnotation(f"pet{n}.png", w, h, boxes, edited=True))
    Image.new("RGB", (50, 50)).save(root / "no-truth.png")
    return proj


def _dialog(qtbot, project: Project, token_delay: float = 0.0, saved=None) -> EvaluateDialog:
    options = {"token_delay": token_delay, "load_delay": 0.0}
    dialog = EvaluateDialog(
        project,
        lambda: EngineProcess("scripted", options),
        "auto",
        "8bit",
        lambda: (SamplingSettings(), VisionSettings()),
        saved,
    )
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_evaluate_runs_shows_progress_and_the_report(qtbot, project, tmp_path) -> None:
    dialog = _dialog(qtbot, project)
    assert dialog.labels.text() == "cat, dog"
    assert [b.text() for b in dialog.models if b.isChecked()] == ["8bit"]
    assert not dialog.report.isVisible()  # no evaluation yet
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        dialog.start_button.click()
    assert dialog.progress.value() == dialog.progress.maximum() == 6
    assert "Done: 2 configurations" in dialog.status.text() and visible(dialog.status)
    view = dialog.report
    assert visible(view) and visible(view.table) and view.table.rowCount() == 2
    assert [view.table.item(r, 0).text() for r in range(2)].count("★") == 1
    assert view.table.item(0, 1).text() == "8bit · default · constrained"
    assert view.table.item(0, 2).text() == "0.833"  # 5 of 6 boxes right
    # Worst first: the picture with the misplaced dog.
    assert view.listed_images()[0] == "pet2.png"
    assert view.images.item(0).text() == "pet2.png — 1 missed, 1 false"
    qtbot.waitUntil(lambda: len(view.canvas.box_items()) == 4, timeout=10_000)
    styles = sorted(item.by_model for item in view.canvas.box_items())
    assert styles == [False, False, True, True]  # truth solid, the answer dashed
    assert visible(view.canvas) and "Solid: ground truth" in view.legend.text()
    assert (eval_folder(project) / "report.json").is_file()
    dialog.grab().save(str(tmp_path / "evaluate.png"))
    # Opening it again shows the saved report at once.
    again = _dialog(qtbot, project, saved=read_report(eval_folder(project) / "report.json"))
    assert visible(again.report) and again.report.table.rowCount() == 2


def test_cancel_stops_and_evaluate_again_resumes(qtbot, project) -> None:
    dialog = _dialog(qtbot, project, token_delay=0.02)
    answered: list[object] = []
    dialog.worker.event.connect(answered.append)
    dialog.start_button.click()
    qtbot.waitUntil(lambda: any(isinstance(e, AnswerScored) for e in answered), timeout=60_000)
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        dialog.cancel_button.click()
    assert "Stopped" in dialog.status.text() and dialog.start_button.isEnabled()
    assert not dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(dialog.worker.event, timeout=60_000):
        dialog.start_button.click()
    qtbot.waitUntil(lambda: "already cached" in dialog.status.text(), timeout=10_000)
    cached = int(dialog.status.text().split("answers, ")[1].split(" already")[0])
    assert cached >= 1
    with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
        pass
    assert dialog.report.table.rowCount() == 2


def test_a_project_without_ground_truth_says_so_on_screen(qtbot, tmp_path) -> None:
    root = tmp_path / "bare"
    root.mkdir()
    Image.new("RGB", (40, 40)).save(root / "a.png")
    dialog = _dialog(qtbot, Project(root))
    dialog.labels.setText("cat")
    with qtbot.waitSignal(dialog.worker.failed, timeout=30_000):
        dialog.start_button.click()
    assert "no image has ground truth" in dialog.status.text() and visible(dialog.status)
    assert dialog.start_button.isEnabled()
    for box in dialog.tilings:
        box.setChecked(False)
    dialog.start_button.click()
    assert "give one or more tilings" in dialog.status.text()


def test_the_file_menu_opens_evaluate_on_the_open_project(qtbot, tmp_path, project) -> None:
    window = make_window(qtbot, tmp_path, "scripted", {"token_delay": 0.0})
    try:
        window.workspace.open_project(str(project.root))
        action = next(
            a for menu in window.menuBar().actions() if menu.menu()
            for a in menu.menu().actions() if a.text() == "E&valuate Boxes…"
        )  # fmt: skip
        action.trigger()
        dialog = window.workspace._evaluate
        assert dialog is not None and visible(dialog) and dialog.project.root == project.root
        assert not dialog.report.isVisible()  # no evaluation yet
        with qtbot.waitSignal(dialog.worker.done, timeout=60_000):
            dialog.start_button.click()
        dialog.close()
        action.trigger()  # the same dialog, with its report
        assert window.workspace._evaluate is dialog and visible(dialog.report)
        damaged = eval_folder(project) / "report.json"
        damaged.write_text("{")
        window.workspace._evaluate = None
        with qtbot.waitSignal(window.workspace.problem, timeout=5_000) as blocker:
            action.trigger()
        assert "not a readable report" in blocker.args[0]
        assert damaged.read_text() == "{"  # left as it is
    finally:
        window.client.stop()


def test_settings_panel_turns_constrained_detect_off_and_on(qtbot) -> None:
    panel = SettingsPanel(SamplingSettings(), VisionSettings())
    qtbot.addWidget(panel)
    panel.show()
    box = next(b for b in panel.findChildren(QCheckBox) if "Constrain" in b.text())
    assert visible(box) and box.isChecked() and box.toolTip()
    with qtbot.waitSignal(panel.settingsChanged, timeout=2000) as blocker:
        box.setChecked(False)
    assert blocker.args[0].constrained is False
    panel.set_settings(SamplingSettings(constrained=True), VisionSettings())
    assert box.isChecked()


def test_the_setting_is_saved_with_the_others(tmp_path) -> None:
    from lfmdesk.core import load_settings, save_settings

    path = tmp_path / "settings.json"
    save_settings(AppSettings(sampling=SamplingSettings(constrained=False)), path)
    assert load_settings(path).sampling.constrained is False
    path.write_text('{"sampling": {"temperature": 0.2}}')  # written before the setting existed
    assert load_settings(path).sampling.constrained is True
