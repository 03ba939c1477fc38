"""What the model reads: prompt text to token ids, where only lfmdesk's own markup is special.

A chat template pastes message text straight into the prompt, and a tokenizer that meets
``<image>`` or ``<|im_end|>`` there turns them into control tokens: a question about the HTML
``<image>`` tag would ask for a second picture, a pasted ``<|im_end|>`` would end the turn. So
text that comes from a person, the model or a tool is *defused* before the template sees it:
every special-token string in it is broken by an escape the template passes through
untouched. The rendered prompt is then split at the special tokens that are left (only the
ones the template itself wrote), and each piece between them is restored and tokenized with
special tokens off. For text without special-token strings the ids are exactly what the
tokenizer gives for the whole prompt, since it also splits at special tokens first.

One exception, in answers only: a tool-call block the model wrote
(``<|tool_call_start|>[f(x=1)]<|tool_call_end|>``) that reads as calls keeps its two markers,
because that is how LFM2 templates give a past tool call back to the model.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lfmdesk.core._errors import EngineError
from lfmdesk.core.answers._tools import TOOL_CALL_END, TOOL_CALL_START, parse_tool_calls

__all__ = ["PromptTokens", "splice_images", "split_after"]

# A private-use character: "\ue000b" inside a special-token string breaks it (and stands for
# nothing), "\ue000\ue000" stands for the character itself, so defused text restores exactly.
_ESCAPE = "\ue000"
_BREAK = _ESCAPE + "b"
_RESTORE = re.compile(_ESCAPE + "(.)", re.DOTALL)
_CALL_BLOCK = re.compile(re.escape(TOOL_CALL_START) + ".*?" + re.escape(TOOL_CALL_END), re.DOTALL)


def _restore_one(match: re.Match[str]) -> str:
    return "" if match.group(1) == "b" else match.group(1)


def _break(special: str) -> str:
    return special[0] + _BREAK + special[1:]


class PromptTokens:
    """One tokenizer's special tokens, and prompt text to ids with only markup special.

    Args:
        tokenizer: a Hugging Face tokenizer (``processor.tokenizer``).
        add_bos: the tokenizer adds BOS when it encodes text: a template that does not
            write BOS itself gets one in front, as the tokenizer would have given it.
    """

    def __init__(self, tokenizer: Any, *, add_bos: bool) -> None:
        self.tokenizer = tokenizer
        added: Mapping[int, Any] = getattr(tokenizer, "added_tokens_decoder", {}) or {}
        self._ids = {str(t.content): int(i) for i, t in added.items() if getattr(t, "special", 0)}
        longest_first = sorted(self._ids, key=len, reverse=True)
        alternatives = "|".join(re.escape(s) for s in longest_first) or "(?!)"  # none: no match
        self._special = re.compile(f"({alternatives})")  # captured: split() keeps the tokens
        self._defuse = re.compile(re.escape(_ESCAPE) + "|" + alternatives)
        bos = getattr(tokenizer, "bos_token_id", None)
        self.bos_id: int | None = int(bos) if add_bos and bos is not None else None

    def defuse(self, text: str) -> str:
        """``text`` (a question, system prompt, tool result…) made plain for the template."""
        text = self._defuse.sub(self._escape_one, text)
        # Only special strings that overlap one just broken can remain; none does in LFM2.
        while self._special.search(text):
            text = self._special.sub(lambda m: _break(m.group(0)), text)
        return text

    def defuse_answer(self, text: str) -> str:
        """A model answer made plain, except the markers of tool-call blocks that read as calls."""
        pieces: list[str] = []
        start = 0
        for block in _CALL_BLOCK.finditer(text):
            parsed = parse_tool_calls(block.group(0))
            if not parsed.calls or parsed.errors:
                continue
            body = block.group(0)[len(TOOL_CALL_START) : -len(TOOL_CALL_END)]
            pieces += [self.defuse(text[start : block.start()]), TOOL_CALL_START]
            pieces += [self.defuse(body), TOOL_CALL_END]
            start = block.end()
        pieces.append(self.defuse(text[start:]))
        return "".join(pieces)

    def defuse_json(self, value: Any) -> Any:
        """Every string (keys too) of a JSON-like value defused (tool specs)."""
        if isinstance(value, str):
            return self.defuse(value)
        if isinstance(value, Mapping):
            return {self.defuse(str(k)): self.defuse_json(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.defuse_json(v) for v in value]
        return value

    @staticmethod
    def shown(marked: str) -> str:
        """Rendered prompt text as the model reads it (escapes undone)."""
        return _RESTORE.sub(_restore_one, marked)

    def encode(self, marked: str, *, first: bool = True) -> list[int]:
        """Token ids of rendered prompt text: its special tokens as such, the rest as text.

        Args:
            marked: text rendered from defused messages (or the tail of such text).
            first: ``marked`` starts the prompt: BOS goes in front if the template wrote
                none and the tokenizer adds one.
        """
        texts = self._special.split(marked)  # [text, special, text, …, text]
        plain = self.tokenizer(
            [self.shown(t) for t in texts[::2]], add_special_tokens=False, split_special_tokens=True
        )["input_ids"]
        ids: list[int] = [int(t) for t in plain[0]]
        for special, after in zip(texts[1::2], plain[1:], strict=True):
            ids.append(self._ids[special])
            ids += [int(t) for t in after]
        if first and self.bos_id is not None and ids[:1] != [self.bos_id]:
            ids.insert(0, self.bos_id)
        return ids

    @staticmethod
    def _escape_one(match: re.Match[str]) -> str:
        found = match.group(0)
        return _ESCAPE + _ESCAPE if found == _ESCAPE else _break(found)


def splice_images(ids: list[int], image_id: int, expansions: list[list[int]]) -> list[int]:
    """``ids`` with the template's image placeholders replaced by each image's tokens."""
    if ids.count(image_id) != len(expansions):
        raise EngineError(
            f"the chat template placed {ids.count(image_id)} image(s) in the prompt "
            f"for {len(expansions)} image(s) in the conversation"
        )
    out: list[int] = []
    images = iter(expansions)
    for token in ids:
        out += next(images) if token == image_id else [token]
    return out


def split_after(ids: list[int], end: int) -> list[list[int]]:
    """``ids`` cut after each ``end`` token (one run per image of a processor's output)."""
    runs: list[list[int]] = [[]]
    for token in ids:
        runs[-1].append(token)
        if token == end:
            runs.append([])
    return [run for run in runs if run]
