"""The training steps themselves, with mlx-vlm's LoRA, loss and gradient step (MLX inside).

One picture per step, in an order fixed by the seed and the epoch (a shuffled pass over the
training pictures each epoch), so a resumed run sees exactly the pictures the uninterrupted run
would have. AdamW's moments are saved with the weights: a resume continues the same optimizer.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import EngineError
from lfmdesk.core.engine._engine import Engine
from lfmdesk.core.train._events import TrainStep
from lfmdesk.core.train._run import LORA_ALPHA, OPTIMIZER, RunState, save_checkpoint
from lfmdesk.core.train._store import TRAINING_DIR, WEIGHTS

__all__ = ["StepsOutcome", "example_order", "run_steps"]

_ETA_WINDOW = 10


@dataclass(frozen=True)
class StepsOutcome:
    """How the steps ended: the state saved, whether stopped early, the validation loss."""

    state: RunState
    stopped: bool
    validation_loss: float | None
    compute_dtype: str


def example_order(step: int, count: int, seed: int) -> int:
    """The training example step ``step`` (1-based) learns from: a seeded pass per epoch."""
    import numpy as np

    epoch, position = divmod(step - 1, count)
    return int(np.random.default_rng([seed, epoch]).permutation(count)[position])


class _Trainer:
    """The model with LoRA attached, its optimizer and the loss, for one run."""

    def __init__(self, engine: Engine, folder: Path, state: RunState) -> None:
        import mlx.core as mx
        import mlx.nn as nn
        import mlx.optimizers as optim
        from mlx.utils import tree_unflatten
        from mlx_vlm.trainer.common.model import prepare_model_for_training
        from mlx_vlm.trainer.vlm.config import VLMTrainingArgs
        from mlx_vlm.trainer.vlm.sft.runtime import make_task

        config = state.config
        self.model, processor = engine.training_handles()
        tokenizer = getattr(processor, "tokenizer", processor)
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        resuming = (folder / WEIGHTS).is_file()
        mx.random.seed(config.seed)  # the adapter's initial weights
        prepare_model_for_training(
            self.model,
            train_type="lora",
            lora_rank=config.rank,
            lora_alpha=LORA_ALPHA,
            lora_dropout=0.0,
            checkpoint_path=folder if resuming else None,
            verbose=False,
        )
        self.args = VLMTrainingArgs(
            batch_size=1,
            iters=config.steps,
            max_seq_length=config.max_seq_length,
            train_on_completions=True,
            pad_token_id=self.pad,
        )
        self.task = make_task(self.model, self.args, processor)
        self.value_and_grad = nn.value_and_grad(self.model, self.task.loss)
        self.optimizer = optim.AdamW(learning_rate=config.learning_rate, weight_decay=0.0)
        moments = folder / TRAINING_DIR / OPTIMIZER
        if resuming and moments.is_file():
            saved = mx.load(str(moments))
            assert isinstance(saved, dict)  # a .safetensors file loads as a dict
            self.optimizer.state = tree_unflatten(list(saved.items()))
        self.optimizer.init(self.model.trainable_parameters())

    def batch(self, example: dict[str, Any]) -> dict[str, Any]:
        from mlx_vlm.trainer.vlm.sft.runtime import collate_vlm_batch

        batch: dict[str, Any] = collate_vlm_batch(
            [example],
            self.args.max_seq_length,
            pad_to_multiple=self.args.pad_to_multiple,
            pad_token_id=self.pad,
            image_token_id=getattr(self.model.config, "image_token_index", None),
        )
        return batch

    def step(self, example: dict[str, Any]) -> float:
        import mlx.core as mx
        from mlx_vlm.trainer.common.utils import apply_gradient_step

        loss, _metrics, _ = apply_gradient_step(
            self.model,
            self.optimizer,
            self.value_and_grad,
            self.batch(example),
            None,
            update=True,
            accumulation_steps=1,
        )
        mx.eval(self.model.trainable_parameters(), self.optimizer.state, loss)
        return float(loss.item())

    def validation_loss(self, examples: Sequence[dict[str, Any]]) -> float | None:
        if not examples:
            return None
        self.model.eval()
        total, weight = 0.0, 0.0
        for example in examples:
            loss, metrics = self.task.loss(self.model, self.batch(example))
            tokens = float(metrics["weight"].item())
            total += float(loss.item()) * tokens
            weight += tokens
        self.model.train()
        return total / weight if weight else None

    def save(self, folder: Path, state: RunState, *, moments: bool = True) -> None:
        from mlx.utils import tree_flatten

        weights = dict(tree_flatten(self.model.trainable_parameters()))
        lora = dict(getattr(self.model, "_vlm_adapter_config", {}) or {})
        opt = dict(tree_flatten(self.optimizer.state)) if moments else None
        save_checkpoint(folder, state, weights, lora, opt)


def run_steps(
    engine: Engine,
    folder: Path,
    state: RunState,
    train_examples: Sequence[dict[str, Any]],
    val_examples: Sequence[dict[str, Any]],
    stop: threading.Event,
) -> Generator[TrainStep, None, StepsOutcome]:
    """Attach LoRA to the engine's model and train from ``state.step`` to the last step.

    Saves at step 0 of a new run, every ``save_every`` steps, when ``stop`` is set and at the
    end (the optimizer's moments too, until the caller drops them).

    Raises:
        EngineError: the loss stopped being a number (the last checkpoint stays).
    """
    config = state.config
    trainer = _Trainer(engine, folder, state)
    info = engine.info
    compute = info.compute_dtype if info is not None else "native"
    if not (folder / WEIGHTS).is_file():
        trainer.save(folder, state)
    recent: deque[float] = deque(maxlen=_ETA_WINDOW)
    losses, seconds, step = list(state.losses), state.seconds, state.step
    trainer.model.train()
    while step < config.steps and not stop.is_set():
        began = time.perf_counter()
        index = example_order(step + 1, len(train_examples), config.seed)
        loss = trainer.step(train_examples[index])
        if not math.isfinite(loss):
            raise EngineError(
                f"training diverged at step {step + 1} (the loss is {loss}); "
                "start again with a lower --lr"
            )
        step += 1
        took = time.perf_counter() - began
        recent.append(took)
        seconds += took
        losses.append((step, loss))
        pace = sum(recent) / len(recent)
        if step % config.save_every == 0 and step < config.steps:
            state = dataclasses.replace(state, step=step, losses=tuple(losses), seconds=seconds)
            trainer.save(folder, state)
        yield TrainStep(step, config.steps, loss, pace, pace * (config.steps - step), took)
    state = dataclasses.replace(state, step=step, losses=tuple(losses), seconds=seconds)
    trainer.save(folder, state)
    if step < config.steps:
        return StepsOutcome(state, True, None, compute)
    return StepsOutcome(state, False, trainer.validation_loss(val_examples), compute)
