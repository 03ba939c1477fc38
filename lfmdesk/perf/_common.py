"""What every benchmark table shares: the full-size random checkpoint, images, forced lengths."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "NeverStop",
    "bench_image",
    "build_full_checkpoint",
    "cache_dir",
    "force_tokens",
    "peak_rss_mb",
]


def cache_dir() -> Path:
    """Where the benchmark keeps its checkpoint and images (``LFMDESK_BENCH_DIR``)."""
    base = os.environ.get("LFMDESK_BENCH_DIR") or Path.home() / ".cache" / "lfmdesk" / "bench"
    return Path(base)


def build_full_checkpoint() -> Path:
    """The real-dimension random checkpoint, written once (a marker guards half-built dirs)."""
    from lfmdesk.core.testing import write_checkpoint

    dest = cache_dir() / "lfm2.5-vl-450m-random"
    if not (dest / ".complete").exists():
        print(f"building a random-weight 450M checkpoint in {dest} (once)...", flush=True)
        write_checkpoint(dest, style="lfm2.5", dims="full")
        (dest / ".complete").write_text("ok\n")
    return dest


def bench_image(path: Path, seed: int = 0, size: tuple[int, int] = (512, 512)) -> Path:
    """A random-pixel PNG at ``path`` (written once): 512x512 is one 256-token view."""
    from lfmdesk.core.testing import noise_image

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        noise_image(*size, seed=seed).save(path)
    return path


class NeverStop:
    """A stopping criterion that never stops: every answer runs to ``max_tokens``.

    Random weights hit the end token at random; the benchmarks need fixed answer lengths.
    Keeps mlx-vlm's ``StoppingCriteria`` interface (its batch generator adds end tokens).
    """

    def __init__(self) -> None:
        self.eos_token_ids: list[int] = []

    def __call__(self, _token: Any) -> bool:
        return False

    def add_eos_token_ids(self, _ids: Any = None) -> None:
        """Nothing to add: nothing stops."""

    def reset(self, _ids: Any = None) -> None:
        """Nothing to reset."""


def force_tokens(processor: Any) -> None:
    """Make every answer of this processor's tokenizer run to ``max_tokens``."""
    tok = getattr(processor, "tokenizer", processor)
    tok.stopping_criteria = NeverStop()


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
