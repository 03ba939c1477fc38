"""The image canvas: boxes where the model put them, hover read-outs, tile overlay, drops."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PIL import Image, ImageDraw
from PySide6.QtCore import QMimeData, QPoint, QPointF, QRectF, Qt, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel

from lfmdesk.core import Detection, LoadedImage, VisionSettings, load_image, plan_tiles
from lfmdesk.core.images._draw import label_color
from lfmdesk.gui.canvas._canvas import KIND, ImageCanvas
from lfmdesk.gui.support._qtimage import pil_to_qimage, qimage_to_loaded, thumbnail_pixmap


def _picture(width: int = 1920, height: int = 1080) -> Image.Image:
    image = Image.new("RGB", (width, height), (90, 150, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height * 2 // 3, width, height), fill=(70, 130, 60))
    draw.ellipse((width // 2, height // 2, width // 2 + 300, height // 2 + 200), fill=(30, 30, 30))
    for x in range(0, width, 37):  # odd-sized detail so row padding bugs would show
        draw.point((x, x % height), fill=(x % 256, 255 - x % 256, 7))
    return image


def _loaded(width: int = 1920, height: int = 1080) -> LoadedImage:
    return load_image(_picture(width, height))


def _detection(label: str, box_px: tuple[int, int, int, int], size: tuple[int, int]) -> Detection:
    w, h = size
    x1, y1, x2, y2 = box_px
    return Detection(label, (x1 / w, y1 / h, x2 / w, y2 / h), box_px)


def _items(canvas: ImageCanvas, kind: str) -> list:
    return [item for item in canvas.scene().items() if item.data(KIND) == kind]


@pytest.fixture
def canvas(qtbot) -> ImageCanvas:
    view = ImageCanvas()
    qtbot.addWidget(view)
    view.resize(800, 500)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def shown(canvas: ImageCanvas) -> tuple[ImageCanvas, list[Detection]]:
    canvas.set_image(_loaded())
    detections = [
        _detection("cat", (960, 540, 1260, 740), (1920, 1080)),
        _detection("house", (100, 200, 700, 900), (1920, 1080)),
    ]
    canvas.set_detections(detections)
    return canvas, detections


def test_empty_canvas_shows_the_drop_hint(canvas: ImageCanvas) -> None:
    hint = canvas.findChild(QLabel, "canvasHint")
    assert hint.isVisible()
    assert "Drop an image here" in hint.text()
    canvas.set_image(_loaded(64, 48))
    assert not hint.isVisible()
    canvas.set_image(None)
    assert hint.isVisible()


def test_one_box_per_detection_at_its_pixels_in_its_label_colour(shown) -> None:
    canvas, detections = shown
    boxes = _items(canvas, "box")
    assert len(boxes) == len(detections)
    by_label = {box.detection.label: box for box in boxes}
    for det in detections:
        box = by_label[det.label]
        x1, y1, x2, y2 = det.box_px
        assert box.mapRectToScene(box.rect()) == QRectF(x1, y1, x2 - x1, y2 - y1)
        assert box.pen().color() == QColor(*label_color(det.label))
        assert box.pen().isCosmetic()
    tags = {tag.text() for box in boxes for tag in box.childItems()}
    assert tags == {"cat", "house"}


def test_set_detections_replaces_boxes_and_new_image_clears_them(shown) -> None:
    canvas, _ = shown
    canvas.set_detections([_detection("dog", (0, 0, 10, 10), (1920, 1080))])
    assert [b.detection.label for b in _items(canvas, "box")] == ["dog"]
    canvas.set_image(_loaded(640, 480))
    assert _items(canvas, "box") == []


def test_hiding_boxes_hides_them_and_their_labels(shown) -> None:
    canvas, _ = shown
    canvas.set_boxes_visible(False)
    assert not canvas.boxes_visible()
    assert all(not item.isVisible() for item in _items(canvas, "box") + _items(canvas, "tag"))
    canvas.set_boxes_visible(True)
    assert canvas.boxes_visible()
    assert all(item.isVisible() for item in _items(canvas, "box"))


def test_hovering_a_box_highlights_it_and_reports_pixel_and_normalized_box(qtbot, shown) -> None:
    canvas, _ = shown
    cat = next(b for b in _items(canvas, "box") if b.detection.label == "cat")
    width_before = cat.pen().widthF()
    point = canvas.mapFromScene(QPointF(1100, 640))
    with qtbot.waitSignal(canvas.hoverText) as blocker:
        QTest.mouseMove(canvas.viewport(), point)
    text = blocker.args[0]
    assert "cat" in text
    assert "[960, 540, 1260, 740]" in text
    assert "(0.500, 0.500, 0.656, 0.685)" in text
    assert cat.pen().widthF() > width_before
    # Outside every box: cursor coordinates only, highlight gone.
    with qtbot.waitSignal(canvas.hoverText) as blocker:
        QTest.mouseMove(canvas.viewport(), canvas.mapFromScene(QPointF(1800, 100)))
    assert "cat" not in blocker.args[0]
    assert blocker.args[0].startswith("x 1")
    assert cat.pen().widthF() == width_before


def test_hover_reports_cursor_pixel_and_normalized_position(shown) -> None:
    canvas, _ = shown
    texts: list[str] = []
    canvas.hoverText.connect(texts.append)
    canvas._hover_at(QPointF(960.4, 270.9))
    assert texts[-1] == "x 960, y 270 · (0.500, 0.251)"
    canvas._hover_at(QPointF(-5, 10))  # off the picture
    assert texts[-1] == ""


def test_nested_boxes_hover_picks_the_smaller(shown) -> None:
    canvas, _ = shown
    canvas.set_detections(
        [
            _detection("table", (0, 0, 1000, 1000), (1920, 1080)),
            _detection("cup", (400, 400, 500, 500), (1920, 1080)),
        ]
    )
    texts: list[str] = []
    canvas.hoverText.connect(texts.append)
    canvas._hover_at(QPointF(450, 450))
    assert "cup" in texts[-1] and "table" not in texts[-1]


def test_tile_overlay_for_1920x1080_defaults(shown) -> None:
    canvas, _ = shown
    plan = plan_tiles(1920, 1080, VisionSettings())
    canvas.set_tile_plan(plan)
    tiles = _items(canvas, "tile")
    assert len(tiles) == len(plan.tiles) > 1
    assert {(t.rect().x(), t.rect().y()) for t in tiles} == {
        (float(t.box[0]), float(t.box[1])) for t in plan.tiles
    }
    assert all(t.pen().style() == Qt.PenStyle.DashLine for t in tiles)
    labels = {tag.text() for t in tiles for tag in t.childItems()}
    assert f"r1c1 · {plan.tiles[0].tokens} tok" in labels
    assert len(_items(canvas, "thumbnail")) == 1
    banner = canvas.findChild(QLabel, "canvasBanner")
    assert banner.isVisible()
    rows, cols = plan.grid
    assert f"{plan.image_tokens:,} image tokens" in banner.text()
    assert f"{rows}×{cols} tiles + thumbnail" in banner.text()
    # Boxes stay on top of the overlay.
    box = _items(canvas, "box")[0]
    assert box.parentItem().zValue() > tiles[0].parentItem().zValue()
    canvas.set_tile_plan(None)
    assert _items(canvas, "tile") == [] and _items(canvas, "thumbnail") == []
    assert not banner.isVisible()


def test_tile_overlay_for_an_image_that_is_not_split(shown) -> None:
    canvas, _ = shown
    canvas.set_image(_loaded(400, 300))
    plan = plan_tiles(400, 300, VisionSettings())
    canvas.set_tile_plan(plan)
    assert _items(canvas, "tile") == []
    w, h = plan.thumbnail.size
    assert any(
        t.text() == f"single view {w}×{h} · {plan.image_tokens} tok" for t in _items(canvas, "tag")
    )
    assert "single view" in canvas.findChild(QLabel, "canvasBanner").text()


def test_ctrl_wheel_zooms_and_double_click_fits(shown) -> None:
    canvas, _ = shown
    fitted = canvas.transform().m11()
    canvas._zoom_by(3.0)
    assert canvas.transform().m11() == pytest.approx(fitted * 3)
    QTest.mouseDClick(canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(200, 200))
    assert canvas.transform().m11() == pytest.approx(fitted)


def _drag_enter(canvas: ImageCanvas, mime: QMimeData) -> bool:
    """Start a drag over the canvas, as the window system does; True if it is accepted."""
    event = QDragEnterEvent(
        QPointF(100, 100),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(canvas.viewport(), event)
    return event.isAccepted()


def _drop(canvas: ImageCanvas, mime: QMimeData) -> None:
    # Qt delivers a drop only to the widget that accepted the drag's enter event.
    assert _drag_enter(canvas, mime)
    event = QDropEvent(
        QPointF(100, 100),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(canvas.viewport(), event)


def test_dropping_a_file_url_emits_the_local_path(qtbot, canvas, tmp_path: Path) -> None:
    path = tmp_path / "photo one.png"
    _picture(32, 32).save(path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)), QUrl("https://example.com/x.png")])
    with qtbot.waitSignal(canvas.filesDropped, timeout=1000) as blocker:
        _drop(canvas, mime)
    assert blocker.args == [[str(path)]]


def test_dropping_image_data_emits_the_qimage(qtbot, canvas) -> None:
    mime = QMimeData()
    mime.setImageData(pil_to_qimage(_picture(40, 30)))
    with qtbot.waitSignal(canvas.imageDropped, timeout=1000) as blocker:
        _drop(canvas, mime)
    image = blocker.args[0]
    assert isinstance(image, QImage)
    assert (image.width(), image.height()) == (40, 30)


def test_a_drag_of_web_links_only_is_refused(canvas) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.com/x.png")])
    assert not _drag_enter(canvas, mime)


def test_qimage_round_trip_keeps_pixels() -> None:
    picture = _picture(333, 217)  # odd width: QImage rows are padded to 4 bytes
    direct = load_image(picture)
    qimage = pil_to_qimage(picture)
    del picture
    loaded = qimage_to_loaded(qimage)
    assert loaded.content_hash == direct.content_hash
    assert (loaded.width, loaded.height) == (333, 217)
    assert loaded.source == "<pasted image>"


def test_argb_clipboard_image_round_trips_to_rgb() -> None:
    picture = _picture(50, 40)
    qimage = pil_to_qimage(picture).convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)
    assert qimage_to_loaded(qimage).content_hash == load_image(picture).content_hash


def test_null_qimage_is_a_one_line_image_error() -> None:
    from lfmdesk.core import ImageError

    with pytest.raises(ImageError, match="no image"):
        qimage_to_loaded(QImage())


def test_thumbnail_pixmap_keeps_aspect_and_never_upscales(qtbot) -> None:
    big = thumbnail_pixmap(_loaded(400, 100), 64)
    assert (big.width(), big.height()) == (64, 16)
    small = thumbnail_pixmap(_loaded(20, 10), 64)
    assert (small.width(), small.height()) == (20, 10)
