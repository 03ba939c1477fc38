"""Screen captures without Qt: is a grab blank, may we grab at all, and saving one.

The window grabs pixels with Qt; what happens to them next is decided here so the CLI and
tests can use it too::

    if looks_blank(image):
        show(PERMISSION_HELP if screen_capture_allowed() is False else EMPTY_CAPTURE)
    path = save_capture(image, project.root)      # "Capture 2026-11-21 at 10.30.05.png"
"""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import sys
from datetime import datetime
from pathlib import Path

from PIL import Image

from lfmdesk.core._atomic import write_bytes_atomic
from lfmdesk.core._errors import InputError

__all__ = [
    "EMPTY_CAPTURE",
    "PERMISSION_HELP",
    "capture_name",
    "looks_blank",
    "save_capture",
    "screen_capture_allowed",
]

PERMISSION_HELP = (
    "lfmdesk may not record the screen: allow it in System Settings ▸ Privacy & Security ▸ "
    "Screen & System Audio Recording, then quit and reopen lfmdesk"
)
EMPTY_CAPTURE = "the screen capture came back empty; try again, or capture a region instead"

# A blank grab is one flat colour; JPEG-like noise or a cursor still counts as flat.
_BLANK_SPREAD = 8
_PROBE_SIZE = 64
_MAX_TRIES = 1000


def looks_blank(image: Image.Image) -> bool:
    """True when ``image`` is (nearly) one colour everywhere, like a refused screen grab.

    A downscaled copy is checked, so a tiny cursor or a few noisy pixels do not count.
    """
    if image.width < 1 or image.height < 1:
        return True
    probe = image.convert("RGB")
    probe.thumbnail((_PROBE_SIZE, _PROBE_SIZE), Image.Resampling.BOX)
    extrema = probe.getextrema()
    return all(high - low < _BLANK_SPREAD for low, high in extrema)  # type: ignore[misc]


def screen_capture_allowed() -> bool | None:
    """On macOS, whether this process may record the screen; None elsewhere or unknown.

    Uses ``CGPreflightScreenCaptureAccess`` (macOS 10.15+), which asks nothing of the
    user: it only reports the current permission.
    """
    if sys.platform != "darwin":
        return None
    path = ctypes.util.find_library("CoreGraphics")
    if not path:
        return None
    try:
        preflight = ctypes.CDLL(path).CGPreflightScreenCaptureAccess
    except (OSError, AttributeError):
        return None
    preflight.restype = ctypes.c_bool
    preflight.argtypes = []
    return bool(preflight())


def capture_name(now: datetime, n: int = 1) -> str:
    """The file name of a capture taken at ``now``; ``n`` > 1 makes it unique."""
    stamp = now.strftime("Capture %Y-%m-%d at %H.%M.%S")
    return f"{stamp}.png" if n <= 1 else f"{stamp}-{n}.png"


def save_capture(image: Image.Image, folder: Path, *, now: datetime | None = None) -> Path:
    """Write ``image`` as a PNG named after the time into ``folder``; returns its path.

    The name is never one already taken (``-2``, ``-3``... are added), and the file is
    written atomically, so a project's image list never shows half a capture.

    Raises:
        InputError: ``folder`` cannot be created or written.
    """
    when = now or datetime.now()
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot save the capture in {folder}: {exc.strerror or exc}") from None
    for n in range(1, _MAX_TRIES + 1):
        path = folder / capture_name(when, n)
        if path.exists():
            continue
        try:
            write_bytes_atomic(path, buf.getvalue())
        except OSError as exc:
            raise InputError(f"cannot save the capture {path}: {exc.strerror or exc}") from None
        return path
    raise InputError(f"{folder}: too many captures named {capture_name(when)}; tidy the folder")
