"""Conversation data and the events a generation yields. Plain, frozen, picklable data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from lfmdesk.core._errors import InputError
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.engine._constrained import Constraint
from lfmdesk.core.images._load import LoadedImage

__all__ = [
    "ChatEvent",
    "ChatRequest",
    "GenerationStats",
    "Message",
    "Notice",
    "TextDelta",
]

Role = Literal["system", "user", "assistant", "tool"]
_ROLES = ("system", "user", "assistant", "tool")


@dataclass(frozen=True)
class Message:
    """One turn. Images belong to user turns and are shown to the model before the text."""

    role: Role
    text: str
    images: tuple[LoadedImage, ...] = ()

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise InputError(f"unknown role {self.role!r}; use one of {', '.join(_ROLES)}")
        if self.images and self.role != "user":
            raise InputError(f"images can only be attached to user turns, not {self.role}")


@dataclass(frozen=True)
class ChatRequest:
    """Everything one answer depends on; settings are per request.

    ``constraint``, when set, is the grammar the answer must follow (a Detect answer, a JSON
    schema): see :mod:`lfmdesk.core.engine._constrained`.
    """

    messages: tuple[Message, ...]
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    vision: VisionSettings = field(default_factory=VisionSettings)
    tools: tuple[Mapping[str, Any], ...] = ()
    constraint: Constraint | None = None

    def __post_init__(self) -> None:
        if not self.messages:
            raise InputError("a chat request needs at least one message")

    @property
    def images(self) -> tuple[LoadedImage, ...]:
        """Every image in the conversation, in prompt order."""
        return tuple(img for m in self.messages for img in m.images)

    @classmethod
    def single(
        cls,
        prompt: str,
        images: Sequence[LoadedImage] = (),
        *,
        system: str | None = None,
        sampling: SamplingSettings | None = None,
        vision: VisionSettings | None = None,
        tools: Sequence[Mapping[str, Any]] = (),
        constraint: Constraint | None = None,
    ) -> ChatRequest:
        """A one-turn request: optional system prompt, then a user turn with images."""
        msgs = [Message("system", system)] if system else []
        msgs.append(Message("user", prompt, tuple(images)))
        return cls(
            tuple(msgs),
            sampling or SamplingSettings(),
            vision or VisionSettings(),
            tuple(tools),
            constraint,
        )


@dataclass(frozen=True)
class TextDelta:
    """New text of the answer, in order; concatenated they are the whole answer."""

    text: str


@dataclass(frozen=True)
class Notice:
    """Something the user should know about this answer (e.g. why tools are off)."""

    message: str


@dataclass(frozen=True)
class GenerationStats:
    """The last event of every generation.

    Attributes:
        prompt_tokens: tokens in the rendered prompt, image tokens included.
        image_tokens: ``<image>`` tokens in the prompt (what the vision tower produced).
        cached_prompt_tokens: prompt tokens reused from the previous turn's KV cache.
        vision_cache_hits: images whose features came from the vision cache.
        images: images in the prompt.
        vision_seconds: time spent encoding images (0 when all were cached).
        ttft_seconds: request start to first token.
        decode_tokens: tokens generated.
        decode_tps: decode speed, tokens per second after the first token.
        peak_memory_bytes: MLX peak memory during this request.
        finish_reason: "stop" (end token), "length" (max_tokens) or "cancelled".
        token_ids: the generated token ids (end token excluded).
    """

    prompt_tokens: int
    image_tokens: int
    cached_prompt_tokens: int
    vision_cache_hits: int
    images: int
    vision_seconds: float
    ttft_seconds: float
    decode_tokens: int
    decode_tps: float
    peak_memory_bytes: int
    finish_reason: str
    token_ids: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data = asdict(self)
        data["token_ids"] = list(self.token_ids)
        return data


ChatEvent = TextDelta | Notice | GenerationStats
