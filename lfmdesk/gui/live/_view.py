"""The live preview: the newest frame, the model's latest boxes over it, a HUD and the caption.

Boxes are drawn from their normalized coordinates, so they land right on a frame of any size
(the model saw a scaled-down copy). The HUD says how stale they are: frames analysed per
second and the latency from a frame arriving to its answer being shown.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QRect, QRectF, Qt, Slot
from PySide6.QtGui import QImage, QPalette, QPixmap, QResizeEvent, QTransform
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QWidget,
)

from lfmdesk.core import Detection, LiveHud, LiveResult
from lfmdesk.gui.canvas._items import BoxItem, Layer, OverlayLabel, style_picture_view

__all__ = ["LiveView"]

_MARGIN = 8
_CAPTION_SHARE = 0.4  # the caption may cover at most this much of the frame's height
_IDLE_HINT = "Choose a camera or open a video file in the Live panel, then press Start."


def _fitted(label: QLabel, text: str, width: int, height: int) -> str:
    """``text``, cut at a word and ended with "…" when the wrapped label would be taller."""
    label.setText(text)
    if not text or label.heightForWidth(width) <= height:
        return text
    low, high = 0, len(text)  # the longest prefix that fits, by bisection
    while low < high:
        mid = (low + high + 1) // 2
        label.setText(text[:mid].rstrip() + "…")
        if label.heightForWidth(width) <= height:
            low = mid
        else:
            high = mid - 1
    cut = text[:low]
    if " " in cut[low // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,.;:") + "…"


def _scaled(detection: Detection, width: int, height: int) -> Detection:
    x1, y1, x2, y2 = detection.box
    box_px = (round(x1 * width), round(y1 * height), round(x2 * width), round(y2 * height))
    return dataclasses.replace(detection, box_px=box_px)


class LiveView(QGraphicsView):
    """Shows frames as they arrive, with the latest result drawn over them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty view showing how to start."""
        super().__init__(parent)
        scene = QGraphicsScene(self)
        scene.setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        self.setScene(scene)
        self._frame_item = QGraphicsPixmapItem()
        self._frame_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._boxes = Layer(1.0)
        scene.addItem(self._frame_item)
        scene.addItem(self._boxes)
        self._frame_size = (0, 0)
        self._result: LiveResult | None = None
        self._caption_text = ""
        style_picture_view(self)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.hud = OverlayLabel(self.viewport(), "liveHud", panel=True)
        self.caption = OverlayLabel(self.viewport(), "liveCaption", panel=True)
        self.caption.setWordWrap(True)
        self.hint = OverlayLabel(self.viewport(), "liveHint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.clear(_IDLE_HINT)

    # --- public API ----------------------------------------------------------------------

    def clear(self, hint: str = _IDLE_HINT) -> None:
        """No frame: show ``hint`` instead."""
        self._frame_item.setPixmap(QPixmap())
        self._frame_size = (0, 0)
        self.show_result(None)
        self.hud.hide()
        self.hint.setText(hint)
        self.hint.show()
        self._place_overlays()

    @Slot(QImage)
    def show_frame(self, image: QImage) -> None:
        """Show a new frame; the latest boxes stay over it until the next result."""
        self._frame_item.setPixmap(QPixmap.fromImage(image))
        size = (image.width(), image.height())
        if size != self._frame_size:
            self._frame_size = size
            self.scene().setSceneRect(QRectF(0, 0, *size))
            self._fit()
            self._draw_boxes()
            self._place_overlays()
        self.hint.hide()

    @Slot(object)
    def show_result(self, result: LiveResult | None) -> None:
        """Draw ``result``'s boxes and caption (None clears them)."""
        self._result = result
        self._draw_boxes()
        text = result.text if result is not None and not result.detections else ""
        if result is not None and result.detections:
            labels = sorted({d.label for d in result.detections})
            text = f"{len(result.detections)} found: {', '.join(labels)}"
        elif result is not None and not text:
            text = "(no answer)"
        self._caption_text = text
        self.caption.setVisible(bool(text))
        self._place_overlays()

    def caption_text(self) -> str:
        """The whole caption of the latest result (the overlay may shorten it to fit)."""
        return self._caption_text

    @Slot(object)
    def show_hud(self, hud: LiveHud) -> None:
        """Update the frames-per-second and latency readout."""
        self.hud.setText(hud.text())
        self.hud.show()
        self._place_overlays()

    def shown_frame(self) -> QImage:
        """The frame on screen now (tests and screenshots read it)."""
        return self._frame_item.pixmap().toImage()

    def box_items(self) -> list[BoxItem]:
        """The boxes drawn now (tests and screenshots read them)."""
        return [item for item in self._boxes.childItems() if isinstance(item, BoxItem)]

    # --- drawing -------------------------------------------------------------------------

    def _draw_boxes(self) -> None:
        for item in self._boxes.childItems():
            self.scene().removeItem(item)
        width, height = self._frame_size
        if self._result is None or not width:
            return
        for detection in self._result.detections:
            BoxItem(_scaled(detection, width, height), self._boxes)

    def _fit(self) -> None:
        rect = self.scene().sceneRect()
        view = self.viewport().size()
        width, height = view.width() - 2 * _MARGIN, view.height() - 2 * _MARGIN
        if rect.isEmpty() or width <= 0 or height <= 0:
            return
        scale = min(width / rect.width(), height / rect.height())
        self.setTransform(QTransform.fromScale(scale, scale))
        self.centerOn(rect.center())

    def _place_overlays(self) -> None:
        # On the frame's corners when there is a frame, so the numbers sit on the video.
        area = self.viewport().rect()
        if self._frame_size[0]:
            frame = self.mapFromScene(self.scene().sceneRect()).boundingRect()
            area = frame.intersected(area) if frame.intersects(area) else area
        self.hud.adjustSize()
        self.hud.move(area.left() + _MARGIN, area.top() + _MARGIN)
        self._place_caption(area)
        self.hint.setGeometry(area.adjusted(24, 24, -24, -24))

    def _place_caption(self, area: QRect) -> None:
        # Inside the frame, below the HUD, at most a share of the frame's height: a long
        # answer is shortened with "…" rather than spilling over the video and the numbers.
        width = max(40, area.width() - 2 * _MARGIN)
        top = area.top() + _MARGIN
        if self.hud.isVisibleTo(self):
            top = self.hud.geometry().bottom() + _MARGIN
        room = min(area.bottom() - _MARGIN - top, round(area.height() * _CAPTION_SHARE))
        self.caption.setFixedWidth(width)
        self.caption.setText(_fitted(self.caption, self._caption_text, width, max(room, 0)))
        self.caption.setToolTip(self._caption_text)
        self.caption.adjustSize()
        height = min(self.caption.height(), max(room, self.caption.fontMetrics().height()))
        self.caption.setFixedHeight(height)
        self.caption.move(area.left() + _MARGIN, area.bottom() - height - _MARGIN)

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the frame fitted and the overlays in their corners."""
        super().resizeEvent(event)
        self._fit()
        self._place_overlays()
