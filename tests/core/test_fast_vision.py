"""The fast vision tower gives mlx-vlm's features (and so the same answers), faster on CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lfmdesk.core import (
    ChatRequest,
    Engine,
    GenerationStats,
    LoadedImage,
    SamplingSettings,
    VisionSettings,
    load_image,
    plan_tiles,
)
from lfmdesk.core.engine._fast_vision import (
    install_fast_vision,
    requested_tower,
    vision_features,
)
from lfmdesk.core.testing import noise_image

GREEDY = SamplingSettings(temperature=0.0, max_tokens=12, repetition_penalty=1.0)


def make_image(w: int, h: int, seed: int) -> LoadedImage:
    return load_image(noise_image(w, h, seed))


def features(engine: Engine, image: LoadedImage, vision: VisionSettings) -> list[Any]:
    """What the language model gets for ``image``: one (tokens, hidden) array per view."""
    from lfmdesk.core.engine._tiling import apply_vision_settings

    apply_vision_settings(engine._processor.image_processor, vision)
    return vision_features(engine._model, engine._processor, image.image)


# 512x512: one full view. 1000x300: one view of 928 patches, padded. 1200x800: six tiles
# and a smaller thumbnail, padded to the tiles' patch count: the attention mask matters.
@pytest.mark.parametrize("size", [(512, 512), (1000, 300), (1200, 800)])
def test_fast_tower_features_equal_the_stock_tower(engine: Engine, size: tuple[int, int]) -> None:
    assert engine.info is not None and engine.info.vision_tower == "fast"  # CPU default
    image = make_image(*size, seed=size[0])
    vision = VisionSettings()
    fast = features(engine, image, vision)
    install_fast_vision(engine._model, "cpu", "stock")
    try:
        stock = features(engine, image, vision)
    finally:
        install_fast_vision(engine._model, "cpu", "fast")
    assert [f.shape for f in fast] == [s.shape for s in stock]
    assert len(stock) == len(plan_tiles(*size, vision).views)
    worst = max(float(np.abs(f - s).max()) for f, s in zip(fast, stock, strict=True))
    assert worst <= 1e-4


def test_answers_are_the_same_with_either_tower(engine: Engine) -> None:
    image = make_image(640, 480, seed=3)
    request = ChatRequest.single("Describe the picture.", [image], sampling=GREEDY)

    def tokens() -> tuple[int, ...]:
        engine._vision.clear()  # encode again with the tower under test
        stats = [e for e in engine.stream_chat(request) if isinstance(e, GenerationStats)]
        return stats[0].token_ids

    fast = tokens()
    install_fast_vision(engine._model, "cpu", "stock")
    try:
        stock = tokens()
    finally:
        install_fast_vision(engine._model, "cpu", "fast")
    assert fast == stock and len(fast) == GREEDY.max_tokens


def test_the_switch_and_where_the_fast_tower_is_not_used(
    fixture_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LFMDESK_VISION_TOWER", "stock")
    assert requested_tower() == "stock"
    forced = Engine()
    assert forced.load(fixture_models["8bit"]).vision_tower == "stock"
    monkeypatch.setenv("LFMDESK_VISION_TOWER", "nonsense")
    assert requested_tower() == "auto"
    monkeypatch.delenv("LFMDESK_VISION_TOWER")
    # bf16 weights (the checkpoint as shipped): NumPy has no bf16, mlx-vlm's tower runs.
    native = Engine(compute="native")
    assert native.load(fixture_models["bf16"]).vision_tower == "stock"
    # On an Apple GPU, auto keeps mlx-vlm's Metal tower.
    assert forced._model is not None
    assert install_fast_vision(forced._model, "gpu", "auto") == "stock"
    assert install_fast_vision(forced._model, "gpu", "fast") == "fast"
