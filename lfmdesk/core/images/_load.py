"""Loading user images safely into the exact RGB pixels the model and the display get.

Everything a user can throw at :func:`load_image` (a missing file, a text file, a
truncated JPEG, a 30000×30000 decompression bomb, a HEIC photo without pillow-heif, a FIFO)
ends in one :class:`ImageError` with a one-line message naming the file; nothing
else escapes for bad input.

Pillow reads dozens of formats, some through other programs (EPS and PostScript start
Ghostscript, whatever the file is called). Only the formats lfmdesk documents are ever
opened (:data:`IMAGE_FORMATS`, via Pillow's ``formats=``), and only from regular files;
:func:`open_image` is the one way into Pillow for every file lfmdesk reads.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import threading
import warnings
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from lfmdesk.core._errors import ImageError
from lfmdesk.core._files import NotRegularFileError, open_regular

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_FORMATS",
    "ImageError",
    "LoadedImage",
    "load_image",
    "open_image",
]

DEFAULT_MAX_PIXELS = 64_000_000
# The formats the README lists (MPO is how Pillow names many phone JPEGs; HEIF needs
# pillow-heif). Never EPS/PS/PDF or anything else Pillow would hand to another program.
IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "TIFF", "BMP", "HEIF")

ImageSource = str | os.PathLike[str] | bytes | Image.Image

# ISO-BMFF brands of HEIF stills/sequences; AVIF (which Pillow reads itself) is excluded.
_HEIF_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# Pillow keeps LOAD_TRUNCATED_IMAGES and the warning filters in module globals, so the
# strict settings are applied under one lock rather than trusted to be left alone.
_STRICT_LOCK = threading.Lock()

# Pillow calls every multi-frame file "animated"; say what the extra frames really are.
# MPO (many phone JPEGs) carries previews or depth maps after the main picture: no note.
_FRAME_KINDS: dict[str, tuple[str, str]] = {
    "GIF": ("animated image", "frame"),
    "PNG": ("animated image", "frame"),
    "WEBP": ("animated image", "frame"),
    "MPO": ("", ""),
}

_Converter = Callable[[Image.Image], tuple[Image.Image, str | None]]


@dataclass(frozen=True)
class LoadedImage:
    """An image ready for the model and the display.

    Attributes:
        image: RGB pixels with the EXIF orientation already applied.
        width: width of ``image`` in pixels.
        height: height of ``image`` in pixels.
        source: the path as given, or ``"<bytes>"`` / ``"<PIL image>"``.
        content_hash: sha256 hex of the size and the RGB pixels, the same whatever the
            source was (the vision-cache key).
        notes: human notes about what was done, e.g. ``"animated image: using frame 1
            of 12"``.
    """

    image: Image.Image
    width: int
    height: int
    source: str
    content_hash: str
    notes: tuple[str, ...]


def _printable(text: str, limit: int = 160) -> str:
    """Control characters become spaces, other spacing stays exact: a path must read as it is."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _label(source: object) -> str:
    if isinstance(source, Image.Image):
        return "<PIL image>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(source, (str, os.PathLike)):
        return _printable(os.fsdecode(source), limit=200)
    raise ImageError(f"cannot load an image from a {type(source).__name__}; pass a path or bytes")


@functools.cache
def _heif_available() -> bool:
    """Register pillow-heif's opener on first need; False when it is not installed."""
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
    except Exception:  # not installed, or a broken native build
        return False
    return True


def _is_heif(head: bytes) -> bool:
    if head[4:8] != b"ftyp" or len(head) < 12:
        return False
    box_end = min(len(head), int.from_bytes(head[0:4], "big"))
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
    return not brands & _AVIF_BRANDS and bool(brands & _HEIF_BRANDS)


def _open_stream(stream: IO[bytes], label: str, formats: Collection[str]) -> Image.Image:
    head = stream.read(64)
    if not head:
        raise ImageError(f"{label}: the file is empty, not an image")
    stream.seek(0)
    if _is_heif(head) and not _heif_available():
        raise ImageError(
            f"{label} is a HEIC/HEIF image; install HEIC support with `pip install pillow-heif`"
        )
    Image.init()
    # A name Pillow has not registered (HEIF without pillow-heif) would be a KeyError.
    known = [name for name in formats if name in Image.OPEN]
    try:
        return Image.open(stream, formats=known)
    except UnidentifiedImageError:
        raise ImageError(
            f"{label}: not an image lfmdesk can read (use PNG, JPEG, WebP, GIF, BMP, TIFF or HEIC)"
        ) from None


def _open_file(source: str | os.PathLike[str], label: str) -> IO[bytes]:
    try:
        return open_regular(source)
    except NotRegularFileError as exc:
        raise ImageError(f"{label} is {exc.kind}, not an image file") from None
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file") from None
    except OSError as exc:
        raise ImageError(f"cannot open {label}: {exc.strerror or exc}") from None


@contextmanager
def _opened(
    source: ImageSource, label: str, formats: Collection[str] = IMAGE_FORMATS
) -> Iterator[Image.Image]:
    """Yield the (lazily decoded) Pillow image behind ``source``."""
    if isinstance(source, Image.Image):
        yield source
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"{label}: empty image data, not an image")
        yield _open_stream(io.BytesIO(bytes(source)), label, formats)
        return
    with _open_file(source, label) as stream:  # stays open while Pillow decodes lazily
        yield _open_stream(stream, label, formats)


@contextmanager
def open_image(
    path: str | os.PathLike[str], *, formats: Collection[str] = IMAGE_FORMATS
) -> Iterator[Image.Image]:
    """Open an image file lazily with Pillow: a regular file in one of ``formats`` only.

    Use it wherever lfmdesk reads a picture it did not make (headers for sizes, animation
    frames); :func:`load_image` uses it too.

    Args:
        path: The file.
        formats: Pillow format names to accept, a subset of :data:`IMAGE_FORMATS`.

    Raises:
        ImageError: missing, not a regular file (a FIFO, a device), empty, or not one of
            ``formats``; one line naming the file.
    """
    with _opened(path, _label(path), formats) as image:
        yield image


@contextmanager
def _strict_pillow() -> Iterator[None]:
    """Refuse truncated files and turn Pillow's bomb warning into an error meanwhile."""
    with _STRICT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _frame_note(image: Image.Image) -> str | None:
    frames = int(getattr(image, "n_frames", 1) or 1)
    kind, unit = _FRAME_KINDS.get(image.format or "", ("multi-page image", "page"))
    if frames <= 1 or not kind:
        return None
    return f"{kind}: using {unit} {image.tell() + 1} of {frames}"


def _check_size(size: tuple[int, int], max_pixels: int, label: str) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{label}: the image has no pixels ({width}×{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: {width}×{height} is {width * height / 1e6:.1f} megapixels, more than the "
            f"{max_pixels / 1e6:g} MP limit (possible decompression bomb); downscale it first"
        )


def _scaled_to_l(values: np.ndarray, low: float, high: float) -> Image.Image:
    """Map ``low..high`` linearly onto 0..255 (rounded) as an 8-bit grey image."""
    span = (high - low) or 1.0
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255.0 / span)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _from_16bit(image: Image.Image) -> tuple[Image.Image, str | None]:
    values = np.asarray(image).astype(np.uint32)
    # Integer rounding of v * 255 / 65535: 65535 -> 255, 32768 -> 128, never clipped.
    grey = ((values * 255 + 32767) // 65535).astype(np.uint8)
    return Image.fromarray(grey).convert("RGB"), "16-bit image scaled to 8-bit"


def _from_int32(image: Image.Image) -> tuple[Image.Image, str | None]:
    values = np.asarray(image)
    low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
    if low >= 0 and high <= 65535:
        return _from_16bit(image)
    return _scaled_to_l(values, low, high).convert("RGB"), "32-bit image scaled to 8-bit"


def _from_float(image: Image.Image) -> tuple[Image.Image, str | None]:
    values = np.nan_to_num(np.asarray(image), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if low >= 0.0 and high <= 1.0:
        low, high = 0.0, 1.0
    return _scaled_to_l(values, low, high).convert("RGB"), "floating-point image scaled to 8-bit"


def _from_cmyk(image: Image.Image) -> tuple[Image.Image, str | None]:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, profile, srgb, outputMode="RGB")
            if converted is not None:
                return converted, "CMYK image converted to RGB with its colour profile"
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: the plain conversion below is still a fair picture
    return image.convert("RGB"), "CMYK image converted to RGB"


def _from_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    return image, None


_CONVERTERS: dict[str, _Converter] = {
    "RGB": _from_rgb,
    "I;16": _from_16bit,
    "I;16L": _from_16bit,
    "I;16B": _from_16bit,
    "I;16N": _from_16bit,
    "I": _from_int32,
    "F": _from_float,
    "CMYK": _from_cmyk,
}


def _flatten_alpha(image: Image.Image) -> tuple[Image.Image, str | None]:
    rgba = image.convert("RGBA")
    if rgba.getchannel("A").getextrema()[0] == 255:
        return rgba.convert("RGB"), None
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    flat = Image.alpha_composite(white, rgba).convert("RGB")
    return flat, "transparent areas shown on white"


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    converter = _CONVERTERS.get(image.mode)
    if converter is not None:
        return converter(image)
    if "A" in image.mode or "a" in image.mode or image.has_transparency_data:
        return _flatten_alpha(image)
    return image.convert("RGB"), None


def _orient(image: Image.Image) -> tuple[Image.Image, str | None]:
    try:
        return ImageOps.exif_transpose(image), None
    except Exception:  # malformed EXIF must not make a readable picture unreadable
        return image.copy(), "EXIF orientation unreadable: shown as stored"


def _content_hash(image: Image.Image) -> str:
    """sha256 of size + RGB pixels, hashed in strips to avoid one huge copy."""
    width, height = image.size
    digest = hashlib.sha256(f"RGB {width}x{height}\n".encode())
    rows = max(1, 4_000_000 // max(1, width))
    for top in range(0, height, rows):
        digest.update(image.crop((0, top, width, min(height, top + rows))).tobytes())
    return digest.hexdigest()


def _decode(raw: Image.Image, label: str, max_pixels: int) -> tuple[Image.Image, list[str]]:
    _check_size(raw.size, max_pixels, label)  # from the header, before any pixel is decoded
    notes = [note for note in (_frame_note(raw),) if note]
    raw.load()
    oriented, orient_note = _orient(raw)
    rgb, mode_note = _to_rgb(oriented)  # exif_transpose copies, so never the caller's object
    rgb.load()
    notes.extend(note for note in (orient_note, mode_note) if note)
    return rgb, notes


def _decode_error(label: str, exc: BaseException) -> ImageError:
    reason = _printable(str(exc) or type(exc).__name__, limit=100)
    if isinstance(exc, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return ImageError(
            f"{label}: too large to decode safely (possible decompression bomb); downscale it first"
        )
    if isinstance(exc, MemoryError):
        return ImageError(f"{label}: not enough memory to decode this image; downscale it first")
    return ImageError(f"{label}: cannot decode it; it may be truncated or corrupt ({reason})")


def load_image(source: ImageSource, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load an image as RGB with its EXIF orientation applied.

    Alpha is composited on white, 16-bit and float images are scaled to 8-bit over
    their full range, animated images give their first frame, and CMYK, palette,
    1-bit, YCbCr and LAB images are converted to RGB. HEIC/HEIF needs pillow-heif.

    Args:
        source: a file path, the encoded file bytes, or a Pillow image.
        max_pixels: refuse images with more pixels than this (checked from the header
            before decoding, so a decompression bomb costs nothing).

    Returns:
        The loaded image, its size, a content hash independent of the source, and notes.

    Raises:
        ImageError: for anything that is not a readable, complete, reasonably sized image.
    """
    label = _label(source)
    try:
        with _strict_pillow(), _opened(source, label) as raw:
            rgb, notes = _decode(raw, label, max_pixels)
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises many types for bad files; all mean the same
        raise _decode_error(label, exc) from None
    return LoadedImage(
        image=rgb,
        width=rgb.width,
        height=rgb.height,
        source=label,
        content_hash=_content_hash(rgb),
        notes=tuple(notes),
    )
