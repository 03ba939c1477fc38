"""Where one request's time goes: preprocessing, vision tower, projector, LM prefill, decode.

Both rows run on the same loaded weights (the engine's compute config: float32 on CPU), so
the only difference is the vision tower: ``lfmdesk engine`` uses the one lfmdesk installs at
load (``_fast_vision``: on a CPU-only MLX), ``raw mlx-vlm`` mlx-vlm's own. Each stage
is the best of ``repeat`` runs after a warm-up; ``TTFT (sum)`` adds them up. The end-to-end
columns time the real calls (``Engine.stream_chat``, ``mlx_vlm.stream_generate``) on a fresh
image: the TTFT a user waits for, and the decode speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.perf._common import bench_image, cache_dir, force_tokens

__all__ = ["PROMPT", "StageRow", "bench_stages", "stages_report"]

PROMPT = "Describe this image in detail."


@dataclass
class StageRow:
    name: str
    tower: str
    preprocess_s: float = 0.0
    vision_s: float = 0.0
    projector_s: float = 0.0
    prefill_s: float = 0.0
    ttft_sum_s: float = 0.0
    ttft_s: float = 0.0  # end to end
    decode_tps: float = 0.0
    note: str = ""


def _best(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    run()  # warm-up: kernels, caches
    best, out = float("inf"), None
    for _ in range(repeat):
        tic = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - tic)
    return best, out


def _time_stages(model: Any, processor: Any, image: Any, repeat: int, row: StageRow) -> None:
    import mlx.core as mx
    from mlx_vlm.models.cache import make_prompt_cache
    from mlx_vlm.prompt_utils import apply_chat_template
    from mlx_vlm.utils import prepare_inputs

    prompt = apply_chat_template(processor, model.config, PROMPT, num_images=1)
    image_id = model.config.image_token_index

    def preprocess() -> Any:
        return prepare_inputs(processor, images=[image], prompts=prompt, image_token_index=image_id)

    row.preprocess_s, inputs = _best(preprocess, repeat)
    pixels, shapes = inputs["pixel_values"], inputs["spatial_shapes"]
    patches = inputs["pixel_attention_mask"]

    def tower() -> Any:
        *_, hidden = model.vision_tower(
            pixels, output_hidden_states=True, spatial_shapes=shapes, pixel_attention_mask=patches
        )
        mx.eval(hidden)
        return hidden

    row.vision_s, hidden = _best(tower, repeat)

    def projector() -> list[Any]:
        out = []
        for view, length in enumerate(patches.sum(axis=1).tolist()):
            h, w = (int(d) for d in shapes[view])
            feature = hidden[view][:length].reshape(1, h, w, -1)
            projected = model.multi_modal_projector(model.pixel_unshuffle(feature))
            out.append(projected.reshape(-1, projected.shape[-1]))
        mx.eval(*out)
        return out

    row.projector_s, features = _best(projector, repeat)
    ids = inputs["input_ids"]

    def prefill() -> Any:
        embeds = model.get_input_embeddings(
            ids, pixels, cached_image_features=features, spatial_shapes=shapes
        ).inputs_embeds
        cache = make_prompt_cache(model.language_model)
        logits = model.language_model(ids, inputs_embeds=embeds, cache=cache).logits
        first = mx.argmax(logits[:, -1, :], axis=-1)
        mx.eval(first)
        return first

    row.prefill_s, _ = _best(prefill, repeat)
    row.ttft_sum_s = row.preprocess_s + row.vision_s + row.projector_s + row.prefill_s


def _engine_end_to_end(engine: Any, image: Any, tokens: int, row: StageRow) -> None:
    from lfmdesk.core import ChatRequest, GenerationStats, SamplingSettings

    greedy = SamplingSettings(temperature=0.0, max_tokens=tokens, repetition_penalty=1.0)
    request = ChatRequest.single(PROMPT, [image], sampling=greedy)
    engine._vision.clear()  # the image is new to it, as for a user's first question
    stats = [e for e in engine.stream_chat(request) if isinstance(e, GenerationStats)][-1]
    row.ttft_s, row.decode_tps = stats.ttft_seconds, stats.decode_tps


def _raw_end_to_end(model: Any, processor: Any, path: Path, tokens: int, row: StageRow) -> None:
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    prompt = apply_chat_template(processor, model.config, PROMPT, num_images=1)
    tic = time.perf_counter()
    first = last = None
    for result in stream_generate(
        model, processor, prompt, image=[str(path)], max_tokens=tokens, temperature=0.0
    ):
        first = first or time.perf_counter()
        last = result
    row.ttft_s = (first or time.perf_counter()) - tic
    row.decode_tps = float(getattr(last, "generation_tps", 0.0) or 0.0)


def _features_gap(model: Any, processor: Any, image: Any, device: str) -> float:
    """Largest |lfmdesk tower - mlx-vlm tower| over this image's projected features."""
    import numpy as np

    from lfmdesk.core.engine._fast_vision import install_fast_vision, vision_features

    ours = vision_features(model, processor, image)
    install_fast_vision(model, device, "stock")
    theirs = vision_features(model, processor, image)
    install_fast_vision(model, device)  # back to what the engine chose
    return max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))


def bench_stages(
    model_dir: Path, *, tokens: int = 32, repeat: int = 3, compute: ComputeMode = "auto"
) -> list[StageRow]:
    """Per-stage and end-to-end times for one 512x512 image, lfmdesk's tower and mlx-vlm's."""
    from lfmdesk.core import Engine, load_image
    from lfmdesk.core.engine._fast_vision import install_fast_vision

    path = bench_image(cache_dir() / "bench-512.png")
    engine = Engine(compute=compute)
    info = engine.load(model_dir)
    model, processor = engine._model, engine._processor
    force_tokens(processor)
    image = load_image(path)
    ours = StageRow("lfmdesk engine", info.vision_tower)
    _time_stages(model, processor, image.image, repeat, ours)
    _engine_end_to_end(engine, image, tokens, ours)
    gap = _features_gap(model, processor, image.image, info.device)
    install_fast_vision(model, info.device, "stock")
    raw = StageRow("raw mlx-vlm", "stock")
    _time_stages(model, processor, image.image, repeat, raw)
    _raw_end_to_end(model, processor, path, tokens, raw)
    install_fast_vision(model, info.device)
    blas = Path(info.blas).name if info.blas else "none"
    ours.note = (
        f"{info.device}, compute {info.compute_dtype}, BLAS {blas}; tower {info.vision_tower}: "
        f"features within {gap:.1e} of mlx-vlm's"
    )
    raw.note = "the same weights and config, mlx-vlm's own vision tower"
    engine.unload()
    return [ours, raw]


def stages_report(rows: list[StageRow], tokens: int = 32) -> str:
    """The per-stage table: one 512x512 image (256 image tokens)."""
    head = (
        f"{'one request, 512x512':24} {'tower':>6} {'preproc':>8} {'vision':>8} {'project':>8} "
        f"{'prefill':>8} {'TTFT sum':>9} {'TTFT e2e':>9} {'decode':>10}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:24} {r.tower:>6} {r.preprocess_s:>7.2f}s {r.vision_s:>7.2f}s "
            f"{r.projector_s:>7.2f}s {r.prefill_s:>7.2f}s {r.ttft_sum_s:>8.2f}s "
            f"{r.ttft_s:>8.2f}s {r.decode_tps:>6.1f} t/s"
        )
    if len(rows) == 2 and rows[0].vision_s > 0:
        ours, raw = rows
        lines.append(
            f"vision tower {raw.vision_s / ours.vision_s:.2f}x faster "
            f"({raw.vision_s:.2f}s -> {ours.vision_s:.2f}s, goal <= 2.2s); "
            f"TTFT {ours.ttft_s:.2f}s (goal <= 4.0s)"
        )
    lines.append(f"  decode: {tokens} greedy tokens; stages: best of the repeats after a warm-up")
    lines += [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)
