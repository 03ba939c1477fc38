"""The tiling planner against mlx-vlm's real LFM2-VL processor.

Every case runs mlx-vlm's ``Lfm2VlProcessor`` (with the stand-in LFM2 tokenizer) on a
blank image and compares the planner's grid, views, and prompt token counts with what
the processor actually produced; the GUI overlay and the token budget shown to the user
come from the planner, so any disagreement is a visible bug.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lfmdesk.core._errors import SettingsError
from lfmdesk.core._settings import VisionSettings
from lfmdesk.core.engine._tiling import TilePlan, apply_vision_settings, plan_tiles

lfm2 = pytest.importorskip("mlx_vlm.models.lfm2_vl.processing_lfm2_vl")

IMAGE_TOKEN_ID = 396
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "lfm2-vl-450m"

# LFM2-VL-450M's preprocessor_config.json + processor_config.json, minus the keys
# mlx-vlm's from_pretrained drops (it also forces splitting and the thumbnail on).
PROCESSOR_CONFIG: dict[str, Any] = {
    "do_normalize": True,
    "do_rescale": True,
    "do_resize": False,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "max_num_patches": 1024,
    "patch_size": 16,
    "resample": 2,
    "rescale_factor": 0.00392156862745098,
    "do_image_splitting": True,
    "downsample_factor": 2,
    "encoder_patch_size": 16,
    "max_image_tokens": 256,
    "max_pixels_tolerance": 2.0,
    "max_tiles": 10,
    "min_image_tokens": 64,
    "min_tiles": 2,
    "tile_size": 512,
    "use_image_special_tokens": True,
    "use_thumbnail": True,
}

SIZES = [
    (1, 1),
    (1, 5000),
    (5000, 1),
    (16, 16),
    (31, 33),
    (256, 384),
    (384, 680),
    (512, 512),
    (513, 513),
    (640, 480),
    (724, 723),
    (767, 1023),
    (800, 600),
    (1000, 3000),
    (1024, 768),
    (1280, 720),
    (1920, 1080),
    (2048, 2048),
    (3000, 1000),
    (4032, 3024),
    (10000, 100),
    (100, 10000),
]


def unchecked(**fields: Any) -> VisionSettings:
    """Settings the app refuses (min_tiles < 2), kept to pin mlx-vlm's behaviour for them."""
    vision = VisionSettings()
    for name, value in fields.items():
        object.__setattr__(vision, name, value)
    return vision


SETTINGS = {
    "defaults": VisionSettings(),
    "v1-card": VisionSettings(min_image_tokens=64),
    "no-split": VisionSettings(do_image_splitting=False),
    "no-thumb": VisionSettings(use_thumbnail=False),
    "max64": VisionSettings(min_image_tokens=16, max_image_tokens=64),
    "max128": VisionSettings(min_image_tokens=32, max_image_tokens=128),
    "max512": VisionSettings(min_image_tokens=32, max_image_tokens=512),
    "max-tiles-4": VisionSettings(max_tiles=4),
    "min-tiles-1": unchecked(min_tiles=1),
    "one-tile": unchecked(min_tiles=1, max_tiles=1),
}


@pytest.fixture(scope="module")
def processor(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """mlx-vlm's Lfm2VlProcessor, built the way its from_pretrained builds it."""
    testing = pytest.importorskip("lfmdesk.core.testing._tokenizer")
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tokenizer")
    testing.write_tokenizer_files(folder, with_auto_map=False)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    image_processor = lfm2.Lfm2VlNumpyImageProcessor(**PROCESSOR_CONFIG)
    return lfm2.Lfm2VlProcessor(image_processor=image_processor, tokenizer=tokenizer)


def run_processor(processor: Any, size: tuple[int, int], vision: VisionSettings) -> Any:
    apply_vision_settings(processor.image_processor, vision)
    return processor(text="<image>", images=[Image.new("RGB", size)])


def grid_from_text(processor: Any, out: Any) -> tuple[int, int]:
    """(rows, cols) from the <|img_row_R_col_C|> markers in the expanded prompt."""
    text = processor.tokenizer.decode(out["input_ids"][0])
    cells = [(int(r), int(c)) for r, c in re.findall(r"<\|img_row_(\d+)_col_(\d+)\|>", text)]
    return (max(r for r, _ in cells), max(c for _, c in cells)) if cells else (1, 1)


def view_sizes(out: Any) -> list[tuple[int, int]]:
    """(w, h) of every view, from the processor's spatial_shapes (rows, cols of patches)."""
    return [(int(w) * 16, int(h) * 16) for h, w in out["spatial_shapes"]]


def test_config_matches_reference_checkpoint() -> None:
    if not REFERENCE.is_dir():
        pytest.skip("../shared/reference is not next to this checkout")
    merged = json.loads((REFERENCE / "preprocessor_config.json").read_text())
    merged.update(json.loads((REFERENCE / "processor_config.json").read_text()))
    for key, value in PROCESSOR_CONFIG.items():
        if key != "use_thumbnail":  # mlx-vlm forces it on, whatever the checkpoint says
            assert merged[key] == value, key


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_plan_matches_processor(processor: Any, size: tuple[int, int], name: str) -> None:
    vision = SETTINGS[name]
    plan = plan_tiles(*size, vision)
    out = run_processor(processor, size, vision)
    ids = out["input_ids"][0]

    assert plan.grid == grid_from_text(processor, out)
    assert [view.size for view in plan.views] == view_sizes(out)
    assert len(plan.views) == out["pixel_values"].shape[0]
    assert plan.image_tokens == int((ids == IMAGE_TOKEN_ID).sum())
    # The prompt is just "<image>": everything else is a marker token.
    assert plan.marker_tokens == len(ids) - plan.image_tokens
    if plan.tiles:
        assert plan.resized_size == (plan.grid[1] * 512, plan.grid[0] * 512)
    else:
        assert plan.resized_size == view_sizes(out)[0]


@pytest.mark.parametrize(
    ("size", "tokens"),
    [
        ((256, 384), 96),
        ((384, 680), 252),
        ((512, 512), 256),
        ((1000, 3000), 1011),
        ((1920, 1080), 2300),
    ],
)
def test_known_token_counts(size: tuple[int, int], tokens: int) -> None:
    plan = plan_tiles(*size, VisionSettings(min_image_tokens=64, max_image_tokens=256))
    assert plan.image_tokens == tokens
    assert plan.feature_tokens == tokens


def test_split_plan_layout() -> None:
    plan = plan_tiles(1920, 1080, VisionSettings())
    assert plan.grid == (2, 4)
    assert plan.resized_size == (2048, 1024)
    assert [(t.row, t.col) for t in plan.tiles[:5]] == [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0)]
    assert plan.tiles[0].box == (0, 0, 480, 540)
    assert plan.tiles[-1].box == (1440, 540, 1920, 1080)
    assert all(t.size == (512, 512) and t.tokens == 256 for t in plan.tiles)
    assert plan.thumbnail is not None
    assert plan.thumbnail.box == (0, 0, 1920, 1080)
    assert plan.thumbnail.size == (672, 384)
    assert plan.marker_tokens == 2 + 8 + 1


def test_small_image_is_one_view() -> None:
    plan = plan_tiles(640, 480, VisionSettings())
    assert plan.tiles == ()
    assert plan.grid == (1, 1)
    assert plan.thumbnail is not None and plan.thumbnail.box == (0, 0, 640, 480)
    assert plan.thumbnail.size == (576, 416)  # 640x480 is over 256 tokens: scaled down
    assert plan.image_tokens == plan.thumbnail.tokens == 18 * 13
    assert plan.marker_tokens == 2


def test_to_dict_is_json_ready() -> None:
    data = plan_tiles(1920, 1080, VisionSettings()).to_dict()
    again = json.loads(json.dumps(data))
    assert again["image_tokens"] == 2300
    assert again["grid"] == [2, 4]
    assert again["views"] == 9
    assert again["tiles"][1]["box"] == [480, 0, 960, 540]
    assert plan_tiles(10, 10, VisionSettings()).to_dict()["tiles"] == []


def test_apply_vision_settings_reaches_the_processor(processor: Any) -> None:
    vision = VisionSettings(
        min_image_tokens=32, max_image_tokens=512, min_tiles=3, max_tiles=6, use_thumbnail=False
    )
    apply_vision_settings(processor.image_processor, vision)
    ip = processor.image_processor
    assert (ip.min_image_tokens, ip.max_image_tokens, ip.min_tiles, ip.max_tiles) == (32, 512, 3, 6)
    assert ip.use_thumbnail is False and ip.do_image_splitting is True
    assert ip.max_num_patches == 2048  # 512 tokens x 2x2 unshuffle
    plan = plan_tiles(900, 900, vision)
    assert plan.tiles == () and plan.max_view_patches == 44 * 44  # more than the old 1024
    out = processor(text="<image>", images=[Image.new("RGB", (900, 900))])
    assert out["pixel_values"].shape[:2] == (1, 2048)
    assert int(out["pixel_attention_mask"][0].sum()) == 44 * 44  # nothing cut off

    apply_vision_settings(ip, VisionSettings(max_image_tokens=64, do_image_splitting=False))
    assert ip.max_num_patches == 256  # no 512 px tiles to hold


def test_thin_image_needs_plans_to_fit(processor: Any) -> None:
    """A 1x5000 strip overshoots the token budget (both sides are clamped to >= 32 px)."""
    vision = VisionSettings(min_image_tokens=16, max_image_tokens=64)
    plan = plan_tiles(1, 5000, vision)
    assert plan.max_view_patches > 1024
    out = run_processor(processor, (1, 5000), vision)
    assert int(out["pixel_attention_mask"][0].sum()) < plan.max_view_patches  # truncated

    apply_vision_settings(processor.image_processor, vision, plans=[plan])
    out = processor(text="<image>", images=[Image.new("RGB", (1, 5000))])
    assert int(out["pixel_attention_mask"][0].sum()) == plan.max_view_patches


def test_single_tile_grid_is_flagged(processor: Any) -> None:
    """min_tiles=1 can pick a 1x1 grid whose 512 px tile mlx-vlm counts as the small view."""
    vision = unchecked(min_tiles=1)
    plan = plan_tiles(724, 723, vision)
    assert plan.grid == (1, 1) and len(plan.tiles) == 1
    out = run_processor(processor, (724, 723), vision)
    features = sum((w // 32) * (h // 32) for w, h in view_sizes(out))
    assert int((out["input_ids"][0] == IMAGE_TOKEN_ID).sum()) == plan.image_tokens == 240
    assert features == plan.feature_tokens == 256
    assert plan.problem() is not None
    with pytest.raises(SettingsError, match="min_tiles"):
        plan.check()
    assert plan_tiles(724, 723, VisionSettings()).problem() is None


def test_one_tile_budget_squashes_large_images() -> None:
    """mlx-vlm (unlike transformers) still "splits" with min_tiles = max_tiles = 1."""
    plan = plan_tiles(1920, 1080, unchecked(min_tiles=1, max_tiles=1))
    assert plan.grid == (1, 1) and plan.tiles[0].size == (512, 512)
    assert (plan.image_tokens, plan.feature_tokens) == (252, 256)
    assert plan.problem() is not None


def test_wide_grid_beyond_markers_is_flagged() -> None:
    plan = plan_tiles(12000, 500, VisionSettings(max_tiles=20))
    assert plan.grid[1] > 10
    assert plan.problem() is not None and "max_tiles" in str(plan.problem())


def test_non_positive_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        plan_tiles(0, 10, VisionSettings())


@st.composite
def vision_settings(draw: st.DrawFn, most_tiles: int = 64) -> VisionSettings:
    low_tokens = draw(st.integers(16, 1024))
    low_tiles = draw(st.integers(2, most_tiles))
    return VisionSettings(
        min_image_tokens=low_tokens,
        max_image_tokens=draw(st.integers(low_tokens, 1024)),
        do_image_splitting=draw(st.booleans()),
        min_tiles=low_tiles,
        max_tiles=draw(st.integers(low_tiles, most_tiles)),
        use_thumbnail=draw(st.booleans()),
    )


sizes = st.integers(1, 20000)


@settings(max_examples=300, deadline=None)
@given(width=sizes, height=sizes, vision=vision_settings())
def test_plan_never_raises_and_tiles_cover_image(
    width: int, height: int, vision: VisionSettings
) -> None:
    plan = plan_tiles(width, height, vision)
    assert isinstance(plan, TilePlan) and plan.image_tokens > 0 and plan.views
    rows, cols = plan.grid
    if not plan.tiles:
        assert plan.grid == (1, 1)
        assert plan.thumbnail is not None and plan.thumbnail.box == (0, 0, width, height)
        return
    assert len(plan.tiles) == rows * cols
    grid = {(t.row, t.col): t.box for t in plan.tiles}
    for (r, c), (x1, y1, x2, y2) in grid.items():
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
        assert (x1 == 0) == (c == 0) and (y1 == 0) == (r == 0)
        assert (x2 == width) == (c == cols - 1) and (y2 == height) == (r == rows - 1)
        if c + 1 < cols:
            assert grid[(r, c + 1)][0] == x2  # no gap, no overlap
        if r + 1 < rows:
            assert grid[(r + 1, c)][1] == y2


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(width=sizes, height=sizes, vision=vision_settings())
def test_plan_matches_reference_math(width: int, height: int, vision: VisionSettings) -> None:
    """Differential check against mlx-vlm's own sizing helpers over random sizes."""
    plan = plan_tiles(width, height, vision)
    args = (vision.min_image_tokens, vision.max_image_tokens, 16)
    single = lfm2._smart_resize(height, width, 2, *args)
    large = lfm2._is_image_too_large(height, width, vision.max_image_tokens, 16, 2, 2.0)
    if vision.do_image_splitting and large:
        cols, rows, *_ = lfm2._get_grid_layout(
            height, width, vision.min_tiles, vision.max_tiles, 512
        )
        assert plan.grid == (rows, cols)
        with_thumb = vision.use_thumbnail and rows * cols > 1
        assert (plan.thumbnail is not None) == with_thumb
        if with_thumb and plan.thumbnail is not None:
            assert plan.thumbnail.size == single
    else:
        assert plan.grid == (1, 1) and plan.tiles == ()
        assert plan.thumbnail is not None and plan.thumbnail.size == single
    tokens = lfm2._num_image_tokens_from_patch_grid(single[1] // 16, single[0] // 16, 2)
    if plan.grid == (1, 1):
        assert plan.image_tokens == tokens


@settings(max_examples=15, deadline=None)
@given(
    width=st.integers(1, 2600),
    height=st.integers(1, 2600),
    vision=vision_settings(most_tiles=12),
)
def test_plan_matches_processor_random(
    processor: Any, width: int, height: int, vision: VisionSettings
) -> None:
    plan = plan_tiles(width, height, vision)
    out = run_processor(processor, (width, height), vision)
    assert [view.size for view in plan.views] == view_sizes(out)
    assert plan.image_tokens == int((out["input_ids"][0] == IMAGE_TOKEN_ID).sum())
