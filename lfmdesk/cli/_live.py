"""``lfmdesk live``: caption or detect continuously on the newest frame of an animation.

The source (a GIF/WebP/APNG animation or a folder of images) plays at its own pace; the model
always gets the newest frame and frames it has no time for are skipped, exactly as in the
window's live mode. Ctrl-C stops at the current token and still prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from lfmdesk.cli._engine import open_engine
from lfmdesk.core import (
    AppSettings,
    LiveFinished,
    LiveResult,
    LiveSettings,
    VisionSettings,
    animation_frames,
    live_prompt,
    live_session,
)

__all__ = ["add_live_parser", "cmd_live"]


def add_live_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    add_model_flags: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the ``live`` subcommand."""
    p = sub.add_parser(
        "live",
        help="caption or detect continuously on the newest frame of an animation or folder",
        description="Play SOURCE (a GIF, WebP or APNG animation, or a folder of images) in "
        "real time and analyse the newest frame whenever the model is free; frames it has "
        "no time for are skipped. One line per analysed frame, a summary at the end. "
        "--max-tokens is the live answer budget (default 48, at most 512).",
    )
    p.add_argument("source", metavar="SOURCE", help="an animation file or a folder of images")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--detect", "-d", metavar="LABELS", help='find boxes, e.g. "person, cup"')
    what.add_argument("--prompt", "-p", metavar="TEXT", help="the question for every frame")
    p.add_argument("--fps", type=float, default=2.0, help="frames per second for a folder")
    p.add_argument("--frame-side", type=int, help="longest frame side the model sees (512)")
    p.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="do not play in real time: analyse every frame, one after another",
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_model_flags(p)


def _live_settings(args: argparse.Namespace, settings: AppSettings) -> LiveSettings:
    """The saved live settings with this command line's choices on top (validated)."""
    live = settings.live
    if args.detect is not None:
        live = dataclasses.replace(live, mode="detect", watch=args.detect)
    else:
        live = dataclasses.replace(live, mode="caption", watch=args.prompt or "")
    names = {f.name for f in dataclasses.fields(VisionSettings)}
    vision = {k: v for k, v in vars(args).items() if k in names and v is not None}
    changes: dict[str, Any] = {"vision": dataclasses.replace(live.vision, **vision)}
    if args.max_tokens is not None:
        changes["max_tokens"] = args.max_tokens
    if args.frame_side is not None:
        changes["frame_side"] = args.frame_side
    return dataclasses.replace(live, **changes)


def _boxes_text(result: LiveResult) -> str:
    if not result.detections:
        return "(nothing found)"
    return ", ".join(f"{d.label} {list(d.box_px)}" for d in result.detections)


def _result_line(result: LiveResult, live: LiveSettings, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "type": "frame",
                "frame": result.frame,
                "latency_ms": round(result.latency * 1000, 1),
                "inference_ms": round(result.inference * 1000, 1),
                "width": result.width,
                "height": result.height,
                "text": result.text,
                "detections": [d.to_dict() for d in result.detections],
            },
            ensure_ascii=False,
        )
    shown = _boxes_text(result) if live.mode == "detect" else " ".join(result.text.split())
    return f"frame {result.frame}  {result.latency * 1000:.0f} ms  {shown}"


def _summary_line(end: LiveFinished, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "type": "summary",
                "offered": end.offered,
                "analysed": end.analysed,
                "skipped": end.dropped,
                "pending": end.pending,
                "cancelled": end.cancelled,
                "seconds": round(end.seconds, 3),
                "analysed_fps": round(end.analysed_fps, 3),
                "median_latency_ms": round(end.latency_ms, 1),
                "median_inference_ms": round(end.inference_ms, 1),
            }
        )
    stopped = " (stopped)" if end.cancelled else ""
    return (
        f"analysed {end.analysed}/{end.offered} frames, {end.dropped} skipped, "
        f"{end.analysed_fps:.1f} frames/s, median latency {end.latency_ms:.0f} ms "
        f"(model {end.inference_ms:.0f} ms){stopped}"
    )


@contextmanager
def _ctrl_c_sets(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl-C sets ``cancel`` (a clean stop); a second one interrupts."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals can only be caught on the main thread (tests call main() elsewhere)
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def cmd_live(args: argparse.Namespace, settings: AppSettings) -> int:
    """Run live mode over an animation or a folder of images."""
    live = _live_settings(args, settings)
    live_prompt(live)  # no labels: fail before the model loads
    frames = animation_frames(Path(args.source), fps=args.fps)
    engine = open_engine(args, settings)
    cancel = threading.Event()
    out = sys.stdout if args.json else sys.stderr
    with _ctrl_c_sets(cancel):
        session = live_session(
            engine,
            frames,
            live,
            settings.sampling,
            realtime=not args.as_fast_as_possible,
            cancel=cancel,
        )
        for item in session:
            if isinstance(item, LiveResult):
                sys.stdout.write(_result_line(item, live, args.json) + "\n")
                sys.stdout.flush()
            else:
                out.write(_summary_line(item, args.json) + "\n")
    return 130 if cancel.is_set() else 0
