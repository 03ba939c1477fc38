"""Conversations as plain data: frozen turns, saved as JSON by the conversation store.

Images are not inside a conversation: turns refer to them by content hash, and the store
keeps each image once. ``from_json`` ignores keys it does not know (newer files stay
readable) and turns anything malformed into one :class:`InputError` line naming the part.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lfmdesk.core._errors import InputError
from lfmdesk.core.answers._grounding import Detection
from lfmdesk.core.engine._chat import GenerationStats

__all__ = [
    "CONVERSATION_SCHEMA",
    "DEFAULT_TITLE",
    "KINDS",
    "ROLES",
    "Conversation",
    "Turn",
    "TurnKind",
    "TurnRole",
    "is_conversation_id",
]

CONVERSATION_SCHEMA = 1
DEFAULT_TITLE = "New chat"
TurnRole = Literal["system", "user", "assistant", "tool"]
TurnKind = Literal["chat", "detect", "tool_calls", "tool_result"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
KINDS: tuple[str, ...] = ("chat", "detect", "tool_calls", "tool_result")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_conversation_id(text: str) -> bool:
    """Whether ``text`` is a valid conversation id (safe as a file name)."""
    return bool(_ID.fullmatch(text))


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation.

    Attributes:
        role: who speaks.
        text: the text; for an assistant turn, exactly what the model wrote (tool-call
            markers included).
        image_ids: content hashes of the images shown before the text (user turns only).
        kind: "detect" for a detection request and its answer, "tool_calls" for an answer
            that calls tools, "tool_result" for a tool's result, else "chat".
        detections: the boxes read from a detection answer.
        dropped: why detection items or tool calls in the answer were not used.
        interrupted: the answer was cut short (Stop, or the engine died).
        stats: the answer's generation statistics, when it finished normally or by Stop.
    """

    role: TurnRole
    text: str
    image_ids: tuple[str, ...] = ()
    kind: TurnKind = "chat"
    detections: tuple[Detection, ...] = ()
    dropped: tuple[str, ...] = ()
    interrupted: bool = False
    stats: GenerationStats | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")
        if self.kind not in KINDS:
            raise InputError(f"unknown turn kind {self.kind!r}; use one of {', '.join(KINDS)}")
        if self.image_ids and self.role != "user":
            raise InputError(f"images can only be attached to user turns, not {self.role}")


@dataclass(frozen=True)
class Conversation:
    """A saved chat.

    Attributes:
        id: a file-name-safe identifier (letters, digits, "-" and "_").
        title: shown in the conversation list.
        created: creation time, seconds since the epoch.
        updated: last change, seconds since the epoch.
        turns: the turns, oldest first.
        schema_version: version of the JSON layout.
    """

    id: str
    title: str
    created: float
    updated: float
    turns: tuple[Turn, ...] = ()
    schema_version: int = CONVERSATION_SCHEMA

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the store writes): always this version's layout."""
        return {
            "schema_version": CONVERSATION_SCHEMA,
            "id": self.id,
            "title": self.title,
            "created": self.created,
            "updated": self.updated,
            "turns": [_turn_to_json(t) for t in self.turns],
        }

    @classmethod
    def from_json(cls, data: Any) -> Conversation:
        """Read a dict written by :meth:`to_json`; unknown keys are ignored.

        Raises:
            InputError: the data is not a conversation (the message names the bad part).
        """
        try:
            return _conversation_from_json(data)
        except _Bad as bad:
            raise InputError(f"not a valid conversation: {bad}") from None


# --- writing ---------------------------------------------------------------------------------


def _turn_to_json(turn: Turn) -> dict[str, Any]:
    return {
        "role": turn.role,
        "text": turn.text,
        "image_ids": list(turn.image_ids),
        "kind": turn.kind,
        "detections": [d.to_dict() for d in turn.detections],
        "dropped": list(turn.dropped),
        "interrupted": turn.interrupted,
        "stats": turn.stats.to_dict() if turn.stats is not None else None,
    }


# --- reading ---------------------------------------------------------------------------------


class _Bad(Exception):
    """A malformed part; the message says where and what."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    # isfinite() of an int too large for a float raises; whole numbers are finite anyway.
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v))


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


# What each field must hold: (check, description).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "a whole number"),
    "float": (_is_number, "a number"),
    "str": (lambda v: isinstance(v, str), "text"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "strs": (_is_str_list, "a list of texts"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "ints": (lambda v: isinstance(v, list) and all(_is_int(x) for x in v), "a list of numbers"),
}


def _get(data: Mapping[str, Any], key: str, check: str, where: str, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise _Bad(f"{where}has no {key}")
        return default
    value = data[key]
    test, description = _CHECKS[check]
    if not test(value):
        raise _Bad(f"{where}{key} must be {description}, got {type(value).__name__}")
    return value


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _Bad(f"{where or 'the data '}must be a JSON object")
    return data


def _box(value: Any, number: Callable[[Any], bool], where: str) -> tuple[Any, ...]:
    if not (isinstance(value, list) and len(value) == 4 and all(number(v) for v in value)):
        raise _Bad(f"{where}must hold 4 numbers")
    return tuple(value)


def _detection(data: Any, where: str) -> Detection:
    d = _mapping(data, where)
    box = _box(_get(d, "box", "list", where), _is_number, f"{where}box ")
    box_px = _box(_get(d, "box_px", "list", where), _is_int, f"{where}box_px ")
    return Detection(_get(d, "label", "str", where), tuple(map(float, box)), box_px)  # type: ignore[arg-type]


_STATS_CHECKS = {"int": "int", "float": "float", "str": "str", "tuple[int, ...]": "ints"}


def _stats(data: Any, where: str) -> GenerationStats | None:
    if data is None:
        return None
    d = _mapping(data, where)
    values = {
        f.name: _get(d, f.name, _STATS_CHECKS[str(f.type)], where)
        for f in dataclasses.fields(GenerationStats)
    }
    values["token_ids"] = tuple(values["token_ids"])
    return GenerationStats(**values)


def _turn(data: Any, where: str) -> Turn:
    d = _mapping(data, where)
    role = _get(d, "role", "str", where)
    kind = _get(d, "kind", "str", where, "chat")
    for name, value, allowed in (("role", role, ROLES), ("kind", kind, KINDS)):
        if value not in allowed:
            raise _Bad(f"{where}{name} must be one of {', '.join(allowed)}, got {value!r}")
    detections = _get(d, "detections", "list", where, [])
    try:
        return Turn(
            role=role,
            text=_get(d, "text", "str", where),
            image_ids=tuple(_get(d, "image_ids", "strs", where, [])),
            kind=kind,
            detections=tuple(
                _detection(x, f"{where}detection {n} ") for n, x in enumerate(detections, 1)
            ),
            dropped=tuple(_get(d, "dropped", "strs", where, [])),
            interrupted=_get(d, "interrupted", "bool", where, False),
            stats=_stats(d.get("stats"), f"{where}stats "),
        )
    except InputError as exc:
        raise _Bad(f"{where}{exc}") from None


def _conversation_from_json(data: Any) -> Conversation:
    d = _mapping(data, "")
    conv_id = _get(d, "id", "str", "")
    if not is_conversation_id(conv_id):
        raise _Bad(f"id {conv_id[:70]!r} is not a valid conversation id")
    turns = _get(d, "turns", "list", "", [])
    return Conversation(
        id=conv_id,
        title=_get(d, "title", "str", "", DEFAULT_TITLE),
        created=float(_get(d, "created", "float", "", 0.0)),
        updated=float(_get(d, "updated", "float", "", 0.0)),
        turns=tuple(_turn(t, f"turn {n}: ") for n, t in enumerate(turns, 1)),
        schema_version=_get(d, "schema_version", "int", "", CONVERSATION_SCHEMA),
    )
