"""``python -m lfmdesk.bench --train``: seconds per training step and peak memory.

Trains a LoRA adapter with lfmdesk's own loop (``core.train``) for a few steps on the
benchmark's random-weight checkpoint with the real LFM2-VL-450M dimensions: a small project of
512x512 pictures (256 image tokens each, as the model card's tiling gives them), one box each,
batch 1. Reports the load-and-prepare time, the first step (kernels compile) apart from the
steady ones, peak MLX memory over the whole run and the trainable parameters. The run happens
in a scratch data folder, so no adapter is left in the user's store.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from lfmdesk.core.engine._backend import ComputeMode

__all__ = ["TrainRow", "bench_train", "train_report"]

_PICTURES = 4
_SIDE = 512


@dataclass
class TrainRow:
    steps: int
    compute: str
    prepare_s: float
    first_step_s: float
    step_s: float
    step_s_spread: float
    peak_gb: float
    trainable_params: int
    example_tokens: int
    note: str = ""


def _project(root: Path) -> Path:
    import numpy as np
    from PIL import Image

    from lfmdesk.core.datasets._annotations import ImageAnnotation, add_box, make_box
    from lfmdesk.core.datasets._project import Project

    root.mkdir(parents=True, exist_ok=True)
    project = Project(root)
    rng = np.random.default_rng(0)
    for index in range(_PICTURES):
        pixels = (rng.random((_SIDE, _SIDE, 3)) * 255).astype("uint8")
        name = f"bench-{index}.png"
        Image.fromarray(pixels).save(root / name)
        box = make_box("object", (64, 96, 320, 400), _SIDE, _SIDE)
        project.save(add_box(ImageAnnotation.empty(name, _SIDE, _SIDE), box))
    return root


def bench_train(
    model_dir: Path, steps: int = 4, compute: ComputeMode = "auto", rank: int = 8
) -> TrainRow:
    """Train ``steps`` steps on ``model_dir`` and time them (in a scratch data folder)."""
    import mlx.core as mx

    from lfmdesk.core.train._loop import (
        TrainFinished,
        TrainingStarted,
        TrainStep,
        plan_run,
        train_adapter,
    )
    from lfmdesk.core.train._run import TrainConfig

    with tempfile.TemporaryDirectory(prefix="lfmdesk-bench-train-") as scratch:
        previous = os.environ.get("LFMDESK_DATA_DIR")
        os.environ["LFMDESK_DATA_DIR"] = str(Path(scratch) / "data")
        try:
            project = _project(Path(scratch) / "project")
            config = TrainConfig(
                project,
                ("object",),
                str(model_dir),
                "bench",
                steps=steps,
                rank=rank,
                compute=compute,
                evaluate=False,
            )
            mx.reset_peak_memory()
            started, prepared, tokens = time.perf_counter(), 0.0, 0
            times: list[float] = []
            folder: Path | None = None
            for event in train_adapter(plan_run(config), model_dir):
                if isinstance(event, TrainingStarted):
                    prepared, tokens = time.perf_counter() - started, event.longest
                elif isinstance(event, TrainStep):
                    times.append(event.seconds)
                elif isinstance(event, TrainFinished):
                    folder = event.folder
            assert folder is not None  # the run ends with TrainFinished
            weights = mx.load(str(folder / "adapters.safetensors"))
            assert isinstance(weights, dict)
            params = sum(int(v.size) for v in weights.values())
        finally:
            if previous is None:
                os.environ.pop("LFMDESK_DATA_DIR", None)
            else:
                os.environ["LFMDESK_DATA_DIR"] = previous
    steady = times[1:] or times
    return TrainRow(
        steps=steps,
        compute=compute,
        prepare_s=prepared,
        first_step_s=times[0],
        step_s=statistics.mean(steady),
        step_s_spread=statistics.pstdev(steady) if len(steady) > 1 else 0.0,
        peak_gb=mx.get_peak_memory() / 1e9,
        trainable_params=params,
        example_tokens=tokens,
    )


def train_report(row: TrainRow, model_dir: Path) -> str:
    """The training table."""
    return "\n".join(
        [
            f"training: LoRA rank 8 on {model_dir.name}, batch 1, {_PICTURES} pictures of "
            f"{_SIDE}x{_SIDE} (one box each), compute {row.compute}",
            f"  longest example          {row.example_tokens} tokens",
            f"  trainable parameters     {row.trainable_params / 1e6:.2f} M",
            f"  load + prepare           {row.prepare_s:.1f} s",
            f"  first step               {row.first_step_s:.1f} s",
            f"  later steps              {row.step_s:.1f} s/step (spread {row.step_s_spread:.1f} s,"
            f" {row.steps - 1} steps)",
            f"  peak MLX memory          {row.peak_gb:.2f} GB",
        ]
    )
