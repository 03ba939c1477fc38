"""Pieces of :class:`lfmdesk.gui._canvas.ImageCanvas`: boxes, tags, the tile overlay, labels.

Every item carries ``item.data(KIND)``: ``"box"``, ``"tile"``, ``"thumbnail"`` or ``"tag"``,
so tests and the canvas can find them without keeping parallel lists.

::

    layer = Layer(z=2.0)
    scene.addItem(layer)
    BoxItem(detection, layer)
    banner = build_tile_overlay(plan, tile_layer)
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent, QPalette, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QLabel,
    QStyleOptionGraphicsItem,
    QWidget,
)

from lfmdesk.core import Detection, Tile, TilePlan
from lfmdesk.core._draw import label_color

__all__ = ["KIND", "BoxItem", "GridRect", "Layer", "OverlayLabel", "Tag", "build_tile_overlay"]

KIND = 0  # QGraphicsItem.data() key naming what an item shows

_BOX_WIDTH, _BOX_HOVER_WIDTH = 2.0, 4.0
_HOVER_FILL_ALPHA = 48
_GRID_LINE = QColor(255, 255, 255, 230)
_THUMB_LINE = QColor(255, 196, 0, 240)
_UNDERLINE = QColor(0, 0, 0, 150)  # drawn under dashed lines so they show on light images too
_TAG_DARK = QColor(20, 20, 20, 185)
_INSET_FRACTION = 0.25  # the thumbnail inset fits in this fraction of the image's sides
_INSET_MARGIN = 0.02


def _ink_for(fill: QColor) -> QColor:
    """Black or white, whichever reads better on ``fill``."""
    luma = 0.299 * fill.red() + 0.587 * fill.green() + 0.114 * fill.blue()
    # A translucent fill shows the picture through; the overlays use dark ones.
    light = fill.alpha() >= 160 and luma >= 150
    return QColor(Qt.GlobalColor.black) if light else QColor(Qt.GlobalColor.white)


def _cosmetic(color: QColor, width: float, style: Qt.PenStyle = Qt.PenStyle.SolidLine) -> QPen:
    pen = QPen(color, width, style)
    pen.setCosmetic(True)  # same on-screen width at every zoom
    pen.setJoinStyle(Qt.PenJoinStyle.MiterJoin)
    return pen


def _rect(box: tuple[int, int, int, int]) -> QRectF:
    x1, y1, x2, y2 = box
    return QRectF(x1, y1, x2 - x1, y2 - y1)


class Layer(QGraphicsItem):
    """An empty parent giving its children one stacking order and one visibility switch."""

    def __init__(self, z: float) -> None:
        """Create a layer at stacking order ``z``."""
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
        self.setZValue(z)

    def boundingRect(self) -> QRectF:
        """Empty: a layer draws nothing itself."""
        return QRectF()

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Nothing to paint."""


class Tag(QGraphicsItem):
    """Text on a filled rounded rectangle that keeps its screen size at any zoom.

    Its position is the anchor in the parent's coordinates; ``offset`` (screen pixels) moves
    the rectangle away from it.
    """

    def __init__(
        self,
        text: str,
        fill: QColor,
        parent: QGraphicsItem,
        *,
        bold: bool = False,
        offset: QPointF | None = None,
        above: bool = False,
    ) -> None:
        """Create a tag; ``above`` puts its bottom edge (rather than its top) at the anchor."""
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.setData(KIND, "tag")
        self._text = text
        self._fill = QColor(fill)
        self._ink = _ink_for(self._fill)
        self._font = QFont()
        self._font.setBold(bold)
        metrics = QFontMetricsF(self._font)
        width = metrics.horizontalAdvance(text) + 10
        height = metrics.height() + 4
        shift = offset or QPointF(0, 0)
        top = shift.y() - (height if above else 0.0)
        self._rect = QRectF(shift.x(), top, width, height)

    def text(self) -> str:
        """The tag's text."""
        return self._text

    def boundingRect(self) -> QRectF:
        """The filled rectangle, in screen pixels."""
        return self._rect

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Draw the rectangle and the text."""
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self._fill)
        painter.drawRoundedRect(self._rect, 3, 3)
        painter.setPen(self._ink)
        painter.setFont(self._font)
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self._text)


class BoxItem(QGraphicsRectItem):
    """One detection: an outline in its label's colour with a label tag at the top-left."""

    def __init__(self, detection: Detection, parent: QGraphicsItem) -> None:
        """Create the box for ``detection`` (pixel coordinates of the oriented image)."""
        super().__init__(_rect(detection.box_px), parent)
        self.detection = detection
        self.color = QColor(*label_color(detection.label))
        self.setData(KIND, "box")
        self.setToolTip(self.describe())
        tag = Tag(detection.label, self.color, self, bold=True)
        tag.setPos(self.rect().topLeft())
        self.set_highlighted(False)

    def describe(self) -> str:
        """``"cat [x1, y1, x2, y2] px (nx1, ny1, nx2, ny2)"`` for the status bar."""
        px = ", ".join(str(v) for v in self.detection.box_px)
        norm = ", ".join(f"{v:.3f}" for v in self.detection.box)
        return f"{self.detection.label} [{px}] px ({norm})"

    def set_highlighted(self, on: bool) -> None:
        """Thicken and tint the box while the cursor is over it."""
        self.setPen(_cosmetic(self.color, _BOX_HOVER_WIDTH if on else _BOX_WIDTH))
        fill = QColor(self.color)
        fill.setAlpha(_HOVER_FILL_ALPHA if on else 0)
        self.setBrush(fill)
        self.setZValue(1.0 if on else 0.0)  # its tag rises above overlapping boxes' tags


class GridRect(QGraphicsRectItem):
    """A dashed rectangle over a thin dark line, so it shows on light and dark pictures."""

    def __init__(self, rect: QRectF, color: QColor, kind: str, parent: QGraphicsItem) -> None:
        """Create a rectangle of ``kind`` ("tile" or "thumbnail")."""
        super().__init__(rect, parent)
        self.setPen(_cosmetic(color, 1.5, Qt.PenStyle.DashLine))
        self.setData(KIND, kind)

    def paint(
        self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None
    ) -> None:
        """Draw the dark line, then the dashed one on top."""
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(_cosmetic(_UNDERLINE, 1.5))
        painter.drawRect(self.rect())
        painter.setPen(self.pen())
        painter.drawRect(self.rect())


def _tile_label(tile: Tile) -> str:
    return f"r{tile.row + 1}c{tile.col + 1} · {tile.tokens} tok"


def _inset_rect(plan: TilePlan, thumb: Tile) -> QRectF:
    """A rectangle with the thumbnail's aspect ratio in the image's bottom-right corner."""
    width, height = plan.image_size
    tw, th = thumb.size
    scale = _INSET_FRACTION * min(width / tw, height / th)
    margin = _INSET_MARGIN * min(width, height)
    w, h = tw * scale, th * scale
    return QRectF(width - margin - w, height - margin - h, w, h)


def build_tile_overlay(plan: TilePlan, layer: QGraphicsItem) -> str:
    """Add ``plan``'s tile grid, thumbnail inset and labels under ``layer``.

    Returns:
        The banner text: ``"2,300 image tokens · 2×4 tiles + thumbnail"`` (plus the plan's
        problem on a second line when the model cannot run it).
    """
    tokens = f"{plan.image_tokens:,} image tokens"
    for tile in plan.tiles:
        rect = GridRect(_rect(tile.box), _GRID_LINE, "tile", layer)
        tag = Tag(_tile_label(tile), _TAG_DARK, rect, offset=QPointF(4, 4))
        tag.setPos(rect.rect().topLeft())
    thumb = plan.thumbnail
    rows, cols = plan.grid
    if plan.tiles:
        banner = f"{tokens} · {rows}×{cols} tiles" + (" + thumbnail" if thumb else "")
        if thumb is not None:
            inset = GridRect(_inset_rect(plan, thumb), _THUMB_LINE, "thumbnail", layer)
            w, h = thumb.size
            label = f"thumbnail {w}×{h} · {thumb.tokens} tok"
            tag = Tag(label, _TAG_DARK, inset, offset=QPointF(0, -3), above=True)
            tag.setPos(inset.rect().topLeft())
    else:
        banner = f"{tokens} · single view"
        if thumb is not None:
            w, h = thumb.size
            corner = QPointF(0, plan.image_size[1])
            label = f"single view {w}×{h} · {thumb.tokens} tok"
            tag = Tag(label, _TAG_DARK, layer, offset=QPointF(4, -4), above=True)
            tag.setPos(corner)
    problem = plan.problem()
    return f"{banner}\n⚠ {problem}" if problem else banner


class OverlayLabel(QLabel):
    """A label on the viewport that never takes mouse events or drops."""

    def __init__(self, parent: QWidget, object_name: str, *, panel: bool = False) -> None:
        """Create a hidden label; a ``panel`` gets a translucent rounded backing."""
        super().__init__(parent)
        self.setObjectName(object_name)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._panel = panel
        if panel:
            self.setContentsMargins(8, 4, 8, 4)
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A panel gets a translucent rounded backing in the palette's window colour."""
        if self._panel:
            fill = self.palette().color(QPalette.ColorRole.Window)
            fill.setAlpha(225)
            painter = QPainter(self)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(fill)
            painter.drawRoundedRect(QRectF(self.rect()), 6, 6)
            painter.end()
        super().paintEvent(event)
