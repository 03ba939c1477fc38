"""What a finished run says: the lines ``lfmdesk train`` prints and the window shows.

for line in report_lines(info):
    print(line)
# adapter 'cats' (for LiquidAI/LFM2.5-VL-450M-MLX-8bit, 8-bit)
# pictures: 48 trained on, 12 held out, 71 boxes
# loss: 0.412 train, 0.538 held out
# held-out Detect (greedy), base → adapter:
#   answers that read as boxes  4/12 → 12/12
#   ...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from lfmdesk.core.train._score import ValidationScore
from lfmdesk.core.train._store import AdapterInfo, precision_text

__all__ = ["format_eta", "left_out_line", "report_lines", "usage_line"]


def format_eta(seconds: float) -> str:
    """ "45 s", "12 min", "1 h 05 min"."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def left_out_line(left_out: Sequence[tuple[str, str]]) -> str | None:
    """ "left out 3 pictures: 2 no boxes made or checked by a person, 1 ..."; None if none."""
    if not left_out:
        return None
    counts = Counter(reason for _, reason in left_out)
    parts = ", ".join(f"{n} {reason}" for reason, n in counts.most_common())
    return f"left out {len(left_out)} pictures: {parts}"


def _ratio(part: int, whole: int) -> str:
    return f"{part}/{whole}" if whole else "-"


def _score_rows(base: ValidationScore | None, adapter: ValidationScore | None) -> list[str]:
    def pair(getter: str, whole: str) -> str:
        cells = [
            _ratio(getattr(s, getter), getattr(s, whole)) if s is not None else "not measured"
            for s in (base, adapter)
        ]
        return f"{cells[0]} → {cells[1]}"

    return [
        "held-out Detect (greedy), base → adapter:",
        f"  answers that read as boxes  {pair('parsed', 'images')}",
        f"  a box of the right label    {pair('label_hits', 'with_boxes')}",
        f"  the right box (IoU >= 0.5)  {pair('iou_hits', 'with_boxes')}",
    ]


def usage_line(info: AdapterInfo) -> str:
    """How to use the adapter from the command line."""
    labels = ", ".join(info.labels)
    return (
        f'use it: lfmdesk detect IMAGE --labels "{labels}" --model {info.base.spec} '
        f"--adapter {info.name}"
    )


def report_lines(info: AdapterInfo) -> list[str]:
    """The finished run in a few lines: base, pictures, losses, the held-out score, usage."""
    lines = [
        f"adapter {info.name!r} for {info.base.name} ({precision_text(info.base.bits)}), "
        f"trained in {info.compute_dtype}",
        f"pictures: {info.train_images} trained on, {info.validation_images} held out, "
        f"{info.boxes} boxes; {info.steps} steps at rank {info.rank}, lr {info.learning_rate:g}",
    ]
    losses = [
        f"{value:.3f} {what}"
        for value, what in ((info.train_loss, "train"), (info.validation_loss, "held out"))
        if value is not None
    ]
    if losses:
        lines.append("loss: " + ", ".join(losses))
    if info.base_score is not None or info.adapter_score is not None:
        lines += _score_rows(info.base_score, info.adapter_score)
    elif info.validation_images == 0:
        lines.append("no picture held out: nothing to score (add pictures to measure it)")
    lines.append(usage_line(info))
    return lines
