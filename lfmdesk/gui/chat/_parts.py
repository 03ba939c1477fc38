"""Small pieces the chat bubbles are built from: auto-sized text, thumbnails, compose box.

Usage::

    text = MessageText()
    text.document().setPlainText("مرحبا")    # per-paragraph direction follows the text
    text.fit(400)                             # wrap to 400 px, size to the content

    button = ThumbButton(loaded_image, 64)
    button.imageClicked.connect(on_image)     # emits the image's content_hash
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import (
    QContextMenuEvent,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QIcon,
    QKeyEvent,
    QPalette,
    QPixmap,
    QTextOption,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from lfmdesk.core import LoadedImage, ToolCall
from lfmdesk.gui.chat._tools_drawer import argument_lines
from lfmdesk.gui.support._qtimage import thumbnail_pixmap

__all__ = [
    "SEND_KEYS",
    "ComposeEdit",
    "InlineEditor",
    "MessageText",
    "PendingItem",
    "RawBlock",
    "ThumbButton",
    "ToolCallCard",
    "monospace",
    "small_print",
    "thumbnail",
]

# What the placeholder tells the user; Qt maps Ctrl to ⌘ on macOS.
SEND_KEYS = "⌘↩" if sys.platform == "darwin" else "Ctrl+Enter"

_RAW_MAX_HEIGHT = 220
_LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_CACHE_SIZE = 128
_cache: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()


def small_print(widget: QWidget, *, italic: bool = False) -> None:
    """Make ``widget`` secondary: smaller, placeholder-coloured text (follows dark mode)."""
    font = widget.font()
    font.setPointSizeF(max(font.pointSizeF() * 0.85, 7.0))
    font.setItalic(italic)
    widget.setFont(font)
    widget.setForegroundRole(QPalette.ColorRole.PlaceholderText)


def monospace() -> QFont:
    """The system's fixed-pitch font."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


def thumbnail(image: LoadedImage, size: int) -> QPixmap:
    """A pixmap at most ``size`` device pixels on its long side, cached by content hash."""
    key = (image.content_hash, size)
    pixmap = _cache.get(key)
    if pixmap is None:
        pixmap = thumbnail_pixmap(image, size)
        _cache[key] = pixmap
        if len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(key)
    return pixmap


def _image_name(image: LoadedImage) -> str:
    return "image" if image.source.startswith("<") else Path(image.source).name


class ThumbButton(QToolButton):
    """A clickable thumbnail; emits the image's content hash."""

    imageClicked = Signal(str)

    def __init__(self, image: LoadedImage, size: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._hash = image.content_hash
        ratio = self.devicePixelRatioF()
        pixmap = QPixmap(thumbnail(image, round(size * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        self.setIcon(QIcon(pixmap))
        self.setIconSize(QSize(size, size))
        self.setAutoRaise(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        name = _image_name(image)
        self.setToolTip(f"{name} — {image.width}×{image.height}\nClick to show it on the canvas")
        self.setAccessibleName(f"Image {name}")
        self.clicked.connect(self._on_clicked)

    @property
    def content_hash(self) -> str:
        """The hash this button emits."""
        return self._hash

    @Slot()
    def _on_clicked(self) -> None:
        self.imageClicked.emit(self._hash)


class MessageText(QTextBrowser):
    """Read-only, selectable text that sizes itself to its content.

    Per-paragraph direction follows the text (Arabic and Hebrew paragraphs lay out right to
    left) because the document's default direction stays ``LayoutDirectionAuto``. Links open
    in the browser only when clicked; nothing (images, files) is ever loaded from the text.
    """

    copyMessageRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        # Long URLs and CJK runs have no spaces: break anywhere rather than clip.
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.viewport().setAutoFillBackground(False)
        document = self.document()
        document.setDocumentMargin(1)
        self._fitted: tuple[int, int, int, str] | None = None
        option = document.defaultTextOption()
        option.setTextDirection(Qt.LayoutDirection.LayoutDirectionAuto)
        document.setDefaultTextOption(option)
        self.anchorClicked.connect(self._open_link)

    def fit(self, max_width: int, max_height: int = 0) -> None:
        """Wrap at ``max_width`` px, shrink to the widest line, grow to the full height.

        Args:
            max_width: the most width the text may take.
            max_height: above this height (if > 0) the text scrolls instead of growing.
        """
        document = self.document()
        key = (document.revision(), max_width, max_height, self.font().key())
        if key == self._fitted:
            return
        self._fitted = key
        # Measure on a copy: the widget's own document lays out lazily while the widget is
        # hidden, so its idealWidth() can still describe an older width.
        probe = document.clone()
        probe.setTextWidth(max_width)
        width = min(max_width, math.ceil(probe.idealWidth()) + 1)
        probe.setTextWidth(width)
        height = math.ceil(probe.size().height())
        probe.deleteLater()
        scrolls = 0 < max_height < height
        bars = Qt.ScrollBarPolicy
        self.setVerticalScrollBarPolicy(
            bars.ScrollBarAsNeeded if scrolls else bars.ScrollBarAlwaysOff
        )
        if scrolls:
            width, height = max_width, max_height
        self.setFixedSize(max(width, 1), max(height, 1))

    def loadResource(self, kind: int, name: QUrl | str) -> object:
        """Load nothing: model text must not pull in local files or images."""
        return None

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Let the chat list scroll (and never zoom one bubble with Ctrl+wheel)."""
        bar = self.verticalScrollBar()
        if bar.maximum() > 0 and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)
        else:
            event.ignore()

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The standard menu (Copy, Select All) plus Copy Message."""
        menu = self.createStandardContextMenu(event.pos())
        menu.addSeparator()
        action = menu.addAction("Copy Message")
        action.triggered.connect(self.copyMessageRequested)
        menu.exec(event.globalPos())
        menu.deleteLater()

    @Slot(QUrl)
    def _open_link(self, url: QUrl) -> None:
        if url.scheme().lower() in _LINK_SCHEMES:
            QDesktopServices.openUrl(url)


class ComposeEdit(QPlainTextEdit):
    """Plain-text box that grows with its text; ⌘/Ctrl+Enter submits, Enter adds a line."""

    submitted = Signal()
    escaped = Signal()

    def __init__(
        self, parent: QWidget | None = None, *, min_lines: int = 2, max_lines: int = 8
    ) -> None:
        super().__init__(parent)
        self._lines = (min_lines, max_lines)
        self.setTabChangesFocus(True)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        option = self.document().defaultTextOption()
        option.setTextDirection(Qt.LayoutDirection.LayoutDirectionAuto)
        self.document().setDefaultTextOption(option)
        self.document().documentLayout().documentSizeChanged.connect(self._adjust_height)
        self._adjust_height()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Submit on ⌘/Ctrl+Enter; everything else edits as usual."""
        enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if enter and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            event.accept()
            self.submitted.emit()
            return
        if event.key() == Qt.Key.Key_Escape:
            self.escaped.emit()
        super().keyPressEvent(event)

    @Slot()
    def _adjust_height(self) -> None:
        # QPlainTextDocumentLayout measures its height in lines, wrapped lines included.
        lines = self.document().documentLayout().documentSize().height()
        shown = min(max(math.ceil(lines), self._lines[0]), self._lines[1])
        margins = self.contentsMargins()
        extra = margins.top() + margins.bottom() + 2 * self.document().documentMargin()
        self.setFixedHeight(math.ceil(shown * self.fontMetrics().lineSpacing() + extra))


class ToolCallCard(QFrame):
    """One tool call: its name in bold, ``key: value`` arguments, a Send result… button."""

    resultRequested = Signal(int)

    def __init__(self, index: int, call: ToolCall, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._index = index
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name_label = QLabel(call.name, self)
        font = self.name_label.font()
        font.setBold(True)
        self.name_label.setFont(font)
        self.name_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.arguments = MessageText(self)
        self.arguments.setFont(monospace())
        self.arguments.setPlainText("\n".join(argument_lines(call.arguments)) or "(no arguments)")
        self.button = QPushButton("Send result…", self)
        self.button.setToolTip("Type what the tool returned and send it back to the model")
        self.button.clicked.connect(self._on_clicked)
        title = QHBoxLayout()
        caption = QLabel("Tool call", self)
        small_print(caption)
        title.addWidget(caption)
        title.addWidget(self.name_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addLayout(title)
        layout.addWidget(self.arguments)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)

    def fit(self, max_width: int) -> None:
        """Wrap the arguments inside ``max_width`` px."""
        self.arguments.fit(max(max_width - 16, 40))

    @Slot()
    def _on_clicked(self) -> None:
        self.resultRequested.emit(self._index)


class RawBlock(QWidget):
    """A folded "Model output" block with the model's raw text in monospace."""

    def __init__(self, raw: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.toggle = QToolButton(self)
        self.toggle.setText("Model output")
        self.toggle.setCheckable(True)
        self.toggle.setAutoRaise(True)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        small_print(self.toggle)
        self.view = MessageText(self)
        self.view.setFont(monospace())
        self.view.setPlainText(raw)
        self.view.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toggle, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.view)
        self.toggle.toggled.connect(self._on_toggled)

    def fit(self, max_width: int) -> None:
        """Wrap the raw text at ``max_width`` px; long output scrolls."""
        self.view.fit(max_width, _RAW_MAX_HEIGHT)

    @Slot(bool)
    def _on_toggled(self, shown: bool) -> None:
        self.view.setVisible(shown)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)


class InlineEditor(QWidget):
    """Edits the last question in place: a text box with Cancel and Resend."""

    submitted = Signal(str)
    cancelled = Signal()

    def __init__(self, text: str, parent: QWidget) -> None:
        super().__init__(parent)
        self.edit = ComposeEdit(self, min_lines=2, max_lines=10)
        self.edit.setPlainText(text)
        self.resend = QPushButton("Resend", self)
        self.resend.setDefault(True)
        cancel = QPushButton("Cancel", self)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.resend)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addLayout(buttons)
        self.resend.clicked.connect(self._submit)
        self.edit.submitted.connect(self._submit)
        cancel.clicked.connect(self.cancelled)
        self.edit.escaped.connect(self.cancelled)

    @Slot()
    def _submit(self) -> None:
        text = self.edit.toPlainText().strip()
        if text:
            self.submitted.emit(text)


_STRIP_THUMB = 48


class PendingItem(QWidget):
    """One thumbnail in the pending strip with a × in its corner."""

    removeClicked = Signal(int)

    def __init__(self, index: int, image: LoadedImage, parent: QWidget) -> None:
        super().__init__(parent)
        self._index = index
        self.thumb = ThumbButton(image, _STRIP_THUMB, self)
        self.remove = QToolButton(self)
        self.remove.setText("×")
        self.remove.setToolTip("Remove this image from the next message")
        self.remove.setAccessibleName("Remove image")
        self.remove.setFixedSize(18, 18)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.thumb, 0, 0)
        layout.addWidget(self.remove, 0, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        self.remove.clicked.connect(self._on_remove)

    @Slot()
    def _on_remove(self) -> None:
        self.removeClicked.emit(self._index)
