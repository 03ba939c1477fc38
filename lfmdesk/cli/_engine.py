"""Opening the engine for a command: the one place the CLI turns settings into a loaded model."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from lfmdesk.cli._output import consume_download
from lfmdesk.core import AppSettings, Engine, VisionSettings, ensure_model, resolve_model
from lfmdesk.core.train._base import check_adapter
from lfmdesk.core.train._store import find_adapter

__all__ = ["open_engine"]


def open_engine(args: argparse.Namespace, settings: AppSettings) -> Engine:
    """Resolve the model (downloading it with a progress bar if needed) and load it, with
    the adapter ``--adapter`` names on top (refused in one line if it is another model's)."""
    adapter = getattr(args, "adapter", None)
    if adapter:
        find_adapter(adapter)  # a wrong name fails before any download
    folder = consume_download(ensure_model(resolve_model(settings.model)))
    adapter_dir = _checked_adapter(adapter, folder, settings) if adapter else None
    engine = Engine(compute=args.compute)
    engine.load(folder, adapter=adapter_dir)
    return engine


def _checked_adapter(name: str, folder: Path, settings: AppSettings) -> Path:
    adapter_dir, info = check_adapter(name, folder)
    if info.vision != settings.vision:
        sys.stderr.write(
            f"lfmdesk: note: adapter {info.name!r} was trained with "
            f"{_vision_diff(info.vision, settings.vision)}; answers are best with the same\n"
        )
    return adapter_dir


def _vision_diff(trained: VisionSettings, now: VisionSettings) -> str:
    return ", ".join(
        f"{f.name} {getattr(trained, f.name)} (now {getattr(now, f.name)})"
        for f in dataclasses.fields(trained)
        if getattr(trained, f.name) != getattr(now, f.name)
    )
