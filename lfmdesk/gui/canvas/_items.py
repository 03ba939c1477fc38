"""Pieces of :class:`lfmdesk.gui.canvas._canvas.ImageCanvas`: boxes, tags, the tile overlay, labels.

Every item carries ``item.data(KIND)``: ``"box"``, ``"tile"``, ``"thumbnail"`` or ``"tag"``,
so tests and the canvas can find them without keeping parallel lists.

::

    layer = Layer(z=2.0)
    scene.addItem(layer)
    BoxItem(detection, layer)
    banner = build_tile_overlay(plan, tile_layer)
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QMimeData, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QDragMoveEvent,
    QDropEvent,
    QFont,
    QFontMetricsF,
    QImage,
    QKeySequence,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QFrame,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsSimpleTextItem,
    QGraphicsView,
    QLabel,
    QStyleOptionGraphicsItem,
    QWidget,
)

from lfmdesk.core import Detection, Tile, TilePlan
from lfmdesk.core.images._draw import label_color

__all__ = [
    "KIND",
    "BoxItem",
    "DropTarget",
    "GridRect",
    "Layer",
    "OverlayLabel",
    "Tag",
    "build_tile_overlay",
    "drop_hint",
    "dropped_image",
    "local_files",
    "tile_name_at",
]

KIND = 0  # QGraphicsItem.data() key naming what an item shows

# PySide6 6.12.0 on CPython 3.11 drops a reference to None on every call of a void Qt
# method from Python (setPen, drawRect, setPos...); after ~25,000 such calls the process
# aborts ("none_dealloc"). So items here have no Python paint(), which would make such calls
# on every repaint, and the canvas touches only the items that change.

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


class Tag(QGraphicsPathItem):
    """Text on a filled rounded rectangle that keeps its screen size at any zoom.

    Its position is the anchor in the parent's coordinates; ``offset`` (screen pixels) moves
    the rectangle away from it. Built from Qt's own items, with no Python ``paint`` (see the
    PySide note at the top).
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
        font = QFont()
        font.setBold(bold)
        metrics = QFontMetricsF(font)
        width = metrics.horizontalAdvance(text) + 10
        height = metrics.height() + 4
        shift = offset or QPointF(0, 0)
        top = shift.y() - (height if above else 0.0)
        rect = QRectF(shift.x(), top, width, height)
        path = QPainterPath()
        path.addRoundedRect(rect, 3, 3)
        self.setPath(path)
        self.setPen(Qt.PenStyle.NoPen)
        self.setBrush(QColor(fill))
        label = QGraphicsSimpleTextItem(text, self)
        label.setFont(font)
        label.setBrush(_ink_for(QColor(fill)))
        label.setPos(rect.x() + 5, rect.y() + 2)

    def text(self) -> str:
        """The tag's text."""
        return self._text


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
        # The dark line is a sibling drawn first, not a Python paint() (PySide note).
        QGraphicsRectItem(rect, parent).setPen(_cosmetic(_UNDERLINE, 1.5))
        super().__init__(rect, parent)
        self.setPen(_cosmetic(color, 1.5, Qt.PenStyle.DashLine))
        self.setData(KIND, kind)


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


def style_picture_view(view: QGraphicsView) -> None:
    """The look every picture view shares: frameless, window-coloured, smooth, repainted whole."""
    view.setFrameShape(QFrame.Shape.NoFrame)
    # The window colour rather than Base (white): white pictures keep a visible edge.
    view.viewport().setBackgroundRole(QPalette.ColorRole.Window)
    view.setRenderHints(
        QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
    )
    # Cosmetic pens and zoom-independent labels outgrow their item bounds; repaint it all.
    view.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)


def local_files(mime: QMimeData) -> list[str]:
    """The local file paths a drag or drop carries (web links are left out)."""
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def dropped_image(mime: QMimeData) -> QImage | None:
    """The image data a drag or drop carries, if any."""
    data = mime.imageData() if mime.hasImage() else None
    if isinstance(data, QPixmap):
        data = data.toImage()
    return data if isinstance(data, QImage) and not data.isNull() else None


def drop_hint(viewport: QWidget) -> OverlayLabel:
    """The "Drop an image here" hint shown on an empty canvas."""
    hint = OverlayLabel(viewport, "canvasHint")
    hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
    hint.setWordWrap(True)
    font = hint.font()
    font.setPointSizeF(font.pointSizeF() * 1.2)
    hint.setFont(font)
    hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    paste = QKeySequence(QKeySequence.StandardKey.Paste).toString(
        QKeySequence.SequenceFormat.NativeText
    )
    hint.setText(f"Drop an image here, paste ({paste}) or File ▸ Open")
    return hint


class DropTarget(QObject):
    """Takes file and image drops on a widget (an event filter); :attr:`active` while hovering.

    Signals:
        filesDropped(list): local file paths.
        imageDropped(object): a QImage, when the drop carries image data rather than files.
    """

    filesDropped = Signal(list)
    imageDropped = Signal(object)

    def __init__(self, widget: QWidget) -> None:
        """Accept drops on ``widget``; it is repainted when :attr:`active` changes."""
        super().__init__(widget)
        self._widget = widget
        self.active = False
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Handle drag enter/move/leave and drop; everything else passes on."""
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            assert isinstance(event, QDragMoveEvent)
            accept = bool(local_files(event.mimeData()) or event.mimeData().hasImage())
            if accept:
                event.acceptProposedAction()
            else:
                event.ignore()
            self._set_active(accept)
        elif kind == QEvent.Type.DragLeave:
            self._set_active(False)
            event.accept()
        elif kind == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)
            self._set_active(False)
            self.drop(event)
        else:
            return False
        return True

    def drop(self, event: QDropEvent) -> None:
        """Emit filesDropped for local files, else imageDropped for image data."""
        files = local_files(event.mimeData())
        image = None if files else dropped_image(event.mimeData())
        if files:
            self.filesDropped.emit(files)
        elif image is not None:
            self.imageDropped.emit(image)
        else:
            event.ignore()
            return
        event.acceptProposedAction()

    def paint_outline(self, painter: QPainter) -> None:
        """Outline the widget in the highlight colour while a drop hovers over it."""
        if not self.active:
            return
        painter.save()
        painter.resetTransform()
        pen = painter.pen()
        pen.setColor(self._widget.palette().color(QPalette.ColorRole.Highlight))
        pen.setWidthF(3.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(self._widget.rect()).adjusted(2, 2, -2, -2), 6, 6)
        painter.restore()

    def _set_active(self, active: bool) -> None:
        if active != self.active:
            self.active = active
            self._widget.update()


def tile_name_at(plan: TilePlan | None, pos: QPointF) -> str:
    """``"tile r1c2"`` for the tile of ``plan`` under scene point ``pos``; "" if none."""
    for tile in plan.tiles if plan is not None else ():
        x1, y1, x2, y2 = tile.box
        if x1 <= pos.x() < x2 and y1 <= pos.y() < y2:
            return f"tile r{tile.row + 1}c{tile.col + 1}"
    return ""
