"""Widget behaviour a user notices: the chat panel, the canvas, settings and the tools drawer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QGuiApplication
from PySide6.QtWidgets import QPlainTextEdit, QTextBrowser

from lfmdesk.core import (
    SamplingSettings,
    ToolCall,
    VisionSettings,
    load_image,
    parse_detections,
    plan_tiles,
)
from lfmdesk.gui.canvas._canvas import ImageCanvas
from lfmdesk.gui.chat._panel import ChatPanel
from lfmdesk.gui.chat._tools_drawer import ToolsDrawer
from lfmdesk.gui.models._settings_panel import SettingsPanel


def picture(w: int = 640, h: int = 480):
    rng = np.random.default_rng(0)
    return load_image(Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")))


@pytest.fixture
def panel(qtbot) -> ChatPanel:
    widget = ChatPanel()
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    return widget


def compose(panel: ChatPanel) -> QPlainTextEdit:
    return panel.findChild(QPlainTextEdit)


def test_ctrl_enter_sends_and_clears_plain_enter_does_not(panel, qtbot) -> None:
    editor = compose(panel)
    qtbot.keyClicks(editor, "What is this?")
    with qtbot.assertNotEmitted(panel.sendRequested):
        qtbot.keyClick(editor, Qt.Key.Key_Return)
    with qtbot.waitSignal(panel.sendRequested) as sent:
        qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert sent.args[0].strip() == "What is this?"
    assert panel.input_text() == ""


def test_streaming_many_small_pieces_stays_fast_and_complete(panel, qtbot) -> None:
    panel.add_user_message("hi")
    panel.begin_answer()
    pieces = [f"w{i} " for i in range(2000)]
    started = time.perf_counter()
    for piece in pieces:
        panel.append_answer(piece)
    panel.finish_answer(text="".join(pieces))
    assert time.perf_counter() - started < 2.0  # a responsiveness guard, kept generous
    assert panel.messages()[-1].source_text() == "".join(pieces)


def test_stop_while_busy_and_regenerate_waits(panel, qtbot) -> None:
    panel.add_user_message("hi")
    panel.begin_answer()
    panel.set_busy(True)
    with qtbot.waitSignal(panel.stopRequested):
        panel.send_button.click()  # "Stop" while busy; Esc is the window's Chat ▸ Stop
    assert not panel.regenerate_button.isEnabled()
    panel.finish_answer(text="partial", interrupted=True)
    panel.set_busy(False)
    assert panel.regenerate_button.isEnabled()
    assert "partial" in _all_text(panel) and "nterrupted" in _all_text(panel)


def test_copy_puts_the_message_on_the_clipboard(panel) -> None:
    panel.add_assistant_message("**bold** answer")
    panel.messages()[-1].copy_to_clipboard()
    assert QGuiApplication.clipboard().text() == "**bold** answer"


def test_arabic_lays_out_right_to_left_and_japanese_is_kept(panel) -> None:
    panel.add_assistant_message("الصورة تُظهر شارعًا في يوم مشمس")
    panel.add_assistant_message("晴れた日の通りです。")
    browsers = panel.findChildren(QTextBrowser)
    arabic = next(b for b in browsers if "الصورة" in b.toPlainText())
    block = arabic.document().firstBlock()
    assert (
        block.layout().textOption().textDirection() == Qt.LayoutDirection.RightToLeft
        or block.textDirection() == Qt.LayoutDirection.RightToLeft
    )
    assert any("晴れた日の通りです。" in b.toPlainText() for b in browsers)


def test_tool_call_cards_emit_the_call_index(panel, qtbot) -> None:
    calls = (ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "CET"}))
    panel.add_user_message("weather?")
    panel.finish_answer(text="calling", tool_calls=calls)
    assert "get_weather" in _all_text(panel) and "Paris" in _all_text(panel)
    from PySide6.QtWidgets import QPushButton

    buttons = [b for b in panel.findChildren(QPushButton) if "result" in b.text().lower()]
    assert len(buttons) == 2
    with qtbot.waitSignal(panel.toolResultRequested) as sent:
        buttons[1].click()
    assert sent.args == [1]


def _all_text(widget) -> str:
    from PySide6.QtWidgets import QLabel

    parts = [w.text() for w in widget.findChildren(QLabel)]
    parts += [w.toPlainText() for w in widget.findChildren(QTextBrowser)]
    return " ".join(parts)


def test_pending_strip_shows_thumbnails_and_removal_emits_index(panel, qtbot) -> None:
    from lfmdesk.gui.chat._parts import PendingItem

    panel.set_pending_images([picture(), picture(320, 240)])
    items = [w for w in panel.findChildren(PendingItem) if w.isVisibleTo(panel)]
    assert len(items) == 2
    with qtbot.waitSignal(panel.pendingImageRemoved) as removed:
        items[1].remove.click()
    assert removed.args == [1]
    panel.set_pending_images([])
    assert not [w for w in panel.findChildren(PendingItem) if w.isVisibleTo(panel)]


def test_canvas_draws_one_box_per_detection_and_hides_them(qtbot) -> None:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(700, 500)
    canvas.show()
    image = picture(800, 600)
    canvas.set_image(image)
    found = parse_detections(
        '[{"label": "cat", "bbox": [0.1, 0.1, 0.5, 0.5]},'
        ' {"label": "dog", "bbox": [0.6, 0.5, 0.9, 0.9]}]',
        800,
        600,
    )
    canvas.set_detections(found.detections)
    assert canvas.box_count() == 2
    canvas.set_boxes_visible(False)
    assert not canvas.boxes_visible()


def test_canvas_tile_overlay_follows_the_plan(qtbot) -> None:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.show()
    canvas.set_image(picture(1920, 1080))
    plan = plan_tiles(1920, 1080, VisionSettings())
    canvas.set_tile_plan(plan)
    assert canvas.tile_plan() == plan
    canvas.set_tile_plan(None)
    assert canvas.tile_plan() is None


def test_canvas_file_drop_emits_local_paths(qtbot, tmp_path) -> None:
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.show()
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "a.png"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(canvas.filesDropped) as dropped:
        canvas.dropEvent(event)
    assert dropped.args == [[str(tmp_path / "a.png")]]


def test_settings_panel_emits_valid_changes_and_resets(qtbot) -> None:
    panel = SettingsPanel(SamplingSettings(temperature=0.7), VisionSettings(max_image_tokens=64))
    qtbot.addWidget(panel)
    with qtbot.assertNotEmitted(panel.settingsChanged, wait=300):
        panel.set_settings(SamplingSettings(temperature=0.5), VisionSettings(max_tiles=4))
    assert panel.vision().max_tiles == 4
    with qtbot.waitSignal(panel.settingsChanged, timeout=3000) as changed:
        panel._reset.click()
    assert changed.args == [SamplingSettings(), VisionSettings()]


def test_tools_drawer_parses_and_is_off_with_images(qtbot) -> None:
    drawer = ToolsDrawer()
    qtbot.addWidget(drawer)
    drawer.set_tools_enabled(True)
    drawer.set_tools_text('[{"name": "get_weather", "description": "d", "parameters": {}}]')
    assert [t["name"] for t in drawer.tools()] == ["get_weather"]
    drawer.set_tools_text("{broken")
    assert drawer.tools() == ()
    drawer.set_images_attached(True)
    assert "Tools are off" in _all_text(drawer)
