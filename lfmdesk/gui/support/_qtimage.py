"""Conversions between Pillow images, Qt images and :class:`lfmdesk.core.LoadedImage`.

Nothing here decodes a file: image *data* that arrives through Qt (a paste, a drop from a
browser) is encoded to PNG and handed to :func:`lfmdesk.core.load_image`, so it follows the
same checks, orientation and RGB conversion as a file does.

::

    pixmap = pil_to_qpixmap(loaded.image)                 # what the canvas shows
    loaded = qimage_to_loaded(QApplication.clipboard().image())
    icon = thumbnail_pixmap(loaded, 64)

``pil_to_qimage`` and ``qimage_to_loaded`` are safe off the GUI thread (QImage is);
the ``*_pixmap`` functions are not (QPixmap belongs to the GUI thread).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict

from PIL import Image
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
from PySide6.QtGui import QImage, QPixmap

from lfmdesk.core import ImageError, LoadedImage, load_image

__all__ = [
    "display_pixmap",
    "pil_to_qimage",
    "pil_to_qpixmap",
    "prepare_display",
    "qimage_to_loaded",
    "thumbnail_pixmap",
]

# Converting a 12-megapixel photo takes ~40 ms and its thumbnail as long again: too much for
# the GUI thread. The image loader calls prepare_display() in its worker thread; the GUI thread
# then only wraps the ready QImages in pixmaps. Bounded: a few recent images.
_PREPARED: OrderedDict[tuple[str, int], QImage] = OrderedDict()
_PREPARED_MAX = 24
_PREPARED_LOCK = threading.Lock()  # written by the loader thread, read by the GUI thread
_FULL = 0  # size key of the full-resolution display image

# Pillow mode -> (mode handed to Qt, bytes per pixel, Qt format). Other modes become RGB.
_FORMATS: dict[str, tuple[str, int, QImage.Format]] = {
    "RGB": ("RGB", 3, QImage.Format.Format_RGB888),
    "RGBA": ("RGBA", 4, QImage.Format.Format_RGBA8888),
}

# PNG "quality" in Qt is inverse compression; the bytes only live until load_image reads them,
# so speed matters more than size.
_PNG_QUALITY = 90


def pil_to_qimage(image: Image.Image) -> QImage:
    """Convert a Pillow image to a QImage that owns its pixels.

    Args:
        image: any Pillow image; modes other than RGB and RGBA are converted to RGB.

    Returns:
        An RGB888 (or RGBA8888) QImage independent of ``image``'s buffer.
    """
    mode, depth, fmt = _FORMATS.get(image.mode, _FORMATS["RGB"])
    pixels = image if image.mode == mode else image.convert(mode)
    data = pixels.tobytes("raw", mode)
    view = QImage(data, pixels.width, pixels.height, pixels.width * depth, fmt)
    # The QImage above borrows ``data``; copy() detaches it before ``data`` is freed.
    return view.copy()


def qimage_to_pil(qimage: QImage, max_side: int | None = None) -> Image.Image:
    """Copy a QImage's pixels into an RGB Pillow image, scaled down to ``max_side`` first.

    The direct copy (no PNG round trip) is for video frames, converted many times a second.
    """
    if max_side is not None and max(qimage.width(), qimage.height()) > max_side:
        qimage = qimage.scaled(
            max_side,
            max_side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    rgb = qimage.convertToFormat(QImage.Format.Format_RGB888)
    size = (rgb.width(), rgb.height())
    # Rows are padded to 4 bytes: give Pillow the stride instead of assuming packed rows.
    return Image.frombuffer(
        "RGB", size, bytes(rgb.constBits()), "raw", "RGB", rgb.bytesPerLine(), 1
    )


def _remember(key: tuple[str, int], qimage: QImage) -> QImage:
    with _PREPARED_LOCK:
        _PREPARED[key] = qimage
        _PREPARED.move_to_end(key)
        while len(_PREPARED) > _PREPARED_MAX:
            _PREPARED.popitem(last=False)
    return qimage


def _prepared(key: tuple[str, int]) -> QImage | None:
    with _PREPARED_LOCK:
        return _PREPARED.get(key)


def _thumbnail_qimage(image: LoadedImage, size: int) -> QImage:
    scale = min(1.0, size / max(image.width, image.height))
    target = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.image
    if target != small.size:
        # reducing_gap lets Pillow box-reduce first: fast on camera-sized images.
        small = small.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return pil_to_qimage(small)


def prepare_display(image: LoadedImage, thumbnail_sizes: tuple[int, ...] = (48, 64)) -> None:
    """Build the canvas image and thumbnails ahead of time (safe off the GUI thread)."""
    _remember((image.content_hash, _FULL), pil_to_qimage(image.image))
    for size in thumbnail_sizes:
        _remember((image.content_hash, size), _thumbnail_qimage(image, size))


def display_pixmap(image: LoadedImage) -> QPixmap:
    """The full-size pixmap of ``image`` for the canvas (GUI thread only)."""
    ready = _prepared((image.content_hash, _FULL))
    return QPixmap.fromImage(ready if ready is not None else pil_to_qimage(image.image))


def pil_to_qpixmap(image: Image.Image) -> QPixmap:
    """Convert a Pillow image to a QPixmap (GUI thread only)."""
    return QPixmap.fromImage(pil_to_qimage(image))


def qimage_to_loaded(qimage: QImage, source: str = "<pasted image>") -> LoadedImage:
    """Turn pasted or dropped image data into a :class:`LoadedImage` via ``load_image``.

    Args:
        qimage: the image Qt handed over (clipboard or drop).
        source: what :attr:`LoadedImage.source` should say, for titles and history.

    Returns:
        The loaded image; its ``content_hash`` equals that of the same pixels loaded from a file.

    Raises:
        ImageError: when the data is empty or cannot be encoded.
    """
    if qimage.isNull():
        raise ImageError("the pasted or dropped data holds no image; copy the image again")
    array = QByteArray()
    buffer = QBuffer(array)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # PySide6's stubs say bytes for the format, but at run time only str is accepted.
    saved = qimage.save(buffer, "PNG", _PNG_QUALITY)  # type: ignore[call-overload]
    buffer.close()
    if not saved:
        raise ImageError("cannot read the pasted or dropped image; save it to a file and open it")
    loaded = load_image(bytes(array.data()))
    return dataclasses.replace(loaded, source=source)


def thumbnail_pixmap(image: LoadedImage, size: int) -> QPixmap:
    """A pixmap of ``image`` whose longer side is at most ``size`` pixels (GUI thread only).

    Args:
        image: the loaded image.
        size: the longest side in pixels; smaller images keep their size.

    Returns:
        The downscaled pixmap, aspect ratio kept.
    """
    ready = _prepared((image.content_hash, size))
    return QPixmap.fromImage(ready if ready is not None else _thumbnail_qimage(image, size))
