"""LFM2 function calling, the text lfmdesk writes: tool definitions read from a file, the tool
list in the system prompt, results wrapped as tool responses, past calls as LFM2 call text.

The markers and the call type are in ``_tools``, which reads the calls the model writes.
"""

from __future__ import annotations

import json
import keyword
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lfmdesk.core._errors import ToolSpecError
from lfmdesk.core.answers._tools import (
    TOOL_CALL_END,
    TOOL_CALL_START,
    TOOL_LIST_END,
    TOOL_LIST_START,
    TOOL_RESPONSE_END,
    TOOL_RESPONSE_START,
    ToolCall,
)

__all__ = ["load_tool_specs", "tool_calls_text", "tool_response_text", "tools_system_prompt"]

_MAX_SPEC_BYTES = 1 << 20


def _read_source(source: str | os.PathLike[str]) -> tuple[str, str]:
    """Return (JSON text, how to name it in messages)."""
    if isinstance(source, str) and source.lstrip()[:1] in ("[", "{"):
        return source, "the tool JSON"
    path = Path(source).expanduser()
    try:
        if path.is_dir():
            raise ToolSpecError(f"{path} is a folder; give a JSON file of tools or JSON text")
        if not path.is_file():
            raise ToolSpecError(f"tool file not found: {path}; give a JSON file or JSON text")
        if path.stat().st_size > _MAX_SPEC_BYTES:
            raise ToolSpecError(f"{path} is larger than 1 MB; give a JSON list of tools")
        return path.read_text(encoding="utf-8-sig"), str(path)
    except UnicodeDecodeError:
        raise ToolSpecError(f"{path} is not UTF-8 text; give a JSON list of tools") from None
    except (OSError, ValueError) as exc:
        raise ToolSpecError(f"cannot read tool file {source!r}: {exc}") from None


def _valid_name(name: object) -> bool:
    return isinstance(name, str) and all(
        part.isidentifier() and not keyword.iskeyword(part) for part in name.split(".")
    )


def _one_spec(item: object, number: int, where: str) -> dict[str, Any]:
    at = f"tool {number} in {where}"
    if not isinstance(item, dict):
        raise ToolSpecError(f"{at} is not a JSON object; each tool needs a name")
    if item.get("type", "function") != "function":
        raise ToolSpecError(f"{at} has type {item['type']!r}; only function tools are supported")
    spec = item.get("function", item)
    if not isinstance(spec, dict):
        raise ToolSpecError(f'{at}: "function" must be an object with a name')
    name = spec.get("name")
    if not _valid_name(name):
        raise ToolSpecError(f"{at}: name must be an identifier like get_weather, got {name!r}")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise ToolSpecError(f"{at}: description must be a string")
    parameters = spec.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        raise ToolSpecError(f"{at}: parameters must be a JSON Schema object")
    return {"name": name, "description": description, "parameters": parameters}


def load_tool_specs(source: str | os.PathLike[str]) -> tuple[dict[str, Any], ...]:
    """Load tool definitions from a JSON file or JSON text.

    Accepts a list of tools or ``{"tools": [...]}``; each tool either OpenAI-style
    ``{"type": "function", "function": {...}}`` or bare ``{"name", "description", "parameters"}``.

    Returns:
        The tools as bare ``{"name", "description", "parameters"}`` dicts, the form LFM2's
        examples list in the system prompt.

    Raises:
        ToolSpecError: unreadable file, invalid JSON, or a tool without a valid name.
    """
    text, where = _read_source(source)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolSpecError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except RecursionError:
        raise ToolSpecError(f"{where} is nested too deeply to be a tool list") from None
    if isinstance(data, dict):
        data = data.get("tools", [data])
    if not isinstance(data, list) or not data:
        raise ToolSpecError(f'{where} must hold a JSON list of tools, e.g. [{{"name": "f"}}]')
    specs = [_one_spec(item, number, where) for number, item in enumerate(data, start=1)]
    names = [spec["name"] for spec in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ToolSpecError(f"{where} defines {', '.join(repeated)} more than once")
    return tuple(specs)


# --- rendering ----------------------------------------------------------------------------


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def tools_system_prompt(tools: Sequence[Mapping[str, Any]], system: str = "") -> str:
    """Render the system prompt exactly as the LFM2.5 chat template does with ``tools``.

    For checkpoints whose template cannot render tools (LFM2-VL v1). With no tools the
    system text comes back unchanged.

    Raises:
        ToolSpecError: a tool cannot be written as JSON.
    """
    if not tools:
        return system
    listed: list[str] = []
    for number, tool in enumerate(tools, start=1):
        try:
            # tojson in transformers' chat templates: json.dumps with ensure_ascii=False.
            listed.append(json.dumps(tool, ensure_ascii=False, default=_plain))
        except (TypeError, ValueError) as exc:
            raise ToolSpecError(f"tool {number} cannot be written as JSON: {exc}") from None
    prefix = f"{system}\n" if system else ""
    return f"{prefix}List of tools: {TOOL_LIST_START}[{', '.join(listed)}]{TOOL_LIST_END}"


def tool_response_text(result: Any) -> str:
    """Wrap a tool's result for a ``tool`` turn; non-strings are JSON-encoded first."""
    if not isinstance(result, str):
        result = json.dumps(result, ensure_ascii=False, default=str)
    return f"{TOOL_RESPONSE_START}{result}{TOOL_RESPONSE_END}"


def _python_literal(value: Any) -> str:
    # The pythonic form LFM2 writes: JSON strings and numbers, Python's True/False/None.
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{json.dumps(str(k))}: {_python_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def tool_calls_text(calls: Sequence[ToolCall]) -> str:
    """Write calls the way LFM2 answers them: ``<|tool_call_start|>[f(a=1)]<|tool_call_end|>``.

    The inverse of :func:`parse_tool_calls` for calls that arrive in another form (OpenAI's
    ``tool_calls`` objects from a server, an API client's assistant turn).
    """
    written = [
        f"{call.name}("
        + ", ".join(f"{key}={_python_literal(value)}" for key, value in call.arguments.items())
        + ")"
        for call in calls
    ]
    return f"{TOOL_CALL_START}[{', '.join(written)}]{TOOL_CALL_END}"
