"""A synthetic project for training tests: coloured squares, each boxed by a person.

Every picture holds one big square of a random colour, nudged by a tenth of the picture to
one of four places: a correct answer is ``[{"label": "square", "bbox": [x1, y1, x2, y2]}]``
with x1, y1 in {0.1, 0.2} and x2, y2 in {0.7, 0.8}. A tiny random-weight fixture cannot learn
to see, but it can learn to answer in the model card's format, which the base model never
does; any mix of those digits is still a valid box, so what the loop test measures is that
difference, not luck.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["SQUARE_LABEL", "squares_project"]

SQUARE_LABEL = "square"
_PALETTE = (
    (220, 40, 40),
    (40, 170, 60),
    (40, 80, 220),
    (230, 180, 30),
    (150, 60, 190),
    (20, 160, 170),
)


def squares_project(root: Path, count: int = 40, *, side: int = 100, seed: int = 0) -> Path:
    """Write ``count`` pictures with one person-made box each into the project ``root``.

    Args:
        root: the project folder (created).
        count: pictures to write.
        side: picture width and height in pixels (a multiple of 10); the square is 0.6 of it.
        seed: picks colours and quadrants.

    Returns:
        ``root``.
    """
    from lfmdesk.core.datasets._annotations import ImageAnnotation, add_box, make_box
    from lfmdesk.core.datasets._project import Project

    root.mkdir(parents=True, exist_ok=True)
    project = Project(root)
    rng = random.Random(seed)
    tenth, square = side // 10, side * 6 // 10
    for index in range(count):
        colour = rng.choice(_PALETTE)
        x, y = tenth * rng.randint(1, 2), tenth * rng.randint(1, 2)
        picture = Image.new("RGB", (side, side), (240, 240, 236))
        ImageDraw.Draw(picture).rectangle([x, y, x + square - 1, y + square - 1], fill=colour)
        name = f"square-{index:03d}.png"
        picture.save(root / name)
        ann = ImageAnnotation.empty(name, side, side)
        box = make_box(SQUARE_LABEL, (x, y, x + square, y + square), side, side)
        project.save(add_box(ann, box))
    project.save_labels([SQUARE_LABEL])
    return root
