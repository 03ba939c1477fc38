"""The "Show prompt" viewer and the conversations sidebar.

::

    PromptDialog(rendered_prompt, parent=window).exec()      # <image>×256 shown as <image ×256>

    conversations = ConversationList()
    conversations.set_rows([("c1", "Receipt totals", 1718000000.0, 4)])  # (id, title, ts, turns)
    conversations.openRequested.connect(window.open_conversation)
    conversations.deleteRequested.connect(window.confirm_delete)        # the window confirms
    conversations.newRequested.connect(window.new_conversation)
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from PySide6.QtCore import (
    QMimeData,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QFont,
    QFontDatabase,
    QFontMetrics,
    QGuiApplication,
    QKeySequence,
    QPainter,
    QPalette,
    QShortcut,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

__all__ = [
    "ConversationList",
    "ConversationRow",
    "PromptDialog",
    "prompt_summary",
    "relative_time",
    "summarize_prompt",
]


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    # objectName lets tests and style sheets find parts; the stubs reject it as a keyword.
    widget.setObjectName(name)
    return widget


ConversationRow = tuple[str, str, float, int]
"""(id, title, updated_ts in epoch seconds, turns)."""

_IMAGE_TOKEN = "<image>"
_IMAGE_RUN = re.compile(f"(?:{re.escape(_IMAGE_TOKEN)}){{2,}}")
_IMAGE_RUN_SHOWN = re.compile(r"<image(?: ×\d+)?>")
_SPECIAL_MARKER = re.compile(r"<\|[^|<>\s]+\|>")
_MARKER_OR_RUN = re.compile(f"{_SPECIAL_MARKER.pattern}|{_IMAGE_RUN_SHOWN.pattern}")
_BREAK = "\u200b"
_ID_ROLE = Qt.ItemDataRole.UserRole
_TITLE_ROLE = Qt.ItemDataRole.UserRole + 1
# Time and turns; the accessible-description role so screen readers read it too.
_SUBTITLE_ROLE = Qt.ItemDataRole.AccessibleDescriptionRole
_Index = QModelIndex | QPersistentModelIndex


def summarize_prompt(text: str) -> str:
    """Collapse each run of ``<image>`` tokens into ``<image ×N>``; everything else is kept.

    >>> summarize_prompt("<|image_start|>" + "<image>" * 256 + "<|image_end|>")
    '<|image_start|><image ×256><|image_end|>'
    """
    return _IMAGE_RUN.sub(lambda m: f"<image ×{len(m.group(0)) // len(_IMAGE_TOKEN)}>", text)


class _MarkerHighlighter(QSyntaxHighlighter):
    """``<image ×N>`` runs on a highlight background; ``<|special|>`` tokens bold, link colour."""

    def __init__(self, document: QTextDocument, palette: QPalette) -> None:
        super().__init__(document)
        self._image = QTextCharFormat()
        self._image.setBackground(palette.color(QPalette.ColorRole.Highlight))
        self._image.setForeground(palette.color(QPalette.ColorRole.HighlightedText))
        self._special = QTextCharFormat()
        self._special.setForeground(palette.color(QPalette.ColorRole.Link))
        self._special.setFontWeight(700)

    def highlightBlock(self, text: str) -> None:
        for match in _SPECIAL_MARKER.finditer(text):
            self.setFormat(match.start(), match.end() - match.start(), self._special)
        for match in _IMAGE_RUN_SHOWN.finditer(text):
            self.setFormat(match.start(), match.end() - match.start(), self._image)


class _PromptView(QPlainTextEdit):
    """Read-only view whose copied selections drop the invisible break hints."""

    def createMimeDataFromSelection(self) -> QMimeData:
        mime = QMimeData()
        mime.setText(self.textCursor().selection().toPlainText().replace(_BREAK, ""))
        return mime


def _breakable(summary: str) -> str:
    # A zero-width space after each marker lets long lines wrap between tokens, never inside.
    return _MARKER_OR_RUN.sub(lambda m: m.group(0) + _BREAK, summary)


class PromptDialog(QDialog):
    """Read-only, monospace view of a rendered prompt with image tokens summarized.

    "Copy" puts the raw prompt (every ``<image>`` token included) on the clipboard.
    """

    def __init__(
        self,
        prompt: str = "",
        parent: QWidget | None = None,
        *,
        images: int | None = None,
        image_tokens: int = 0,
    ) -> None:
        """Show ``prompt`` (the exact text the model was given).

        Args:
            prompt: the rendered prompt.
            parent: Qt parent.
            images: how many images the request carries (None: count the ``<image>`` runs).
            image_tokens: how many image tokens they become (the prompt may hold a single
                ``<image>`` placeholder per image, expanded only when it is tokenized).
        """
        super().__init__(parent)
        self._images, self._image_tokens = images, image_tokens
        self.setWindowTitle("Prompt")
        self.resize(720, 520)
        self._raw = ""
        self._summary = _named(QLabel(), "promptSummary")
        self._view = _named(_PromptView(), "promptView")
        self._view.setReadOnly(True)
        self._view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._highlighter = _MarkerHighlighter(self._view.document(), self.palette())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self._copy = _named(QPushButton("Copy"), "promptCopy")
        self._copy.setToolTip("Copy the raw prompt, every image token included")
        buttons.addButton(self._copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self._copy.clicked.connect(self._on_copy)
        layout = QVBoxLayout(self)
        layout.addWidget(self._summary)
        layout.addWidget(self._view, 1)
        layout.addWidget(buttons)
        self.set_prompt(prompt)

    @property
    def shown_text(self) -> str:
        """The text as displayed (image runs collapsed)."""
        return self._view.toPlainText().replace(_BREAK, "")

    def set_prompt(self, prompt: str) -> None:
        """Replace the prompt shown."""
        self._raw = prompt
        self._view.setPlainText(_breakable(summarize_prompt(prompt)))
        self._summary.setText(prompt_summary(prompt, self._images, self._image_tokens))

    @Slot()
    def _on_copy(self) -> None:
        QGuiApplication.clipboard().setText(self._raw)
        self._copy.setText("Copied")
        QTimer.singleShot(1500, self._reset_copy)

    @Slot()
    def _reset_copy(self) -> None:
        self._copy.setText("Copy")


def prompt_summary(prompt: str, images: int | None = None, image_tokens: int = 0) -> str:
    """The line over the prompt: "1,234 characters · 1 image → 256 image tokens".

    Args:
        prompt: the rendered prompt.
        images: how many images it carries; None reads the text: expanded runs of
            ``<image>`` are counted as tokens, single placeholders as images.
        image_tokens: what the images become for the model; 0 leaves the count out.
    """
    parts = [f"{len(prompt):,} characters"]
    if images is None:
        placeholders = prompt.count(_IMAGE_TOKEN)
        if _IMAGE_RUN.search(prompt):  # already expanded: the tokens themselves are there
            return " · ".join([*parts, f"{placeholders:,} image tokens"])
        images = placeholders
    if not images:
        return " · ".join([*parts, "no images"])
    seen = f"{images} image" + ("" if images == 1 else "s")
    return " · ".join([*parts, f"{seen} → {image_tokens:,} image tokens" if image_tokens else seen])


def relative_time(ts: float, now: float) -> str:
    """How long ago ``ts`` was: "just now", "5 min ago", "3 h ago", "yesterday", a date."""
    seconds = max(0.0, now - ts)
    then, today = datetime.fromtimestamp(ts), datetime.fromtimestamp(now)
    days = (today.date() - then.date()).days
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if days == 0:
        return f"{int(seconds // 3600)} h ago"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    fmt = "%d %b" if then.year == today.year else "%d %b %Y"
    return then.strftime(fmt).lstrip("0")


def _subtitle(row: ConversationRow, now: float) -> str:
    turns = row[3]
    return f"{relative_time(row[2], now)} · {turns} {'turn' if turns == 1 else 'turns'}"


class _TwoLineDelegate(QStyledItemDelegate):
    """Title on the first line; time and turns below it, smaller and dimmed."""

    _PAD = 5

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        metrics = QFontMetrics(option.font)
        return QSize(option.rect.width(), metrics.height() * 2 + 2 * self._PAD)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""  # the panel (selection, hover) only; the text is drawn below
        style = opt.widget.style() if opt.widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        dim_role = text_role if selected else QPalette.ColorRole.PlaceholderText
        rect = opt.rect.adjusted(8, self._PAD, -8, -self._PAD)
        small = QFont(opt.font)
        small.setPointSizeF(opt.font.pointSizeF() * 0.9)
        lines = (
            (opt.font, text_role, str(index.data(Qt.ItemDataRole.DisplayRole))),
            (small, dim_role, str(index.data(_SUBTITLE_ROLE))),
        )
        painter.save()
        top = rect.top()
        for font, role, text in lines:
            metrics = QFontMetrics(font)
            painter.setFont(font)
            painter.setPen(opt.palette.color(role))
            shown = metrics.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
            painter.drawText(rect.left(), top + metrics.ascent(), shown)
            top += QFontMetrics(opt.font).height()
        painter.restore()


class ConversationList(QWidget):
    """Filter box, newest-first list of conversations, New and Delete.

    Selecting a row (click or arrow keys) opens it. Delete (key, button or context menu) only
    asks: the window confirms and deletes.

    Signals:
        openRequested(str): the user selected a conversation (its id).
        deleteRequested(str): the user asked to delete a conversation (its id).
        newRequested(): the user asked for a new conversation.
    """

    openRequested = Signal(str)
    deleteRequested = Signal(str)
    newRequested = Signal()

    def __init__(self, rows: Sequence[ConversationRow] = (), parent: QWidget | None = None) -> None:
        """Build the list showing ``rows``."""
        super().__init__(parent)
        self._filling = False
        self._filter = _named(QLineEdit(), "conversationFilter")
        self._filter.setPlaceholderText("Filter conversations")
        self._filter.setClearButtonEnabled(True)
        self._list = _named(QListWidget(), "conversationList")
        self._list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._list.setItemDelegate(_TwoLineDelegate(self._list))
        self._list.setUniformItemSizes(True)
        self._empty = _named(QLabel(), "conversationEmpty")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setEnabled(False)  # drawn in the disabled (dimmed) text colour
        self._new = _named(QPushButton("New"), "conversationNew")
        self._delete = _named(QPushButton("Delete"), "conversationDelete")
        self._build_layout()
        self._connect()
        self.set_rows(rows)

    def _build_layout(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self._new)
        buttons.addWidget(self._delete)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._filter)
        layout.addWidget(self._list, 1)
        layout.addWidget(self._empty)
        layout.addLayout(buttons)

    def _connect(self) -> None:
        self._filter.textChanged.connect(self._apply_filter)
        self._list.currentItemChanged.connect(self._on_current_changed)
        self._list.customContextMenuRequested.connect(self._on_context_menu)
        self._new.clicked.connect(self._on_new)
        self._delete.clicked.connect(self._on_delete_current)
        delete_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Delete), self._list)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self._on_delete_current)
        backspace = QShortcut(QKeySequence(Qt.Key.Key_Backspace), self._list)
        backspace.setContext(Qt.ShortcutContext.WidgetShortcut)
        backspace.activated.connect(self._on_delete_current)

    # ----------------------------------------------------------------------------- public API

    def set_rows(self, rows: Sequence[ConversationRow], current: str | None = None) -> None:
        """Show ``rows`` newest first and select ``current`` (no signal is emitted)."""
        if current is None:
            current = self.current_id()
        now = time.time()
        self._filling = True
        try:
            self._list.clear()
            for row in sorted(rows, key=lambda r: r[2], reverse=True):
                item = QListWidgetItem(row[1] or "Untitled")
                item.setData(_SUBTITLE_ROLE, _subtitle(row, now))
                item.setData(_ID_ROLE, row[0])
                item.setData(_TITLE_ROLE, row[1])
                item.setToolTip(row[1])
                self._list.addItem(item)
            self._select(current)
        finally:
            self._filling = False
        self._apply_filter(self._filter.text())

    def set_current(self, conversation_id: str | None) -> None:
        """Select ``conversation_id`` without emitting ``openRequested``."""
        self._filling = True
        try:
            self._select(conversation_id)
        finally:
            self._filling = False
        self._delete.setEnabled(self._list.currentItem() is not None)

    def current_id(self) -> str | None:
        """The selected conversation's id, or ``None``."""
        item = self._list.currentItem()
        return str(item.data(_ID_ROLE)) if item is not None else None

    def visible_ids(self) -> list[str]:
        """Ids of the rows the filter leaves visible, top to bottom."""
        items = (self._list.item(i) for i in range(self._list.count()))
        return [str(item.data(_ID_ROLE)) for item in items if not item.isHidden()]

    # ----------------------------------------------------------------------------- internals

    def _select(self, conversation_id: str | None) -> None:
        for index in range(self._list.count()):
            if self._list.item(index).data(_ID_ROLE) == conversation_id:
                self._list.setCurrentRow(index)
                return
        self._list.setCurrentRow(-1)

    @Slot(str)
    def _apply_filter(self, text: str) -> None:
        needle = text.strip().casefold()
        for index in range(self._list.count()):
            item = self._list.item(index)
            title = str(item.data(_TITLE_ROLE))
            item.setHidden(bool(needle) and needle not in title.casefold())
        empty = not self.visible_ids()
        self._empty.setText("No matches" if self._list.count() else "No conversations yet")
        self._empty.setVisible(empty)
        self._delete.setEnabled(self._list.currentItem() is not None)

    @Slot(QListWidgetItem, QListWidgetItem)
    def _on_current_changed(
        self, current: QListWidgetItem | None, _previous: QListWidgetItem | None
    ) -> None:
        self._delete.setEnabled(current is not None)
        if current is not None and not self._filling:
            self.openRequested.emit(str(current.data(_ID_ROLE)))

    @Slot(QPoint)
    def _on_context_menu(self, pos: QPoint) -> None:
        item = self._list.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        delete = menu.addAction("Delete Conversation…")
        if menu.exec(self._list.viewport().mapToGlobal(pos)) is delete:
            self.deleteRequested.emit(str(item.data(_ID_ROLE)))

    @Slot()
    def _on_delete_current(self) -> None:
        conversation_id = self.current_id()
        if conversation_id is not None:
            self.deleteRequested.emit(conversation_id)

    @Slot()
    def _on_new(self) -> None:
        self.newRequested.emit()
