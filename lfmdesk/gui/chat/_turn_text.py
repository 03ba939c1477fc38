"""How a finished turn reads in the chat: the answer's text and the small line under it.

panel.finish_answer(text=answer_text(turn), footer=answer_footer(turn))
"""

from __future__ import annotations

from lfmdesk.core import Turn

__all__ = ["answer_footer", "answer_text"]


def answer_text(turn: Turn) -> str:
    """What the bubble says: the answer, or for detections what was found (the model's raw
    text goes in the bubble's "Model output" fold)."""
    if turn.kind != "detect":
        return turn.text
    if not turn.detections:
        return "Found nothing." + (" The answer could not be read as boxes." if turn.text else "")
    counts: dict[str, int] = {}
    for det in turn.detections:
        counts[det.label] = counts.get(det.label, 0) + 1
    found = ", ".join(f"{n} {label}" if n > 1 else label for label, n in counts.items())
    return f"Found {len(turn.detections)}: {found}."


def answer_footer(turn: Turn) -> str:
    """The small line under an answer: boxes found, speed, and why it stopped."""
    parts: list[str] = []
    if turn.kind == "detect":
        parts.append(f"{len(turn.detections)} box{'es' if len(turn.detections) != 1 else ''}")
        if turn.dropped:
            parts.append(f"{len(turn.dropped)} dropped")
    stats = turn.stats
    if stats is not None and stats.decode_tokens:
        parts.append(f"{stats.ttft_seconds:.2f} s to first token · {stats.decode_tps:.1f} tok/s")
    if stats is not None and stats.finish_reason == "length":
        parts.append("stopped at max tokens")
    return " · ".join(parts)
