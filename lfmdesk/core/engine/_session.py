"""Reusing the previous turn's KV cache for follow-up questions.

mlx-vlm's own prefix reuse re-tokenizes the whole conversation and trims the KV cache to the
longest common prefix. That cannot work well for LFM2-VL: its convolution layers keep state
that cannot be trimmed (any divergence forces a full re-prefill), a re-tokenized answer often
differs from the tokens the model actually produced, and every image token has the same id,
so a replaced image would match a stale prefix. So we keep the conversation at the token
level: the ids the model saw (prompt + its own answer) and the text they stand for (marked
text, see ``_tokens``: message text in it is defused, so the new tail is tokenized with only the
template's markup special). A follow-up whose rendered prompt extends that text reuses the
cache and feeds only the new tokens; any other change (edited history, other images, other
tiling) starts from a fresh cache.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PrefixState", "cache_length"]


def cache_length(cache: list[Any]) -> int:
    """Tokens held by an mlx-vlm prompt cache (attention layers carry the offset)."""
    return max((int(getattr(c, "offset", 0) or 0) for c in cache), default=0)


@dataclass
class PrefixState:
    """What the KV cache holds after the last finished answer.

    Attributes:
        cache: the mlx-vlm prompt cache, or None.
        ids: token ids fed into the cache, in order (prompt then answer).
        seen_text: the marked text those ids stand for (prompt + answer [+ end token]).
        seen_ids: prompt ids + every generated id (the cache may lack the very last one).
        image_keys: cache keys of the images inside the cached prompt, in order.
    """

    cache: list[Any] | None = None
    ids: list[int] = field(default_factory=list)
    seen_text: str = ""
    seen_ids: list[int] = field(default_factory=list)
    image_keys: tuple[str, ...] = ()

    def reset(self) -> None:
        """Forget everything (cancel, error, model switch)."""
        self.cache, self.ids, self.seen_text, self.seen_ids, self.image_keys = None, [], "", [], ()

    def continuation(self, prompt: str, image_keys: tuple[str, ...]) -> str | None:
        """The new text after what the cache has seen, if ``prompt`` extends it safely.

        Returns None when the cache cannot be reused: nothing cached, history changed,
        images changed (or tiling: it is in the keys), or the new text adds images.
        """
        if self.cache is None or not self.seen_text or not prompt.startswith(self.seen_text):
            return None
        if image_keys != self.image_keys:
            return None
        return prompt[len(self.seen_text) :]

    def remember(
        self,
        cache: list[Any],
        all_ids: list[int],
        text: str,
        image_keys: tuple[str, ...],
    ) -> None:
        """Record the state after a finished answer (``all_ids``: prompt + generated)."""
        held = cache_length(cache)
        if held > len(all_ids) or held == 0:
            self.reset()
            return
        self.cache, self.ids, self.seen_ids = cache, all_ids[:held], list(all_ids)
        self.seen_text, self.image_keys = text, image_keys
