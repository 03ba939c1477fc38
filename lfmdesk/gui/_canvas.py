"""The image canvas: the picture the model sees, its detections and the tiling inspector.

::

    canvas = ImageCanvas()
    canvas.filesDropped.connect(controller.open_files)      # list[str]
    canvas.imageDropped.connect(controller.open_qimage)     # QImage
    canvas.hoverText.connect(status_bar.showMessage)
    canvas.set_image(loaded)                                # a LoadedImage, or None
    canvas.set_detections(result.detections)
    canvas.set_tile_plan(plan_tiles(loaded.width, loaded.height, vision))

Stacking: image < tile grid < boxes, so the inspector never hides a detection. Boxes and
labels keep their on-screen size at any zoom. Ctrl/⌘+wheel or a pinch zooms, dragging pans
when zoomed, a double-click fits the image again.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QMimeData, QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import (
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QMouseEvent,
    QNativeGestureEvent,
    QPainter,
    QPalette,
    QPixmap,
    QResizeEvent,
    QShowEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QFrame,
    QGestureEvent,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QPinchGesture,
    QWidget,
)

from lfmdesk.core import Detection, LoadedImage, TilePlan
from lfmdesk.gui._canvas_items import KIND, BoxItem, Layer, OverlayLabel, build_tile_overlay
from lfmdesk.gui._qtimage import display_pixmap

__all__ = ["KIND", "ImageCanvas"]

_MAX_ZOOM = 32.0
_FIT_MARGIN = 10  # view pixels around a fitted image
_MIN_ZOOM_OF_FIT = 0.25
_WHEEL_STEP = 1.0015  # zoom factor per 1/8 degree of wheel rotation
_Z_IMAGE, _Z_TILES, _Z_BOXES = 0.0, 1.0, 2.0


def _local_files(mime: QMimeData) -> list[str]:
    return [url.toLocalFile() for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def _dropped_image(mime: QMimeData) -> QImage | None:
    data = mime.imageData() if mime.hasImage() else None
    if isinstance(data, QPixmap):
        data = data.toImage()
    return data if isinstance(data, QImage) and not data.isNull() else None


class ImageCanvas(QGraphicsView):
    """Shows a :class:`LoadedImage` with detection boxes and an optional tile-plan overlay.

    Signals:
        filesDropped(list): local file paths dropped on the canvas.
        imageDropped(object): a QImage, when a drop carries image data rather than files.
        hoverText(str): cursor position (and the box under it) for the status bar; "" on leave.
    """

    filesDropped = Signal(list)
    imageDropped = Signal(object)
    hoverText = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build an empty canvas showing the drop hint."""
        super().__init__(parent)
        self._image: LoadedImage | None = None
        self._plan: TilePlan | None = None
        self._auto_fit = True
        self._hovered: BoxItem | None = None
        self._hover_text = ""
        self._drop_active = False
        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setScene(scene)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._pixmap_item.setZValue(_Z_IMAGE)
        self._tile_layer = Layer(_Z_TILES)
        self._box_layer = Layer(_Z_BOXES)
        for item in (self._pixmap_item, self._tile_layer, self._box_layer):
            scene.addItem(item)
        self._configure_view()
        self._hint = OverlayLabel(self.viewport(), "canvasHint")
        self._hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._hint.setWordWrap(True)
        hint_font = self._hint.font()
        hint_font.setPointSizeF(hint_font.pointSizeF() * 1.2)
        self._hint.setFont(hint_font)
        self._hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        paste = QKeySequence(QKeySequence.StandardKey.Paste).toString(
            QKeySequence.SequenceFormat.NativeText
        )
        self._hint.setText(f"Drop an image here, paste ({paste}) or File ▸ Open")
        self._banner = OverlayLabel(self.viewport(), "canvasBanner", panel=True)
        self.set_image(None)

    def _configure_view(self) -> None:
        self.setFrameShape(QFrame.Shape.NoFrame)
        # The window colour rather than Base (white): white pictures keep a visible edge.
        self.viewport().setBackgroundRole(QPalette.ColorRole.Window)
        self.setRenderHints(
            QPainter.RenderHint.Antialiasing | QPainter.RenderHint.SmoothPixmapTransform
        )
        # Cosmetic pens and zoom-independent labels outgrow their item bounds; repaint it all.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        if sys.platform != "darwin":
            # On macOS a trackpad pinch arrives as a native zoom gesture (handled below);
            # grabbing QPinchGesture there as well would zoom twice.
            self.viewport().grabGesture(Qt.GestureType.PinchGesture)

    # ----------------------------------------------------------------- public API
    def set_image(self, image: LoadedImage | None) -> None:
        """Show ``image`` fitted to the view, or the drop hint for None.

        A new image clears the boxes and the tile overlay: they belong to the old one.
        """
        self._image = image
        self.set_detections(())
        self.set_tile_plan(None)
        if image is None:
            self._pixmap_item.setPixmap(QPixmap())
            self.scene().setSceneRect(QRectF())
        else:
            self._pixmap_item.setPixmap(display_pixmap(image))
            self.scene().setSceneRect(QRectF(0, 0, image.width, image.height))
        self._hint.setVisible(image is None)
        self._set_hover(None, "")
        self.fit()

    def set_detections(self, detections: Sequence[Detection]) -> None:
        """Replace the boxes with one per detection (in the image's pixel coordinates)."""
        self._set_hover(None, self._hover_text)
        for child in self._box_layer.childItems():
            self.scene().removeItem(child)
        for detection in detections:
            BoxItem(detection, self._box_layer)

    def set_boxes_visible(self, visible: bool) -> None:
        """Show or hide all boxes and their labels."""
        self._box_layer.setVisible(visible)
        if not visible:
            self._set_hover(None, self._hover_text)

    def boxes_visible(self) -> bool:
        """Whether boxes are shown."""
        return self._box_layer.isVisible()

    def box_count(self) -> int:
        """How many detection boxes are drawn."""
        return len(self._box_layer.childItems())

    def tile_plan(self) -> TilePlan | None:
        """The tile plan overlaid now, if any."""
        return self._plan

    def set_tile_plan(self, plan: TilePlan | None) -> None:
        """Overlay ``plan``'s tiles, thumbnail and token banner; None removes the overlay."""
        self._plan = plan if self._image is not None else None
        for child in self._tile_layer.childItems():
            self.scene().removeItem(child)
        if self._plan is None:
            self._banner.hide()
            return
        self._banner.setText(build_tile_overlay(self._plan, self._tile_layer))
        self._banner.adjustSize()
        self._banner.show()
        self._place_overlays()

    @Slot()
    def fit(self) -> None:
        """Fit the whole image in the view; it then stays fitted as the view resizes."""
        self._auto_fit = True
        scale = self._fit_scale()
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(self.scene().sceneRect().center())
        self._update_drag_mode()

    # ------------------------------------------------------------------- zooming
    def _fit_scale(self) -> float:
        """The scale showing the whole image with a margin (boxes on its edges stay whole)."""
        rect = self.scene().sceneRect()
        # The size without scroll bars: a fitted image never needs them.
        view = self.maximumViewportSize()
        width, height = view.width() - 2 * _FIT_MARGIN, view.height() - 2 * _FIT_MARGIN
        if rect.isEmpty() or width <= 0 or height <= 0:
            return 1.0
        return min(width / rect.width(), height / rect.height())

    def _zoom_by(self, factor: float) -> None:
        if self._image is None or factor <= 0:
            return
        current = self.transform().m11()
        low = self._fit_scale() * _MIN_ZOOM_OF_FIT
        target = min(_MAX_ZOOM, max(low, current * factor))
        self.scale(target / current, target / current)
        self._auto_fit = False
        self._update_drag_mode()

    def _update_drag_mode(self) -> None:
        scrollable = (
            self.horizontalScrollBar().maximum() > 0 or self.verticalScrollBar().maximum() > 0
        )
        mode = (
            QGraphicsView.DragMode.ScrollHandDrag if scrollable else QGraphicsView.DragMode.NoDrag
        )
        self.setDragMode(mode)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Ctrl/⌘+wheel zooms under the cursor; a plain wheel scrolls."""
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self._zoom_by(_WHEEL_STEP ** event.angleDelta().y())
            event.accept()
            return
        super().wheelEvent(event)

    def viewportEvent(self, event: QEvent) -> bool:
        """Pinch gestures (touch screens) and native trackpad zoom (macOS)."""
        if isinstance(event, QNativeGestureEvent):
            if event.gestureType() == Qt.NativeGestureType.ZoomNativeGesture:
                self._zoom_by(1.0 + event.value())
                return True
        elif isinstance(event, QGestureEvent):
            pinch = event.gesture(Qt.GestureType.PinchGesture)
            if isinstance(pinch, QPinchGesture):
                self._zoom_by(pinch.scaleFactor())
                event.accept(pinch)
                return True
        return super().viewportEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        """Double-click fits the image."""
        self.fit()
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep a fitted image fitted and the hint and banner in place."""
        super().resizeEvent(event)
        if self._auto_fit:
            self.fit()
        self._place_overlays()

    def showEvent(self, event: QShowEvent) -> None:
        """Fit once the view has its real size."""
        super().showEvent(event)
        if self._auto_fit:
            self.fit()
        self._place_overlays()

    def _place_overlays(self) -> None:
        self._hint.setGeometry(self.viewport().rect().adjusted(24, 24, -24, -24))
        self._banner.move(8, 8)

    # -------------------------------------------------------------------- hover
    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Track the cursor for the status bar and box highlight."""
        super().mouseMoveEvent(event)
        self._hover_at(self.mapToScene(event.position().toPoint()))

    def leaveEvent(self, event: QEvent) -> None:
        """Clear the hover text and highlight."""
        super().leaveEvent(event)
        self._set_hover(None, "")

    def _hover_at(self, pos: QPointF) -> None:
        """Highlight the box under scene point ``pos`` and emit its description."""
        image = self._image
        if image is None or not QRectF(0, 0, image.width, image.height).contains(pos):
            self._set_hover(None, "")
            return
        box = self._box_at(pos)
        x, y = min(int(pos.x()), image.width - 1), min(int(pos.y()), image.height - 1)
        parts = [f"x {x}, y {y}", f"({pos.x() / image.width:.3f}, {pos.y() / image.height:.3f})"]
        if box is not None:
            parts.append(box.describe())
        tile = self._tile_at(pos)
        if tile:
            parts.append(tile)
        self._set_hover(box, " · ".join(parts))

    def _box_at(self, pos: QPointF) -> BoxItem | None:
        if not self._box_layer.isVisible():
            return None
        hits = [
            item
            for item in self._box_layer.childItems()
            if isinstance(item, BoxItem) and item.rect().contains(pos)
        ]
        # The smallest box is the most specific answer when boxes nest.
        return min(hits, key=lambda b: b.rect().width() * b.rect().height(), default=None)

    def _tile_at(self, pos: QPointF) -> str:
        if self._plan is None:
            return ""
        for tile in self._plan.tiles:
            x1, y1, x2, y2 = tile.box
            if x1 <= pos.x() < x2 and y1 <= pos.y() < y2:
                return f"tile r{tile.row + 1}c{tile.col + 1}"
        return ""

    def _set_hover(self, box: BoxItem | None, text: str) -> None:
        if box is not self._hovered:
            if self._hovered is not None and self._hovered.scene() is not None:
                self._hovered.set_highlighted(False)
            if box is not None:
                box.set_highlighted(True)
            self._hovered = box
        if text != self._hover_text:
            self._hover_text = text
            self.hoverText.emit(text)

    # ------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        """Accept local files and image data."""
        self._accept_drag(event)

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        """Keep accepting what dragEnterEvent accepted."""
        self._accept_drag(event)

    def dragLeaveEvent(self, event: QEvent) -> None:
        """Drop the highlight."""
        self._set_drop_active(False)
        event.accept()

    def _accept_drag(self, event: QDragMoveEvent) -> None:
        mime = event.mimeData()
        if _local_files(mime) or mime.hasImage():
            event.acceptProposedAction()
            self._set_drop_active(True)
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        """Emit filesDropped for local files, else imageDropped for image data."""
        self._set_drop_active(False)
        mime = event.mimeData()
        files = _local_files(mime)
        image = None if files else _dropped_image(mime)
        if files:
            self.filesDropped.emit(files)
        elif image is not None:
            self.imageDropped.emit(image)
        else:
            event.ignore()
            return
        event.acceptProposedAction()

    def _set_drop_active(self, active: bool) -> None:
        if active != self._drop_active:
            self._drop_active = active
            self.viewport().update()

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        """Outline the viewport while a drop is hovering over it."""
        super().drawForeground(painter, rect)
        if not self._drop_active:
            return
        painter.save()
        painter.resetTransform()
        pen = painter.pen()
        pen.setColor(self.palette().color(QPalette.ColorRole.Highlight))
        pen.setWidthF(3.0)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(self.viewport().rect()).adjusted(2, 2, -2, -2), 6, 6)
        painter.restore()
