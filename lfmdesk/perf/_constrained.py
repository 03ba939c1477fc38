"""``python -m lfmdesk.bench --constrained``: what the Detect grammar costs per token.

1. Free decoding speed: the benchmark image, a Detect prompt, exactly ``TOKENS`` tokens.
2. The logits processor alone, fed a long valid answer token by token (12 boxes), with the
   model's vocabulary: llguidance's mask, the box guard, and the masked logits evaluated. Once
   with the default 512-token budget (the guard checks only the last steps) and once with
   live mode's 48-token budget (it checks every step).
3. End to end: Detect answers decoded under the grammar versus the same number of tokens
   decoded freely (random weights often answer ``[]``, so few tokens: noisy).

The goal is a mask overhead of at most 10 % of decode time.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfmdesk.core import Engine, GenerationStats, SamplingSettings, load_image
from lfmdesk.core.datasets._batch import detection_request
from lfmdesk.core.engine._constrained import (
    GrammarTokenizer,
    constraint_for_detection,
    logits_processor,
)

__all__ = ["ConstrainedRow", "bench_constrained", "constrained_report"]

LABELS = ("car", "person", "traffic light")
TOKENS = 32
_BOXES = 12


@dataclass
class ConstrainedRow:
    """The measurements (milliseconds per generated token)."""

    model: str
    free_ms: float = 0.0
    mask_ms: float = 0.0
    mask_live_ms: float = 0.0
    answer_tokens: int = 0
    e2e_tokens: int = 0
    e2e_free_ms: float = 0.0
    e2e_constrained_ms: float = 0.0

    @property
    def overhead(self) -> float:
        """The mask's time per token as a fraction of free decode time per token."""
        return self.mask_ms / self.free_ms if self.free_ms else 0.0


def _decode(engine: Engine, request: Any) -> GenerationStats:
    stats = None
    for event in engine.stream_chat(request):
        if isinstance(event, GenerationStats):
            stats = event
    assert stats is not None
    return stats


def _ms_per_token(stats: GenerationStats) -> float:
    return 1000.0 / stats.decode_tps if stats.decode_tps else 0.0


def _free(engine: Engine, request: Any) -> GenerationStats:
    tok = getattr(engine._processor, "tokenizer", engine._processor)
    stop = tok.stopping_criteria
    tok.stopping_criteria = lambda _t: False  # decode exactly max_tokens tokens
    try:
        return _decode(engine, request)
    finally:
        tok.stopping_criteria = stop


def _long_answer(width: int, height: int) -> str:
    items = []
    for n in range(_BOXES):
        x, y = 0.02 + 0.07 * n, 0.05 + 0.06 * n
        box = [round(x, 3), round(y, 3), round(x + 0.05, 3), round(y + 0.2, 3)]
        items.append({"label": LABELS[n % len(LABELS)], "bbox": box})
    return json.dumps(items)


def _mask_ms(
    tokenizer: Any, grammar: GrammarTokenizer, size: tuple[int, int], budget: int
) -> float:
    import mlx.core as mx

    ids = list(tokenizer(_long_answer(*size), add_special_tokens=False)["input_ids"])
    processor = logits_processor(
        constraint_for_detection(LABELS), grammar, max_tokens=budget, image_size=size
    )
    logits = mx.zeros((1, grammar.vocab_size), dtype=mx.float32)
    steps = ids[: budget - 1]
    total = 0.0
    for k in range(len(steps) + 1):
        history = mx.array([0, *steps[:k]])
        mx.eval(history)
        tic = time.perf_counter()
        mx.eval(processor(history, logits))
        total += time.perf_counter() - tic
    return 1000 * total / (len(steps) + 1)


def bench_constrained(model_dir: Path, image_path: Path, requests: int = 6) -> ConstrainedRow:
    """Measure the Detect grammar on the model in ``model_dir`` (see the module docstring)."""
    engine = Engine()
    engine.load(model_dir)
    image = load_image(image_path)
    row = ConstrainedRow(Path(model_dir).name)
    greedy = SamplingSettings(temperature=0.0, max_tokens=TOKENS, constrained=False)
    row.free_ms = _ms_per_token(_free(engine, detection_request(image, LABELS, greedy)))
    tok = getattr(engine._processor, "tokenizer", engine._processor)
    grammar = GrammarTokenizer(tok)
    size = (image.width, image.height)
    row.answer_tokens = len(tok(_long_answer(*size), add_special_tokens=False)["input_ids"])
    row.mask_ms = _mask_ms(tok, grammar, size, 512)
    row.mask_live_ms = _mask_ms(tok, grammar, size, 48)
    for seed in range(requests):
        sampling = SamplingSettings(temperature=1.0, seed=seed, max_tokens=64)
        constrained = _decode(engine, detection_request(image, LABELS, sampling))
        if constrained.decode_tokens < 4:
            continue  # "[]": no decode speed to compare
        n = constrained.decode_tokens
        free = dataclasses.replace(sampling, constrained=False, max_tokens=n)
        plain = _free(engine, detection_request(image, LABELS, free))
        row.e2e_tokens += n
        row.e2e_constrained_ms += _ms_per_token(constrained) * n
        row.e2e_free_ms += _ms_per_token(plain) * n
    if row.e2e_tokens:
        row.e2e_constrained_ms /= row.e2e_tokens
        row.e2e_free_ms /= row.e2e_tokens
    engine.unload()
    return row


def constrained_report(row: ConstrainedRow) -> str:
    """Plain text for the terminal."""
    lines = [
        f"constrained Detect on {row.model}",
        f"  free decode:                       {row.free_ms:8.2f} ms/token",
        f"  mask, 512-token budget:            {row.mask_ms:8.2f} ms/token "
        f"({100 * row.overhead:.1f} % of decode; goal <= 10 %)",
        f"  mask, 48-token budget (live):      {row.mask_live_ms:8.2f} ms/token "
        f"({100 * row.mask_live_ms / row.free_ms if row.free_ms else 0:.1f} %)",
        f"  (a {_BOXES}-box answer is {row.answer_tokens} tokens)",
    ]
    if row.e2e_tokens:
        extra = row.e2e_constrained_ms / row.e2e_free_ms - 1 if row.e2e_free_ms else 0.0
        lines.append(
            f"  end to end over {row.e2e_tokens} tokens: {row.e2e_free_ms:.2f} free, "
            f"{row.e2e_constrained_ms:.2f} constrained ms/token ({100 * extra:+.1f} %)"
        )
    return "\n".join(lines)
