"""Drawing detections onto a copy of an image (for ``lfmdesk detect --draw``)."""

from __future__ import annotations

import colorsys
import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

from lfmdesk.core._atomic import write_bytes_atomic
from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import Detection

__all__ = ["draw_detections", "label_color", "save_drawing"]

_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def label_color(label: str) -> tuple[int, int, int]:
    """A stable, saturated colour per label (the same label is the same colour everywhere)."""
    hue = int(hashlib.sha1(label.encode("utf-8")).hexdigest()[:4], 16) / 0xFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(image: Image.Image, detections: Sequence[Detection]) -> Image.Image:
    """A copy of ``image`` with each box outlined and labelled in its label's colour."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    width = max(2, round(min(out.size) / 250))
    for det in detections:
        color = label_color(det.label)
        x1, y1, x2, y2 = det.box_px
        draw.rectangle((x1, y1, x2, y2), outline=color, width=width)
        text_box = draw.textbbox((x1, y1), det.label)
        top = max(0, y1 - (text_box[3] - text_box[1]) - 4)
        draw.rectangle(
            (x1, top, x1 + text_box[2] - text_box[0] + 6, top + text_box[3] - text_box[1] + 4),
            fill=color,
        )
        draw.text((x1 + 3, top + 1), det.label, fill=(0, 0, 0))
    return out


def save_drawing(image: Image.Image, path: Path, *, protect: Sequence[Path] = ()) -> None:
    """Save atomically; refuses unknown extensions and never overwrites a ``protect`` path."""
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"cannot write {path}: use a .png, .jpg or .webp file name")
    target = path.expanduser().resolve()
    if any(target == p.expanduser().resolve() for p in protect):
        raise InputError(f"refusing to overwrite the input image {path}; choose another file")
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    write_bytes_atomic(target, buf.getvalue())
