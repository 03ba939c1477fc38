"""The tools drawer: tool definitions the model may call, and the dialog for a call's result.

Usage::

    drawer = ToolsDrawer()
    drawer.toolsChanged.connect(window.on_tools_changed)   # tuple of tool dicts, () when off
    drawer.set_images_attached(conversation.has_images)
    ...
    result = ToolResultDialog.get_result(window, call)     # None when the user cancels
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import ToolCall, ToolSpecError, load_tool_specs

__all__ = ["EXAMPLE_TOOLS", "IMAGES_NOTE", "ToolResultDialog", "ToolsDrawer", "argument_lines"]

IMAGES_NOTE = (
    "Tools are off while an image is in the conversation — "
    "LFM2.5-VL calls tools on text-only turns."
)

EXAMPLE_TOOLS = """[
  {
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
      "type": "object",
      "properties": {
        "city": {"type": "string", "description": "City name, e.g. Paris"}
      },
      "required": ["city"]
    }
  }
]
"""

_DEBOUNCE_MS = 300  # re-parse after typing pauses, not on every keystroke


def argument_lines(arguments: Mapping[str, Any]) -> list[str]:
    """``key: value`` lines for a call's arguments; strings unquoted, the rest as JSON."""
    lines = []
    for key, value in arguments.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}")
    return lines


def _monospace() -> QFont:
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def _parse(text: str) -> tuple[tuple[dict[str, Any], ...], str]:
    """(tools, status line) for the editor's text; never raises."""
    if not text.strip():
        return (), "No tools: add a JSON list of tools"
    if text.lstrip()[:1] not in ("[", "{"):
        # load_tool_specs would read anything else as a file path; the editor holds JSON only.
        return (), 'Not JSON: start with [ and list tools like {"name": "get_weather"}'
    try:
        tools = load_tool_specs(text)
    except ToolSpecError as exc:
        return (), str(exc)
    return tools, f"{len(tools)} tool" + ("" if len(tools) == 1 else "s")


class ToolsDrawer(QWidget):
    """Collapsible editor of JSON tool definitions with an on/off switch.

    Signals:
        toolsChanged(object): the tools now in effect, a tuple of tool dicts; ``()`` when
            tools are off, the JSON is invalid, or an image is in the conversation.
    """

    toolsChanged = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._parsed: tuple[dict[str, Any], ...] = ()
        self._images = False
        self._emitted: tuple[dict[str, Any], ...] = ()
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(_DEBOUNCE_MS)
        self._build()
        self._timer.timeout.connect(self._reparse)
        self._editor.textChanged.connect(self._timer.start)
        self._enabled.toggled.connect(self._refresh)
        self._toggle.toggled.connect(self._set_expanded)
        self._reparse()

    def _build(self) -> None:
        self._toggle = QToolButton(self)
        self._toggle.setText("Tools")
        self._toggle.setCheckable(True)
        self._toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._toggle.setArrowType(Qt.ArrowType.RightArrow)
        self._toggle.setAutoRaise(True)
        self._body = QWidget(self)
        self._enabled = QCheckBox("Let the model call these tools", self._body)
        self._editor = QPlainTextEdit(self._body)
        self._editor.setFont(_monospace())
        self._editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._editor.setTabChangesFocus(True)
        self._editor.setPlainText(EXAMPLE_TOOLS)
        self._editor.setAccessibleName("Tool definitions (JSON)")
        self._status = QLabel(self._body)
        self._status.setWordWrap(True)
        self._status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._note = QLabel(IMAGES_NOTE, self._body)
        self._note.setWordWrap(True)
        self._note.hide()
        body = QVBoxLayout(self._body)
        body.setContentsMargins(0, 0, 0, 0)
        for widget in (self._enabled, self._note, self._editor, self._status):
            body.addWidget(widget)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self._body)
        self._body.hide()

    # --- public API -----------------------------------------------------------------------

    def tools(self) -> tuple[dict[str, Any], ...]:
        """The tools in effect: parsed definitions when enabled, no image attached, and valid."""
        if self._images or not self._enabled.isChecked():
            return ()
        return self._parsed

    def problem(self) -> str | None:
        """Why the tools switched on cannot be used (invalid or no definitions), or None.

        The chat refuses to send then: a question sent without the tools the user asked
        for would be answered as if they did not exist.
        """
        if self._images or not self._enabled.isChecked() or self._parsed:
            return None
        return (
            f"Not sent: the tools are switched on but cannot be read ({self._status.text()}). "
            "Fix them in Tools, or untick “Let the model call these tools”."
        )

    def tools_text(self) -> str:
        """The editor's JSON text (for saving with the settings)."""
        return self._editor.toPlainText()

    def set_tools_text(self, text: str) -> None:
        """Replace the editor's JSON and re-parse it at once."""
        self._editor.setPlainText(text)
        self._timer.stop()
        self._reparse()

    def set_tools_enabled(self, enabled: bool) -> None:
        """Tick or clear the "let the model call these tools" box."""
        self._enabled.setChecked(enabled)

    def set_expanded(self, expanded: bool) -> None:
        """Open or fold the drawer."""
        self._toggle.setChecked(expanded)

    def set_images_attached(self, attached: bool) -> None:
        """Turn tools off (and say why) while the conversation holds an image."""
        self._images = attached
        self._note.setVisible(attached)
        self._editor.setEnabled(not attached)
        self._enabled.setEnabled(not attached)
        self._refresh()

    # --- internals ------------------------------------------------------------------------

    @Slot(bool)
    def _set_expanded(self, expanded: bool) -> None:
        self._body.setVisible(expanded)
        arrow = Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow
        self._toggle.setArrowType(arrow)

    @Slot()
    def _reparse(self) -> None:
        self._parsed, status = _parse(self._editor.toPlainText())
        self._status.setText(status)
        # Errors in italics rather than a hard-coded red, so dark mode stays legible.
        font = self._status.font()
        font.setItalic(not self._parsed)
        self._status.setFont(font)
        self._refresh()

    @Slot()
    def _refresh(self) -> None:
        tools = self.tools()
        if tools != self._emitted:
            self._emitted = tools
            self.toolsChanged.emit(tools)


class ToolResultDialog(QDialog):
    """Asks the user for the result of one tool call the model made."""

    def __init__(self, call: ToolCall, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Result of {call.name}")
        name = QLabel(f"<b>{_escape(call.name)}</b>", self)
        name.setTextFormat(Qt.TextFormat.RichText)
        lines = argument_lines(call.arguments) or ["(no arguments)"]
        arguments = QLabel("\n".join(lines), self)
        arguments.setFont(_monospace())
        arguments.setWordWrap(True)
        arguments.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        prompt = QLabel("What did the tool return? (text or JSON; sent back to the model)", self)
        prompt.setWordWrap(True)
        self.editor = QPlainTextEdit(self)
        self.editor.setTabChangesFocus(True)
        self.editor.setPlaceholderText('e.g. {"temperature": 21, "sky": "clear"}')
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Send Result")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (name, arguments, prompt, self.editor, buttons):
            layout.addWidget(widget)
        self.editor.setFocus()
        self.resize(420, 300)

    def result_text(self) -> str:
        """What the user typed."""
        return self.editor.toPlainText()

    @staticmethod
    def get_result(parent: QWidget | None, call: ToolCall) -> str | None:
        """Show the dialog modally; the typed result, or None when cancelled."""
        dialog = ToolResultDialog(call, parent)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return None
            return dialog.result_text()
        finally:
            dialog.deleteLater()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
