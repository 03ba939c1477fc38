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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from lfmdesk.core.engine._backend import ComputeMode
from lfmdesk.perf._common import bench_image, cache_dir, force_tokens, peak_rss_mb

__all__ = ["LABELS", "AnnotateRow", "annotate_report", "bench_annotate"]

LABELS = ("person", "car", "button")
Answers = list[tuple[int, ...]]


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
    cpu_per_image: float = 0.0  # process CPU seconds per image (steadier than wall on a busy box)


def _requests(n: int, tokens: int) -> list[Any]:
    from lfmdesk.core import SamplingSettings, load_image
    from lfmdesk.core.datasets._batch import detection_request

    greedy = SamplingSettings(temperature=0.0, max_tokens=tokens, repetition_penalty=1.0)
    folder = cache_dir() / "annotate"
    images = [load_image(bench_image(folder / f"img{i:03d}.png", seed=100 + i)) for i in range(n)]
    return [detection_request(image, LABELS, greedy) for image in images]


def _one_at_a_time(engine: Any, requests: Sequence[Any]) -> Answers:
    from lfmdesk.core import GenerationStats

    answers = []
    for request in requests:
        stats = [e for e in engine.stream_chat(request) if isinstance(e, GenerationStats)]
        answers.append(stats[-1].token_ids)
    return answers


def _batched(engine: Any, requests: Sequence[Any], batch: int) -> Answers:
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


def _timed(engine: Any, row: AnnotateRow, run: Callable[[], Answers]) -> Answers:
    """Run one row; keep its best round (fewest seconds)."""
    import mlx.core as mx

    engine._vision.clear()  # every image pays its vision tower, in every row
    mx.reset_peak_memory()
    tic, cpu = time.perf_counter(), time.process_time()
    answers = run()
    seconds = time.perf_counter() - tic
    if row.seconds == 0.0 or seconds < row.seconds:
        row.seconds = seconds
        row.cpu_per_image = (time.process_time() - cpu) / len(answers)
        row.images = len(answers)
        row.images_per_minute = 60 * len(answers) / seconds
        row.peak_mlx_gb = mx.get_peak_memory() / 1e9
    return answers


def bench_annotate(
    model_dir: Path,
    images: int,
    *,
    batches: Sequence[int] = (1, 2, 4, 8),
    tokens: int = 40,
    rounds: int = 1,
    compute: ComputeMode = "auto",
) -> tuple[list[AnnotateRow], str]:
    """Time Detect over ``images`` images one at a time and in each batch size.

    Rows run in turn, ``rounds`` times over (each keeps its best round), so a machine whose
    load changes during the run skews them less.
    """
    from lfmdesk.core import Engine
    from lfmdesk.core.engine._fast_vision import install_fast_vision

    engine = Engine(compute=compute)
    info = engine.load(model_dir)
    force_tokens(engine._processor)
    requests = _requests(images, tokens)
    _one_at_a_time(engine, requests[:1])  # warm-up: kernels compiled, buffers allocated

    def before_run() -> Answers:
        install_fast_vision(engine._model, info.device, "stock")
        try:
            return _one_at_a_time(engine, requests)
        finally:
            install_fast_vision(engine._model, info.device)

    runs: list[tuple[AnnotateRow, Callable[[], Answers]]] = [
        (AnnotateRow("one at a time, mlx-vlm tower", 1), before_run),
        (AnnotateRow("one at a time", 1), lambda: _one_at_a_time(engine, requests)),
    ]
    for b in batches:
        runs.append((AnnotateRow(f"batch {b}", b), partial(_batched, engine, requests, b)))
    answers: dict[str, Answers] = {}
    for _ in range(max(1, rounds)):
        for row, run in runs:
            answers[row.name] = _timed(engine, row, run)
    rows = [row for row, _ in runs]
    before, single = rows[0], rows[1]
    reference = answers[single.name]
    for row in rows:
        row.speedup = single.seconds / row.seconds
        row.vs_before = before.seconds / row.seconds
        row.same_answers = sum(a == r for a, r in zip(answers[row.name], reference, strict=True))
    blas = Path(info.blas).name if info.blas else "none"
    note = (
        f"{images} images 512x512, labels {', '.join(LABELS)}, {tokens} answer tokens each "
        f"(greedy); best of {max(1, rounds)} round(s); {info.device}, compute "
        f"{info.compute_dtype}, BLAS {blas}, tower {info.vision_tower}; process peak RSS "
        f"{peak_rss_mb():.0f} MiB"
    )
    engine.unload()
    return rows, note


def annotate_report(rows: list[AnnotateRow], note: str) -> str:
    """The batching table."""
    head = (
        f"{'Detect over many images':30} {'images/min':>10} {'x one':>6} {'x before':>8} "
        f"{'same answers':>12} {'peak MLX':>9} {'CPU/image':>9}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:30} {r.images_per_minute:>10.2f} {r.speedup:>5.2f}x {r.vs_before:>7.2f}x "
            f"{f'{r.same_answers}/{r.images}':>12} {r.peak_mlx_gb:>7.2f}GB "
            f"{r.cpu_per_image:>8.1f}s"
        )
    best = max(rows, key=lambda r: r.images_per_minute)
    lines.append(
        f"best: {best.name}, {best.speedup:.2f}x one at a time, {best.vs_before:.2f}x before "
        "(goal >= 2.5x)"
    )
    lines.append(f"  {note}")
    return "\n".join(lines)
