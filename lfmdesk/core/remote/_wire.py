"""vLLM's chat-completions wire format, both ways.

Written to what vLLM (>= 0.23, ``Lfm2VlForConditionalGeneration``) accepts: sampling fields
at the top level, always an explicit ``max_tokens`` (vLLM's default runs to the context
limit), tiling in ``mm_processor_kwargs``; splitting off is sent as ``min_tiles = max_tiles = 1``
as well as ``do_image_splitting: false`` (vLLM <= 0.32 ignores the flag, then its engine dies
assigning image tokens to the wrong number of placeholders).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._tool_specs import tool_calls_text
from lfmdesk.core.answers._tools import ToolCall
from lfmdesk.core.engine._chat import ChatRequest, Message
from lfmdesk.core.images._load import LoadedImage

__all__ = [
    "Answer",
    "ToolCallPieces",
    "chat_body",
    "image_data_url",
    "message_of",
    "mm_processor_kwargs",
    "sampling_fields",
]


def image_data_url(image: LoadedImage) -> str:
    """The oriented RGB pixels as a lossless PNG data URL.

    The server then sees exactly the pixels a local run sees (EXIF already applied, no
    JPEG loss), so boxes come back in the same place.
    """
    buffer = io.BytesIO()
    image.image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def sampling_fields(sampling: SamplingSettings) -> dict[str, Any]:
    """Top-level sampling fields, ``max_tokens`` always included."""
    out: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
    }
    if sampling.top_k > 0:
        out["top_k"] = sampling.top_k
    if sampling.seed is not None:
        out["seed"] = sampling.seed
    return out


def mm_processor_kwargs(vision: VisionSettings) -> dict[str, Any]:
    """The tiling as vLLM's processor kwargs (splitting off: one tile, said twice)."""
    tiles = (vision.min_tiles, vision.max_tiles) if vision.do_image_splitting else (1, 1)
    return {
        "min_image_tokens": vision.min_image_tokens,
        "max_image_tokens": vision.max_image_tokens,
        "do_image_splitting": vision.do_image_splitting,
        "min_tiles": tiles[0],
        "max_tiles": tiles[1],
        "use_thumbnail": vision.use_thumbnail,
    }


def _content(message: Message, stand_in: str | None) -> str | list[dict[str, Any]]:
    if not message.images:
        return message.text
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": stand_in or image_data_url(image)}}
        for image in message.images
    ]
    parts.append({"type": "text", "text": message.text})
    return parts


def message_of(message: Message, stand_in: str | None = None) -> dict[str, Any]:
    """One message; images first, as the local engine shows them to the model.

    ``stand_in`` (a data URL) replaces every image: the parity guard's reference request.
    """
    out: dict[str, Any] = {"role": message.role, "content": _content(message, stand_in)}
    if message.role == "tool":
        out["tool_call_id"] = "call_0"  # OpenAI requires one; LFM2's template ignores it
    return out


def chat_body(
    request: ChatRequest,
    model: str,
    *,
    stream: bool,
    stand_in: str | None = None,
    tools: bool = True,
) -> dict[str, Any]:
    """The JSON body for ``POST /chat/completions``.

    Args:
        request: the conversation and its settings.
        model: the server's model id.
        stream: ask for server-sent events (with a final usage chunk).
        stand_in: a data URL sent in place of every image (the parity guard's reference).
        tools: send the request's tools.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [message_of(m, stand_in) for m in request.messages],
        "stream": stream,
        **sampling_fields(request.sampling),
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    if request.images:
        body["mm_processor_kwargs"] = mm_processor_kwargs(request.vision)
    if request.tools and tools:
        body["tools"] = [{"type": "function", "function": dict(t)} for t in request.tools]
        body["skip_special_tokens"] = False  # vLLM: keep LFM2's call markers in the text
    if request.constraint is not None:  # constrained Detect, or a schema: the server decodes it
        schema = json.loads(request.constraint.schema)
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": request.constraint.kind, "schema": schema},
        }
    return body


@dataclass
class ToolCallPieces:
    """OpenAI ``tool_calls`` deltas put together, then written as LFM2's call text."""

    names: dict[int, str] = field(default_factory=dict)
    arguments: dict[int, list[str]] = field(default_factory=dict)

    def add(self, deltas: Iterable[Mapping[str, Any]]) -> None:
        for number, delta in enumerate(deltas):
            index = delta.get("index", number)
            function = delta.get("function") or {}
            if function.get("name"):
                self.names[index] = str(function["name"])
            if function.get("arguments"):
                self.arguments.setdefault(index, []).append(str(function["arguments"]))

    def text(self) -> str:
        """LFM2's ``<|tool_call_start|>[...]<|tool_call_end|>``, or "" without calls."""
        calls: list[ToolCall] = []
        for index in sorted(self.names):
            try:
                arguments = json.loads("".join(self.arguments.get(index, [])) or "{}")
            except ValueError:
                arguments = {}
            calls.append(
                ToolCall(self.names[index], arguments if isinstance(arguments, dict) else {})
            )
        return tool_calls_text(calls) if calls else ""


@dataclass
class Answer:
    """What a server said, put together from chunks or one completion."""

    texts: list[str] = field(default_factory=list)
    calls: ToolCallPieces = field(default_factory=ToolCallPieces)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None

    def add_choice(self, choice: Mapping[str, Any], key: str) -> str:
        """Take one choice's delta (``key="delta"``) or message; returns its new text."""
        part = choice.get(key) or {}
        text = part.get("content") or ""
        if text:
            self.texts.append(text)
        if part.get("tool_calls"):
            self.calls.add(part["tool_calls"])
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        return str(text)

    def add_chunk(self, chunk: Mapping[str, Any]) -> str:
        """Take one SSE chunk; returns its new text."""
        if chunk.get("usage"):
            self.usage = dict(chunk["usage"])
        return "".join(self.add_choice(c, "delta") for c in chunk.get("choices") or [])

    @property
    def completion_tokens(self) -> int | None:
        value = (self.usage or {}).get("completion_tokens")
        return value if isinstance(value, int) else None

    @property
    def prompt_tokens(self) -> int | None:
        value = (self.usage or {}).get("prompt_tokens")
        return value if isinstance(value, int) else None

    @property
    def cached_tokens(self) -> int:
        details = (self.usage or {}).get("prompt_tokens_details") or {}
        value = details.get("cached_tokens") if isinstance(details, dict) else None
        return value if isinstance(value, int) else 0
