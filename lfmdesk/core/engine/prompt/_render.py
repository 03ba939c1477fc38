"""Turning a conversation into the prompt text, with the checkpoint's own chat template.

Every text the template is given (messages, tool specs) is defused first (``_tokens``), so
the rendered text is *marked*: the special tokens left in it are the template's own. Turn it
into ids with :meth:`PromptTokens.encode`, into readable text with :meth:`PromptTokens.shown`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lfmdesk.core._errors import EngineError
from lfmdesk.core.answers._tool_specs import tool_response_text, tools_system_prompt
from lfmdesk.core.answers._tools import TOOL_RESPONSE_START
from lfmdesk.core.engine._chat import ChatRequest, Message
from lfmdesk.core.engine.prompt._tokens import PromptTokens

__all__ = ["TOOLS_OFF_WITH_IMAGES", "PromptParts", "render_prompt"]

TOOLS_OFF_WITH_IMAGES = (
    "tools are off for this answer: LFM2.5-VL does function calling on text-only turns, "
    "and this conversation has an image"
)


class PromptParts:
    """The rendered prompt (marked text), plus what rendering decided (tools dropped…)."""

    def __init__(self, text: str, tools_used: bool, notices: tuple[str, ...]) -> None:
        self.text = text
        self.tools_used = tools_used
        self.notices = notices


def _template_owner(processor: Any) -> tuple[Any, str]:
    # mlx-vlm's processor often has no template of its own; the tokenizer carries it.
    for owner in (processor, getattr(processor, "tokenizer", None)):
        template = getattr(owner, "chat_template", None)
        if isinstance(template, str) and template:
            return owner, template
    raise EngineError("this model has no chat template (chat_template.jinja is missing)")


def _content(message: Message, wrap_tool: bool, tokens: PromptTokens) -> str | list[dict[str, str]]:
    # Only the template's own markup may be special: message text is defused.
    if message.role == "assistant":
        text = tokens.defuse_answer(message.text)
    else:
        text = tokens.defuse(message.text)
    if message.role == "tool" and wrap_tool:
        text = tool_response_text(text)
    if not message.images:
        return text
    parts: list[dict[str, str]] = [{"type": "image"} for _ in message.images]
    parts.append({"type": "text", "text": text})
    return parts


def _with_tools_in_system(
    messages: list[dict[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    # For templates that cannot render tools (LFM2-VL v1): the same text LFM2.5 renders.
    system = ""
    if messages and messages[0]["role"] == "system":
        system = str(messages[0]["content"])
        messages = messages[1:]
    return [{"role": "system", "content": tools_system_prompt(tools, system)}, *messages]


def render_prompt(processor: Any, request: ChatRequest, tokens: PromptTokens) -> PromptParts:
    """Render ``request`` with the checkpoint's chat template, generation prompt included.

    The text comes back marked (see the module docstring): message text and tool specs are
    defused with ``tokens`` before the template sees them. With any image in the
    conversation, tools are dropped and a notice says why.
    """
    renderer, template = _template_owner(processor)
    notices: list[str] = []
    tools = [tokens.defuse_json(t) for t in request.tools]  # plain dicts and lists too
    if tools and request.images:
        notices.append(TOOLS_OFF_WITH_IMAGES)
        tools = []
    template_wraps_tools = TOOL_RESPONSE_START in template
    messages: list[dict[str, Any]] = [
        {"role": m.role, "content": _content(m, not template_wraps_tools, tokens)}
        for m in request.messages
    ]
    kwargs: dict[str, Any] = {}
    if tools and "tool_list_start" in template:
        kwargs["tools"] = tools
    elif tools:
        messages = _with_tools_in_system(messages, tools)
    try:
        text = renderer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, **kwargs
        )
    except Exception as exc:  # jinja errors come in many classes
        raise EngineError(f"the model's chat template failed: {exc}") from None
    return PromptParts(str(text), bool(tools), tuple(notices))
