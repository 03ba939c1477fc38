"""Where the window speaks: a banner for problems that last, a toast for passing news.

The banner is a dismissible strip at the top of the window for events the user must not
miss; a message may name its ``topic`` so that it goes away by itself once the problem is
gone. The toast floats over the bottom of the picture for a few seconds: "Copied 3 boxes",
"Detect all done", "photo.txt is not an image". Both are plain widgets a test can find on
screen (visible, non-zero size), unlike ``QStatusBar.showMessage``, which the status strip
covers.

::

    banner = Banner()
    banner.actionTriggered.connect(window.on_banner_action)     # banner.topic says whose
    banner.show_message(
        "The engine stopped unexpectedly and was restarted; your conversation is safe. "
        "The interrupted answer is marked.",
        kind="warning",
        action_text="Dismiss",
        topic="engine",
    )
    banner.clear("engine")                   # the engine is back: the message is stale

    toast = Toast(window)
    toast.set_anchor(canvas)                 # bottom centre of the canvas
    toast.show_message("Copied 3 boxes as JSON")
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QEvent, QObject, QPoint, QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QEnterEvent, QPainter, QPaintEvent, QPalette, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

__all__ = ["KINDS", "Banner", "Toast", "reading_ms"]


_W = TypeVar("_W", bound=QWidget)


def _named(widget: _W, name: str) -> _W:
    # objectName lets tests and style sheets find parts; the stubs reject it as a keyword.
    widget.setObjectName(name)
    return widget


# kind -> (icon, tint). Tints are mixed into the palette's window colour, so the banner stays
# legible in light and dark mode alike; None means the palette's own highlight colour.
_KINDS: dict[str, tuple[QStyle.StandardPixmap, QColor | None]] = {
    "info": (QStyle.StandardPixmap.SP_MessageBoxInformation, None),
    "warning": (QStyle.StandardPixmap.SP_MessageBoxWarning, QColor(255, 166, 0)),
    "error": (QStyle.StandardPixmap.SP_MessageBoxCritical, QColor(229, 57, 53)),
}
KINDS = tuple(_KINDS)
_FILL_MIX = 0.2
_BORDER_MIX = 0.6


_SEVERITY = {"info": 0, "warning": 1, "error": 2}


def _mix(base: QColor, tint: QColor, amount: float) -> QColor:
    def channel(a: int, b: int) -> int:
        return round(a + (b - a) * amount)

    return QColor(
        channel(base.red(), tint.red()),
        channel(base.green(), tint.green()),
        channel(base.blue(), tint.blue()),
    )


def _paint_tinted(widget: QWidget, kind: str) -> None:
    """A rounded rectangle: the kind's tint mixed into the palette's window colour."""
    palette = widget.palette()
    base = palette.color(QPalette.ColorRole.Window)
    tint = _KINDS[kind][1] or palette.color(QPalette.ColorRole.Highlight)
    painter = QPainter(widget)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(_mix(base, tint, _BORDER_MIX))
    painter.setBrush(_mix(base, tint, _FILL_MIX))
    painter.drawRoundedRect(QRectF(widget.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
    painter.end()


def _check_kind(kind: str) -> None:
    if kind not in _KINDS:
        raise ValueError(f"unknown banner kind {kind!r}; use one of {', '.join(KINDS)}")


def _icon_pixmap(widget: QWidget, kind: str) -> QPixmap:
    icon = widget.style().standardIcon(_KINDS[kind][0])
    size = widget.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
    return icon.pixmap(size, size)


def _close_button(widget: QWidget, name: str) -> QToolButton:
    button = _named(QToolButton(), name)
    button.setAutoRaise(True)
    button.setIcon(widget.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
    button.setToolTip("Dismiss")
    button.setAccessibleName("Dismiss")
    return button


class Banner(QWidget):
    """Icon, wrapped message, optional action button and a close button; hidden until used.

    Signals:
        actionTriggered(): the action button was pressed (the banner then hides).
        dismissed(): the user closed the banner.
    """

    actionTriggered = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build a hidden banner."""
        super().__init__(parent)
        self._kind = "info"
        self._topic = ""
        self._icon = _named(QLabel(), "bannerIcon")
        self._text = _named(QLabel(), "bannerText")
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._action = _named(QPushButton(), "bannerAction")
        self._close = _close_button(self, "bannerClose")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._text, 1)
        layout.addWidget(self._action)
        layout.addWidget(self._close, 0, Qt.AlignmentFlag.AlignTop)
        self._action.clicked.connect(self._on_action)
        self._close.clicked.connect(self._on_close)
        self._timer.timeout.connect(self.hide)
        self.hide()

    @property
    def message(self) -> str:
        """The text shown now."""
        return self._text.text()

    @property
    def kind(self) -> str:
        """The kind shown now: "info", "warning" or "error"."""
        return self._kind

    @property
    def topic(self) -> str:
        """What the message shown is about ("" when it named nothing)."""
        return self._topic

    def show_message(
        self,
        text: str,
        kind: str = "warning",
        action_text: str | None = None,
        timeout_ms: int = 0,
        topic: str = "",
    ) -> None:
        """Show ``text`` (replacing any message shown).

        Args:
            text: The message, plain text.
            kind: "info", "warning" or "error": picks the icon and tint.
            action_text: Label of an action button (``actionTriggered``); None shows none.
            timeout_ms: Hide by itself after this long; 0 stays until dismissed.
            topic: What the message is about, e.g. "engine": :meth:`clear` with the same
                topic hides it once the problem is gone.

        Raises:
            ValueError: for an unknown kind (a programming error).
        """
        _check_kind(kind)
        self._kind, self._topic = kind, topic
        self._icon.setPixmap(_icon_pixmap(self, kind))
        self._text.setText(text)
        self._action.setText(action_text or "")
        self._action.setVisible(bool(action_text))
        self._timer.stop()
        if timeout_ms > 0:
            self._timer.start(timeout_ms)
        self.show()
        self.update()

    @Slot(str)
    def clear(self, topic: str) -> None:
        """Hide the message if it is about ``topic`` (its problem is gone)."""
        if topic and self._topic == topic:
            self._timer.stop()
            self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Fill with the kind's tint mixed into the palette's window colour."""
        _paint_tinted(self, self._kind)
        super().paintEvent(event)

    @Slot()
    def _on_action(self) -> None:
        self._timer.stop()
        self.hide()
        self.actionTriggered.emit()

    @Slot()
    def _on_close(self) -> None:
        self._timer.stop()
        self.hide()
        self.dismissed.emit()


# How long a toast stays: time to read it, within bounds (longer for problems).
_READ_MS_PER_CHAR = 60
_TOAST_MS = {"info": (4000, 10_000), "warning": (6000, 15_000), "error": (8000, 20_000)}
_TOAST_LINES = 3  # messages arriving while one is shown stack up to this many
_TOAST_MAX_WIDTH = 560
_TOAST_MARGIN = 16


def reading_ms(text: str, kind: str = "info") -> int:
    """How long a toast with ``text`` stays on screen."""
    low, high = _TOAST_MS[kind]
    return max(low, min(high, len(text) * _READ_MS_PER_CHAR))


class Toast(QWidget):
    """A passing message floating over the bottom centre of an anchor widget.

    It shows the last few messages (newest last), stays while the pointer is over it, and
    hides after the time it takes to read them or when closed.

    Args:
        window: the top-level widget it floats in (its parent).
    """

    def __init__(self, window: QWidget) -> None:
        """Build a hidden toast inside ``window``."""
        super().__init__(window)
        self._kind = "info"
        self._lines: list[str] = []
        self._anchor: QWidget = window
        self._icon = _named(QLabel(), "toastIcon")
        self._text = _named(QLabel(), "toastText")
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._close = _close_button(self, "toastClose")
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 8, 6, 8)
        layout.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(self._text, 1)
        layout.addWidget(self._close, 0, Qt.AlignmentFlag.AlignVCenter)
        self._close.clicked.connect(self.dismiss)
        self._timer.timeout.connect(self.dismiss)
        self.setObjectName("toast")
        self.hide()

    @property
    def message(self) -> str:
        """The text shown now (one message per line)."""
        return self._text.text()

    @property
    def kind(self) -> str:
        """The most serious kind among the messages shown."""
        return self._kind

    def set_anchor(self, widget: QWidget) -> None:
        """Float over the bottom centre of ``widget`` (a descendant of the window)."""
        if self._anchor is not widget:
            self._anchor.removeEventFilter(self)
            self._anchor = widget
            widget.installEventFilter(self)
        self._place()

    def show_message(self, text: str, kind: str = "info") -> None:
        """Show ``text``; it joins the messages still shown.

        Raises:
            ValueError: for an unknown kind (a programming error).
        """
        _check_kind(kind)
        if self.isHidden():
            self._lines, self._kind = [], kind
        elif _SEVERITY[kind] > _SEVERITY[self._kind]:
            self._kind = kind
        self._lines = [*self._lines, text][-_TOAST_LINES:]
        self._icon.setPixmap(_icon_pixmap(self, self._kind))
        self._text.setText("\n".join(self._lines))
        self.show()
        self._place()
        self.raise_()
        self.update()
        self._timer.start(reading_ms(" ".join(self._lines), self._kind))

    @Slot()
    def dismiss(self) -> None:
        """Hide the toast and forget its messages."""
        self._timer.stop()
        self._lines = []
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Follow the anchor when it moves, resizes, shows or hides."""
        if watched is self._anchor and event.type() in _FOLLOW:
            self._place()
        return super().eventFilter(watched, event)

    def enterEvent(self, event: QEnterEvent) -> None:
        """Stay while the pointer is over the message (to read or select it)."""
        self._timer.stop()
        super().enterEvent(event)

    def leaveEvent(self, event: QEvent) -> None:
        """Start counting down again."""
        if not self.isHidden():
            self._timer.start(reading_ms(self.message, self._kind))
        super().leaveEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        """Tinted like the banner of the same kind."""
        _paint_tinted(self, self._kind)
        super().paintEvent(event)

    def _place(self) -> None:
        parent = self.parentWidget()
        if parent is None or self.isHidden():
            return
        anchor = self._anchor if self._anchor.isVisible() else parent
        top_left = anchor.mapTo(parent, QPoint(0, 0)) if anchor is not parent else QPoint(0, 0)
        width = max(120, min(_TOAST_MAX_WIDTH, anchor.width() - 2 * _TOAST_MARGIN))
        # The wrapped text's height at this width (a size hint measures some other width).
        height = self.heightForWidth(width) if self.hasHeightForWidth() else -1
        height = height if height > 0 else self.sizeHint().height()
        x = top_left.x() + (anchor.width() - width) // 2
        y = top_left.y() + anchor.height() - height - _TOAST_MARGIN
        self.setGeometry(max(0, x), max(0, y), width, height)


_FOLLOW = frozenset({QEvent.Type.Resize, QEvent.Type.Move, QEvent.Type.Show, QEvent.Type.Hide})
