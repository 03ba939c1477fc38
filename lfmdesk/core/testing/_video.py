"""A generated video for live-mode tests: a red box sliding over a dark background.

The frames are deterministic, so a test (or a screenshot) knows where the box is in frame
``i`` without decoding anything: :func:`box_at` gives it.
"""

from __future__ import annotations

from collections.abc import Iterator

from PIL import Image, ImageDraw

__all__ = ["BOX_COLOR", "box_at", "moving_box_frames"]

BOX_COLOR = (220, 50, 50)
_BACKGROUND = (28, 32, 56)
_STEP = 4  # pixels the box moves per frame


def box_at(index: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The box's ``(x1, y1, x2, y2)`` pixels in frame ``index`` (it bounces left and right)."""
    side = max(8, min(width, height) // 4)
    travel = max(1, width - side)
    pos = (index * _STEP) % (2 * travel)
    x1 = pos if pos <= travel else 2 * travel - pos
    y1 = (height - side) // 2
    return x1, y1, x1 + side, y1 + side


def moving_box_frames(count: int, width: int = 320, height: int = 240) -> Iterator[Image.Image]:
    """``count`` RGB frames of the sliding box, each with its frame number in the corner."""
    for index in range(count):
        frame = Image.new("RGB", (width, height), _BACKGROUND)
        draw = ImageDraw.Draw(frame)
        x1, y1, x2, y2 = box_at(index, width, height)
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=BOX_COLOR)
        draw.text((4, 4), str(index), fill=(240, 240, 240))
        yield frame
