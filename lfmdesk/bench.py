"""``python -m lfmdesk.bench``: lfmdesk's engine vs raw mlx-vlm, side by side in one run.

Builds (once, cached) a random-weight checkpoint with the real LFM2-VL-450M dimensions, then
for a 512x512 image, a short prompt and 64 forced tokens measures: load time, time to first
token, vision time, decode tok/s, peak memory, and a follow-up turn on the same image.

Rows:
  raw mlx-vlm, as shipped      ``mlx_vlm.load`` + ``stream_generate``, the checkpoint's dtype
  raw mlx-vlm, engine's config  the same, with the engine's compute config applied (float32 on
                                CPU) -- the fair baseline for the engine's own overhead
  lfmdesk engine                ``Engine.load`` + ``Engine.stream_chat`` (vision + prefix cache)
  transformers (torch, bf16)    when torch is installed

``--constrained`` instead measures the Detect grammar: decode time per token under it and
without it for the same number of tokens, and the logits processor's own time per token.

``--train`` instead trains a LoRA adapter for a few steps with lfmdesk's loop (batch 1, 512x512
pictures) and reports seconds per step and peak memory (see ``lfmdesk.perf._train``).

``--live`` instead runs live mode (:func:`lfmdesk.core.live_session`, the live vision preset):
a generated 320x240 video offered in real time, newest frame wins, until ``--live-frames``
frames are analysed; it reports frames analysed per second, median latency (frame arrival to
answer) and inference, their ratio, and the process's RSS at the start and the end.

``--serve`` instead measures ``lfmdesk serve`` (see ``lfmdesk.perf._serve``): requests/s and
p50/p95 latency at concurrency 1/4/8 over HTTP, and the server's overhead per request against
the engine alone (goal <= 1.05 at concurrency 1).

Throughput (``lfmdesk.perf``), three tables; ``--throughput`` prints all three in one run:
  ``--stages``      one request's time per stage (preprocessing, vision tower, projector, LM
                    prefill, decode), lfmdesk's vision tower vs mlx-vlm's
  ``--annotate N``  Detect over N images: images/minute one at a time and in batches
                    (``--batches``), speed-up, identical answers, peak memory
  ``--startup``     process start to window visible and to model loaded; ``lfmdesk ask``
``--quick`` makes each table small (4 images, batches 1 and 4, one run each): a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core import (
    ChatRequest,
    Engine,
    Message,
    SamplingSettings,
    load_image,
    verify_model_dir,
)
from lfmdesk.perf import add_throughput_flags, run_throughput
from lfmdesk.perf._common import bench_image, build_full_checkpoint, cache_dir, force_tokens

PROMPT = "Describe this image in detail."
FOLLOW_UP = "What colours do you see?"
TOKENS = 64


@dataclass
class Row:
    name: str
    load_s: float = 0.0
    ttft_s: float = 0.0
    vision_s: float | None = None
    decode_tps: float = 0.0
    peak_gb: float = 0.0
    followup_ttft_s: float | None = None
    note: str = ""


def bench_raw(model_dir: Path, image: Path, *, float32: bool) -> Row:
    """Raw ``mlx_vlm.stream_generate`` on one image, then a follow-up turn."""
    import mlx.core as mx
    from mlx_vlm import stream_generate
    from mlx_vlm.prompt_utils import apply_chat_template

    from lfmdesk.core.engine._loader import load_lfm2_vl, make_float32, quantization_bits

    row = Row("raw mlx-vlm, engine's config" if float32 else "raw mlx-vlm, as shipped")
    tic = time.perf_counter()
    # mlx_vlm.load itself, on the staged folder: a benchmarked folder runs no code either.
    model, processor = load_lfm2_vl(verify_model_dir(model_dir))
    if float32:
        make_float32(model, quantized=quantization_bits(model_dir) is not None)
    row.load_s = time.perf_counter() - tic
    force_tokens(processor)
    from lfmdesk.core import VisionSettings
    from lfmdesk.core.engine._tiling import apply_vision_settings

    apply_vision_settings(processor.image_processor, VisionSettings())
    prompt = apply_chat_template(processor, model.config, PROMPT, num_images=1)
    mx.reset_peak_memory()
    row.ttft_s, row.decode_tps, text = _time_stream(
        lambda: stream_generate(
            model, processor, prompt, image=[str(image)], max_tokens=TOKENS, temperature=0.0
        )
    )
    row.peak_gb = mx.get_peak_memory() / 1e9
    messages = [
        {"role": "user", "content": PROMPT},
        {"role": "assistant", "content": text},
        {"role": "user", "content": FOLLOW_UP},
    ]
    prompt2 = apply_chat_template(processor, model.config, messages, num_images=1)
    row.followup_ttft_s, _, _ = _time_stream(
        lambda: stream_generate(
            model, processor, prompt2, image=[str(image)], max_tokens=8, temperature=0.0
        )
    )
    row.note = "no vision/prefix cache passed"
    return row


def _time_stream(start: Callable[[], Any]) -> tuple[float, float, str]:
    tic = time.perf_counter()
    first = None
    pieces: list[str] = []
    n = 0
    for result in start():
        if first is None:
            first = time.perf_counter()
        pieces.append(result.text)
        n += 1
    end = time.perf_counter()
    first = first or end
    return first - tic, (n - 1) / (end - first) if n > 1 else 0.0, "".join(pieces)


def bench_engine(model_dir: Path, image_path: Path) -> Row:
    """lfmdesk's engine: first turn, then a follow-up on the same image."""
    row = Row("lfmdesk engine")
    engine = Engine()
    tic = time.perf_counter()
    info = engine.load(model_dir)
    row.load_s = time.perf_counter() - tic
    force_tokens(engine._processor)
    image = load_image(image_path)
    greedy = SamplingSettings(temperature=0.0, max_tokens=TOKENS, repetition_penalty=1.0)
    first = ChatRequest.single(PROMPT, [image], sampling=greedy)
    text, stats = _run_engine(engine, first)
    row.ttft_s, row.decode_tps, row.vision_s = (
        stats.ttft_seconds,
        stats.decode_tps,
        stats.vision_seconds,
    )
    row.peak_gb = stats.peak_memory_bytes / 1e9
    follow = ChatRequest(
        (*first.messages, Message("assistant", text), Message("user", FOLLOW_UP)),
        sampling=SamplingSettings(temperature=0.0, max_tokens=8, repetition_penalty=1.0),
    )
    _, stats2 = _run_engine(engine, follow)
    row.followup_ttft_s = stats2.ttft_seconds
    row.note = (
        f"compute {info.compute_dtype}, BLAS {Path(info.blas).name if info.blas else 'none'}; "
        f"follow-up: vision cache {stats2.vision_cache_hits}/1, "
        f"{stats2.cached_prompt_tokens}/{stats2.prompt_tokens} prompt tokens cached"
    )
    engine.unload()
    return row


def _run_engine(engine: Engine, request: ChatRequest) -> tuple[str, Any]:
    from lfmdesk.core import GenerationStats, TextDelta

    text, stats = "", None
    for event in engine.stream_chat(request):
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, GenerationStats):
            stats = event
    return text, stats


def bench_transformers(model_dir: Path, image_path: Path) -> Row | None:
    """transformers + torch (bf16, CPU) on the same checkpoint, in a clean subprocess.

    mlx-vlm patches transformers' Lfm2VlProcessor when imported, so the torch row cannot
    share this interpreter.
    """
    import importlib.util
    import subprocess

    if importlib.util.find_spec("torch") is None:
        return None
    code = "import sys, lfmdesk.bench as b; b._transformers_child(sys.argv[1], sys.argv[2])"
    proc = subprocess.run(
        [sys.executable, "-c", code, str(model_dir), str(image_path)],
        capture_output=True,
        text=True,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Row("transformers (torch, bf16)", note=f"failed: {tail}")
    return Row(**json.loads(lines[-1]))


def _transformers_child(model_dir: str, image_path: str) -> None:
    import numpy as np
    import torch
    from mlx_vlm.models.lfm2_vl.processing_lfm2_vl import Lfm2VlProcessor
    from transformers import AutoModelForImageTextToText

    row = Row("transformers (torch, bf16)")
    tic = time.perf_counter()
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.bfloat16)
    # transformers' LFM2-VL image processor needs torchvision (no CPU wheel here); mlx-vlm's
    # NumPy processor gives the same ids, shapes and masks and pixels within one 8-bit level.
    processor = Lfm2VlProcessor.from_pretrained(model_dir)
    row.load_s = time.perf_counter() - tic
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    raw = processor(text=text, images=[load_image(image_path).image])
    inputs = {
        k: torch.from_numpy(np.asarray(raw[k]))
        for k in (
            "input_ids",
            "attention_mask",
            "pixel_values",
            "pixel_attention_mask",
            "spatial_shapes",
        )
    }
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    with torch.inference_mode():
        tic = time.perf_counter()
        model.generate(**inputs, max_new_tokens=1, min_new_tokens=1, do_sample=False)
        row.ttft_s = time.perf_counter() - tic
        tic = time.perf_counter()
        model.generate(**inputs, max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False)
        total = time.perf_counter() - tic
    row.decode_tps = (TOKENS - 1) / max(total - row.ttft_s, 1e-9)
    row.note = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    print(json.dumps(asdict(row)))


LIVE_TOKENS = 16  # forced per frame: a short caption's length
LIVE_SOURCE_FPS = 10.0


@dataclass
class LiveRow:
    frames: int
    offered: int
    dropped: int
    analysed_fps: float
    latency_ms: float
    inference_ms: float
    rss_start_mb: float
    rss_end_mb: float
    note: str = ""


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_live(model_dir: Path, frames: int) -> LiveRow:
    """Live mode on the engine: ``frames`` analysed frames of a video offered in real time."""
    import statistics

    from lfmdesk.core import LiveFinished, LiveResult, LiveSettings, live_session
    from lfmdesk.core.testing import moving_box_frames

    engine = Engine()
    info = engine.load(model_dir)
    force_tokens(engine._processor)
    settings = LiveSettings(max_tokens=LIVE_TOKENS)
    greedy = SamplingSettings(temperature=0.0, repetition_penalty=1.0)
    warm = ((f, 0.0) for f in moving_box_frames(1, 320, 240))
    list(live_session(engine, warm, settings, greedy, realtime=False))  # kernels compiled
    rss_start = _rss_mb()
    video = ((f, i / LIVE_SOURCE_FPS) for i, f in enumerate(moving_box_frames(10**6, 320, 240)))
    results: list[LiveResult] = []
    end: LiveFinished | None = None
    stop = threading.Event()
    for item in live_session(engine, video, settings, greedy, cancel=stop):
        if isinstance(item, LiveResult):
            results.append(item)
            if len(results) >= frames:
                stop.set()
        else:
            end = item
    assert end is not None  # a session always ends with LiveFinished
    return LiveRow(
        frames=len(results),
        offered=end.offered,
        dropped=end.dropped,
        analysed_fps=end.analysed_fps,
        latency_ms=statistics.median(r.latency for r in results) * 1000,
        inference_ms=statistics.median(r.inference for r in results) * 1000,
        rss_start_mb=rss_start,
        rss_end_mb=_rss_mb(),
        note=f"compute {info.compute_dtype}, BLAS {Path(info.blas).name if info.blas else 'none'}",
    )


def live_report(row: LiveRow) -> str:
    """The live-mode table."""
    return "\n".join(
        [
            f"live mode: live vision preset (no splitting, <= 64 image tokens), "
            f"{LIVE_TOKENS} tokens per frame, 320x240 frames offered at {LIVE_SOURCE_FPS:g}/s",
            f"  frames analysed          {row.frames} of {row.offered} ({row.dropped} skipped)",
            f"  frames analysed/s        {row.analysed_fps:.2f}",
            f"  median latency           {row.latency_ms:.0f} ms",
            f"  median inference         {row.inference_ms:.0f} ms",
            f"  latency / inference      {row.latency_ms / row.inference_ms:.2f}",
            f"  RSS start -> end         {row.rss_start_mb:.0f} MiB -> {row.rss_end_mb:.0f} MiB",
            f"  {row.note}",
        ]
    )


def _fmt(v: float | None, unit: str = "s") -> str:
    return "-" if v is None else f"{v:.2f}{unit}"


def report(rows: list[Row]) -> str:
    """A plain-text table plus the ratios the targets are stated in."""
    head = (
        f"{'':32} {'load':>8} {'TTFT':>8} {'vision':>8} {'decode':>11} {'peak':>8} "
        f"{'follow-up':>10}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r.name:32} {_fmt(r.load_s):>8} {_fmt(r.ttft_s):>8} {_fmt(r.vision_s):>8} "
            f"{r.decode_tps:>7.1f} t/s {r.peak_gb:>6.2f}GB {_fmt(r.followup_ttft_s):>10}"
        )
    by = {r.name: r for r in rows if r.ttft_s > 0 and r.decode_tps > 0}
    eng, raw = by.get("lfmdesk engine"), by.get("raw mlx-vlm, engine's config")
    shipped = by.get("raw mlx-vlm, as shipped")
    if eng and raw:
        lines.append(
            f"engine/raw (same config): TTFT {eng.ttft_s / raw.ttft_s:.3f}, "
            f"decode time/token {raw.decode_tps / eng.decode_tps:.3f}  (target <= 1.03)"
        )
    if eng and eng.followup_ttft_s is not None:
        lines.append(
            f"engine follow-up TTFT / first TTFT: {eng.followup_ttft_s / eng.ttft_s:.3f}"
            "  (target <= 0.15)"
        )
    if eng and shipped:
        lines.append(
            f"engine vs raw as shipped: TTFT {shipped.ttft_s / eng.ttft_s:.1f}x faster, "
            f"decode {eng.decode_tps / shipped.decode_tps:.1f}x faster"
        )
    lines += [f"  {r.name}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the report (``--json`` for machine-readable rows)."""
    p = argparse.ArgumentParser(
        prog="python -m lfmdesk.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="benchmark this model folder instead of the random 450M one")
    p.add_argument("--skip-shipped", action="store_true", help="skip the slow as-shipped row")
    p.add_argument("--json", action="store_true")
    p.add_argument("--live", action="store_true", help="benchmark live mode instead")
    p.add_argument("--live-frames", type=int, default=30, help="frames to analyse with --live")
    p.add_argument("--train", action="store_true", help="benchmark training steps instead")
    p.add_argument("--train-steps", type=int, default=4, help="steps to time with --train")
    p.add_argument(
        "--train-compute",
        choices=("auto", "native", "float32"),
        default="auto",
        help="with --train: auto is float32 on CPU; native trains in the checkpoint's dtype",
    )
    p.add_argument("--constrained", action="store_true", help="the Detect grammar's cost instead")
    p.add_argument("--serve", action="store_true", help="benchmark lfmdesk serve instead")
    p.add_argument("--serve-tokens", type=int, default=16, help="answer length with --serve")
    p.add_argument("--serve-requests", type=int, default=8, help="requests per level (--serve)")
    add_throughput_flags(p)
    args = p.parse_args(argv)
    model_dir = Path(args.model) if args.model else build_full_checkpoint()
    if args.train:
        from lfmdesk.perf._train import bench_train, train_report

        trained = bench_train(model_dir, max(2, args.train_steps), args.train_compute)
        print(
            json.dumps(asdict(trained), indent=2) if args.json else train_report(trained, model_dir)
        )
        return 0
    if args.constrained:
        from lfmdesk.perf._constrained import bench_constrained, constrained_report

        row = bench_constrained(model_dir, bench_image(cache_dir() / "bench-512.png"))
        print(json.dumps(asdict(row), indent=2) if args.json else constrained_report(row))
        return 0
    if args.serve:
        from lfmdesk.perf._serve import bench_serve, serve_report

        served = bench_serve(model_dir, tokens=args.serve_tokens, requests=args.serve_requests)
        print(json.dumps(asdict(served), indent=2) if args.json else serve_report(served))
        sys.stdout.flush()
        os._exit(0)  # MLX used from the engine thread aborts interpreter teardown (see cli serve)
    if args.live:
        live = bench_live(model_dir, max(1, args.live_frames))
        print(json.dumps(asdict(live), indent=2) if args.json else live_report(live))
        return 0
    if args.throughput or args.stages or args.annotate or args.startup:
        return run_throughput(args, model_dir)
    image = bench_image(cache_dir() / "bench-512.png")
    steps: list[tuple[str, Callable[[], Row | None]]] = [
        ("raw mlx-vlm, as shipped", lambda: bench_raw(model_dir, image, float32=False)),
        ("raw mlx-vlm, engine's config", lambda: bench_raw(model_dir, image, float32=True)),
        ("lfmdesk engine", lambda: bench_engine(model_dir, image)),
        ("transformers (torch, bf16)", lambda: bench_transformers(model_dir, image)),
    ]
    if args.skip_shipped:
        steps = steps[1:]
    rows: list[Row] = []
    for name, step in steps:
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        try:
            row = step()
        except Exception as exc:  # one failed row must not lose the others
            row = Row(name, note=f"failed: {type(exc).__name__}: {exc}")
        if row is not None:
            rows.append(row)
    print(json.dumps([asdict(r) for r in rows], indent=2) if args.json else report(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
