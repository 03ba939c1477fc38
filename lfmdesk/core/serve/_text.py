"""Streaming text post-processing: stop strings and tool-call blocks, decided token by token.

Text arrives in pieces; a stop string or the ``<|tool_call_start|>`` marker may be split over
two pieces. :class:`HoldBack` sends on everything that cannot be the start of such a string
and keeps the rest until the next piece settles it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lfmdesk.core.answers._tools import TOOL_CALL_END, TOOL_CALL_START, parse_tool_calls

__all__ = ["AnswerText", "HoldBack", "openai_tool_calls"]


class HoldBack:
    """Finds the first of ``needles`` in streamed text, holding back partial matches.

    Args:
        needles: strings to look for (empty ones are ignored).
    """

    def __init__(self, needles: Sequence[str]) -> None:
        self.needles = tuple(n for n in needles if n)
        self._held = ""
        self.found: str | None = None
        self.after = ""  # the text that came after the match, in the piece that held it

    def feed(self, text: str) -> str:
        """The text that is safe to send now; after a match, only the text before it."""
        if self.found is not None:
            return ""
        buffer = self._held + text
        hits = [(buffer.find(n), n) for n in self.needles if n in buffer]
        if hits:
            at, needle = min(hits)
            self.found, self._held = needle, ""
            self.after = buffer[at + len(needle) :]
            return buffer[:at]
        keep = max((_overlap(buffer, n) for n in self.needles), default=0)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return buffer[: len(buffer) - keep]

    def flush(self) -> str:
        """What is still held (the answer ended without a match)."""
        held, self._held = self._held, ""
        return held


def _overlap(text: str, needle: str) -> int:
    """Length of the longest end of ``text`` that starts ``needle``."""
    for size in range(min(len(text), len(needle) - 1), 0, -1):
        if needle.startswith(text[-size:]):
            return size
    return 0


def openai_tool_calls(text: str) -> tuple[list[dict[str, Any]], str]:
    """OpenAI ``tool_calls`` objects for the calls in ``text``, and the text outside them.

    Calls are read by :func:`parse_tool_calls` (literals only, never evaluated). Returns
    ``([], text)`` when no call could be read, so nothing the model said is lost.
    """
    parsed = parse_tool_calls(text)
    if not parsed.calls:
        return [], text
    calls = [
        {
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {
                "name": call.name,
                "arguments": json.dumps(dict(call.arguments), ensure_ascii=False),
            },
        }
        for call in parsed.calls
    ]
    return calls, parsed.content


@dataclass
class _Pieces:
    content: list[str]
    tail: list[str]


class AnswerText:
    """One answer's text as the API returns it: cut at a stop string, tool calls taken out.

    ``feed`` returns the content to stream now; ``finish`` returns the content still to send,
    the tool calls (OpenAI objects) and whether a stop string ended the answer.

    Args:
        stops: the request's ``stop`` strings.
        tools: the request offered tools, so call blocks become ``tool_calls``.
    """

    def __init__(self, stops: Sequence[str], tools: bool) -> None:
        self._stop = HoldBack(stops)
        self._marker = HoldBack([TOOL_CALL_START] if tools else [])
        self._pieces = _Pieces([], [])

    @property
    def stopped(self) -> bool:
        """A stop string was found: the engine can stop generating."""
        return self._stop.found is not None

    def feed(self, text: str) -> str:
        """Content that can be sent now."""
        return self._route(self._stop.feed(text))

    def _route(self, text: str) -> str:
        if self._marker.found is not None:
            self._pieces.tail.append(text)
            return ""
        out = self._marker.feed(text)
        if self._marker.found is not None:
            self._pieces.tail.append(TOOL_CALL_START + self._marker.after)
        self._pieces.content.append(out)
        return out

    def finish(self) -> tuple[str, list[dict[str, Any]], bool]:
        """``(content still to send, tool_calls, stopped by a stop string)``."""
        rest = self._route(self._stop.flush()) if self._stop.found is None else ""
        if self._marker.found is None:
            rest += self._marker.flush()
            return rest, [], self.stopped
        tail = "".join(self._pieces.tail)
        calls, _outside = openai_tool_calls(tail)
        if not calls:
            return rest + tail, [], self.stopped
        after = tail.rsplit(TOOL_CALL_END, 1)[1].strip() if TOOL_CALL_END in tail else ""
        return rest + (("\n" + after) if after else ""), calls, self.stopped
