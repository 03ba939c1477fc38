"""Screen capture from the window: the whole screen, a dragged region, or the clipboard.

The lfmdesk window hides itself first (and waits a moment so the compositor really removed
it), grabs the screen under the cursor, and shows itself again whatever happens. A region is
chosen on a frozen, dimmed copy of that grab, so what is selected is exactly what is saved.

    capturer = ScreenCapturer(window)
    capturer.captured.connect(controller.on_capture)    # (PIL.Image.Image, RGB, real pixels)
    capturer.problem.connect(banner.show_message)       # (one-line message)
    region_action.triggered.connect(capturer.capture_region)
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QObject, QPoint, QRect, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QCursor,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QRegion,
    QScreen,
)
from PySide6.QtWidgets import QWidget

from lfmdesk.core import LfmdeskError, load_image
from lfmdesk.core.datasets._project import IMAGE_SUFFIXES
from lfmdesk.core.images._capture import (
    EMPTY_CAPTURE,
    PERMISSION_HELP,
    looks_blank,
    screen_capture_allowed,
)

__all__ = ["NO_CLIPBOARD_IMAGE", "RegionOverlay", "ScreenCapturer", "qimage_to_pil"]

NO_CLIPBOARD_IMAGE = "The clipboard holds no image"
_HIDE_DELAY_MS = 250  # long enough for the window manager to unmap and recomposite
_PROBE = 256
_DIM = QColor(0, 0, 0, 120)
_EDGE = QColor(255, 255, 255)
_TAG = QColor(20, 20, 20, 210)
_HINT = "Drag to capture a region · Esc cancels"


def qimage_to_pil(image: QImage) -> Image.Image:
    """An RGB Pillow copy of ``image`` (any format; alpha dropped)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    data = bytes(rgb.constBits())
    size = (rgb.width(), rgb.height())
    return Image.frombuffer("RGB", size, data, "raw", "RGB", rgb.bytesPerLine(), 1).copy()


class RegionOverlay(QWidget):
    """A frameless, full-screen, top-most copy of the grab on which the user drags a rectangle.

    Args:
        shot: the frozen grab of ``screen`` (its devicePixelRatio set, as Qt grabs are).
        screen: the screen it covers.

    Signals:
        selected(QRect): the chosen rectangle in the grab's real pixels.
        cancelled(): Esc, a right click, or a rectangle with no area.
    """

    selected = Signal(QRect)
    cancelled = Signal()

    def __init__(self, shot: QPixmap, screen: QScreen) -> None:
        super().__init__(
            None,
            Qt.WindowType.Window
            | Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint,
        )
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setWindowTitle("Drag to capture a region — Esc cancels")
        self._shot = shot
        self._origin: QPoint | None = None
        self._rect = QRect()
        self._done = False
        self.setScreen(screen)
        self.setGeometry(screen.geometry())

    @property
    def selection(self) -> QRect:
        """The rectangle being dragged, in widget (logical) coordinates."""
        return QRect(self._rect)

    def device_rect(self, rect: QRect) -> QRect:
        """``rect`` in the grab's real pixels (logical × devicePixelRatio), inside the grab."""
        ratio = self._shot.devicePixelRatio()
        x1, y1 = round(rect.left() * ratio), round(rect.top() * ratio)
        x2 = round((rect.left() + rect.width()) * ratio)
        y2 = round((rect.top() + rect.height()) * ratio)
        bounds = QRect(0, 0, self._shot.width(), self._shot.height())
        return QRect(QPoint(x1, y1), QPoint(x2 - 1, y2 - 1)).intersected(bounds)

    def open(self) -> None:
        """Show on top and take the keyboard (for Esc)."""
        self.show()
        self.raise_()
        self.activateWindow()
        self.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.drawPixmap(self.rect(), self._shot)
        dim = QRegion(self.rect())
        if not self._rect.isEmpty():
            dim = dim.subtracted(QRegion(self._rect))
        painter.setClipRegion(dim)
        painter.fillRect(self.rect(), _DIM)
        painter.setClipping(False)
        if not self._rect.isEmpty():
            painter.setPen(QPen(_EDGE, 1, Qt.PenStyle.DashLine))
            painter.drawRect(self._rect.adjusted(0, 0, -1, -1))
            real = self.device_rect(self._rect)
            spot = self._rect.bottomLeft() + QPoint(0, 6)
            if spot.y() > self.height() - 30:
                spot = self._rect.topLeft() - QPoint(0, 28)
            _tag(painter, spot, f"{real.width()} × {real.height()}")
        else:
            _tag(painter, QPoint(self.width() // 2, 24), _HINT, centred=True)
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self._finish(None)
            return
        self._origin = event.position().toPoint()
        self._rect = QRect()
        self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._origin is not None:
            self._rect = _span(self._origin, event.position().toPoint())
            self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._origin is None or event.button() != Qt.MouseButton.LeftButton:
            return
        self._rect = _span(self._origin, event.position().toPoint())
        self._origin = None
        self._finish(None if self._rect.isEmpty() else self.device_rect(self._rect))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self._finish(None)
        else:
            super().keyPressEvent(event)

    def _finish(self, rect: QRect | None) -> None:
        if self._done:
            return
        self._done = True
        self.close()
        if rect is None or rect.isEmpty():
            self.cancelled.emit()
        else:
            self.selected.emit(rect)


def _tag(painter: QPainter, at: QPoint, text: str, *, centred: bool = False) -> None:
    """White text on a dark pill at ``at`` (its top-left, or its top centre): readable on
    any screen content."""
    box = painter.fontMetrics().boundingRect(text).adjusted(-6, -3, 6, 3)
    box.moveTopLeft(at - QPoint(box.width() // 2, 0) if centred else at)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(_TAG)
    painter.drawRoundedRect(box, 4, 4)
    painter.setPen(_EDGE)
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


def _span(a: QPoint, b: QPoint) -> QRect:
    """The rectangle between two drag points; ``b`` is exclusive (a click has no area)."""
    left, right = sorted((a.x(), b.x()))
    top, bottom = sorted((a.y(), b.y()))
    return QRect(left, top, right - left, bottom - top)


class ScreenCapturer(QObject):
    """Grabs the screen, a region of it, or the clipboard image.

    Args:
        window: the lfmdesk window; hidden during a screen grab and shown again after.
        parent: Qt parent.
        delay_ms: how long to wait after hiding before grabbing.

    Signals:
        captured(object): a ``PIL.Image.Image`` in RGB, in real (device) pixels.
        cancelled(): the region was not chosen (Esc, empty drag).
        problem(str): a one-line message (empty grab, permission missing, no clipboard image).
    """

    captured = Signal(object)
    cancelled = Signal()
    problem = Signal(str)

    def __init__(
        self,
        window: QWidget | None,
        parent: QObject | None = None,
        delay_ms: int = _HIDE_DELAY_MS,
    ) -> None:
        super().__init__(parent)
        self._window = window
        self._was_visible = False
        self._mode = ""
        self._shot = QPixmap()
        self.overlay: RegionOverlay | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._grab)

    @property
    def busy(self) -> bool:
        """A capture is under way (window hidden or region overlay open)."""
        return bool(self._mode)

    @Slot()
    def capture_screen(self) -> None:
        """Capture the whole screen under the cursor."""
        self._begin("screen")

    @Slot()
    def capture_region(self) -> None:
        """Freeze the screen under the cursor and let the user drag a rectangle on it."""
        self._begin("region")

    @Slot()
    def capture_clipboard(self) -> None:
        """Take the clipboard's image data, or the image file it names."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasImage():
            image = QGuiApplication.clipboard().image()
            if not image.isNull():
                self.captured.emit(qimage_to_pil(image))
                return
        paths = [u.toLocalFile() for u in mime.urls()] if mime is not None else []
        files = [p for p in paths if p and Path(p).suffix.lower() in IMAGE_SUFFIXES]
        if not files:
            self.problem.emit(NO_CLIPBOARD_IMAGE)
            return
        try:
            self.captured.emit(load_image(files[0]).image)
        except LfmdeskError as exc:
            self.problem.emit(str(exc))

    def _begin(self, mode: str) -> None:
        if self._mode:
            return  # one capture at a time; a second shortcut press is ignored
        self._mode = mode
        self._was_visible = self._window is not None and self._window.isVisible()
        if self._was_visible and self._window is not None:
            self._window.hide()
        self._timer.start()

    @Slot()
    def _grab(self) -> None:
        screen = QGuiApplication.screenAt(QCursor.pos()) or QGuiApplication.primaryScreen()
        shot = screen.grabWindow(0) if screen is not None else QPixmap()
        message = self._grab_problem(shot)
        if message:
            self._end()
            self.problem.emit(message)
        elif self._mode == "screen":
            self._end()
            self.captured.emit(qimage_to_pil(shot.toImage()))
        elif screen is not None:
            self._shot = shot
            self.overlay = RegionOverlay(shot, screen)
            self.overlay.selected.connect(self._on_selected)
            self.overlay.cancelled.connect(self._on_cancelled)
            self.overlay.open()

    @staticmethod
    def _grab_problem(shot: QPixmap) -> str:
        allowed = screen_capture_allowed()
        if allowed is False:
            return PERMISSION_HELP
        if shot.isNull():
            return EMPTY_CAPTURE
        # A small copy is enough to tell a flat grab, and cheap on a 5K screen.
        probe = shot.toImage().scaled(
            _PROBE,
            _PROBE,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        if looks_blank(qimage_to_pil(probe)):
            return PERMISSION_HELP if sys.platform == "darwin" else EMPTY_CAPTURE
        return ""

    @Slot(QRect)
    def _on_selected(self, rect: QRect) -> None:
        crop = self._shot.toImage().copy(rect)
        self._end()
        self.captured.emit(qimage_to_pil(crop))

    @Slot()
    def _on_cancelled(self) -> None:
        self._end()
        self.cancelled.emit()

    def _end(self) -> None:
        """Back to normal: the window is shown again whatever happened."""
        self._mode = ""
        self._shot = QPixmap()
        self.overlay = None
        if self._was_visible and self._window is not None:
            self._window.show()
            self._window.raise_()
            self._window.activateWindow()
        self._was_visible = False
