"""Start-up milestones for ``python -m lfmdesk.bench --startup`` (nothing happens otherwise).

The benchmark starts ``lfmdesk`` with ``LFMDESK_STARTUP_TRACE`` (a file) and
``LFMDESK_STARTUP_T0`` (its clock when it started the process); each milestone appends
``name seconds-since-start`` to the file. The engine process inherits both, so its
"model-loaded" line is timed from the same start.
"""

from __future__ import annotations

import os
import time

__all__ = ["mark"]

TRACE_FILE = "LFMDESK_STARTUP_TRACE"
TRACE_T0 = "LFMDESK_STARTUP_T0"


def mark(name: str) -> None:
    """Record that ``name`` happened now, when a start-up trace was asked for."""
    path = os.environ.get(TRACE_FILE)
    if not path:
        return
    started = float(os.environ.get(TRACE_T0) or 0.0)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{name} {time.time() - started:.4f}\n")
