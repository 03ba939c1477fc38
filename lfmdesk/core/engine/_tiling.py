"""The LFM2-VL tiling planner: how an image becomes vision-tower views and prompt tokens.

:func:`plan_tiles` is plain arithmetic that reproduces mlx-vlm's
``Lfm2VlNumpyImageProcessor`` (itself a port of transformers' ``Lfm2VlImageProcessor``)
exactly: the smart resize, the "too large for one view" test, the tile grid choice and the
``<image>`` token expansion. It is cheap enough to call on every slider move.

:func:`apply_vision_settings` pushes :class:`VisionSettings` onto a live mlx-vlm image
processor; options passed to mlx-vlm's ``generate()`` or ``load()`` do not reach it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from lfmdesk.core._errors import SettingsError
from lfmdesk.core._settings import VisionSettings

__all__ = ["Tile", "TilePlan", "apply_vision_settings", "plan_tiles"]

# Markers around every image: <|image_start|> and <|image_end|>.
_IMAGE_BRACKETS = 2
# The checkpoint's vocabulary has <|img_row_R_col_C|> only for R, C <= 10.
_MAX_MARKED_SIDE = 10


@dataclass(frozen=True)
class Tile:
    """One vision-tower view of an image.

    Attributes:
        row: grid row (0-based); 0 for the thumbnail and the single view.
        col: grid column (0-based); 0 for the thumbnail and the single view.
        box: ``(x1, y1, x2, y2)`` the view covers, in original image pixels.
        size: ``(w, h)`` of the view fed to the vision tower.
        tokens: image tokens the view becomes after the 2x2 pixel-unshuffle.
    """

    row: int
    col: int
    box: tuple[int, int, int, int]
    size: tuple[int, int]
    tokens: int


@dataclass(frozen=True)
class TilePlan:
    """What the LFM2-VL processor does with one image.

    Attributes:
        image_size: original ``(w, h)``.
        grid: ``(rows, cols)``; ``(1, 1)`` when the image is not split.
        resized_size: ``(w, h)`` the image is resized to before cutting tiles, or the
            single view's size when it is not split.
        tiles: the tiles, row-major; empty when the image is not split.
        thumbnail: the downscaled whole-image view after the tiles, or the single view
            when not split (its box is then the whole image); None when split without one.
        image_tokens: ``<image>`` tokens the processor puts in the prompt for this image.
        marker_tokens: the other special tokens it adds (image start/end, one row/col
            marker per tile, the thumbnail marker).
    """

    image_size: tuple[int, int]
    grid: tuple[int, int]
    resized_size: tuple[int, int]
    tiles: tuple[Tile, ...]
    thumbnail: Tile | None
    image_tokens: int
    marker_tokens: int
    patch_size: int = 16

    @property
    def views(self) -> tuple[Tile, ...]:
        """Every vision-tower view in the order the processor emits them."""
        return self.tiles + ((self.thumbnail,) if self.thumbnail is not None else ())

    @property
    def feature_tokens(self) -> int:
        """Image features the vision tower produces; must equal ``image_tokens`` to run."""
        return sum(view.tokens for view in self.views)

    @property
    def max_view_patches(self) -> int:
        """Patches in the largest view: the processor pads every view to at least this."""
        p = self.patch_size
        return max((w // p) * (h // p) for w, h in (view.size for view in self.views))

    def problem(self) -> str | None:
        """Why the model cannot run this plan (one line), or None when it can.

        mlx-vlm (and transformers) count tokens for a 1x1 tile grid as if the image were
        the single smart-resized view, while the view is a full 512 px tile; the model
        then refuses the mismatch. Grids wider or taller than 10 tiles need row/column
        markers the vocabulary does not have.
        """
        if self.feature_tokens != self.image_tokens:
            return (
                f"a {self.image_size[0]}x{self.image_size[1]} image with min_tiles=1 becomes "
                "one 512 px tile that mlx-vlm miscounts; set min_tiles to 2 or turn splitting off"
            )
        if max(self.grid) > _MAX_MARKED_SIDE and self.tiles:
            return (
                f"a {self.grid[0]}x{self.grid[1]} tile grid exceeds the model's 10x10 "
                "row/column markers; lower max_tiles to 10 or less"
            )
        return None

    def check(self) -> None:
        """Raise :class:`SettingsError` when :meth:`problem` finds one."""
        message = self.problem()
        if message is not None:
            raise SettingsError(message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists), including ``image_tokens``."""
        data = asdict(self)
        data["views"] = len(self.views)
        data["feature_tokens"] = self.feature_tokens
        return {key: _listify(value) for key, value in data.items()}


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _listify(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_listify(item) for item in value]
    return value


# The helpers below copy mlx-vlm's expressions operation for operation (including
# Python's round-half-even and float division order) so that boundary sizes agree.
def _round_by_factor(number: float, factor: int) -> int:
    return round(number / factor) * factor


def _smart_resize(
    height: int, width: int, factor: int, min_tokens: int, max_tokens: int, patch: int
) -> tuple[int, int]:
    """Returns ``(w, h)``: multiples of ``patch * factor`` within the token budget."""
    total_factor = patch * factor
    min_pixels = min_tokens * patch**2 * factor**2
    max_pixels = max_tokens * patch**2 * factor**2
    h_bar = max(total_factor, _round_by_factor(height, total_factor))
    w_bar = max(total_factor, _round_by_factor(width, total_factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(total_factor, math.floor(height / beta / total_factor) * total_factor)
        w_bar = max(total_factor, math.floor(width / beta / total_factor) * total_factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / total_factor) * total_factor
        w_bar = math.ceil(width * beta / total_factor) * total_factor
    return w_bar, h_bar


def _is_image_too_large(
    height: int, width: int, max_tokens: int, patch: int, factor: int, tolerance: float
) -> bool:
    total_factor = patch * factor
    # max(patch, ...) rather than max(total_factor, ...): a quirk kept from the reference.
    h_bar = max(patch, _round_by_factor(height, total_factor))
    w_bar = max(patch, _round_by_factor(width, total_factor))
    return h_bar * w_bar > max_tokens * patch**2 * factor**2 * tolerance


@functools.lru_cache(maxsize=256)
def _target_ratios(min_tiles: int, max_tiles: int) -> tuple[tuple[int, int], ...]:
    """``(cols, rows)`` grids within the budget, in the reference's order (ties matter)."""
    ratios = [
        (w, h)
        for n in range(min_tiles, max_tiles + 1)
        for w in range(1, n + 1)
        for h in range(1, n + 1)
        if min_tiles <= w * h <= max_tiles
    ]
    return tuple(sorted(set(ratios), key=lambda x: x[0] * x[1]))


def _grid_layout(
    height: int, width: int, min_tiles: int, max_tiles: int, tile_size: int
) -> tuple[int, int]:
    """Returns ``(cols, rows)``: the grid closest to the image's aspect ratio."""
    aspect_ratio = width / height
    best_diff = float("inf")
    best = (1, 1)
    area = width * height
    for ratio in _target_ratios(min_tiles, max_tiles):
        diff = abs(aspect_ratio - ratio[0] / ratio[1])
        if diff < best_diff:
            best_diff, best = diff, ratio
        elif diff == best_diff and area > 0.5 * (tile_size * tile_size * ratio[0] * ratio[1]):
            best = ratio  # equally close: prefer the grid whose area fits the image
    return best


def _view_tokens(width: int, height: int, patch: int, factor: int) -> int:
    """Tokens of one view: its patch grid, odd sides padded, pixel-unshuffled."""
    return math.ceil((height // patch) / factor) * math.ceil((width // patch) / factor)


def _edges(length: int, parts: int) -> list[int]:
    """``parts + 1`` rounded cut positions splitting ``length`` evenly."""
    return [(2 * i * length + parts) // (2 * parts) for i in range(parts + 1)]


def _split_plan(
    width: int, height: int, vision: VisionSettings, tile_size: int, single: Tile, p: int, f: int
) -> TilePlan:
    cols, rows = _grid_layout(height, width, vision.min_tiles, vision.max_tiles, tile_size)
    xs, ys = _edges(width, cols), _edges(height, rows)
    per_tile = _view_tokens(tile_size, tile_size, p, f)
    tiles = tuple(
        Tile(r, c, (xs[c], ys[r], xs[c + 1], ys[r + 1]), (tile_size, tile_size), per_tile)
        for r in range(rows)
        for c in range(cols)
    )
    multi = rows * cols > 1
    thumbnail = single if vision.use_thumbnail and multi else None
    if multi:
        # One row/col marker per tile, the thumbnail marker, then the thumbnail's tokens.
        image_tokens = len(tiles) * per_tile + (single.tokens if thumbnail else 0)
        markers = _IMAGE_BRACKETS + len(tiles) + (1 if thumbnail else 0)
    else:
        # The reference expands a 1x1 grid as the smart-resized single view.
        image_tokens, markers = single.tokens, _IMAGE_BRACKETS
    return TilePlan(
        image_size=(width, height),
        grid=(rows, cols),
        resized_size=(cols * tile_size, rows * tile_size),
        tiles=tiles,
        thumbnail=thumbnail,
        image_tokens=image_tokens,
        marker_tokens=markers,
        patch_size=p,
    )


def plan_tiles(
    width: int,
    height: int,
    vision: VisionSettings,
    *,
    tile_size: int = 512,
    patch_size: int = 16,
    downsample_factor: int = 2,
    max_pixels_tolerance: float = 2.0,
) -> TilePlan:
    """Plan how the LFM2-VL processor turns a ``width`` x ``height`` image into views.

    Images above ``max_pixels_tolerance`` times the ``max_image_tokens`` budget are (when
    splitting is on) resized to a grid of ``tile_size`` tiles plus a thumbnail; others
    become one view resized to within ``min_image_tokens..max_image_tokens``.

    Args:
        width: original image width in pixels (at least 1).
        height: original image height in pixels (at least 1).
        vision: the tiling settings.
        tile_size: tile side in pixels (the checkpoint's ``tile_size``).
        patch_size: the vision encoder's patch side (``encoder_patch_size``).
        downsample_factor: the pixel-unshuffle factor.
        max_pixels_tolerance: how far over budget an image may be before it is split.

    Returns:
        The plan: grid, views with their boxes and sizes, and prompt token counts.

    Raises:
        ValueError: if ``width`` or ``height`` is below 1.
    """
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    p, f = patch_size, downsample_factor
    vw, vh = _smart_resize(height, width, f, vision.min_image_tokens, vision.max_image_tokens, p)
    single = Tile(0, 0, (0, 0, width, height), (vw, vh), _view_tokens(vw, vh, p, f))
    large = _is_image_too_large(height, width, vision.max_image_tokens, p, f, max_pixels_tolerance)
    if vision.do_image_splitting and large:
        return _split_plan(width, height, vision, tile_size, single, p, f)
    return TilePlan(
        image_size=(width, height),
        grid=(1, 1),
        resized_size=(vw, vh),
        tiles=(),
        thumbnail=single,
        image_tokens=single.tokens,
        marker_tokens=_IMAGE_BRACKETS,
        patch_size=p,
    )


def apply_vision_settings(
    image_processor: Any, vision: VisionSettings, *, plans: Iterable[TilePlan] = ()
) -> None:
    """Set the tiling options on mlx-vlm's ``Lfm2VlNumpyImageProcessor``.

    mlx-vlm ignores tiling options given to ``generate()`` and token limits given to
    ``load()``; the processor's attributes are what count. ``max_num_patches`` (the
    length every view is padded or truncated to) is derived in the processor's
    ``__init__`` only, so it is re-derived here; raising ``max_image_tokens`` without it
    truncates views and fails to broadcast.

    Args:
        image_processor: ``processor.image_processor`` of a loaded LFM2-VL model.
        vision: the settings to apply.
        plans: plans of the images about to be processed; ``max_num_patches`` is raised
            to fit their largest view (very thin images overshoot the token budget).
    """
    patch = int(getattr(image_processor, "encoder_patch_size", 16))
    factor = int(getattr(image_processor, "downsample_factor", 2))
    tile_size = int(getattr(image_processor, "tile_size", 512))
    tile_patches = (tile_size // patch) ** 2 if vision.do_image_splitting else 0
    needed = max((plan.max_view_patches for plan in plans), default=0)
    image_processor.min_image_tokens = vision.min_image_tokens
    image_processor.max_image_tokens = vision.max_image_tokens
    image_processor.do_image_splitting = vision.do_image_splitting
    image_processor.min_tiles = vision.min_tiles
    image_processor.max_tiles = vision.max_tiles
    image_processor.use_thumbnail = vision.use_thumbnail
    image_processor.max_num_patches = max(vision.max_image_tokens * factor**2, tile_patches, needed)
