"""One chat message: a palette-coloured bubble with text, thumbnails, tool cards, raw output.

Usage::

    message = ChatMessage("assistant")
    message.set_text("**Hello** from `markdown`")
    message.finish(text="Done.", footer="42 tok/s", raw="[...]", tool_calls=calls)
    message.fit(640)                      # the width the chat list has for it
    message.toolResultRequested.connect(on_tool_result)
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QGuiApplication,
    QPainter,
    QPaintEvent,
    QPalette,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import LoadedImage, ToolCall
from lfmdesk.gui.chat._parts import (
    InlineEditor,
    MessageText,
    RawBlock,
    ThumbButton,
    ToolCallCard,
    small_print,
)

__all__ = ["INTERRUPTED", "ChatMessage"]

INTERRUPTED = "■ interrupted"
_MD = QTextDocument.MarkdownFeature
_MARKDOWN = _MD(_MD.MarkdownDialectGitHub.value | _MD.MarkdownNoHTML.value)
_WIDTH_SHARE = {"user": 0.8, "assistant": 0.92}
_PAD = 10
_THUMB = 64
_THUMB_COLUMNS = 4
_Role = QPalette.ColorRole
_CODE_FENCE = QTextFormat.Property.BlockCodeFence


class _Bubble(QFrame):
    """The rounded, palette-filled background (Highlight for the user, AlternateBase else)."""

    def __init__(self, user: bool, parent: QWidget) -> None:
        super().__init__(parent)
        self._user = user

    def paintEvent(self, event: QPaintEvent) -> None:
        """Fill a rounded rectangle from the current palette, so dark mode follows."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        fill = palette.color(_Role.Highlight if self._user else _Role.AlternateBase)
        painter.setPen(fill if self._user else palette.color(_Role.Mid))
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 10, 10)


class ChatMessage(QWidget):
    """A user or assistant message: bubble, then raw output, then a footer row.

    Signals:
        imageClicked(str): content hash of a thumbnail clicked in the bubble.
        toolResultRequested(int): index of the tool call whose "Send result…" was clicked.
        editSubmitted(str): the edited question (inline editor → Resend).
    """

    imageClicked = Signal(str)
    toolResultRequested = Signal(int)
    editSubmitted = Signal(str)

    def __init__(
        self,
        role: str,
        *,
        kind: str = "chat",
        images: Sequence[LoadedImage] = (),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.role = role
        self.kind = kind
        self._user = role == "user"
        self._source = ""
        self._waiting = False
        self._available = 480
        self.cards: list[ToolCallCard] = []
        self.raw: RawBlock | None = None
        self._editor: InlineEditor | None = None
        self._editable = False
        self._bubble = _Bubble(self._user, self)
        self.text = MessageText(self._bubble)
        self.text.copyMessageRequested.connect(self.copy_to_clipboard)
        self._inner = QVBoxLayout(self._bubble)
        self._inner.setContentsMargins(_PAD, _PAD - 2, _PAD, _PAD - 2)
        self._add_thumbs(images)
        self._inner.addWidget(self.text)
        self._build_meta()
        self._outer = QVBoxLayout(self)
        self._outer.setContentsMargins(0, 0, 0, 0)
        self._outer.setSpacing(2)
        side = Qt.AlignmentFlag.AlignRight if self._user else Qt.AlignmentFlag.AlignLeft
        self._outer.addWidget(self._bubble, 0, side)
        self._outer.addLayout(self._meta)
        self._apply_palette()

    def _add_thumbs(self, images: Sequence[LoadedImage]) -> None:
        self.thumbs: list[ThumbButton] = []
        if not images:
            return
        grid = QGridLayout()
        grid.setSpacing(4)
        for number, image in enumerate(images):
            button = ThumbButton(image, _THUMB, self._bubble)
            button.imageClicked.connect(self.imageClicked)
            self.thumbs.append(button)
            row, column = divmod(number, _THUMB_COLUMNS)
            grid.addWidget(button, row, column)
        self._inner.addLayout(grid)

    def _build_meta(self) -> None:
        self.footer = QLabel(self)
        small_print(self.footer)
        self.footer.hide()
        self.interrupted = QLabel(INTERRUPTED, self)
        small_print(self.interrupted, italic=True)
        self.interrupted.setToolTip("The answer was stopped before the model finished")
        self.interrupted.hide()
        self.edit_button = QToolButton(self)
        self.edit_button.setText("Edit")
        self.edit_button.setToolTip("Edit this question and send it again")
        self.edit_button.hide()
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this message" + ("" if self._user else " as Markdown"))
        for button in (self.edit_button, self.copy_button):
            button.setAutoRaise(True)
            small_print(button)
        self._meta = QHBoxLayout()
        self._meta.setContentsMargins(4, 0, 4, 0)
        if self._user:
            self._meta.addStretch(1)
        for widget in (self.footer, self.interrupted, self.edit_button, self.copy_button):
            self._meta.addWidget(widget)
        if not self._user:
            self._meta.addStretch(1)
        self.copy_button.clicked.connect(self.copy_to_clipboard)
        self.edit_button.clicked.connect(self.start_edit)

    # --- content --------------------------------------------------------------------------

    def source_text(self) -> str:
        """The message as written: plain text for the user, Markdown source for the model."""
        return self._source

    def set_text(self, text: str) -> None:
        """Show ``text``: plain for the user, rendered Markdown for the model."""
        self._source = text
        self._waiting = False
        if self._user:
            self.text.setPlainText(text)
        else:
            self.text.document().setMarkdown(text, _MARKDOWN)
            self._style_code_blocks()
        self.text.setVisible(bool(text))
        self.copy_button.setVisible(bool(text))
        self.fit(self._available)

    def show_waiting(self) -> None:
        """A subtle "…" until the first text arrives."""
        self._waiting = True
        self.text.clear()
        style = QTextCharFormat()
        style.setForeground(self.palette().color(_Role.PlaceholderText))
        QTextCursor(self.text.document()).insertText("…", style)
        self.text.show()
        self.copy_button.hide()
        self.fit(self._available)

    def finish(
        self,
        *,
        text: str,
        interrupted: bool = False,
        footer: str = "",
        raw: str | None = None,
        tool_calls: Sequence[ToolCall] = (),
    ) -> None:
        """Final render: Markdown, marker, footer, raw output and tool-call cards."""
        self.set_text(text)
        if not text and not interrupted and not tool_calls:
            self.text.setPlainText("(empty answer)")
            self.text.show()
        self.interrupted.setVisible(interrupted)
        self.footer.setText(footer)
        self.footer.setVisible(bool(footer))
        if raw is not None and self.raw is None:
            self.raw = RawBlock(raw, self)
            self._outer.insertWidget(1, self.raw, 0, Qt.AlignmentFlag.AlignLeft)
            self.raw.show()  # children added to a shown widget stay hidden until shown
        for index, call in enumerate(tool_calls):
            card = ToolCallCard(index, call, self._bubble)
            card.resultRequested.connect(self.toolResultRequested)
            self.cards.append(card)
            self._inner.addWidget(card)
            card.show()
        self.fit(self._available)

    def _style_code_blocks(self) -> None:
        """Shade code blocks, let long code lines wrap instead of being clipped, tidy tables."""
        document = self.text.document()
        cursor = QTextCursor(document)
        shade = self.palette().color(_Role.Base)
        block = document.begin()
        while block.isValid():
            style = block.blockFormat()
            cursor.setPosition(block.position())
            if style.nonBreakableLines() or style.hasProperty(_CODE_FENCE):
                style.setNonBreakableLines(False)
                style.setBackground(shade)
                cursor.setBlockFormat(style)
            elif cursor.currentTable() is not None and style.topMargin():
                # Qt's Markdown reader gives a table's first cell paragraph margins when the
                # table follows a code block, which pushes that cell's text down a line.
                style.setTopMargin(0)
                style.setBottomMargin(0)
                cursor.setBlockFormat(style)
            block = block.next()

    # --- actions --------------------------------------------------------------------------

    @Slot()
    def copy_to_clipboard(self) -> None:
        """Put the message's text (Markdown source for answers) on the clipboard."""
        QGuiApplication.clipboard().setText(self._source)
        self.copy_button.setText("Copied")
        QTimer.singleShot(1200, self, self._reset_copy_label)

    @Slot()
    def _reset_copy_label(self) -> None:
        self.copy_button.setText("Copy")

    def set_editable(self, editable: bool) -> None:
        """Show the Edit button (only the last question is editable, and not while busy)."""
        self._editable = editable
        self.edit_button.setVisible(editable and self._editor is None)
        if not editable:
            self._end_edit()

    def set_tools_enabled(self, enabled: bool) -> None:
        """Enable or disable the "Send result…" buttons."""
        for card in self.cards:
            card.button.setEnabled(enabled)

    @Slot()
    def start_edit(self) -> None:
        """Replace the text by an inline editor with Cancel and Resend."""
        if self._editor is not None:
            return
        self._editor = InlineEditor(self._source, self._bubble)
        self._editor.submitted.connect(self._on_edit_submitted)
        self._editor.cancelled.connect(self._end_edit)
        self._inner.insertWidget(self._inner.indexOf(self.text), self._editor)
        self._editor.show()
        self.text.hide()
        self.edit_button.hide()
        self.fit(self._available)
        self._editor.edit.setFocus()

    @property
    def editor(self) -> InlineEditor | None:
        """The open inline editor, if any."""
        return self._editor

    @Slot(str)
    def _on_edit_submitted(self, text: str) -> None:
        self._end_edit()
        self.editSubmitted.emit(text)

    @Slot()
    def _end_edit(self) -> None:
        if self._editor is None:
            return
        self._editor.hide()
        self._editor.deleteLater()
        self._editor = None
        self.text.setVisible(bool(self._source))
        self.edit_button.setVisible(self._editable)
        self.fit(self._available)

    # --- geometry and palette ---------------------------------------------------------------

    def fit(self, available: int) -> None:
        """Lay out for a list ``available`` px wide (bubbles take a share of it)."""
        self._available = available
        bubble = max(160, int(available * _WIDTH_SHARE[self.role]))
        inner = bubble - 2 * _PAD
        self.text.fit(inner)
        for card in self.cards:
            card.fit(inner)
        if self._editor is not None:
            self._editor.setFixedWidth(inner)
        if self.raw is not None:
            self.raw.fit(bubble)
        self._bubble.setMaximumWidth(bubble)
        self.setMaximumWidth(max(available, 1))

    def changeEvent(self, event: QEvent) -> None:
        """Re-colour when the system switches between light and dark."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
            if not self._user and not self._waiting and self._source:
                self.set_text(self._source)

    def _apply_palette(self) -> None:
        if not self._user:
            return
        palette = self.palette()
        text = QPalette(palette)
        front, back = palette.color(_Role.HighlightedText), palette.color(_Role.Highlight)
        # On a Highlight-filled bubble, selection must invert or it would be invisible.
        for role, colour in ((_Role.Text, front), (_Role.Highlight, front)):
            text.setColor(role, colour)
        text.setColor(_Role.HighlightedText, back)
        text.setColor(_Role.Link, front)
        self.text.setPalette(text)
        for thumb in self.thumbs:
            thumb.setForegroundRole(_Role.HighlightedText)
