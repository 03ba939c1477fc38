"""Detect over many images: one at a time vs B answers decoding together.

``N`` different 512x512 images, the grounding prompt ``lfmdesk annotate`` sends, greedy
decoding, every answer forced to ``tokens`` tokens (random weights would stop anywhere). Each
row starts with an empty vision cache, so every image pays its vision tower. Rows:

  one at a time, mlx-vlm tower   ``Engine.stream_chat`` per image with mlx-vlm's own tower:
                                 how annotate ran before batching and the fast tower
  one at a time                  ``Engine.stream_chat`` per image (``--batch 1``)
  batch B                        ``BatchEngine.run`` with B in flight (``--batch B``)

Speed-ups are against "one at a time"; "vs before" against the first row. "same answers"
counts answers whose tokens equal the one-at-a-time answer (random weights have near-ties
that float rounding in a batched matmul can flip; trained weights rarely do).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.perf._common import bench_image, cache_dir, force_tokens, peak_rss_mb

__all__ = ["LABELS", "AnnotateRow", "annotate_report", "bench_annotate"]

LABELS = ("person", "car", "button")


@dataclass
class AnnotateRow:
    name: str
    batch: int
    seconds: float = 0.0
    images_per_minute: float = 0.0
    speedup: float = 0.0  # vs one at a time (same tower)
    vs_before: float = 0.0  # vs one at a time with mlx-vlm's tower
    same_answers: int = 0
    images: int = 0
    peak_mlx_gb: float = 0.0


def _requests(n: int, tokens: int) -> list[Any]:
    from lfmdesk.core import SamplingSettings, load_image
    from lfmdesk.core.datasets._batch import detection_request

    greedy = SamplingSettings(temperature=0.0, max_tokens=tokens, repetition_penalty=1.0)
    folder = cache_dir() / "annotate"
    images = [load_image(bench_image(folder / f"img{i:03d}.png", seed=100 + i)) for i in range(n)]
    return [detection_request(image, LABELS, greedy) for image in images]


def _one_at_a_time(engine: Any, requests: Sequence[Any]) -> list[tuple[int, ...]]:
    from lfmdesk.core import GenerationStats

    answers = []
    for request in requests:
        stats = [e for e in engine.stream_chat(request) if isinstance(e, GenerationStats)]
        answers.append(stats[-1].token_ids)
    return answers


def _batched(engine: Any, requests: Sequence[Any], batch: int) -> list[tuple[int, ...]]:
    from lfmdesk.core import GenerationStats
    from lfmdesk.core.engine._batch import BatchEngine, RequestFailed

    answers: dict[int, tuple[int, ...]] = {}
    runner = BatchEngine(engine, max_batch=batch)
    for key, event in runner.run(enumerate(requests)):
        if isinstance(event, GenerationStats):
            answers[key] = event.token_ids
        elif isinstance(event, RequestFailed):
            raise RuntimeError(event.message)
    runner.close()
    return [answers[i] for i in range(len(requests))]


def _timed(engine: Any, row: AnnotateRow, run: Any) -> list[tuple[int, ...]]:
    import mlx.core as mx

    engine._vision.clear()  # every image pays its vision tower, in every row
    mx.reset_peak_memory()
    tic = time.perf_counter()
    answers: list[tuple[int, ...]] = run()
    row.seconds = time.perf_counter() - tic
    row.images = len(answers)
    row.images_per_minute = 60 * len(answers) / row.seconds
    row.peak_mlx_gb = mx.get_peak_memory() / 1e9
    return answers


def bench_annotate(
    model_dir: Path, images: int, *, batches: Sequence[int] = (1, 2, 4, 8), tokens: int = 40
) -> tuple[list[AnnotateRow], str]:
    """Time Detect over ``images`` images one at a time and in each batch size."""
    from lfmdesk.core import Engine
    from lfmdesk.core.engine._fast_vision import install_fast_vision

    engine = Engine()
    info = engine.load(model_dir)
    force_tokens(engine._processor)
    requests = _requests(images, tokens)
    _one_at_a_time(engine, requests[:1])  # warm-up: kernels compiled, buffers allocated
    install_fast_vision(engine._model, info.device, "stock")
    before = AnnotateRow("one at a time, mlx-vlm tower", 1)
    stock_answers = _timed(engine, before, lambda: _one_at_a_time(engine, requests))
    install_fast_vision(engine._model, info.device)
    single = AnnotateRow("one at a time", 1)
    reference = _timed(engine, single, lambda: _one_at_a_time(engine, requests))
    rows = [before, single]
    for b in batches:
        row = AnnotateRow(f"batch {b}", b)
        answers = _timed(engine, row, lambda b=b: _batched(engine, requests, b))  # type: ignore[misc]
        row.same_answers = sum(a == r for a, r in zip(answers, reference, strict=True))
        rows.append(row)
    for row in rows:
        row.speedup = single.seconds / row.seconds
        row.vs_before = before.seconds / row.seconds
    single.same_answers = len(reference)
    before.same_answers = sum(a == r for a, r in zip(stock_answers, reference, strict=True))
    blas = Path(info.blas).name if info.blas else "none"
    note = (
        f"{images} images 512x512, labels {', '.join(LABELS)}, {tokens} answer tokens each "
        f"(greedy); {info.device}, compute {info.compute_dtype}, BLAS {blas}, "
        f"tower {info.vision_tower}; process peak RSS {peak_rss_mb():.0f} MiB"
    )
    engine.unload()
    return rows, note


def annotate_report(rows: list[AnnotateRow], note: str) -> str:
    """The batching table."""
    head = (
        f"{'Detect over many images':30} {'images/min':>10} {'x one':>6} {'x before':>8} "
        f"{'same answers':>12} {'peak MLX':>9}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:30} {r.images_per_minute:>10.2f} {r.speedup:>5.2f}x {r.vs_before:>7.2f}x "
            f"{f'{r.same_answers}/{r.images}':>12} {r.peak_mlx_gb:>7.2f}GB"
        )
    best = max(rows, key=lambda r: r.images_per_minute)
    lines.append(
        f"best: {best.name}, {best.speedup:.2f}x one at a time, {best.vs_before:.2f}x before "
        "(goal >= 2.5x)"
    )
    lines.append(f"  {note}")
    return "\n".join(lines)
