"""The tools drawer and the tool-result dialog, as a user sees them."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QLabel

from lfmdesk.core import ToolCall
from lfmdesk.gui.chat._tools_drawer import IMAGES_NOTE, ToolResultDialog, ToolsDrawer

TWO_TOOLS = json.dumps(
    [
        {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "function": {"name": "get_time", "description": "Now."}},
    ]
)


@pytest.fixture
def drawer(qtbot):
    widget = ToolsDrawer()
    qtbot.addWidget(widget)
    widget.set_expanded(True)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def names(tools) -> list[str]:
    return [tool["name"] for tool in tools]


def test_example_is_valid_but_off_until_enabled(drawer, qtbot):
    assert "get_weather" in drawer.tools_text()
    assert drawer._status.text() == "1 tool"
    assert drawer.tools() == ()
    with qtbot.waitSignal(drawer.toolsChanged, timeout=1000) as blocker:
        drawer.set_tools_enabled(True)
    assert names(blocker.args[0]) == ["get_weather"]
    assert names(drawer.tools()) == ["get_weather"]


def test_valid_json_emits_the_tools(drawer, qtbot):
    drawer.set_tools_enabled(True)
    with qtbot.waitSignal(drawer.toolsChanged, timeout=1000) as blocker:
        drawer.set_tools_text(TWO_TOOLS)
    assert names(blocker.args[0]) == ["get_weather", "get_time"]
    assert drawer._status.text() == "2 tools"


def test_typing_reparses_after_a_pause(drawer, qtbot):
    drawer.set_tools_enabled(True)
    drawer._editor.clear()
    with qtbot.waitSignal(drawer.toolsChanged, timeout=2000) as blocker:
        qtbot.keyClicks(drawer._editor, '[{"name": "lookup"}]')
    assert names(blocker.args[0]) == ["lookup"]


def test_invalid_json_shows_the_error_and_turns_tools_off(drawer, qtbot):
    drawer.set_tools_enabled(True)
    with qtbot.waitSignal(drawer.toolsChanged, timeout=1000) as blocker:
        drawer.set_tools_text('[{"name": "get_weather",}]')
    assert blocker.args == [()]
    assert drawer.tools() == ()
    status = drawer._status.text()
    assert "not valid JSON" in status and "line 1" in status
    assert "\n" not in status
    drawer.set_tools_text('[{"name": "not a name"}]')
    assert "name must be an identifier" in drawer._status.text()


def test_text_that_is_not_json_is_never_read_as_a_file(drawer, tmp_path, monkeypatch):
    (tmp_path / "tools.json").write_text(TWO_TOOLS, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    drawer.set_tools_enabled(True)
    drawer.set_tools_text("tools.json")
    assert drawer.tools() == ()
    assert "Not JSON" in drawer._status.text()


def test_images_attached_disables_the_editor_and_explains(drawer, qtbot):
    drawer.set_tools_enabled(True)
    assert drawer.tools()
    with qtbot.waitSignal(drawer.toolsChanged, timeout=1000) as blocker:
        drawer.set_images_attached(True)
    assert blocker.args == [()]
    assert drawer.tools() == ()
    assert not drawer._editor.isEnabled()
    assert drawer._note.isVisible() and drawer._note.text() == IMAGES_NOTE
    assert "text-only turns" in IMAGES_NOTE
    with qtbot.waitSignal(drawer.toolsChanged, timeout=1000) as blocker:
        drawer.set_images_attached(False)
    assert names(blocker.args[0]) == ["get_weather"]
    assert drawer._editor.isEnabled() and not drawer._note.isVisible()


def test_drawer_folds(drawer):
    drawer.set_expanded(False)
    assert not drawer._editor.isVisible()
    drawer.set_expanded(True)
    assert drawer._editor.isVisible()


def test_tool_result_dialog_shows_the_call_and_returns_the_text(qtbot):
    call = ToolCall("get_weather", {"city": "Paris"})
    seen: list[str] = []

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ToolResultDialog)
        seen.extend(label.text() for label in dialog.findChildren(QLabel))
        dialog.editor.setPlainText('{"temperature": 21}')
        dialog.accept()

    QTimer.singleShot(50, answer)
    assert ToolResultDialog.get_result(None, call) == '{"temperature": 21}'
    assert any("get_weather" in text for text in seen)
    assert "city: Paris" in seen


def test_tool_result_dialog_cancel_returns_none(qtbot):
    def cancel() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ToolResultDialog)
        dialog.reject()

    QTimer.singleShot(50, cancel)
    assert ToolResultDialog.get_result(None, ToolCall("f", {})) is None
