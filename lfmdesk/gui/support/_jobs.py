"""Work off the GUI thread: run a function on a pool thread, hand back a result or one line.

``done``/``failed`` are usually a QObject's signal ``emit``: emitting from the pool thread
queues the call to the receiver's (GUI) thread.

    pool.start(PoolJob(lambda: load_image(path), loader.loaded.emit, loader.failed.emit))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QRunnable

from lfmdesk.core import LfmdeskError

__all__ = ["PoolJob", "image_failure"]


def image_failure(exc: Exception) -> str:
    """The line for an unexpected decoder error (a bug must not kill the pool thread)."""
    return f"cannot read image: {type(exc).__name__}: {exc}"


class PoolJob(QRunnable):
    """Calls ``done(work())``, or ``failed(line)``: an LfmdeskError's own message, else
    ``explain(exc)``."""

    def __init__(
        self,
        work: Callable[[], Any],
        done: Callable[[Any], object],
        failed: Callable[[str], object],
        explain: Callable[[Exception], str] = image_failure,
    ) -> None:
        super().__init__()
        self._work, self._done, self._failed, self._explain = work, done, failed, explain

    def run(self) -> None:
        try:
            result = self._work()
        except LfmdeskError as exc:
            self._failed(str(exc))
        except Exception as exc:
            self._failed(self._explain(exc))
        else:
            self._done(result)
