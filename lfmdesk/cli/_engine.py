"""Opening the engine for a command: the one place the CLI turns settings into a loaded model."""

from __future__ import annotations

import argparse

from lfmdesk.cli._output import consume_download
from lfmdesk.core import AppSettings, Engine, ensure_model, resolve_model

__all__ = ["open_engine"]


def open_engine(args: argparse.Namespace, settings: AppSettings) -> Engine:
    """Resolve the model (downloading it with a progress bar if needed) and load it."""
    folder = consume_download(ensure_model(resolve_model(settings.model)))
    engine = Engine(compute=args.compute)
    engine.load(folder)
    return engine
