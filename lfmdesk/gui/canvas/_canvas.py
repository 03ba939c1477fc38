"""The image canvas: the picture, its editable boxes, detections and the tiling inspector.

::

    canvas = ImageCanvas()
    canvas.filesDropped.connect(controller.open_files)      # list[str]
    canvas.imageDropped.connect(controller.open_qimage)     # QImage
    canvas.hoverText.connect(status_bar.showMessage)
    canvas.set_image(loaded)                                # a LoadedImage, or None
    canvas.set_annotation(editor.annotation)                # editable boxes
    canvas.boxDrawn.connect(editor.draw_box)                # ... and the other intents
    canvas.set_tile_plan(plan_tiles(loaded.width, loaded.height, vision))

Stacking: image < tile grid < boxes, so the inspector never hides a box. Boxes and labels
keep their on-screen size at any zoom. Ctrl/⌘+wheel or a pinch zooms, middle-drag or
Space+drag pans, a double-click on empty space fits the image again. With an annotation
shown, left-drag edits (see :mod:`lfmdesk.gui.canvas._edit`); the canvas only emits intents.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtCore import QEvent, QPointF, QRect, QRectF, Qt, Signal, Slot
from PySide6.QtGui import (
    QDropEvent,
    QKeyEvent,
    QMouseEvent,
    QNativeGestureEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QShowEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGestureEvent,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QPinchGesture,
    QWidget,
)

from lfmdesk.core import Detection, LoadedImage, TilePlan
from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.gui.canvas._box_items import EditBoxItem
from lfmdesk.gui.canvas._edit import CanvasEditing
from lfmdesk.gui.canvas._items import (
    KIND,
    BoxItem,
    DropTarget,
    Layer,
    OverlayLabel,
    build_tile_overlay,
    drop_hint,
    style_picture_view,
    tile_name_at,
)
from lfmdesk.gui.support._qtimage import display_pixmap

__all__ = ["KIND", "ImageCanvas"]

_MAX_ZOOM = 32.0
_FIT_MARGIN = 10  # view pixels around a fitted image
_MIN_ZOOM_OF_FIT = 0.25
_WHEEL_STEP = 1.0015  # zoom factor per 1/8 degree of wheel rotation
_Z_IMAGE, _Z_TILES, _Z_BOXES, _Z_EDIT = 0.0, 1.0, 2.0, 3.0


class ImageCanvas(QGraphicsView):
    """Shows a :class:`LoadedImage` with editable boxes and an optional tile-plan overlay.

    Signals:
        filesDropped(list): local file paths dropped on the canvas.
        imageDropped(object): a QImage, when a drop carries image data rather than files.
        hoverText(str): cursor position (and the box under it) for the status bar; "" on leave.
        boxDrawn(object): a new box was dragged out: ``(x1, y1, x2, y2)`` image pixels.
        boxesMoved(list, int, int): box ids dragged by (dx, dy) pixels (one drag).
        boxesNudged(list, int, int): box ids nudged by an arrow key (merge into one undo).
        boxResized(str, object): a box id and its new ``(x1, y1, x2, y2)``.
        deleteRequested(list): box ids to delete (Delete/Backspace).
        selectionChanged(list): the selected box ids, after any change.
        relabelRequested(list): box ids double-clicked, to get the current label.
    """

    filesDropped = Signal(list)
    imageDropped = Signal(object)
    hoverText = Signal(str)
    boxDrawn = Signal(object)
    boxesMoved = Signal(list, int, int)
    boxesNudged = Signal(list, int, int)
    boxResized = Signal(str, object)
    deleteRequested = Signal(list)
    selectionChanged = Signal(list)
    relabelRequested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build an empty canvas showing the drop hint."""
        super().__init__(parent)
        self._image: LoadedImage | None = None
        self._plan: TilePlan | None = None
        self._auto_fit = True
        self._hovered: BoxItem | EditBoxItem | None = None
        self._hover_text = ""
        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setScene(scene)
        self._pixmap_item = QGraphicsPixmapItem()
        self._pixmap_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._pixmap_item.setZValue(_Z_IMAGE)
        self._tile_layer = Layer(_Z_TILES)
        self._box_layer = Layer(_Z_BOXES)
        self._edit_layer = Layer(_Z_EDIT)
        for item in (self._pixmap_item, self._tile_layer, self._box_layer, self._edit_layer):
            scene.addItem(item)
        self._edit = CanvasEditing(self, self._edit_layer)
        self._configure_view()
        self._hint = drop_hint(self.viewport())
        self._drops = DropTarget(self.viewport())
        self._drops.filesDropped.connect(self.filesDropped)
        self._drops.imageDropped.connect(self.imageDropped)
        self._banner = OverlayLabel(self.viewport(), "canvasBanner", panel=True)
        self._loading = OverlayLabel(self.viewport(), "canvasLoading", panel=True)
        self._loading.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.set_image(None)

    def _configure_view(self) -> None:
        style_picture_view(self)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setAcceptDrops(True)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
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
        self._edit.set_annotation(None)
        self.set_tile_plan(None)
        if image is None:
            self._pixmap_item.setPixmap(QPixmap())
            self.scene().setSceneRect(QRectF())
        else:
            self._pixmap_item.setPixmap(display_pixmap(image))
            self.scene().setSceneRect(QRectF(0, 0, image.width, image.height))
        self._hint.setVisible(image is None and self._loading.isHidden())
        self._set_hover(None, "")
        self.fit()

    @Slot(str)
    def set_loading(self, text: str) -> None:
        """Say what is being opened ("Opening photo.jpg…") over the canvas; "" when done.

        A large photo takes seconds to decode: meanwhile the canvas says so rather than
        inviting the user to drop an image.
        """
        self._loading.setText(text)
        self._loading.setVisible(bool(text))
        self._hint.setVisible(self._image is None and not text)
        self._place_overlays()

    def loading_text(self) -> str:
        """What the canvas says is being opened ("" when nothing is)."""
        return self._loading.text() if not self._loading.isHidden() else ""

    def set_annotation(self, annotation: ImageAnnotation | None) -> None:
        """Show ``annotation``'s boxes, editable; None shows none and turns editing off.

        The selection keeps the ids still present. Call after :meth:`set_image`.
        """
        self._set_hover(None, self._hover_text)
        self._edit.set_annotation(annotation)
        self._update_drag_mode()

    def annotation(self) -> ImageAnnotation | None:
        """The annotation shown (as last set)."""
        return self._edit.annotation

    def selected_ids(self) -> list[str]:
        """Ids of the selected boxes."""
        return self._edit.selected_ids()

    @Slot(list)
    def select(self, ids: list[str]) -> None:
        """Select exactly the boxes ``ids``; emits selectionChanged if that changes it."""
        self._edit.select(ids)

    def box_items(self) -> list[EditBoxItem]:
        """The editable box items, in drawing order."""
        return self._edit.items()

    def set_detections(self, detections: Sequence[Detection]) -> None:
        """Show read-only boxes, one per detection (in the image's pixel coordinates)."""
        self._set_hover(None, self._hover_text)
        for child in self._box_layer.childItems():
            self.scene().removeItem(child)
        for detection in detections:
            BoxItem(detection, self._box_layer)

    def set_boxes_visible(self, visible: bool) -> None:
        """Show or hide all boxes and their labels (hidden boxes cannot be edited)."""
        self._box_layer.setVisible(visible)
        self._edit_layer.setVisible(visible)
        if not visible:
            self._set_hover(None, self._hover_text)

    def boxes_visible(self) -> bool:
        """Whether boxes are shown."""
        return self._box_layer.isVisible()

    def box_count(self) -> int:
        """How many boxes are drawn (read-only detections and editable boxes)."""
        return len(self._box_layer.childItems()) + len(self._edit.items())

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
        # With boxes to edit a left-drag draws; pan with middle-drag or Space+drag instead.
        scrollable = self._edit.annotation is None and (
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
        """Double-click on a box asks to relabel it; elsewhere it fits the image."""
        if not self._edit.double_click(event):
            self.fit()
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """Select, start a move, resize, draw or pan."""
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        if self._edit.press(event):
            event.accept()
        else:
            super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Finish a drag: one intent signal per drag."""
        if self._edit.release(event):
            event.accept()
        else:
            super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete/Backspace, arrows (Shift: 10 px), Ctrl/⌘+A, Esc, Space to pan."""
        if self._edit.key_press(event):
            event.accept()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        """Releasing Space leaves pan mode."""
        if self._edit.key_release(event):
            event.accept()
        else:
            super().keyReleaseEvent(event)

    def event(self, event: QEvent) -> bool:
        """Editing keys win over window shortcuts (Esc) while the canvas has focus."""
        if event.type() == QEvent.Type.ShortcutOverride and self._edit.is_key_override(event):
            event.accept()
            return True
        return super().event(event)

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
        area = self.viewport().rect()
        self._hint.setGeometry(area.adjusted(24, 24, -24, -24))
        self._banner.move(8, 8)
        self._loading.adjustSize()
        self._loading.move(area.center() - self._loading.rect().center())

    # -------------------------------------------------------------------- hover
    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Follow a drag, or track the cursor for the status bar and box highlight."""
        if self._edit.move(event):
            event.accept()
            return
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
        tile = tile_name_at(self._plan, pos)
        if tile:
            parts.append(tile)
        self._set_hover(box, " · ".join(parts))

    def _box_at(self, pos: QPointF) -> BoxItem | EditBoxItem | None:
        editable = self._edit.box_at(pos)
        if editable is not None or not self._box_layer.isVisible():
            return editable
        hits = [
            item
            for item in self._box_layer.childItems()
            if isinstance(item, BoxItem) and item.rect().contains(pos)
        ]
        # The smallest box is the most specific answer when boxes nest.
        return min(hits, key=lambda b: b.rect().width() * b.rect().height(), default=None)

    def _set_hover(self, box: BoxItem | EditBoxItem | None, text: str) -> None:
        if box is not self._hovered:
            if self._hovered is not None and self._hovered.scene() is not None:
                self._hovered.set_highlighted(False)
            if box is not None:
                box.set_highlighted(True)
            self._hovered = box
        if text != self._hover_text:
            self._hover_text = text
            self.hoverText.emit(text)

    def dropEvent(self, event: QDropEvent) -> None:
        """Drops reaching the view itself (the viewport's are caught before)."""
        self._drops.drop(event)

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        """Outline the viewport while a drop is hovering over it."""
        super().drawForeground(painter, rect)
        self._drops.paint_outline(painter)
