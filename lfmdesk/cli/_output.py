"""Terminal output: download progress bars, streamed answers, stats lines."""

from __future__ import annotations

import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TextIO

from lfmdesk.core import (
    ChatEvent,
    DownloadDone,
    DownloadProgress,
    GenerationStats,
    Notice,
    TextDelta,
    format_size,
)

__all__ = ["ProgressBar", "consume_download", "print_stats", "stream_answer", "terminal_safe"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Bidirectional overrides and isolates reorder what the terminal shows ("Trojan source").
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    if ch in _BIDI or unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def terminal_safe(text: str) -> str:
    """``text`` with what a terminal would act on made visible: ``\\x1b``, ``\\n``, ``\\u2028``.

    File names and labels come from files anyone can write; printed raw, an ESC or OSC
    sequence could retitle the terminal, hide text or fake a prompt, and a newline could
    forge a second message line. Lone surrogates (undecodable file names) are escaped too,
    so printing never fails.
    """
    return "".join(_escape(ch) for ch in text)


class ProgressBar:
    """A one-line bar on stderr; on a non-terminal it prints at most every few seconds."""

    def __init__(
        self, stream: TextIO | None = None, amount: Callable[[int], str] = format_size
    ) -> None:
        # sys.stderr is read per call, not bound at import: tests and redirections replace it.
        self.stream = stream or sys.stderr
        self.amount = amount
        self.tty = self.stream.isatty()
        self._last = 0.0

    def update(self, label: str, done: int, total: int, *, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.1 if self.tty else 5.0):
            return
        self._last = now
        frac = done / total if total else 0.0
        filled = int(frac * 30)
        text = (
            f"{label} [{'#' * filled}{'.' * (30 - filled)}] "
            f"{self.amount(done)} / {self.amount(total)} ({frac:.0%})"
        )
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + text + end)
        self.stream.flush()


def consume_download(events: Iterable[DownloadProgress | DownloadDone]) -> Path:
    """Show a progress bar for download events; returns the model folder."""
    bar = ProgressBar()
    shown = False
    last: DownloadProgress | None = None
    for event in events:
        if isinstance(event, DownloadProgress):
            bar.update(f"downloading {event.repo_id}", event.done_bytes, event.total_bytes)
            shown, last = True, event
        else:
            if shown and last is not None:
                bar.update(
                    f"downloading {last.repo_id}", last.total_bytes, last.total_bytes, final=True
                )
            return event.path
    raise RuntimeError("download ended without a result")  # pragma: no cover


def stream_answer(events: Iterator[ChatEvent], out: TextIO | None) -> tuple[str, GenerationStats]:
    """Print text deltas as they come (when ``out`` is given); returns text and stats."""
    pieces: list[str] = []
    stats: GenerationStats | None = None
    for event in events:
        if isinstance(event, TextDelta):
            pieces.append(event.text)
            if out is not None:
                out.write(event.text)
                out.flush()
        elif isinstance(event, Notice):
            sys.stderr.write(f"lfmdesk: note: {event.message}\n")
        else:
            stats = event
    if out is not None:
        out.write("\n")
    assert stats is not None, "the engine always ends with stats"
    return "".join(pieces), stats


def print_stats(stats: GenerationStats, stream: TextIO | None = None) -> None:
    """One line of speed and token facts (on stderr unless ``stream`` is given)."""
    (stream or sys.stderr).write(
        f"[{stats.prompt_tokens} prompt tokens ({stats.image_tokens} image, "
        f"{stats.cached_prompt_tokens} cached) | vision cache {stats.vision_cache_hits}/"
        f"{stats.images} | TTFT {stats.ttft_seconds:.2f}s | {stats.decode_tokens} tokens "
        f"at {stats.decode_tps:.1f} tok/s | peak {format_size(stats.peak_memory_bytes)} | "
        f"{stats.finish_reason}]\n"
    )
