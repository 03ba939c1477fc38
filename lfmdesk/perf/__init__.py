"""The benchmarks ``python -m lfmdesk.bench`` runs, one module per table.

Throughput: ``_stages``: one request's time per stage (preprocessing, vision tower,
projector, LM prefill, decode) with lfmdesk's vision tower and mlx-vlm's. ``_annotate``:
images per minute for Detect over many images, one at a time and in batches of B.
``_startup``: process start to window visible and to model loaded, for the window and for
``lfmdesk ask``. The others: ``_constrained`` (what the Detect grammar costs per token),
``_serve`` (``lfmdesk serve`` against the engine alone), ``_train`` (seconds per training
step). ``_common``: the random-weight full-size checkpoint, test images and forced answer
lengths they share. ``lfmdesk/bench.py`` is the entry point and keeps the engine-vs-raw
mlx-vlm comparison and live mode.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

__all__ = ["add_throughput_flags", "run_throughput"]


def add_throughput_flags(p: argparse.ArgumentParser) -> None:
    """The flags of the three throughput tables."""
    g = p.add_argument_group("throughput (lfmdesk.perf)")
    g.add_argument("--throughput", action="store_true", help="the three tables below")
    g.add_argument("--stages", action="store_true", help="one request, stage by stage")
    g.add_argument("--annotate", type=int, metavar="N", help="Detect over N images, batched")
    g.add_argument("--startup", action="store_true", help="window and ask start-up")
    g.add_argument("--batches", default="1,2,4,8", help="batch sizes for --annotate")
    g.add_argument("--answer-tokens", type=int, default=40, help="tokens per --annotate answer")
    g.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    g.add_argument("--rounds", type=int, default=1, help="--annotate rounds (best is kept)")
    g.add_argument("--quick", action="store_true", help="small and fast: a smoke run")
    g.add_argument(
        "--compute",
        choices=("auto", "native", "float32"),
        default="auto",
        help="engine compute for --stages/--annotate (float32: try the fast tower on a Mac)",
    )


def run_throughput(args: argparse.Namespace, model_dir: Path) -> int:
    """Run the tables the flags ask for and print them (``--json``: their rows)."""
    from lfmdesk.perf._annotate import annotate_report, bench_annotate
    from lfmdesk.perf._stages import bench_stages, stages_report
    from lfmdesk.perf._startup import bench_startup, startup_report

    machine = _machine()  # the load average before the benchmark adds its own
    repeat = 1 if args.quick else max(1, args.repeat)
    batches = (1, 4) if args.quick else tuple(int(b) for b in args.batches.split(","))
    images = args.annotate or (4 if args.quick else 16)
    tables: dict[str, Any] = {}
    if args.throughput or args.stages:
        print("running: stages ...", file=sys.stderr, flush=True)
        tokens = 16 if args.quick else 32
        rows = bench_stages(model_dir, tokens=tokens, repeat=repeat, compute=args.compute)
        tables["stages"] = (rows, stages_report(rows, tokens))
    if args.throughput or args.annotate:
        print(f"running: annotate {images} images ...", file=sys.stderr, flush=True)
        batch_rows, note = bench_annotate(
            model_dir,
            images,
            batches=batches,
            tokens=args.answer_tokens,
            rounds=args.rounds,
            compute=args.compute,
        )
        tables["annotate"] = (batch_rows, annotate_report(batch_rows, note))
    if args.throughput or args.startup:
        print("running: start-up ...", file=sys.stderr, flush=True)
        starts = bench_startup(model_dir, repeat=repeat)
        tables["startup"] = (starts, startup_report(starts, repeat))
    if args.json:
        data = {name: [asdict(r) for r in rows] for name, (rows, _) in tables.items()}
        print(json.dumps(data, indent=2))
    else:
        print(machine)
        print("\n\n".join(text for _, text in tables.values()))
    return 0


def _machine() -> str:
    """What the numbers were measured on, and how busy it was."""
    import platform

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.exists():
        names = [
            ln.split(":", 1)[1].strip()
            for ln in info.read_text().splitlines()
            if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {platform.platform(terse=True)}; "
        f"load average at start {load}\n"
    )
