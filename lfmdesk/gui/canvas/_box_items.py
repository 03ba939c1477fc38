"""Editable annotation boxes on the canvas: the box item, its handles and drag geometry.

An :class:`EditBoxItem` shows one :class:`~lfmdesk.core.datasets._annotations.Box`: a solid outline
for a person's box, a dashed one for the model's, a tag in the label's colour, and eight
screen-sized handles while it is the only box selected. It never edits the model: the
canvas moves or reshapes it live during a drag and then emits one intent.

::

    item = EditBoxItem(box, layer)
    item.set_selected(True, handles=True)
    item.show_rect(resized_rect(item.box_rect(), (1, 1), QPointF(5, 5), (800, 600)))
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsItem, QGraphicsRectItem

from lfmdesk.core.datasets._annotations import MODEL, Box
from lfmdesk.core.images._draw import label_color
from lfmdesk.gui.canvas._items import KIND, Tag

__all__ = [
    "HANDLES",
    "EditBoxItem",
    "Handle",
    "clamp_shift",
    "handle_cursor",
    "pixels_of",
    "resized_rect",
]

# A handle says which edges it drags: -1 the left/top edge, 1 the right/bottom one, 0 neither.
Handle = tuple[int, int]
HANDLES: tuple[Handle, ...] = (
    (-1, -1),
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
)
_CURSORS = {
    (-1, -1): Qt.CursorShape.SizeFDiagCursor,
    (1, 1): Qt.CursorShape.SizeFDiagCursor,
    (1, -1): Qt.CursorShape.SizeBDiagCursor,
    (-1, 1): Qt.CursorShape.SizeBDiagCursor,
    (0, -1): Qt.CursorShape.SizeVerCursor,
    (0, 1): Qt.CursorShape.SizeVerCursor,
    (-1, 0): Qt.CursorShape.SizeHorCursor,
    (1, 0): Qt.CursorShape.SizeHorCursor,
}
_WIDTH, _WIDTH_SELECTED = 2.0, 3.0
_HANDLE_SIZE = 8.0  # screen pixels
_SELECTED_FILL_ALPHA = 40
_HOVER_FILL_ALPHA = 48
_UNDERLINE = QColor(0, 0, 0, 150)
_HANDLE_FILL = QColor(255, 255, 255)


def handle_cursor(handle: Handle) -> Qt.CursorShape:
    """The resize cursor for ``handle``."""
    return _CURSORS[handle]


def handle_point(rect: QRectF, handle: Handle) -> QPointF:
    """Where ``handle`` sits on ``rect``."""
    hx, hy = handle
    x = (rect.left(), rect.center().x(), rect.right())[hx + 1]
    y = (rect.top(), rect.center().y(), rect.bottom())[hy + 1]
    return QPointF(x, y)


def _pen(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # the same on-screen width at every zoom
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def _rect(px: tuple[int, int, int, int]) -> QRectF:
    x1, y1, x2, y2 = px
    return QRectF(x1, y1, x2 - x1, y2 - y1)


def _round(value: float, size: int) -> int:
    return min(max(int(value + 0.5) if value >= 0 else 0, 0), size)


def pixels_of(rect: QRectF, size: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """``rect`` as integer image pixels (ordered, rounded, clamped); None when it has no area."""
    width, height = size
    r = rect.normalized()
    x1, x2 = _round(r.left(), width), _round(r.right(), width)
    y1, y2 = _round(r.top(), height), _round(r.bottom(), height)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def resized_rect(rect: QRectF, handle: Handle, delta: QPointF, size: tuple[int, int]) -> QRectF:
    """``rect`` with the edges ``handle`` names moved by ``delta``, kept in the image.

    Dragging an edge past the opposite one flips the box rather than inverting it.
    """
    left, top, right, bottom = rect.left(), rect.top(), rect.right(), rect.bottom()
    hx, hy = handle
    width, height = size
    if hx < 0:
        left = min(max(left + delta.x(), 0.0), float(width))
    elif hx > 0:
        right = min(max(right + delta.x(), 0.0), float(width))
    if hy < 0:
        top = min(max(top + delta.y(), 0.0), float(height))
    elif hy > 0:
        bottom = min(max(bottom + delta.y(), 0.0), float(height))
    return QRectF(QPointF(left, top), QPointF(right, bottom)).normalized()


def clamp_shift(boxes: list[Box], dx: int, dy: int, size: tuple[int, int]) -> tuple[int, int]:
    """(dx, dy) limited so every one of ``boxes`` stays inside the image: they move as one."""
    if not boxes:
        return 0, 0
    width, height = size
    low_x = -min(b.px[0] for b in boxes)
    high_x = width - max(b.px[2] for b in boxes)
    low_y = -min(b.px[1] for b in boxes)
    high_y = height - max(b.px[3] for b in boxes)
    return min(max(dx, low_x), high_x), min(max(dy, low_y), high_y)


class _HandleItem(QGraphicsRectItem):
    """A small white square that keeps its screen size at any zoom."""

    def __init__(self, handle: Handle, color: QColor, parent: QGraphicsItem) -> None:
        half = _HANDLE_SIZE / 2
        super().__init__(QRectF(-half, -half, _HANDLE_SIZE, _HANDLE_SIZE), parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setData(KIND, "handle")
        self.handle = handle
        self.setPen(_pen(color, 1.5))
        self.setBrush(_HANDLE_FILL)


class EditBoxItem(QGraphicsRectItem):
    """One annotation box: outline, label tag, and handles while selected alone."""

    def __init__(self, box: Box, parent: QGraphicsItem) -> None:
        """Show ``box`` (pixel coordinates of the oriented image)."""
        super().__init__(_rect(box.px), parent)
        self.box = box
        self.color = QColor(*label_color(box.label))
        self.setData(KIND, "box")
        self._selected = False
        self._highlighted = False
        self._tag = Tag(box.label, self.color, self, bold=True)
        self._tag.setPos(self.rect().topLeft())
        self._handles: list[_HandleItem] = []  # made on first selection (PySide note)
        self._underline: QGraphicsRectItem | None = None
        if self.by_model:
            # Dashes over a thin dark line show on light pictures too; a child item rather
            # than a Python paint() (see the PySide note in _canvas_items).
            self._underline = QGraphicsRectItem(self.rect(), self)
            self._underline.setFlag(QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            self._underline.setPen(_pen(_UNDERLINE, 1.0))
        self.setToolTip(self.describe())
        self._restyle()

    @property
    def by_model(self) -> bool:
        """The model made this box and nobody has touched it since."""
        return self.box.source == MODEL

    def box_rect(self) -> QRectF:
        """The box's rectangle in image pixels (as saved, not as dragged)."""
        return _rect(self.box.px)

    def describe(self) -> str:
        """``"cat [x1, y1, x2, y2] px (nx1, ny1, nx2, ny2) · by the model"``."""
        px = ", ".join(str(v) for v in self.box.px)
        scene = self.scene()
        size = scene.sceneRect() if scene is not None else QRectF()
        parts = [f"{self.box.label} [{px}] px"]
        if not size.isEmpty():
            norm = self.box.normalized(int(size.width()), int(size.height()))
            parts[0] += " (" + ", ".join(f"{v:.3f}" for v in norm) + ")"
        parts.append("by the model" if self.by_model else "by you")
        return " · ".join(parts)

    def is_selected(self) -> bool:
        """Whether the box is in the canvas's selection."""
        return self._selected

    def set_selected(self, on: bool, *, handles: bool = False) -> None:
        """Mark the box selected; ``handles`` shows its resize handles."""
        show = on and handles
        if show and not self._handles:
            self._handles = [_HandleItem(h, self.color, self) for h in HANDLES]
            self._place_handles()
        elif self._handles and self._handles[0].isVisible() != show:
            for handle in self._handles:
                handle.setVisible(show)
        if on != self._selected:
            self._selected = on
            self._restyle()

    def set_highlighted(self, on: bool) -> None:
        """Thicken and tint the box while the cursor is over it."""
        if on != self._highlighted:
            self._highlighted = on
            self._restyle()

    def show_rect(self, rect: QRectF) -> None:
        """Draw the box at ``rect`` for a live resize, without changing :attr:`box`."""
        self.setRect(rect)
        self._tag.setPos(rect.topLeft())
        if self._underline is not None:
            self._underline.setRect(rect)
        self._place_handles()

    def handle_at(self, view_pos: QPointF, to_view: Callable[[QPointF], QPointF]) -> Handle | None:
        """The visible handle within reach of ``view_pos`` (``to_view`` maps scene to view)."""
        if not any(h.isVisible() for h in self._handles):
            return None
        reach = _HANDLE_SIZE / 2 + 3
        for item in self._handles:
            point = to_view(self.mapToScene(item.pos()))
            if abs(point.x() - view_pos.x()) <= reach and abs(point.y() - view_pos.y()) <= reach:
                return item.handle
        return None

    def _place_handles(self) -> None:
        for item in self._handles:
            item.setPos(handle_point(self.rect(), item.handle))

    def _restyle(self) -> None:
        style = Qt.PenStyle.DashLine if self.by_model else Qt.PenStyle.SolidLine
        strong = self._selected or self._highlighted
        self.setPen(_pen(self.color, _WIDTH_SELECTED if strong else _WIDTH, style))
        fill = QColor(self.color)
        alpha = _HOVER_FILL_ALPHA if self._highlighted else _SELECTED_FILL_ALPHA
        fill.setAlpha(alpha if strong else 0)
        self.setBrush(fill)
        # The tag of the box in focus rises above overlapping boxes' tags.
        self.setZValue(1.0 if strong else 0.0)
