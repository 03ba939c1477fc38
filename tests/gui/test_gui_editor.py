"""The annotation editor: boxes edited on the canvas with the mouse and keys, undo, autosave."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QTransform
from PySide6.QtTest import QTest

from lfmdesk.core import Detection, load_image
from lfmdesk.core.datasets._annotations import MODEL, PERSON, ImageAnnotation, apply_detections
from lfmdesk.core.datasets._project import Project
from lfmdesk.core.images._draw import label_color
from lfmdesk.gui.annotate._editor import AnnotationEditor, connect_editor
from lfmdesk.gui.annotate._labels_panel import LabelsPanel
from lfmdesk.gui.canvas._canvas import ImageCanvas

LEFT = Qt.MouseButton.LeftButton
NO_MOD = Qt.KeyboardModifier.NoModifier
W, H = 400, 300


@pytest.fixture
def project(tmp_path: Path) -> Project:
    for name, colour in (("a.png", (200, 90, 40)), ("b.png", (40, 90, 200))):
        Image.new("RGB", (W, H), colour).save(tmp_path / name)
    return Project(tmp_path)


class Rig:
    """A canvas, a labels panel and an editor wired as the window wires them."""

    def __init__(self, qtbot, project: Project) -> None:
        self.project = project
        self.canvas = ImageCanvas()
        qtbot.addWidget(self.canvas)
        self.canvas.resize(800, 500)
        self.canvas.show()
        qtbot.waitExposed(self.canvas)
        self.panel = LabelsPanel(["car", "dog"])
        qtbot.addWidget(self.panel)
        self.editor = AnnotationEditor(project)
        connect_editor(self.editor, self.canvas, self.panel)
        self.problems: list[str] = []
        self.editor.problem.connect(self.problems.append)
        self.open("a.png")

    def open(self, key: str) -> None:
        self.canvas.set_image(load_image(self.project.image_path(key)))
        self.editor.open_image(key)
        # Zoom 2: one image pixel is two screen pixels, so the expected pixels are exact.
        self.canvas.setTransform(QTransform.fromScale(2.0, 2.0))

    @property
    def ann(self) -> ImageAnnotation:
        ann = self.editor.annotation
        assert ann is not None
        return ann

    def at(self, x: float, y: float) -> QPoint:
        return self.canvas.mapFromScene(QPointF(x, y))

    def drag(self, start, end, modifiers=NO_MOD) -> None:
        viewport = self.canvas.viewport()
        QTest.mousePress(viewport, LEFT, modifiers, self.at(*start))
        mid = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        QTest.mouseMove(viewport, self.at(*mid))
        QTest.mouseMove(viewport, self.at(*end))
        QTest.mouseRelease(viewport, LEFT, modifiers, self.at(*end))

    def click(self, x: float, y: float, modifiers=NO_MOD) -> None:
        QTest.mouseClick(self.canvas.viewport(), LEFT, modifiers, self.at(x, y))

    def key(self, key: Qt.Key, modifiers=NO_MOD) -> None:
        QTest.keyClick(self.canvas, key, modifiers)

    def undo(self) -> None:
        self.editor.group.undo()

    def redo(self) -> None:
        self.editor.group.redo()

    def with_box(self, px=(10, 10, 60, 50), label: str = "car") -> str:
        self.editor.add_box(px, label)
        return self.ann.boxes[-1].id


@pytest.fixture
def rig(qtbot, project: Project) -> Rig:
    return Rig(qtbot, project)


def test_drawing_on_empty_image_adds_a_persons_box_with_the_current_label(rig: Rig) -> None:
    rig.panel.set_current_label("dog")
    rig.drag((50, 40), (150, 120))
    (box,) = rig.ann.boxes
    assert (box.px, box.label, box.source) == ((50, 40, 150, 120), "dog", PERSON)
    # The canvas shows it, in the label's colour, as a person's (solid) box.
    (item,) = rig.canvas.box_items()
    assert item.box == box
    assert item.pen().color() == QColor(*label_color("dog"))
    assert item.pen().style() == Qt.PenStyle.SolidLine


def test_drawing_at_the_fitted_zoom_is_right_to_the_pixel(rig: Rig) -> None:
    rig.canvas.fit()
    assert rig.canvas.transform().m11() not in (1.0, 2.0)
    rig.drag((31, 27), (203, 150))
    assert rig.ann.boxes[0].px == (31, 27, 203, 150)


def test_a_tiny_drag_or_esc_draws_nothing(rig: Rig) -> None:
    rig.drag((50, 40), (50.5, 41))
    viewport = rig.canvas.viewport()
    QTest.mousePress(viewport, LEFT, NO_MOD, rig.at(50, 40))
    QTest.mouseMove(viewport, rig.at(120, 100))
    rig.key(Qt.Key.Key_Escape)
    QTest.mouseRelease(viewport, LEFT, NO_MOD, rig.at(120, 100))
    assert rig.ann.boxes == ()
    assert not rig.editor.group.canUndo()


def test_dragging_a_box_moves_it_in_one_undo_step(rig: Rig) -> None:
    box_id = rig.with_box()
    before = rig.ann
    rig.drag((30, 30), (60, 50))
    assert rig.ann.box(box_id).px == (40, 30, 90, 70)
    rig.undo()
    assert rig.ann == before
    assert rig.canvas.selected_ids() == [box_id]  # the selection survives updates


def test_a_drag_stops_at_the_image_edge(rig: Rig) -> None:
    box_id = rig.with_box()
    rig.drag((30, 30), (-100, 30))
    assert rig.ann.box(box_id).px == (0, 10, 50, 50)


def test_resizing_by_the_bottom_right_handle(rig: Rig) -> None:
    box_id = rig.with_box()
    rig.click(30, 30)  # select: handles appear
    rig.drag((60, 50), (80, 61))
    assert rig.ann.box(box_id).px == (10, 10, 80, 61)
    # A side handle moves one edge only.
    rig.drag((10, 35), (4, 90))
    assert rig.ann.box(box_id).px == (4, 10, 80, 61)


def test_arrow_nudges_merge_into_one_undo_step(rig: Rig) -> None:
    box_id = rig.with_box()
    before = rig.ann
    rig.click(30, 30)
    for _ in range(3):
        rig.key(Qt.Key.Key_Right)
    rig.key(Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert rig.ann.box(box_id).px == (13, 20, 63, 60)
    assert rig.editor.stack().count() == 2  # the draw and one nudge run
    rig.undo()
    assert rig.ann == before


def test_delete_key_deletes_the_selection_and_undo_brings_it_back(rig: Rig) -> None:
    first = rig.with_box()
    rig.with_box((100, 100, 150, 150))
    before = rig.ann
    rig.click(30, 30)
    rig.key(Qt.Key.Key_Delete)
    assert rig.ann.box(first) is None and len(rig.ann.boxes) == 1
    assert rig.canvas.selected_ids() == []  # a deleted box leaves the selection
    rig.undo()
    assert rig.ann == before


def test_shift_click_adds_to_the_selection_and_ctrl_a_selects_all(rig: Rig) -> None:
    a = rig.with_box()
    b = rig.with_box((100, 100, 150, 150))
    rig.click(30, 30)
    rig.click(120, 120, Qt.KeyboardModifier.ShiftModifier)
    assert rig.canvas.selected_ids() == [a, b]
    rig.key(Qt.Key.Key_Escape)
    assert rig.canvas.selected_ids() == []
    rig.key(Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert rig.canvas.selected_ids() == [a, b]
    rig.key(Qt.Key.Key_Backspace)
    assert rig.ann.boxes == ()


def test_relabel_by_double_click_and_by_the_panel(rig: Rig) -> None:
    box_id = rig.with_box(label="car")
    rig.panel.set_current_label("dog")
    QTest.mouseDClick(rig.canvas.viewport(), LEFT, NO_MOD, rig.at(30, 30))
    assert rig.ann.box(box_id).label == "dog"
    assert "dog  (1)" in [rig.panel.list.item(i).text() for i in range(rig.panel.list.count())]
    rig.panel.add_label("truck")
    rig.panel.assign_button.click()
    assert rig.ann.box(box_id).label == "truck"
    rig.undo()
    assert rig.ann.box(box_id).label == "dog"


def test_undo_and_redo_walk_back_and_forth_through_exact_states(rig: Rig) -> None:
    states = [rig.ann]
    box_id = rig.with_box()
    states.append(rig.ann)
    rig.editor.move([box_id], 5, 5)
    states.append(rig.ann)
    rig.editor.resize(box_id, (0, 0, 30, 30))
    states.append(rig.ann)
    rig.editor.relabel([box_id], "dog")
    states.append(rig.ann)
    rig.editor.delete([box_id])
    states.append(rig.ann)
    for state in reversed(states[:-1]):
        rig.undo()
        assert rig.ann == state
        assert [i.box for i in rig.canvas.box_items()] == list(state.boxes)
    for state in states[1:]:
        rig.redo()
        assert rig.ann == state


def _detection(label: str, px: tuple[int, int, int, int]) -> Detection:
    x1, y1, x2, y2 = px
    return Detection(label, (x1 / W, y1 / H, x2 / W, y2 / H), px)


def test_model_boxes_are_marked_and_become_a_persons_when_moved(rig: Rig) -> None:
    mine = rig.with_box((300, 200, 350, 250), label="bird")
    rig.editor.apply_detections(
        [_detection("car", (10, 10, 60, 50)), _detection("dog", (100, 100, 160, 140))],
        ["car", "dog"],
    )
    assert [b.source for b in rig.ann.boxes] == [PERSON, MODEL, MODEL]
    assert rig.ann.box(mine) is not None
    car = next(i for i in rig.canvas.box_items() if i.box.label == "car")
    assert car.pen().style() == Qt.PenStyle.DashLine
    assert "by the model" in car.describe()
    rig.drag((30, 30), (40, 30))
    moved = next(b for b in rig.ann.boxes if b.label == "car")
    assert (moved.px, moved.source) == ((20, 10, 70, 50), PERSON)
    assert next(b for b in rig.ann.boxes if b.label == "dog").source == MODEL
    texts: list[str] = []
    rig.canvas.hoverText.connect(texts.append)
    rig.canvas._hover_at(QPointF(30, 30))
    assert "by you" in texts[-1]
    rig.undo()
    rig.undo()  # the whole detection is one step
    assert [b.id for b in rig.ann.boxes] == [mine]


def test_autosave_writes_within_a_second_and_reloads_equal(qtbot, rig: Rig) -> None:
    with qtbot.waitSignal(rig.editor.saved, timeout=1000) as blocker:
        rig.drag((50, 40), (150, 120))
    assert blocker.args == ["a.png"]
    assert not rig.editor.is_dirty()
    assert Project(rig.project.root).load("a.png") == rig.ann
    # Reopening (a new editor, as after a restart) restores the boxes.
    again = AnnotationEditor(Project(rig.project.root))
    again.open_image("a.png")
    assert again.annotation == rig.ann


def test_switching_images_keeps_each_images_undo_history(rig: Rig) -> None:
    a_box = rig.with_box()
    a_state = rig.ann
    rig.editor.move([a_box], 10, 0)
    rig.open("b.png")
    assert rig.ann.boxes == ()
    assert Project(rig.project.root).load("a.png") is not None  # saved on the switch
    rig.with_box((0, 0, 5, 5))
    rig.open("a.png")
    assert rig.ann.box(a_box).px == (20, 10, 70, 50)
    rig.undo()
    assert rig.ann == a_state
    rig.open("b.png")
    assert len(rig.ann.boxes) == 1 and rig.editor.group.canUndo()


def test_a_failed_save_is_reported_keeps_the_edits_and_is_retried(qtbot, rig: Rig) -> None:
    meta = rig.project.root / ".lfmdesk"
    meta.mkdir()
    blocker_file = meta / "annotations"
    blocker_file.write_text("not a folder")  # annotations cannot be written: like read-only
    with qtbot.waitSignal(rig.editor.problem, timeout=1000) as blocker:
        rig.with_box()
    message = blocker.args[0]
    assert "a.png" in message and "\n" not in message
    assert rig.editor.is_dirty() and len(rig.ann.boxes) == 1
    blocker_file.unlink()
    with qtbot.waitSignal(rig.editor.saved, timeout=1000):
        rig.with_box((100, 100, 120, 120))
    assert Project(rig.project.root).load("a.png") == rig.ann
    assert len(rig.ann.boxes) == 2


def test_a_damaged_file_is_reported_and_only_replaced_by_an_edit(qtbot, rig: Rig) -> None:
    path = rig.project.annotation_path("b.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{ damaged", encoding="utf-8")
    rig.open("b.png")
    assert any("damaged" in p for p in rig.problems)
    assert rig.ann.boxes == () and (rig.ann.width, rig.ann.height) == (W, H)
    rig.editor.flush()
    assert path.read_text(encoding="utf-8") == "{ damaged"
    rig.with_box()
    rig.editor.flush()
    assert json.loads(path.read_text(encoding="utf-8"))["boxes"][0]["box_px"] == [10, 10, 60, 50]


def test_labels_panel_counts_adds_and_removes(qtbot, rig: Rig) -> None:
    panel = rig.panel
    changes: list[list[str]] = []
    panel.labelsChanged.connect(changes.append)
    rig.with_box(label="car")
    rig.with_box((100, 100, 150, 150), label="car")
    rig.editor.add_box((200, 200, 250, 250), "bird")  # not in the list: joins it
    assert changes[-1] == ["car", "dog", "bird"]
    texts = [panel.list.item(i).text() for i in range(panel.list.count())]
    assert texts == ["car  (2)", "dog", "bird  (1)"]
    panel.field.setText("  red   car ")
    QTest.keyClick(panel.field, Qt.Key.Key_Return)
    assert panel.current_label() == "red car" and changes[-1][-1] == "red car"
    with qtbot.waitSignal(panel.currentLabelChanged) as blocker:
        panel.remove_button.click()
    assert "red car" not in panel.labels() and blocker.args[0] in panel.labels()


def test_set_annotation_none_turns_editing_off(rig: Rig) -> None:
    rig.with_box()
    rig.canvas.set_annotation(None)
    assert rig.canvas.box_items() == []
    rig.drag((50, 40), (150, 120))
    assert len(rig.ann.boxes) == 1
    ann = dataclasses.replace(rig.ann)
    rig.canvas.set_annotation(ann)
    assert len(rig.canvas.box_items()) == 1


def test_reload_adopts_a_batch_result_as_an_undoable_step(rig: Rig) -> None:
    before = rig.ann
    batch = apply_detections(before, [_detection("car", (10, 10, 60, 50))], ["car"])
    rig.editor.reload("a.png", batch)
    assert rig.ann == batch
    rig.undo()
    assert rig.ann == before
    rig.editor.reload("b.png", batch)  # never opened here: nothing kept in memory
    assert rig.editor.stack("b.png") is None
