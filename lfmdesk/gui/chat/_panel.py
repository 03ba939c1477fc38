"""The chat panel: message bubbles, the compose box, the image strip and the "Find:" row.

The window drives it from its conversation model; the panel only displays and emits intents.

Usage::

    panel = ChatPanel()
    panel.sendRequested.connect(window.on_send)          # the typed text
    panel.add_user_message("What is this?", [image])
    panel.begin_answer()
    panel.set_busy(True)
    for delta in deltas:
        panel.append_answer(delta)                         # cheap; re-rendered ≤ 20×/s
    panel.finish_answer(text=full, footer="1.2 s to first token · 42 tok/s")
    panel.set_busy(False)
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeySequence, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import LoadedImage, ToolCall
from lfmdesk.gui.chat._bubbles import ChatMessage
from lfmdesk.gui.chat._parts import SEND_KEYS, ComposeEdit, PendingItem, small_print

__all__ = ["REGENERATE_KEYS", "STOP_KEYS", "ChatPanel"]

# The keys of the window's Chat ▸ Stop and Chat ▸ Regenerate (the panel names them in tooltips).
STOP_KEYS = "Esc"
REGENERATE_KEYS = "Ctrl+Shift+R"

_RENDER_MS = 50  # Markdown re-render at most ~20×/s while streaming
_RENDER_MAX_MS = 500
_STICK_PX = 32  # "at the bottom" tolerance for auto-scroll
_MARGIN = 10
_PLACEHOLDER = f"Ask about your images… ({SEND_KEYS} to send, Enter for a new line)"


class ChatPanel(QWidget):
    """Chat bubbles, the input box, pending images and the detect field.

    Signals:
        sendRequested(str): the input text, stripped (⌘/Ctrl+Enter or Send); input cleared.
        stopRequested(): the Stop button (the window's Chat ▸ Stop owns Esc).
        regenerateRequested(): the Regenerate button (the window's Chat ▸ Regenerate owns
            ⌘/Ctrl+Shift+R: a key bound twice is ambiguous and Qt fires neither).
        actionsChanged(): what can be done changed (see :meth:`can_stop`,
            :meth:`can_regenerate`); the window enables its menu actions from it.
        editLastRequested(str): the edited last question (inline editor → Resend).
        detectRequested(str): the "Find:" text, e.g. "cat, dog" (Detect button or Enter).
        pendingImageRemoved(int): index in the pending strip whose × was clicked.
        imageClicked(str): content hash of a thumbnail clicked in a bubble or the strip.
        toolResultRequested(int): index of the tool call (in the latest answer) to answer.
    """

    sendRequested = Signal(str)
    stopRequested = Signal()
    regenerateRequested = Signal()
    editLastRequested = Signal(str)
    detectRequested = Signal(str)
    pendingImageRemoved = Signal(int)
    imageClicked = Signal(str)
    toolResultRequested = Signal(int)
    actionsChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[QWidget] = []
        self._open: ChatMessage | None = None
        self._last_user: ChatMessage | None = None
        self._last_answer: ChatMessage | None = None
        self._stream_parts: list[str] = []
        self._stream_text = ""
        self._busy = False
        self._input_enabled = True
        self._stick = True
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(_RENDER_MS)
        self._build_list()
        self._build_input()
        self._build_find_row()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(self._scroll, 1)
        layout.addWidget(self._strip)
        layout.addLayout(self._input_row)
        layout.addLayout(self._find_row)
        self._connect()
        self._update_actions()

    # --- construction -----------------------------------------------------------------------

    def _build_list(self) -> None:
        self._scroll = QScrollArea(self)
        self._scroll.setWidgetResizable(True)
        self._scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._scroll.viewport().setBackgroundRole(QPalette.ColorRole.Base)
        self._column_widget = QWidget()
        self._column_widget.setBackgroundRole(QPalette.ColorRole.Base)
        self._column = QVBoxLayout(self._column_widget)
        self._column.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        self._column.setSpacing(10)
        self._column.addStretch(1)
        self._scroll.setWidget(self._column_widget)
        self._strip = QWidget(self)
        self._strip_layout = QHBoxLayout(self._strip)
        self._strip_layout.setContentsMargins(_MARGIN, 0, _MARGIN, 0)
        self._strip_layout.addStretch(1)
        self._strip.hide()
        self.pending: list[PendingItem] = []

    def _build_input(self) -> None:
        self.input = ComposeEdit(self, min_lines=2, max_lines=8)
        self.input.setPlaceholderText(_PLACEHOLDER)
        self.input.setAccessibleName("Message")
        self.send_button = QPushButton("Send", self)
        self.send_button.setToolTip(f"Send ({SEND_KEYS})")
        self.regenerate_button = QPushButton("Regenerate", self)
        shortcut = QKeySequence(REGENERATE_KEYS).toString(QKeySequence.SequenceFormat.NativeText)
        self.regenerate_button.setToolTip(f"Answer the last question again ({shortcut})")
        buttons = QVBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.regenerate_button)
        buttons.addStretch(1)
        self._input_row = QHBoxLayout()
        self._input_row.setContentsMargins(_MARGIN, 0, _MARGIN, 0)
        self._input_row.addWidget(self.input, 1)
        self._input_row.addLayout(buttons)

    def _build_find_row(self) -> None:
        label = QLabel("Find:", self)
        self.find_field = QLineEdit(self)
        self.find_field.setPlaceholderText("Find objects, e.g. cat, dog")
        self.find_field.setClearButtonEnabled(True)
        label.setBuddy(self.find_field)
        self.detect_button = QPushButton("Detect", self)
        self.detect_button.setToolTip("Ask the model for boxes around these objects")
        self._find_row = QHBoxLayout()
        self._find_row.setContentsMargins(_MARGIN, 0, _MARGIN, _MARGIN)
        self._find_row.addWidget(label)
        self._find_row.addWidget(self.find_field, 1)
        self._find_row.addWidget(self.detect_button)

    def _connect(self) -> None:
        self._render_timer.timeout.connect(self._flush_stream)
        bar = self._scroll.verticalScrollBar()
        bar.rangeChanged.connect(self._on_range_changed)
        bar.valueChanged.connect(self._on_scrolled)
        self._scroll.viewport().installEventFilter(self)
        self.input.submitted.connect(self._submit)
        self.send_button.clicked.connect(self._on_send_clicked)
        self.regenerate_button.clicked.connect(self._on_regenerate)
        self.find_field.returnPressed.connect(self._on_detect)
        self.detect_button.clicked.connect(self._on_detect)

    # --- messages -----------------------------------------------------------------------------

    def clear(self) -> None:
        """Remove every message and notice."""
        self._render_timer.stop()
        for item in self._items:
            item.hide()
            item.deleteLater()
        self._items.clear()
        self._open = self._last_user = self._last_answer = None
        self._stream_parts.clear()
        self._stream_text = ""
        self._stick = True
        self._update_actions()

    def add_user_message(
        self, text: str, images: Sequence[LoadedImage] = (), *, kind: str = "chat"
    ) -> None:
        """Add the user's question (right-aligned), with thumbnails of its images."""
        self._close_stream()
        message = ChatMessage("user", kind=kind, images=images)
        message.set_text(text)
        message.editSubmitted.connect(self.editLastRequested)
        self._last_user = message
        self._last_answer = None
        self._stick = True  # the user just acted: follow the conversation again
        self._add_item(message, Qt.AlignmentFlag.AlignRight)

    def begin_answer(self) -> None:
        """Open an assistant bubble that shows "…" until text arrives."""
        self._close_stream()
        message = self._new_answer()
        message.show_waiting()
        self._open = message

    def append_answer(self, text: str) -> None:
        """Append streamed text to the open answer; rendering is coalesced on a timer."""
        if self._open is None:
            self.begin_answer()
        self._stream_parts.append(text)
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish_answer(
        self,
        *,
        text: str,
        interrupted: bool = False,
        footer: str = "",
        raw: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
    ) -> None:
        """Final render of the open answer (one is opened if none is).

        Args:
            text: the whole answer as Markdown (replaces what was streamed).
            interrupted: show an "interrupted" marker.
            footer: a small line under the bubble, e.g. "3 boxes · 42 tok/s".
            raw: the model's raw text, shown in a folded "Model output" block.
            tool_calls: one card per call, each with a "Send result…" button.
        """
        message = self._open or self._new_answer()
        self._close_stream()
        message.finish(
            text=text, interrupted=interrupted, footer=footer, raw=raw, tool_calls=tool_calls
        )
        self._update_actions()

    def add_assistant_message(
        self,
        text: str,
        *,
        interrupted: bool = False,
        footer: str = "",
        raw: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
    ) -> None:
        """Add a finished answer (for reopened conversations); same options as finish."""
        self._close_stream()
        self._new_answer().finish(
            text=text, interrupted=interrupted, footer=footer, raw=raw, tool_calls=tool_calls
        )
        self._update_actions()

    def add_notice(self, text: str) -> None:
        """A small centred system line, e.g. "engine restarted"."""
        label = QLabel(text)
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        small_print(label, italic=True)
        self._add_item(label, Qt.AlignmentFlag(0))  # full width, so wrapping never clips it

    def truncate_to_last_user(self, text: str | None = None) -> None:
        """Drop everything after the last question (before a regenerate or an edit).

        Args:
            text: if given, the last question's new text.
        """
        if self._last_user is None:
            return
        self._close_stream()
        keep = self._items.index(self._last_user) + 1
        for item in self._items[keep:]:
            item.hide()
            item.deleteLater()
        del self._items[keep:]
        self._last_answer = None
        if text is not None:
            self._last_user.set_text(text)
        self._update_actions()

    def messages(self) -> list[ChatMessage]:
        """The message widgets, oldest first (notices left out)."""
        return [item for item in self._items if isinstance(item, ChatMessage)]

    # --- state ----------------------------------------------------------------------------

    def set_busy(self, busy: bool) -> None:
        """Generating: Send becomes Stop; Regenerate, Edit, Detect are disabled."""
        self._busy = busy
        self._update_actions()

    def set_pending_images(self, images: Sequence[LoadedImage]) -> None:
        """Show the images that go with the next message as a strip above the input."""
        for item in self.pending:
            item.hide()
            item.deleteLater()
        self.pending = []
        for index, image in enumerate(images):
            item = PendingItem(index, image, self._strip)
            item.removeClicked.connect(self.pendingImageRemoved)
            item.thumb.imageClicked.connect(self.imageClicked)
            self._strip_layout.insertWidget(index, item)
            item.show()
            self.pending.append(item)
        self._strip.setVisible(bool(images))

    def set_input_enabled(self, enabled: bool, reason: str = "") -> None:
        """Enable the input, or disable it and show ``reason`` as its placeholder."""
        self._input_enabled = enabled
        self.input.setPlaceholderText(_PLACEHOLDER if enabled else reason)
        self._update_actions()

    def input_enabled(self) -> bool:
        """Whether questions can be sent (a model is loaded and nothing blocks the chat)."""
        return self._input_enabled

    def input_text(self) -> str:
        """The text in the input box."""
        return self.input.toPlainText()

    def set_input_text(self, text: str) -> None:
        """Replace the input box's text (cursor at the end)."""
        self.input.setPlainText(text)
        self.input.moveCursor(self.input.textCursor().MoveOperation.End)

    def _update_actions(self) -> None:
        idle = not self._busy and self._input_enabled
        self.send_button.setText("Stop" if self._busy else "Send")
        self.send_button.setEnabled(self._busy or self._input_enabled)
        self.input.setEnabled(self._input_enabled)
        self.regenerate_button.setEnabled(idle and self._last_answer is not None)
        self.find_field.setEnabled(self._input_enabled)
        self.detect_button.setEnabled(idle)
        for message in self.messages():
            message.set_editable(idle and message is self._last_user)
            message.set_tools_enabled(not self._busy and message is self._last_answer)
        self.actionsChanged.emit()

    def can_stop(self) -> bool:
        """An answer is being written (Stop would stop it)."""
        return self._busy

    def can_regenerate(self) -> bool:
        """Idle, with an answer to write again."""
        return self.regenerate_button.isEnabled()

    # --- internals ----------------------------------------------------------------------------

    def _new_answer(self) -> ChatMessage:
        message = ChatMessage("assistant")
        message.toolResultRequested.connect(self.toolResultRequested)
        self._last_answer = message
        self._add_item(message, Qt.AlignmentFlag.AlignLeft)
        return message

    def _add_item(self, item: QWidget, side: Qt.AlignmentFlag) -> None:
        if isinstance(item, ChatMessage):
            item.imageClicked.connect(self.imageClicked)
            item.fit(self._available_width())
        self._column.insertWidget(self._column.count() - 1, item, 0, side)
        item.show()  # at once, not on the layout's next pass: callers may look at it now
        self._items.append(item)
        self._update_actions()

    def _available_width(self) -> int:
        return max(self._scroll.viewport().width() - 2 * _MARGIN, 120)

    def _close_stream(self) -> None:
        """Render what is buffered and forget the open bubble."""
        if self._open is not None and (self._stream_parts or self._render_timer.isActive()):
            self._flush_stream()
        self._render_timer.stop()
        self._open = None
        self._stream_parts.clear()
        self._stream_text = ""

    @Slot()
    def _flush_stream(self) -> None:
        if self._open is None or not self._stream_parts:
            return
        self._stream_text += "".join(self._stream_parts)
        self._stream_parts.clear()
        started = time.perf_counter()
        self._open.set_text(self._stream_text)
        # Long answers take longer to re-render: back off so streaming never starves the UI.
        spent_ms = (time.perf_counter() - started) * 1000
        self._render_timer.setInterval(int(min(max(_RENDER_MS, 4 * spent_ms), _RENDER_MAX_MS)))

    @Slot()
    def _submit(self) -> None:
        text = self.input.toPlainText().strip()
        if self._busy or not self._input_enabled or not text:
            return
        self.input.clear()
        self.sendRequested.emit(text)

    @Slot()
    def _on_send_clicked(self) -> None:
        if self._busy:
            self.stopRequested.emit()
        else:
            self._submit()

    @Slot()
    def _on_regenerate(self) -> None:
        if self.regenerate_button.isEnabled():
            self.regenerateRequested.emit()

    @Slot()
    def _on_detect(self) -> None:
        text = self.find_field.text().strip()
        if text and self.detect_button.isEnabled():
            self.detectRequested.emit(text)

    @Slot(int, int)
    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._stick:
            self._scroll.verticalScrollBar().setValue(maximum)

    @Slot(int)
    def _on_scrolled(self, value: int) -> None:
        self._stick = value >= self._scroll.verticalScrollBar().maximum() - _STICK_PX

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Re-wrap every bubble when the list changes width."""
        if watched is self._scroll.viewport() and event.type() == QEvent.Type.Resize:
            width = self._available_width()
            for message in self.messages():
                message.fit(width)
        return super().eventFilter(watched, event)
