"""A dismissible strip at the top of the window for events the user must not miss.

::

    banner = Banner()
    banner.actionTriggered.connect(window.retry_answer)
    banner.show_message(
        "The engine stopped unexpectedly and was restarted; your conversation is safe. "
        "The interrupted answer is marked.",
        kind="warning",
        action_text="Retry",
    )
"""

from __future__ import annotations

from typing import TypeVar

from PySide6.QtCore import QRectF, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

__all__ = ["KINDS", "Banner"]


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


def _mix(base: QColor, tint: QColor, amount: float) -> QColor:
    def channel(a: int, b: int) -> int:
        return round(a + (b - a) * amount)

    return QColor(
        channel(base.red(), tint.red()),
        channel(base.green(), tint.green()),
        channel(base.blue(), tint.blue()),
    )


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
        self._icon = _named(QLabel(), "bannerIcon")
        self._text = _named(QLabel(), "bannerText")
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._action = _named(QPushButton(), "bannerAction")
        self._close = _named(QToolButton(), "bannerClose")
        self._close.setAutoRaise(True)
        self._close.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_TitleBarCloseButton))
        self._close.setToolTip("Dismiss")
        self._close.setAccessibleName("Dismiss")
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

    def show_message(
        self,
        text: str,
        kind: str = "warning",
        action_text: str | None = None,
        timeout_ms: int = 0,
    ) -> None:
        """Show ``text`` (replacing any message shown).

        Args:
            text: The message, plain text.
            kind: "info", "warning" or "error": picks the icon and tint.
            action_text: Label of an action button (``actionTriggered``); None shows none.
            timeout_ms: Hide by itself after this long; 0 stays until dismissed.

        Raises:
            ValueError: for an unknown kind (a programming error).
        """
        if kind not in _KINDS:
            raise ValueError(f"unknown banner kind {kind!r}; use one of {', '.join(KINDS)}")
        self._kind = kind
        icon = self.style().standardIcon(_KINDS[kind][0])
        size = self.style().pixelMetric(QStyle.PixelMetric.PM_SmallIconSize)
        self._icon.setPixmap(icon.pixmap(size, size))
        self._text.setText(text)
        self._action.setText(action_text or "")
        self._action.setVisible(bool(action_text))
        self._timer.stop()
        if timeout_ms > 0:
            self._timer.start(timeout_ms)
        self.show()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Fill with the kind's tint mixed into the palette's window colour."""
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Window)
        tint = _KINDS[self._kind][1] or palette.color(QPalette.ColorRole.Highlight)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(_mix(base, tint, _BORDER_MIX))
        painter.setBrush(_mix(base, tint, _FILL_MIX))
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 6, 6)
        painter.end()
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
