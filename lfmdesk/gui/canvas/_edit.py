"""The canvas's editing gestures: select, move, resize, draw, nudge, delete, pan.

:class:`CanvasEditing` turns mouse and key events on an :class:`ImageCanvas` into the
canvas's intent signals. It never edits the annotation: during a drag the items move live,
on release one intent is emitted, and the editor pushes the new annotation back through
``canvas.set_annotation`` (which rebuilds the items, keeping the selection by box id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, SignalInstance
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QMouseEvent, QPen, QTransform
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QScrollBar,
    QWidget,
)

from lfmdesk.core.datasets._annotations import ImageAnnotation
from lfmdesk.gui.canvas._box_items import (
    EditBoxItem,
    Handle,
    clamp_shift,
    handle_cursor,
    pixels_of,
    resized_rect,
)

__all__ = ["CanvasEditing", "EditableCanvas"]


class EditableCanvas(Protocol):
    """What the gestures need of the canvas (``ImageCanvas``): its view and intent signals.

    A protocol rather than the class, so that the canvas can own its editing without the two
    modules importing each other.
    """

    selectionChanged: SignalInstance
    boxesMoved: SignalInstance
    boxResized: SignalInstance
    boxDrawn: SignalInstance
    boxesNudged: SignalInstance
    deleteRequested: SignalInstance
    relabelRequested: SignalInstance

    def scene(self) -> QGraphicsScene: ...
    def viewport(self) -> QWidget: ...
    def viewportTransform(self) -> QTransform: ...
    def horizontalScrollBar(self) -> QScrollBar: ...
    def verticalScrollBar(self) -> QScrollBar: ...


_CLICK_SLOP = 4.0  # view pixels: a shorter drag on empty space is a click, not a box
_NUDGE, _NUDGE_BIG = 1, 10
_ARROWS = {
    Qt.Key.Key_Left: (-1, 0),
    Qt.Key.Key_Right: (1, 0),
    Qt.Key.Key_Up: (0, -1),
    Qt.Key.Key_Down: (0, 1),
}
_DELETE_KEYS = (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
_ADD_MODIFIERS = (
    Qt.KeyboardModifier.ShiftModifier
    | Qt.KeyboardModifier.ControlModifier
    | Qt.KeyboardModifier.MetaModifier
)
_RUBBER = QColor(255, 255, 255)


@dataclass
class _Drag:
    kind: str  # "move", "resize" or "draw"
    start: QPointF  # scene point where the drag began
    view_start: QPointF
    item: EditBoxItem | None = None
    handle: Handle = (0, 0)
    shift: tuple[int, int] = (0, 0)


class CanvasEditing:
    """Editing state of one canvas: the annotation shown, its items and the selection."""

    def __init__(self, canvas: EditableCanvas, layer: QGraphicsItem) -> None:
        """Edit boxes shown under ``layer`` of ``canvas``."""
        self._canvas = canvas
        self._layer = layer
        self.annotation: ImageAnnotation | None = None
        self._items: dict[str, EditBoxItem] = {}
        self._selected: list[str] = []
        self._drag: _Drag | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._pan_from: QPointF | None = None
        self._space = False

    # ------------------------------------------------------------------ model side
    def set_annotation(self, ann: ImageAnnotation | None) -> None:
        """Show ``ann``'s boxes; the selection keeps the ids still present."""
        self._cancel_drag()
        self.annotation = ann
        old, self._items = self._items, {}
        # Unchanged boxes keep their items: fewer Qt calls (see the PySide note).
        for box in ann.boxes if ann is not None else ():
            item = old.pop(box.id, None)
            if item is None or item.box != box:
                if item is not None:
                    old[box.id] = item
                item = EditBoxItem(box, self._layer)
            self._items[box.id] = item
        scene = self._canvas.scene()
        for item in old.values():
            scene.removeItem(item)
        self.select([i for i in self._selected if i in self._items])

    def items(self) -> list[EditBoxItem]:
        """The box items, in drawing order."""
        return list(self._items.values())

    def selected_ids(self) -> list[str]:
        """Ids of the selected boxes, in selection order."""
        return list(self._selected)

    def select(self, ids: list[str]) -> None:
        """Select exactly ``ids`` (unknown ones are ignored); emits selectionChanged."""
        ids = list(dict.fromkeys(i for i in ids if i in self._items))
        changed = ids != self._selected
        self._selected = ids
        alone = len(ids) == 1
        for box_id, item in self._items.items():
            item.set_selected(box_id in ids, handles=alone)
        if changed:
            self._canvas.selectionChanged.emit(list(ids))

    # ------------------------------------------------------------------ geometry
    def _size(self) -> tuple[int, int]:
        ann = self.annotation
        return (ann.width, ann.height) if ann is not None else (0, 0)

    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        # Sub-pixel exact, unlike mapToScene(QPoint).
        inverse, _ = self._canvas.viewportTransform().inverted()
        return inverse.map(event.position())

    def _to_view(self, point: QPointF) -> QPointF:
        return self._canvas.viewportTransform().map(point)

    def box_at(self, pos: QPointF) -> EditBoxItem | None:
        """The smallest box containing scene point ``pos`` (the most specific when nested)."""
        if not self._layer.isVisible():
            return None
        hits = [item for item in self._items.values() if item.box_rect().contains(pos)]
        return min(hits, key=lambda i: i.box.width * i.box.height, default=None)

    def _handle_at(self, view_pos: QPointF) -> tuple[EditBoxItem, Handle] | None:
        if len(self._selected) != 1 or not self._layer.isVisible():
            return None
        item = self._items[self._selected[0]]
        handle = item.handle_at(view_pos, self._to_view)
        return (item, handle) if handle is not None else None

    # ------------------------------------------------------------------ mouse
    def press(self, event: QMouseEvent) -> bool:
        """Start a pan, a move, a resize or a draw; True when the event was used."""
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = event.position()
            self._canvas.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return True
        if button != Qt.MouseButton.LeftButton or self.annotation is None:
            return False
        pos = self._scene_pos(event)
        grip = self._handle_at(event.position())
        if grip is not None:
            self._drag = _Drag("resize", pos, event.position(), grip[0], grip[1])
            return True
        item = self.box_at(pos)
        adding = bool(event.modifiers() & _ADD_MODIFIERS)
        if item is not None:
            self._press_box(item, pos, event.position(), adding)
        elif QRectF(0, 0, *self._size()).contains(pos):
            if not adding:
                self.select([])
            self._drag = _Drag("draw", pos, event.position())
        elif not adding:
            self.select([])
        return True

    def _press_box(self, item: EditBoxItem, pos: QPointF, view: QPointF, adding: bool) -> None:
        box_id = item.box.id
        if adding and box_id in self._selected:
            self.select([i for i in self._selected if i != box_id])
            return
        if adding:
            self.select([*self._selected, box_id])
        elif box_id not in self._selected:
            self.select([box_id])
        self._drag = _Drag("move", pos, view, item)

    def move(self, event: QMouseEvent) -> bool:
        """Follow a drag live; True when a pan or drag used the event."""
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            for bar, step in (
                (self._canvas.horizontalScrollBar(), delta.x()),
                (self._canvas.verticalScrollBar(), delta.y()),
            ):
                bar.setValue(bar.value() - round(step))
            return True
        drag = self._drag
        if drag is None:
            self._update_cursor(event)
            return False
        delta = self._scene_pos(event) - drag.start
        if drag.kind == "move":
            self._live_move(drag, round(delta.x()), round(delta.y()))
        elif drag.kind == "resize" and drag.item is not None:
            drag.item.show_rect(
                resized_rect(drag.item.box_rect(), drag.handle, delta, self._size())
            )
        else:
            self._live_draw(drag, self._scene_pos(event))
        return True

    def _live_move(self, drag: _Drag, dx: int, dy: int) -> None:
        boxes = [self._items[i].box for i in self._selected]
        drag.shift = clamp_shift(boxes, dx, dy, self._size())
        for box_id in self._selected:
            self._items[box_id].setPos(QPointF(*drag.shift))

    def _live_draw(self, drag: _Drag, pos: QPointF) -> None:
        if self._rubber is None:
            self._rubber = QGraphicsRectItem(self._layer)
            pen = QPen(_RUBBER, 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            self._rubber.setPen(pen)
            self._rubber.setZValue(2.0)
        width, height = self._size()
        end = QPointF(min(max(pos.x(), 0.0), width), min(max(pos.y(), 0.0), height))
        self._rubber.setRect(QRectF(drag.start, end).normalized())

    def release(self, event: QMouseEvent) -> bool:
        """Finish a pan or drag, emitting one intent; True when the event was used."""
        if self._pan_from is not None:
            self._pan_from = None
            self._canvas.viewport().unsetCursor()
            return True
        drag, self._drag = self._drag, None
        if drag is None or event.button() != Qt.MouseButton.LeftButton:
            return drag is not None
        intent = self._finish(drag, event)
        self._reset_live()
        if intent is not None:
            intent()
        return True

    def _finish(self, drag: _Drag, event: QMouseEvent) -> Callable[[], object] | None:
        canvas, size = self._canvas, self._size()
        pos = self._scene_pos(event)
        if drag.kind == "move":
            delta = pos - drag.start
            self._live_move(drag, round(delta.x()), round(delta.y()))
            ids, (dx, dy) = list(self._selected), drag.shift
            if dx or dy:
                return lambda: canvas.boxesMoved.emit(ids, dx, dy)
        elif drag.kind == "resize" and drag.item is not None:
            box, delta = drag.item.box, pos - drag.start
            px = pixels_of(resized_rect(drag.item.box_rect(), drag.handle, delta, size), size)
            if px is not None and px != box.px:
                return lambda: canvas.boxResized.emit(box.id, px)
        else:
            moved = event.position() - drag.view_start
            px = pixels_of(QRectF(drag.start, pos), size)
            if min(abs(moved.x()), abs(moved.y())) >= _CLICK_SLOP and px is not None:
                return lambda: canvas.boxDrawn.emit(px)
        return None

    def _reset_live(self) -> None:
        for box_id in self._selected:
            item = self._items[box_id]
            if item.pos() != QPointF() or item.rect() != item.box_rect():
                item.setPos(QPointF())
                item.show_rect(item.box_rect())
        if self._rubber is not None:
            self._canvas.scene().removeItem(self._rubber)
            self._rubber = None

    def _cancel_drag(self) -> None:
        self._drag = None
        self._reset_live()

    def double_click(self, event: QMouseEvent) -> bool:
        """A double-click on a box asks to relabel it (or the selection it is in)."""
        if self.annotation is None or event.button() != Qt.MouseButton.LeftButton:
            return False
        self._drag = None
        item = self.box_at(self._scene_pos(event))
        if item is None:
            return False
        if item.box.id not in self._selected:
            self.select([item.box.id])
        self._canvas.relabelRequested.emit(list(self._selected))
        return True

    def _update_cursor(self, event: QMouseEvent) -> None:
        if self.annotation is None or self._space:
            return
        grip = self._handle_at(event.position())
        pos = self._scene_pos(event)
        if grip is not None:
            shape = handle_cursor(grip[1])
        elif self.box_at(pos) is not None:
            shape = Qt.CursorShape.SizeAllCursor
        elif QRectF(0, 0, *self._size()).contains(pos):
            shape = Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.ArrowCursor
        self._canvas.viewport().setCursor(shape)

    # ------------------------------------------------------------------ keys
    def wants_key(self, event: QKeyEvent) -> bool:
        """Whether ``event`` is an editing key now (so window shortcuts like Esc yield)."""
        if self.annotation is None:
            return False
        key = event.key()
        if key == Qt.Key.Key_Escape:
            return self._drag is not None or bool(self._selected)
        if key in _ARROWS or key in _DELETE_KEYS:
            return bool(self._selected)
        return key == Qt.Key.Key_Space or event.matches(QKeySequence.StandardKey.SelectAll)

    def key_press(self, event: QKeyEvent) -> bool:
        """Delete, nudge, select all, cancel, or hold Space to pan; True when used."""
        if not self.wants_key(event):
            return False
        key = event.key()
        if key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space = True
                self._canvas.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape:
            if self._drag is not None:
                self._cancel_drag()
            else:
                self.select([])
        elif key in _DELETE_KEYS:
            self._canvas.deleteRequested.emit(list(self._selected))
        elif key in _ARROWS:
            self._nudge(event, *_ARROWS[Qt.Key(key)])
        else:
            self.select(list(self._items))
        return True

    def _nudge(self, event: QKeyEvent, sx: int, sy: int) -> None:
        if self._drag is not None:
            return
        step = _NUDGE_BIG if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else _NUDGE
        boxes = [self._items[i].box for i in self._selected]
        dx, dy = clamp_shift(boxes, sx * step, sy * step, self._size())
        if dx or dy:
            self._canvas.boxesNudged.emit(list(self._selected), dx, dy)

    def key_release(self, event: QKeyEvent) -> bool:
        """Releasing Space ends pan mode."""
        if event.key() != Qt.Key.Key_Space or event.isAutoRepeat() or not self._space:
            return False
        self._space = False
        self._canvas.viewport().unsetCursor()
        return True

    def is_key_override(self, event: QEvent) -> bool:
        """A ShortcutOverride for an editing key: accept it so the key reaches the canvas."""
        return isinstance(event, QKeyEvent) and self.wants_key(event)
