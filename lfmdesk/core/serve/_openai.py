"""OpenAI chat-completions JSON in, :class:`ChatRequest` out; engine results back as OpenAI JSON.

Request fields are read from tables: sampling at the top level (what the ``openai`` client's
``extra_body`` sends, and vLLM's names), tiling in vLLM's ``mm_processor_kwargs``. A field left
out takes the LFM2.5-VL model card's value (temperature 0.1, min_p 0.15, repetition_penalty
1.05), never the window's settings, so an API client gets the same answer wherever it runs.
Everything a client can get wrong raises :class:`ApiError`, answered with OpenAI's error
object before any generation starts.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lfmdesk.core._errors import ImageError, InputError
from lfmdesk.core._settings import SamplingSettings, VisionSettings
from lfmdesk.core.answers._tool_specs import tool_calls_text
from lfmdesk.core.answers._tools import ToolCall
from lfmdesk.core.engine._chat import ChatRequest, GenerationStats, Message
from lfmdesk.core.engine._constrained import Constraint, constraint_for_json_schema
from lfmdesk.core.engine._tiling import plan_tiles
from lfmdesk.core.images._load import LoadedImage

__all__ = [
    "ApiError",
    "ParsedChat",
    "check_response_format",
    "completion_body",
    "completion_chunk",
    "error_body",
    "parse_chat",
    "usage_body",
]

# OpenAI / vLLM name -> SamplingSettings field (max_completion_tokens is the newer name).
_SAMPLING_FIELDS: dict[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
}
_VISION_FIELDS = (
    "min_image_tokens",
    "max_image_tokens",
    "do_image_splitting",
    "min_tiles",
    "max_tiles",
    "use_thumbnail",
)
# Fields a client may send that change nothing here when left at these values.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "presence_penalty": (0, 0.0),
    "frequency_penalty": (0, 0.0),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "best_of": (1,),
}
_ROLES: dict[str, str] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and OpenAI error fields."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.kind = kind
        self.headers = dict(headers or {})


def error_body(message: str, kind: str, code: str | None, param: str | None) -> dict[str, Any]:
    """OpenAI's error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class ParsedChat:
    """A chat-completions request, checked and ready for the engine.

    Attributes:
        request: what the engine answers.
        model: the model the client asked for ("" when it named none).
        stream: answer as server-sent events.
        include_usage: add the final usage chunk (``stream_options.include_usage``).
        stops: the ``stop`` strings.
        tools: the request offered tools (so call blocks become ``tool_calls``).
    """

    request: ChatRequest
    model: str
    stream: bool
    include_usage: bool
    stops: tuple[str, ...] = ()
    tools: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}")


def check_response_format(value: Any) -> Constraint | None:
    """The grammar ``response_format`` asks for: None for plain text.

    ``json_schema`` (OpenAI's ``{"type": "json_schema", "json_schema": {"schema": ...}}``) and
    ``json_object`` decode under the schema with the engine's constrained decoding, so the
    answer is valid JSON by construction, on CPU as on Metal.

    Raises:
        ApiError: 400 for an unknown type or a schema that cannot be compiled, before any
            answer starts (never a 200 stream that dies).
    """
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        schema: Any = {"type": "object"}
    elif kind == "json_schema":
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise ApiError(
                400, "response_format.json_schema.schema must be an object", param="response_format"
            )
    else:
        raise ApiError(
            400,
            "response_format.type must be text, json_object or json_schema",
            param="response_format",
        )
    try:
        return constraint_for_json_schema(schema)
    except InputError as exc:
        raise ApiError(400, str(exc), param="response_format") from None


def _expect(value: Any, kinds: type | tuple[type, ...], param: str, what: str) -> Any:
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise ApiError(400, f"{param} must be {what}", param=param)
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _sampling(body: Mapping[str, Any]) -> SamplingSettings:
    values: dict[str, Any] = {}
    for name, target in _SAMPLING_FIELDS.items():
        if body.get(name) is not None:
            values[target] = _expect(body[name], (int, float), name, "a number")
    try:
        return SamplingSettings(**values)
    except InputError as exc:
        raise ApiError(400, str(exc)) from None


def _vision(body: Mapping[str, Any]) -> VisionSettings:
    kwargs = body.get("mm_processor_kwargs") or {}
    _expect(kwargs, dict, "mm_processor_kwargs", "an object")
    values = {k: kwargs[k] for k in _VISION_FIELDS if kwargs.get(k) is not None}
    if values.get("do_image_splitting") is False:
        # vLLM clients turn splitting off with min_tiles = max_tiles = 1 as well; without
        # splitting the tile counts mean nothing, so they are not checked.
        values.pop("min_tiles", None)
        values.pop("max_tiles", None)
    try:
        return VisionSettings(**values)
    except TypeError:
        raise ApiError(400, "mm_processor_kwargs has a value of the wrong type") from None
    except InputError as exc:
        raise ApiError(400, str(exc), param="mm_processor_kwargs") from None


def _text_of(content: Any, where: str) -> tuple[str, list[Any]]:
    """The text of a message's content and its image URLs, in order."""
    if content is None:
        return "", []
    if isinstance(content, str):
        return content, []
    _expect(content, list, where, "a string or a list of content parts")
    texts: list[str] = []
    urls: list[Any] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(_expect(part.get("text"), str, f"{where}.text", "a string"))
        elif kind == "image_url":
            image = part.get("image_url")
            urls.append(image.get("url") if isinstance(image, dict) else image)
        else:
            raise ApiError(400, f"{where}: content parts must be text or image_url", param=where)
    return "\n".join(texts), urls


def _assistant_calls(calls: Any, where: str) -> str:
    # An assistant turn with OpenAI tool_calls goes back to the model as LFM2's own call text.
    import json

    _expect(calls, list, where, "a list")
    parsed: list[ToolCall] = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(400, f"{where}: each call needs function.name", param=where)
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            raise ApiError(400, f"{where}: function.arguments must be JSON", param=where) from None
        if not isinstance(arguments, dict):
            raise ApiError(400, f"{where}: function.arguments must be a JSON object", param=where)
        parsed.append(ToolCall(function["name"], arguments))
    return tool_calls_text(parsed)


def _messages(
    body: Mapping[str, Any], load: Callable[[Any], LoadedImage], max_images: int
) -> tuple[Message, ...]:
    raw = _expect(body.get("messages"), list, "messages", "a non-empty list")
    if not raw:
        raise ApiError(400, "messages must be a non-empty list", param="messages")
    urls = 0
    out: list[Message] = []
    for number, item in enumerate(raw):
        where = f"messages[{number}]"
        _expect(item, dict, where, "an object")
        role = _ROLES.get(str(item.get("role")))
        if role is None:
            raise ApiError(400, f"{where}.role must be system, user, assistant or tool")
        text, images = _text_of(item.get("content"), f"{where}.content")
        if images and role != "user":
            raise ApiError(400, f"{where}: images can only be in user messages", param=where)
        urls += len(images)
        if urls > max_images:
            raise ApiError(
                400, f"too many images: this server takes at most {max_images} per request"
            )
        if role == "assistant" and item.get("tool_calls"):
            text = "".join((text, _assistant_calls(item["tool_calls"], f"{where}.tool_calls")))
        out.append(Message(role, text, tuple(load(url) for url in images)))  # type: ignore[arg-type]
    return tuple(out)


def _tools(body: Mapping[str, Any]) -> tuple[dict[str, Any], ...]:
    tools = body.get("tools") or []
    _expect(tools, list, "tools", "a list")
    if body.get("tool_choice") == "none":
        return ()
    if body.get("tool_choice") not in (None, "auto"):
        raise ApiError(400, 'tool_choice must be "auto" or "none" here', param="tool_choice")
    specs: list[dict[str, Any]] = []
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise ApiError(400, f"tools[{number}] needs function.name", param="tools")
        specs.append(
            {
                "name": function["name"],
                "description": function.get("description", ""),
                "parameters": function.get("parameters", {"type": "object", "properties": {}}),
            }
        )
    return tuple(specs)


def _stops(body: Mapping[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 4:
        raise ApiError(400, "stop must be a string or a list of up to 4 strings", param="stop")
    return tuple(s for s in stops if s)


def _check_neutral(body: Mapping[str, Any]) -> None:
    for name, fine in _NEUTRAL.items():
        if body.get(name) is not None and body[name] not in fine:
            raise ApiError(
                400, f"{name}={body[name]!r} is not supported by this server", param=name
            )


def _check_plans(request: ChatRequest) -> None:
    # Tiling the engine cannot run is a 400 now, not a failure after the stream has begun.
    for image in request.images:
        problem = plan_tiles(image.width, image.height, request.vision).problem()
        if problem is not None:
            raise ApiError(400, problem, param="mm_processor_kwargs")


def parse_chat(
    body: Any, load_image: Callable[[Any], LoadedImage], *, max_images: int = 8
) -> ParsedChat:
    """Check a chat-completions request body and build the engine request.

    Args:
        body: the decoded JSON body.
        load_image: turns an ``image_url.url`` into a picture (raises ``ImageError``).
        max_images: the most images one request may carry.

    Raises:
        ApiError: anything the client must fix (400), with the offending ``param``.
    """
    _expect(body, dict, "the request body", "a JSON object")
    constraint = check_response_format(body.get("response_format"))
    _check_neutral(body)
    stream = bool(_expect(body.get("stream", False), bool, "stream", "true or false"))
    options = body.get("stream_options") or {}
    _expect(options, dict, "stream_options", "an object")
    model = body.get("model") or ""
    _expect(model, str, "model", "a string")
    sampling, vision, tools, stops = _sampling(body), _vision(body), _tools(body), _stops(body)
    try:
        messages = _messages(body, load_image, max_images)
        request = ChatRequest(messages, sampling, vision, tools, constraint)
    except ImageError as exc:
        raise ApiError(400, str(exc), code="invalid_image", param="messages") from None
    except InputError as exc:
        raise ApiError(400, str(exc), param="messages") from None
    _check_plans(request)
    return ParsedChat(
        request,
        model,
        stream,
        bool(options.get("include_usage")),
        stops,
        bool(tools),
    )


def usage_body(stats: GenerationStats) -> dict[str, Any]:
    """OpenAI's usage object; ``prompt_tokens`` counts image tokens as ``lfmdesk tiles`` does."""
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.decode_tokens,
        "total_tokens": stats.prompt_tokens + stats.decode_tokens,
        "prompt_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
    }


def finish_reason(stats: GenerationStats, stopped: bool, calls: bool) -> str:
    """OpenAI's finish_reason for an answer."""
    if calls:
        return "tool_calls"
    if stopped:
        return "stop"
    return "length" if stats.finish_reason == "length" else "stop"


def completion_body(
    parsed: ParsedChat,
    model: str,
    content: str,
    calls: list[dict[str, Any]],
    reason: str,
    stats: GenerationStats,
) -> dict[str, Any]:
    """A whole ``chat.completion`` object."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content if content or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    return {
        "id": parsed.id,
        "object": "chat.completion",
        "created": parsed.created,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": reason, "logprobs": None}],
        "usage": usage_body(stats),
        "system_fingerprint": None,
    }


def completion_chunk(
    parsed: ParsedChat,
    model: str,
    delta: dict[str, Any] | None,
    reason: str | None = None,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``; ``delta=None`` makes the usage-only chunk."""
    chunk: dict[str, Any] = {
        "id": parsed.id,
        "object": "chat.completion.chunk",
        "created": parsed.created,
        "model": model,
        "system_fingerprint": None,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}],
    }
    if parsed.include_usage:
        chunk["usage"] = usage
    return chunk
