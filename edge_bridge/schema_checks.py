"""The field checks of the edge bridge's JSON payloads (:mod:`edge_bridge.schema`): the
setpoint tags and their wire types, the size limits of strings and counters, and one function
per kind of field. Each check returns the value as the message keeps it, or raises
:class:`SchemaError` naming the message kind and the field, saying what was wrong and how to fix
it. The message classes import this module as ``checks``; callers outside use the names
re-exported by :mod:`edge_bridge.schema` (``SchemaError``, ``SETPOINT_TAGS``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from edge_bridge.topics import NAME_PATTERN

__all__ = [
    "HEX32",
    "SEQ_LIMIT",
    "SETPOINT_TAGS",
    "STRING_LIMIT",
    "TEXT_LIMIT",
    "SchemaError",
    "choice",
    "fail",
    "integer",
    "mapping",
    "number",
    "seconds",
    "setpoints",
    "text",
    "topic_name",
]

SETPOINT_TAGS: dict[str, type] = {"speed_factor": float, "standby": bool, "maintenance": bool}
"""The one list of setpoint tags, in order, with each tag's wire type (bounds are the envelope's
business, :mod:`edge_bridge.envelope`); import it as ``edge_bridge.schema.SETPOINT_TAGS``."""

STRING_LIMIT = 256
"""Longest name-like string field (characters): ids, keys, versions, stages."""
TEXT_LIMIT = 1024
"""Longest free-text field (characters): reasons."""
HEX32 = re.compile(r"[0-9a-f]{32}")
"""A command id: uuid4 as 32 lowercase hex digits."""
SEQ_LIMIT = 2**63
"""Counters (seq, bd_seq, decision_index) are below this."""


class SchemaError(ValueError):
    """A payload of message ``kind`` that breaks its schema; ``reason`` says what and how to
    fix it, ``code`` is a short category for counters (json, schema, missing, unknown_field,
    type, not_finite, too_large, name, value, topic)."""

    def __init__(self, kind: str, reason: str, code: str = "value") -> None:
        super().__init__(f"invalid {kind} message: {reason}")
        self.kind = kind
        self.reason = reason
        self.code = code


def fail(kind: str, reason: str, code: str = "value") -> SchemaError:
    """The error to raise for message ``kind``: ``reason`` says what and how to fix it."""
    return SchemaError(kind, reason, code)


def number(kind: str, name: str, value: object, *, nullable: bool = False) -> float | None:
    """A finite number (not a bool) as float; ``None`` passes when ``nullable`` (a dropped
    value)."""
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(kind, f"{name} = {value!r} must be a number", "type")
    if not math.isfinite(value):
        hint = "send null for a dropped value" if nullable else "send a finite number"
        raise fail(kind, f"{name} = {value!r} is not finite; {hint}", "not_finite")
    return float(value)


def seconds(kind: str, name: str, value: object) -> float:
    """A time in seconds (unix wall-clock or plant time): a finite number >= 0."""
    checked = number(kind, name, value)
    assert checked is not None
    if checked < 0:
        raise fail(kind, f"{name} = {checked} is negative; times are seconds >= 0")
    return checked


def integer(kind: str, name: str, value: object, low: int = 0, high: int = SEQ_LIMIT) -> int:
    """An integer (not a bool) in ``[low, high)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(kind, f"{name} = {value!r} must be an integer", "type")
    if not low <= value < high:
        raise fail(kind, f"{name} = {value} is outside [{low}, {high})")
    return value


def text(
    kind: str, name: str, value: object, limit: int = STRING_LIMIT, empty: bool = False
) -> str:
    """A string of 1 to ``limit`` characters (0 allowed when ``empty``)."""
    if not isinstance(value, str):
        raise fail(kind, f"{name} = {value!r} must be a string", "type")
    if (not value and not empty) or len(value) > limit:
        raise fail(kind, f"{name} must be a non-empty string of at most {limit} characters")
    return value


def topic_name(kind: str, what: str, value: object) -> str:
    """A machine or node name as the topic layout allows it
    (:data:`edge_bridge.topics.NAME_PATTERN`)."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise fail(
            kind,
            f"{what} {value!r} is not a valid name: use 1-64 letters, digits, '_' or '-' "
            "starting with a letter or digit, e.g. 'machining-1'",
            "name",
        )
    return value


def choice(kind: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise fail(kind, f"{name} = {value!r} is not one of {list(choices)}")
    return str(value)


def mapping(kind: str, name: str, value: object) -> Mapping[str, Any]:
    """A JSON object."""
    if not isinstance(value, Mapping):
        raise fail(kind, f"{name} must be a JSON object, got {value!r}", "type")
    return value


def setpoints(kind: str, name: str, value: object, required: tuple[str, ...]) -> dict[str, Any]:
    """Setpoint tags of :data:`SETPOINT_TAGS` with their wire types (bools true/false, numbers
    finite); every tag of ``required`` present, no unknown tag."""
    tags = mapping(kind, name, value)
    unknown = sorted(set(tags) - set(SETPOINT_TAGS))
    if unknown:
        raise fail(
            kind,
            f"{name} has unknown tags {unknown}; the tags are {list(SETPOINT_TAGS)}",
            "unknown_field",
        )
    missing = [tag for tag in required if tag not in tags]
    if missing:
        raise fail(kind, f"{name} lacks tags {missing}", "missing")
    checked: dict[str, Any] = {}
    for tag, raw in tags.items():
        if SETPOINT_TAGS[tag] is bool:
            if not isinstance(raw, bool):
                raise fail(kind, f"{name}.{tag} = {raw!r} must be true or false", "type")
            checked[tag] = raw
        else:
            checked[tag] = number(kind, f"{name}.{tag}", raw)
    return checked
