"""The engine over real mlx-vlm on tiny random-weight checkpoints (no mocks of mlx-vlm)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lfmdesk.core import (
    ChatRequest,
    Engine,
    EngineError,
    GenerationStats,
    LoadedImage,
    Message,
    Notice,
    SamplingSettings,
    TextDelta,
    VisionSettings,
    load_image,
    plan_tiles,
)

GREEDY = SamplingSettings(temperature=0.0, max_tokens=8, repetition_penalty=1.0)


def make_image(w: int, h: int, seed: int = 0) -> LoadedImage:
    rng = np.random.default_rng(seed)
    return load_image(Image.fromarray((rng.random((h, w, 3)) * 255).astype("uint8")))


def run(engine: Engine, request: ChatRequest) -> tuple[str, GenerationStats, list[Notice]]:
    text, stats, notices = "", None, []
    for event in engine.stream_chat(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Notice):
            notices.append(event)
        else:
            stats = event
    assert stats is not None
    return text, stats, notices


@pytest.fixture(scope="module")
def engine(fixture_models: dict[str, Path]) -> Engine:
    e = Engine()
    e.load(fixture_models["8bit"])
    return e


def raw_greedy_tokens(
    model_dir: Path,
    prompt: str,
    image: Path | None,
    *,
    float32: bool,
    vision: VisionSettings,
    max_tokens: int,
) -> list[int]:
    """What plain mlx_vlm.generate produces, settings applied the way mlx-vlm honours them."""
    from mlx_vlm import generate, load

    from lfmdesk.core.engine._engine import _make_float32
    from lfmdesk.core.engine._tiling import apply_vision_settings

    model, processor = load(str(model_dir))
    if float32:
        _make_float32(model, quantized=True)
    apply_vision_settings(processor.image_processor, vision)
    result = generate(
        model,
        processor,
        prompt,
        image=[str(image)] if image else None,
        max_tokens=max_tokens,
        temperature=0.0,
    )
    eos = processor.tokenizer.eos_token_id
    return [t for t in result.token_ids if t != eos]


@pytest.mark.parametrize("compute", ["native", "float32"])
def test_greedy_tokens_equal_raw_mlx_vlm(fixture_models, tmp_path, compute) -> None:
    path = tmp_path / "cat.png"
    make_image(640, 480, seed=3).image.save(path)
    e = Engine(compute=compute)
    e.load(fixture_models["8bit"])
    request = ChatRequest.single(
        "What is in the picture?",
        [load_image(path)],
        sampling=SamplingSettings(temperature=0.0, max_tokens=16, repetition_penalty=1.0),
    )
    _, stats, _ = run(e, request)
    # The engine's rendered prompt (one BOS: template's, tokenizer's dropped) fed to raw mlx-vlm.
    raw = raw_greedy_tokens(
        fixture_models["8bit"],
        e.render_prompt(request),
        path,
        float32=compute == "float32",
        vision=request.vision,
        max_tokens=16,
    )
    assert list(stats.token_ids) == raw
    assert stats.decode_tokens == len(raw) > 0


def test_prompt_has_exactly_one_bos(engine: Engine) -> None:
    request = ChatRequest.single("hi", sampling=GREEDY)
    _, stats, _ = run(engine, request)
    tok = engine._processor.tokenizer
    ids = engine._prefix.seen_ids
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id
    assert stats.prompt_tokens == len(tok(engine.render_prompt(request))["input_ids"])


@pytest.mark.parametrize(
    ("size", "vision"),
    [
        ((512, 512), VisionSettings()),
        ((1000, 3000), VisionSettings()),
        ((1000, 3000), VisionSettings(max_image_tokens=64, min_image_tokens=16)),
        ((1000, 3000), VisionSettings(do_image_splitting=False, max_image_tokens=128)),
        ((1920, 1080), VisionSettings(max_tiles=4, use_thumbnail=False)),
        ((300, 200), VisionSettings(max_image_tokens=64, min_image_tokens=32)),
    ],
)
def test_image_tokens_follow_settings_and_match_the_planner(engine, size, vision) -> None:
    image = make_image(*size)
    request = ChatRequest.single(
        "hi", [image], sampling=GREEDY.__class__(max_tokens=1), vision=vision
    )
    _, stats, _ = run(engine, request)
    assert stats.image_tokens == plan_tiles(*size, vision).image_tokens


def test_max_image_tokens_changes_the_prompt(engine) -> None:
    image = make_image(800, 800)
    counts = []
    for max_tokens in (64, 128, 256):
        vision = VisionSettings(
            do_image_splitting=False, max_image_tokens=max_tokens, min_image_tokens=16
        )
        _, stats, _ = run(engine, ChatRequest.single("hi", [image], sampling=GREEDY, vision=vision))
        counts.append(stats.image_tokens)
    assert counts[0] < counts[1] < counts[2] <= 256


def test_follow_up_reuses_vision_features_and_prompt_cache(fixture_models) -> None:
    e = Engine()
    e.load(fixture_models["8bit"])
    image = make_image(512, 512, seed=5)
    first = ChatRequest.single("Describe it.", [image], sampling=GREEDY)
    text, stats1, _ = run(e, first)
    assert stats1.vision_cache_hits == 0 and stats1.cached_prompt_tokens == 0
    follow = ChatRequest(
        (*first.messages, Message("assistant", text), Message("user", "More?")), sampling=GREEDY
    )
    _, stats2, _ = run(e, follow)
    assert stats2.vision_cache_hits == 1
    assert stats2.vision_seconds == 0.0
    assert stats2.cached_prompt_tokens >= stats1.prompt_tokens
    assert stats2.prompt_tokens - stats2.cached_prompt_tokens < 30


def test_reused_cache_gives_the_same_answer_as_a_cold_run(fixture_models) -> None:
    from mlx_vlm import generate

    e = Engine()
    e.load(fixture_models["8bit"])
    image = make_image(512, 512, seed=6)
    first = ChatRequest.single("Describe it.", [image], sampling=GREEDY)
    text, _, _ = run(e, first)
    follow = ChatRequest(
        (*first.messages, Message("assistant", text), Message("user", "Why?")), sampling=GREEDY
    )
    _, warm, _ = run(e, follow)
    assert warm.cached_prompt_tokens > 0
    # Cold: the same token ids (minus the answer) through plain mlx-vlm, from scratch.
    import mlx.core as mx
    from mlx_vlm.utils import prepare_inputs

    full_prompt_ids = e._prefix.seen_ids[: warm.prompt_tokens]
    inputs = prepare_inputs(
        e._processor,
        images=[image.image],
        prompts=e.render_prompt(first),
        image_token_index=e._model.config.image_token_index,
    )
    cold = generate(
        e._model,
        e._processor,
        "",
        input_ids=mx.array([full_prompt_ids]),
        pixel_values=inputs["pixel_values"],
        spatial_shapes=inputs["spatial_shapes"],
        pixel_attention_mask=inputs["pixel_attention_mask"],
        max_tokens=8,
        temperature=0.0,
    )
    eos = e._processor.tokenizer.eos_token_id
    assert list(warm.token_ids) == [t for t in cold.token_ids if t != eos]


def test_changed_image_or_tiling_never_hits_a_stale_cache(fixture_models) -> None:
    e = Engine()
    e.load(fixture_models["8bit"])
    a, b = make_image(512, 512, seed=1), make_image(512, 512, seed=2)
    text, _, _ = run(e, ChatRequest.single("Describe it.", [a], sampling=GREEDY))
    # Same conversation, but the first image replaced by another of the same size.
    swapped = ChatRequest(
        (
            Message("user", "Describe it.", (b,)),
            Message("assistant", text),
            Message("user", "More?"),
        ),
        sampling=GREEDY,
    )
    _, stats, _ = run(e, swapped)
    assert stats.vision_cache_hits == 0 and stats.cached_prompt_tokens == 0
    # Same image, new tiling settings: re-encoded, not reused.
    retiled = ChatRequest(
        swapped.messages, sampling=GREEDY, vision=VisionSettings(max_image_tokens=128)
    )
    _, stats, _ = run(e, retiled)
    assert stats.vision_cache_hits == 0 and stats.cached_prompt_tokens == 0


def test_second_image_in_a_follow_up_encodes_only_the_new_one(engine) -> None:
    a, b = make_image(400, 300, seed=7), make_image(300, 400, seed=8)
    text, _, _ = run(engine, ChatRequest.single("first", [a], sampling=GREEDY))
    follow = ChatRequest(
        (
            Message("user", "first", (a,)),
            Message("assistant", text),
            Message("user", "and this?", (b,)),
        ),
        sampling=GREEDY,
    )
    _, stats, _ = run(engine, follow)
    assert stats.images == 2 and stats.vision_cache_hits == 1
    assert stats.image_tokens == (
        plan_tiles(400, 300, VisionSettings()).image_tokens
        + plan_tiles(300, 400, VisionSettings()).image_tokens
    )


def test_cancel_stops_promptly_and_engine_stays_usable(engine) -> None:
    import time

    request = ChatRequest.single(
        "Tell a long story.", sampling=SamplingSettings(temperature=0.0, max_tokens=4000)
    )
    cancelled_at: list[float] = []

    def cancel_later() -> None:
        time.sleep(0.5)
        cancelled_at.append(time.perf_counter())
        engine.cancel()

    threading.Thread(target=cancel_later).start()
    stats = next(e for e in engine.stream_chat(request) if isinstance(e, GenerationStats))
    stopped_after = time.perf_counter() - cancelled_at[0]
    assert stats.finish_reason == "cancelled"
    assert 0 < stats.decode_tokens < 4000
    assert stopped_after < 1.0  # one tiny-model token is ~10 ms; generous for a loaded CI box
    _, after, _ = run(engine, ChatRequest.single("hi", sampling=GREEDY))
    assert after.finish_reason in ("stop", "length") and after.cached_prompt_tokens == 0


def test_tools_are_rendered_for_text_and_refused_with_images(engine) -> None:
    tools = (
        {
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    )
    text_only = ChatRequest.single("Weather in Paris?", sampling=GREEDY, tools=tools)
    prompt = engine.render_prompt(text_only)
    assert 'List of tools: <|tool_list_start|>[{"name": "get_weather"' in prompt
    _, _, notices = run(engine, text_only)
    assert notices == []
    with_image = ChatRequest.single(
        "Weather here?", [make_image(64, 64)], sampling=GREEDY, tools=tools
    )
    assert "tool_list_start" not in engine.render_prompt(with_image)
    _, _, notices = run(engine, with_image)
    assert len(notices) == 1 and "tools are off" in notices[0].message


def test_tool_turn_is_wrapped_as_a_tool_response(engine) -> None:
    request = ChatRequest(
        (
            Message("user", "Weather in Paris?"),
            Message("assistant", '<|tool_call_start|>[get_weather(city="Paris")]<|tool_call_end|>'),
            Message("tool", '{"temp_c": 21}'),
        ),
        sampling=GREEDY,
    )
    prompt = engine.render_prompt(request)
    assert '<|im_start|>tool\n<|tool_response_start|>{"temp_c": 21}<|tool_response_end|>' in prompt


def test_seeded_sampling_is_repeatable(engine) -> None:
    sampling = SamplingSettings(temperature=0.9, min_p=0.0, max_tokens=10, seed=11)
    request = ChatRequest.single("Say something.", sampling=sampling)
    _, a, _ = run(engine, request)
    engine._prefix.reset()
    _, b, _ = run(engine, request)
    assert a.token_ids == b.token_ids


def test_switching_variants_frees_the_previous_model(fixture_models) -> None:
    e = Engine()
    first = e.load(fixture_models["8bit"])
    image = make_image(256, 256)
    run(e, ChatRequest.single("hi", [image], sampling=GREEDY))
    second = e.load(fixture_models["4bit"])
    assert (first.bits, second.bits) == (8, 4)
    _, stats, _ = run(e, ChatRequest.single("hi", [image], sampling=GREEDY))
    assert stats.vision_cache_hits == 0  # features of the old model are gone


@pytest.mark.parametrize("variant", ["hf", "v1", "4bit", "5bit", "6bit", "bf16"])
def test_every_fixture_variant_answers(fixture_models, variant) -> None:
    e = Engine()
    e.load(fixture_models[variant])
    _, stats, _ = run(e, ChatRequest.single("hi", [make_image(128, 96)], sampling=GREEDY))
    assert stats.decode_tokens > 0 or stats.finish_reason == "stop"


def test_engine_refuses_other_threads_and_unloaded_use(fixture_models) -> None:
    e = Engine()
    with pytest.raises(EngineError, match="no model"):
        next(e.stream_chat(ChatRequest.single("hi")))
    e.load(fixture_models["8bit"])
    errors: list[BaseException] = []

    def use() -> None:
        try:
            next(e.stream_chat(ChatRequest.single("hi")))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert len(errors) == 1 and isinstance(errors[0], EngineError)


def test_a_cancel_given_before_the_answer_starts_is_honoured(engine) -> None:
    # The engine process makes a stop flag per request; a Cancel that lands between
    # dequeuing the request and the first token must still stop it.
    stop = threading.Event()
    stop.set()
    request = ChatRequest.single(
        "Tell a long story.", sampling=SamplingSettings(temperature=0.0, max_tokens=200)
    )
    events = list(engine.stream_chat(request, cancel=stop))
    stats = events[-1]
    assert isinstance(stats, GenerationStats)
    assert stats.finish_reason == "cancelled" and stats.decode_tokens <= 1
