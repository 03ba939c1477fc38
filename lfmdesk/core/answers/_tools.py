"""LFM2 function calling (text-only turns): reading the calls the model writes.

Tool definitions and the text lfmdesk writes back (system prompt, results, past calls) are in
``_tool_specs``.

The format, as LFM2/LFM2.5 chat templates render it:

* tools go at the end of the system prompt:
  ``List of tools: <|tool_list_start|>[{json}, {json}]<|tool_list_end|>``;
* the model answers ``<|tool_call_start|>[name(arg=value, ...), other(x=1)]<|tool_call_end|>``,
  possibly with ordinary text before or after;
* a result goes back as a ``tool`` turn, wrapped in
  ``<|tool_response_start|>…<|tool_response_end|>``.

Calls are read with ``ast.parse`` and a walk that accepts literal values only; nothing the model
writes is ever evaluated.
"""

from __future__ import annotations

import ast
import copy
import json
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MARKERS",
    "TOOL_CALL_END",
    "TOOL_CALL_START",
    "TOOL_LIST_END",
    "TOOL_LIST_START",
    "TOOL_RESPONSE_END",
    "TOOL_RESPONSE_START",
    "ToolCall",
    "ToolCallParse",
    "parse_tool_calls",
]

TOOL_LIST_START = "<|tool_list_start|>"
TOOL_LIST_END = "<|tool_list_end|>"
TOOL_CALL_START = "<|tool_call_start|>"
TOOL_CALL_END = "<|tool_call_end|>"
TOOL_RESPONSE_START = "<|tool_response_start|>"
TOOL_RESPONSE_END = "<|tool_response_end|>"
MARKERS: tuple[str, ...] = (TOOL_LIST_START, TOOL_LIST_END, TOOL_CALL_START, TOOL_CALL_END)
MARKERS += (TOOL_RESPONSE_START, TOOL_RESPONSE_END)

_MAX_LITERAL_DEPTH = 100
_SNIPPET = 60
_LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}  # JSON spellings
_SCALARS = (str, int, float, bool, type(None))
_PARSE_ERRORS = (SyntaxError, ValueError, MemoryError, RecursionError, OverflowError)


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for.

    Attributes:
        name: the function name as written (dotted names kept, e.g. "math.sqrt").
        arguments: keyword arguments; literal values only (str, int, float, bool, None,
            lists and dicts of them).
    """

    name: str
    arguments: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return ``{"name": ..., "arguments": {...}}`` with plain, independent containers."""
        return {"name": self.name, "arguments": copy.deepcopy(dict(self.arguments))}


@dataclass(frozen=True)
class ToolCallParse:
    """What :func:`parse_tool_calls` read from one answer.

    Attributes:
        calls: the calls that were read, in answer order.
        content: the text outside the call blocks, markers removed, stripped; the pieces
            before, between and after blocks are joined by newlines.
        errors: one line per call or block that could not be read.
    """

    calls: tuple[ToolCall, ...]
    content: str
    errors: tuple[str, ...]


class _NotLiteral(Exception):
    """An argument value that is not a plain literal."""


# --- parsing calls ------------------------------------------------------------------------


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


def _snippet(src: str, node: ast.AST) -> str:
    return _short(ast.get_source_segment(src, node) or ast.dump(node)[:_SNIPPET])


def _literal(node: ast.AST, depth: int = 0) -> Any:
    """The value of a literal node (JSON names allowed); raise _NotLiteral otherwise."""
    if depth > _MAX_LITERAL_DEPTH:
        raise _NotLiteral
    if isinstance(node, ast.Constant) and isinstance(node.value, _SCALARS):
        return node.value
    if isinstance(node, ast.Name) and node.id in _LITERAL_NAMES:
        return _LITERAL_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = node.operand
        value: Any = operand.value if isinstance(operand, ast.Constant) else None
        if type(value) in (int, float):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(item, depth + 1) for item in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            key = None if key_node is None else _literal(key_node, depth + 1)
            if not isinstance(key, str):
                raise _NotLiteral
            result[key] = _literal(value_node, depth + 1)
        return result
    raise _NotLiteral


def _dotted_name(node: ast.expr) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _from_call(node: ast.Call, src: str) -> ToolCall | str:
    name = _dotted_name(node.func)
    if name is None:
        return f"not a plain function call: {_snippet(src, node)}"
    if node.args:
        return f"positional arguments are not allowed, use name=value: {_snippet(src, node)}"
    arguments: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg in arguments:
            return f"argument {kw.arg} given twice: {_snippet(src, node)}"
        try:
            if kw.arg is None:
                raise _NotLiteral
            arguments[kw.arg] = _literal(kw.value)
        except _NotLiteral:
            return f"arguments must be literals: {_snippet(src, node)}"
    return ToolCall(name, types.MappingProxyType(arguments))


def _from_json(node: ast.Dict, src: str) -> ToolCall | str:
    # Some checkpoints answer [{"name": ..., "arguments": {...}}] inside the markers.
    try:
        obj = _literal(node)
    except _NotLiteral:
        return f"not a tool call: {_snippet(src, node)}"
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name, arguments = obj.get("name"), obj.get("arguments", obj.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = None
    if not isinstance(name, str) or not name or not isinstance(arguments, dict):
        return f"not a tool call: {_snippet(src, node)}"
    return ToolCall(name, types.MappingProxyType(arguments))


def _from_node(node: ast.expr, src: str) -> ToolCall | str:
    if isinstance(node, ast.Call):
        return _from_call(node, src)
    if isinstance(node, ast.Dict):
        return _from_json(node, src)
    return f"not a tool call: {_snippet(src, node)}"


def _split_items(src: str) -> tuple[list[str], bool]:
    """Split "[a(...), b(...)" into its top-level items; say whether the list was closed."""
    items: list[str] = []
    depth, quote, start, i = 0, "", 1, 0
    while i < len(src):
        char = src[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                items.append(src[start:i])
                return [x for x in items if x.strip()], True
        elif char == "," and depth == 1:
            items.append(src[start:i])
            start = i + 1
        i += 1
    items.append(src[start:])
    return [x for x in items if x.strip()], False


def _parse_expr(src: str) -> ast.expr | None:
    try:
        with warnings.catch_warnings():
            # "C:\data" in a model's string warns about the escape; the value is still fine.
            warnings.simplefilter("ignore")
            return ast.parse(src.strip(), mode="eval").body
    except _PARSE_ERRORS:
        return None


def _read_block(body: str) -> list[ToolCall | str]:
    src = body.strip()
    if not src:
        return []
    if not src.startswith("["):
        src = f"[{src}]"
    tree = _parse_expr(src)
    if isinstance(tree, ast.List):
        return [_from_node(node, src) for node in tree.elts]
    # Not valid Python as a whole (cut off, or one broken call): read item by item.
    pieces, closed = _split_items(src)
    results: list[ToolCall | str] = []
    for index, piece in enumerate(pieces):
        node = _parse_expr(piece)
        if node is not None:
            results.append(_from_node(node, piece.strip()))
        elif index == len(pieces) - 1 and not closed:
            results.append("cut off before the call was complete")
        else:
            results.append(f"not valid call syntax: {_short(piece)}")
    return results


def _split_blocks(text: str) -> tuple[list[tuple[str, bool]], str]:
    """Return ([(block body, closed)], text outside the blocks)."""
    first, *rest = text.split(TOOL_CALL_START)
    blocks: list[tuple[str, bool]] = []
    outside = [first]
    for piece in rest:  # a block without an end marker runs to the next start, or the end
        body, end, after = piece.partition(TOOL_CALL_END)
        blocks.append((body, bool(end)))
        outside.append(after)
    return blocks, "\n".join(part.strip() for part in outside if part.strip())


def _strip_markers(text: str) -> str:
    for marker in MARKERS:
        text = text.replace(marker, "")
    return text.strip()


def _parse(text: str) -> ToolCallParse:
    blocks, outside = _split_blocks(text)
    calls: list[ToolCall] = []
    errors: list[str] = []
    number = 0
    for block_number, (body, closed) in enumerate(blocks, start=1):
        if not closed:
            why = ", the answer was cut off" if block_number == len(blocks) else ""
            errors.append(f"block {block_number}: no {TOOL_CALL_END}{why}")
        for result in _read_block(body):
            number += 1
            if isinstance(result, ToolCall):
                calls.append(result)
            else:
                errors.append(f"call {number}: {result}")
    return ToolCallParse(tuple(calls), _strip_markers(outside), tuple(errors))


def parse_tool_calls(text: str) -> ToolCallParse:
    """Read the tool calls in a model answer; never raises, never evaluates anything.

    Accepts the pythonic form ``[f(a=1), g(b="x")]`` and the JSON form
    ``[{"name": "f", "arguments": {"a": 1}}]`` between the call markers. A call with positional
    arguments or non-literal values is reported in ``errors`` and skipped; the others are kept.
    """
    try:
        return _parse(text)
    except Exception as exc:  # the promise to callers is "never raises on model text"
        return ToolCallParse((), _strip_markers(str(text)), (f"unreadable tool calls: {exc!r}",))


# --- tool specs ---------------------------------------------------------------------------
