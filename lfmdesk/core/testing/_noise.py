"""Random-pixel pictures: the images tests and benchmarks feed the tiny random-weight models."""

from __future__ import annotations

import numpy as np
from PIL import Image

__all__ = ["noise_image"]


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    """An RGB picture of uniform noise, the same for the same ``seed``."""
    rng = np.random.default_rng(seed)
    return Image.fromarray((rng.random((height, width, 3)) * 255).astype("uint8"))
