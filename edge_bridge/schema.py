"""The JSON payloads of the edge bridge's MQTT messages: one frozen dataclass per message kind,
``to_payload() -> bytes`` and ``from_payload(bytes)`` that validates everything, and
``decode(topic, payload)`` that picks the class from the topic.

Every payload is a UTF-8 JSON object with ``"schema": "twinfactory.<kind>/<version>"`` and at
most ``MAX_PAYLOAD_BYTES``. Numbers are finite; a dropped signal is ``null`` (NaN is not JSON;
``Telemetry`` turns a NaN it is given into ``None``). Unknown fields are rejected, so a typo in
a sender is found at once instead of being silently ignored. Any violation raises
``SchemaError(kind, reason)``; the message says what was wrong and how to fix it. Times: ``*_at``
are unix wall-clock seconds, ``time_s`` is plant time in seconds. Field lists and examples are
in ``edge_bridge/PROTOCOL.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from edge_bridge.topics import NAME_PATTERN, TopicError, parse_topic
from envs.kpi import IntervalRecord

__all__ = [
    "ACK_STATUSES",
    "MAX_PAYLOAD_BYTES",
    "MESSAGE_TYPES",
    "OPERATOR_ACTIONS",
    "SETPOINT_TAGS",
    "SIGNALS",
    "Ack",
    "BridgeState",
    "BridgeStatus",
    "Command",
    "LineKpi",
    "Message",
    "NodeBirth",
    "NodeDeath",
    "OperatorCommand",
    "SchemaError",
    "Telemetry",
    "decode",
    "new_command_id",
]

MAX_PAYLOAD_BYTES = 16 * 1024
"""Largest payload accepted (bytes); the broker enforces it too (``message_size_limit``)."""

SIGNALS: dict[str, bool] = {
    "temperature": True,
    "wear": True,
    "power": True,
    "vibration": False,
}
"""Measured telemetry signals → required (vibration: mills only). Values: finite or null."""

SETPOINT_TAGS: dict[str, type] = {"speed_factor": float, "standby": bool, "maintenance": bool}
"""The wire type of each setpoint tag (bounds are the envelope's business, edge_bridge.envelope)."""

ACK_STATUSES = ("applied", "duplicate", "expired", "rejected")
OPERATOR_ACTIONS = ("approve", "reject", "rollback", "local_control", "resume")
_STRING_LIMIT = 256
_TEXT_LIMIT = 1024
_HEX32 = re.compile(r"[0-9a-f]{32}")
_SEQ_LIMIT = 2**63


class SchemaError(ValueError):
    """A payload of message ``kind`` that breaks its schema; ``reason`` says what and how to
    fix it, ``code`` is a short category for counters (json, schema, missing, unknown_field,
    type, not_finite, too_large, name, value, topic)."""

    def __init__(self, kind: str, reason: str, code: str = "value") -> None:
        super().__init__(f"invalid {kind} message: {reason}")
        self.kind = kind
        self.reason = reason
        self.code = code


def new_command_id() -> str:
    """A fresh command id: a uuid4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


# --- checks shared by the messages (each raises SchemaError naming the field) ---------------


def _fail(kind: str, reason: str, code: str = "value") -> SchemaError:
    return SchemaError(kind, reason, code)


def _number(kind: str, name: str, value: object, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(kind, f"{name} = {value!r} must be a number", "type")
    if not math.isfinite(value):
        hint = "send null for a dropped value" if nullable else "send a finite number"
        raise _fail(kind, f"{name} = {value!r} is not finite; {hint}", "not_finite")
    return float(value)


def _time(kind: str, name: str, value: object) -> float:
    number = _number(kind, name, value)
    assert number is not None
    if number < 0:
        raise _fail(kind, f"{name} = {number} is negative; times are seconds >= 0")
    return number


def _integer(kind: str, name: str, value: object, low: int = 0, high: int = _SEQ_LIMIT) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(kind, f"{name} = {value!r} must be an integer", "type")
    if not low <= value < high:
        raise _fail(kind, f"{name} = {value} is outside [{low}, {high})")
    return value


def _text(
    kind: str, name: str, value: object, limit: int = _STRING_LIMIT, empty: bool = False
) -> str:
    if not isinstance(value, str):
        raise _fail(kind, f"{name} = {value!r} must be a string", "type")
    if (not value and not empty) or len(value) > limit:
        raise _fail(kind, f"{name} must be a non-empty string of at most {limit} characters")
    return value


def _name(kind: str, what: str, value: object) -> str:
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise _fail(
            kind,
            f"{what} {value!r} is not a valid name: use 1-64 letters, digits, '_' or '-' "
            "starting with a letter or digit, e.g. 'machining-1'",
            "name",
        )
    return value


def _choice(kind: str, name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _fail(kind, f"{name} = {value!r} is not one of {list(choices)}")
    return str(value)


def _mapping(kind: str, name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(kind, f"{name} must be a JSON object, got {value!r}", "type")
    return value


def _setpoints(kind: str, name: str, value: object, required: tuple[str, ...]) -> dict[str, Any]:
    tags = _mapping(kind, name, value)
    unknown = sorted(set(tags) - set(SETPOINT_TAGS))
    if unknown:
        raise _fail(
            kind,
            f"{name} has unknown tags {unknown}; the tags are {list(SETPOINT_TAGS)}",
            "unknown_field",
        )
    missing = [tag for tag in required if tag not in tags]
    if missing:
        raise _fail(kind, f"{name} lacks tags {missing}", "missing")
    checked: dict[str, Any] = {}
    for tag, raw in tags.items():
        if SETPOINT_TAGS[tag] is bool:
            if not isinstance(raw, bool):
                raise _fail(kind, f"{name}.{tag} = {raw!r} must be true or false", "type")
            checked[tag] = raw
        else:
            checked[tag] = _number(kind, f"{name}.{tag}", raw)
    return checked


# --- the messages --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Message:
    """Shared encode/decode; subclasses set KIND, VERSION and validate in ``_check``."""

    KIND: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1

    @classmethod
    def schema_name(cls) -> str:
        """The ``schema`` field's value, e.g. ``twinfactory.telemetry/1``."""
        return f"twinfactory.{cls.KIND}/{cls.VERSION}"

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        raise NotImplementedError

    def _set(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    def to_fields(self) -> dict[str, Any]:
        """The payload as a JSON-ready dict (with ``schema``)."""
        body = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        return {"schema": self.schema_name(), **body}

    def to_payload(self) -> bytes:
        """Compact UTF-8 JSON; SchemaError if it would exceed MAX_PAYLOAD_BYTES."""
        data = json.dumps(self.to_fields(), allow_nan=False, separators=(",", ":")).encode()
        if len(data) > MAX_PAYLOAD_BYTES:
            raise _fail(
                self.KIND,
                f"payload is {len(data)} bytes, over the limit of "
                f"{MAX_PAYLOAD_BYTES}; send fewer items per message",
                "too_large",
            )
        return data

    @classmethod
    def from_payload(cls, payload: bytes) -> Self:
        """Parse and validate ``payload``; SchemaError saying what is wrong."""
        kind = cls.KIND
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise _fail(
                kind,
                f"payload is {len(payload)} bytes, over the limit of {MAX_PAYLOAD_BYTES}",
                "too_large",
            )
        try:
            data = json.loads(payload, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise _fail(
                kind, f"payload is not UTF-8 JSON ({error}); send a JSON object", "json"
            ) from None
        except ValueError as error:
            raise _fail(
                kind, f"{error}; send finite numbers (null for a dropped signal)", "not_finite"
            ) from None
        if not isinstance(data, dict):
            raise _fail(kind, f"payload must be a JSON object, got {type(data).__name__}", "json")
        schema = data.pop("schema", None)
        if schema != cls.schema_name():
            raise _fail(
                kind,
                f"schema = {schema!r}, expected {cls.schema_name()!r} (the "
                "sender speaks another kind or version of the protocol)",
                "schema",
            )
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise _fail(
                kind, f"unknown fields {unknown}; the fields are {sorted(names)}", "unknown_field"
            )
        missing = sorted(
            name
            for name, f in names.items()
            if name not in data
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        )
        if missing:
            raise _fail(kind, f"missing fields {missing}", "missing")
        return cls(**cls._convert(data))

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        """Turn JSON values into field values (lists into tuples) before ``_check``."""
        return data


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _plain(value: object) -> object:
    if isinstance(value, IntervalRecord):
        return dataclasses.asdict(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


@dataclass(frozen=True)
class Telemetry(_Message):
    """One sample of one machine: ``time_s`` plant time (s), ``sent_at`` unix s, ``seq`` the
    sample counter of this machine's stream (0 after each birth, 64-bit, never wraps),
    ``signals`` {temperature °C, wear (0–1), power kW, vibration mm/s (mills), state
    (MachineState code, int)}, None = dropped, ``setpoints`` in force {speed_factor, standby}."""

    KIND: ClassVar[str] = "telemetry"
    machine: str
    seq: int
    time_s: float
    sent_at: float
    signals: Mapping[str, float | int | None]
    setpoints: Mapping[str, float | bool]

    def _check(self) -> None:
        kind = self.KIND
        _name(kind, "machine", self.machine)
        _integer(kind, "seq", self.seq)
        self._set("time_s", _time(kind, "time_s", self.time_s))
        self._set("sent_at", _time(kind, "sent_at", self.sent_at))
        raw = dict(_mapping(kind, "signals", self.signals))
        unknown = sorted(set(raw) - set(SIGNALS) - {"state"})
        if unknown:
            raise _fail(
                kind,
                f"signals has unknown names {unknown}; the signals are {[*SIGNALS, 'state']}",
                "unknown_field",
            )
        missing = [n for n, need in (*SIGNALS.items(), ("state", True)) if need and n not in raw]
        if missing:
            raise _fail(kind, f"signals lacks {missing} (send null for a dropped value)", "missing")
        signals: dict[str, float | int | None] = {}
        for name, value in raw.items():
            if name == "state":
                state = value
                if isinstance(state, float) and state.is_integer():
                    state = int(state)  # plant samples carry the code as a float
                signals[name] = _integer(kind, "signals.state", state, 0, 256)
            else:
                if isinstance(value, float) and math.isnan(value):
                    value = None  # a dropped sample
                signals[name] = _number(kind, f"signals.{name}", value, nullable=True)
        self._set("signals", signals)
        self._set(
            "setpoints", _setpoints(kind, "setpoints", self.setpoints, ("speed_factor", "standby"))
        )


@dataclass(frozen=True)
class Command(_Message):
    """Setpoints for one machine: ``command_id`` (uuid4 hex), ``idempotency_key`` (same key =
    same decision: applied at most once), ``decision_index`` (the decision interval whose data
    produced it: the setpoints hold for the interval after it), ``policy_version``, gate
    ``stage``, ``issued_at`` / ``expires_at`` unix s (never apply after ``expires_at``),
    ``setpoints`` {speed_factor, standby, maintenance}."""

    KIND: ClassVar[str] = "command"
    command_id: str
    idempotency_key: str
    decision_index: int
    machine: str
    policy_version: str
    stage: str
    issued_at: float
    expires_at: float
    setpoints: Mapping[str, float | bool]

    def _check(self) -> None:
        kind = self.KIND
        if not isinstance(self.command_id, str) or not _HEX32.fullmatch(self.command_id):
            raise _fail(
                kind,
                f"command_id {self.command_id!r} must be 32 lowercase hex "
                "digits (uuid4().hex; edge_bridge.schema.new_command_id)",
            )
        _text(kind, "idempotency_key", self.idempotency_key)
        _integer(kind, "decision_index", self.decision_index)
        _name(kind, "machine", self.machine)
        _text(kind, "policy_version", self.policy_version)
        _text(kind, "stage", self.stage)
        self._set("issued_at", _time(kind, "issued_at", self.issued_at))
        self._set("expires_at", _time(kind, "expires_at", self.expires_at))
        if self.expires_at <= self.issued_at:
            raise _fail(
                kind,
                f"expires_at {self.expires_at} is not after issued_at "
                f"{self.issued_at}; give the command a positive lifetime",
            )
        self._set("setpoints", _setpoints(kind, "setpoints", self.setpoints, tuple(SETPOINT_TAGS)))

    def expired(self, now: float) -> bool:
        """Whether the command must no longer be applied at unix time ``now``."""
        return now >= self.expires_at

    def remaining_s(self, now: float) -> int:
        """Whole seconds of life left at ``now`` (≥ 1 while not expired, 0 once expired): the
        MQTT 5 message expiry interval to publish it with."""
        left = self.expires_at - now
        return 0 if left <= 0 else max(1, math.ceil(left))


@dataclass(frozen=True)
class Ack(_Message):
    """The equipment's answer to a command: ``status`` applied | duplicate (key seen before;
    not applied again) | expired (not applied) | rejected (not applied, ``reason`` says why),
    ``readback`` the tags read back after the write (may be empty), ``acked_at`` unix s."""

    KIND: ClassVar[str] = "ack"
    command_id: str
    idempotency_key: str
    machine: str
    status: str
    acked_at: float
    readback: Mapping[str, float | bool] = field(default_factory=dict)
    reason: str = ""

    def _check(self) -> None:
        kind = self.KIND
        if not isinstance(self.command_id, str) or not _HEX32.fullmatch(self.command_id):
            raise _fail(kind, f"command_id {self.command_id!r} must be the command's 32 hex digits")
        _text(kind, "idempotency_key", self.idempotency_key)
        _name(kind, "machine", self.machine)
        _choice(kind, "status", self.status, ACK_STATUSES)
        self._set("acked_at", _time(kind, "acked_at", self.acked_at))
        self._set("readback", _setpoints(kind, "readback", self.readback, ()))
        _text(kind, "reason", self.reason, _TEXT_LIMIT, empty=True)


@dataclass(frozen=True)
class NodeBirth(_Message):
    """A node (equipment gateway) came online: its ``machines``, the units of the signals it
    sends and the types of the setpoint tags it accepts; ``bd_seq`` pairs it with its death."""

    KIND: ClassVar[str] = "birth"
    node: str
    bd_seq: int
    machines: tuple[str, ...]
    sent_at: float
    signals: Mapping[str, str] = field(default_factory=dict)
    setpoints: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("machines"), list):
            data["machines"] = tuple(data["machines"])
        return data

    def _check(self) -> None:
        kind = self.KIND
        _name(kind, "node", self.node)
        _integer(kind, "bd_seq", self.bd_seq)
        if not isinstance(self.machines, tuple | list) or not self.machines:
            raise _fail(kind, "machines must be a non-empty list of machine names", "type")
        self._set("machines", tuple(_name(kind, "machine", m) for m in self.machines))
        if len(set(self.machines)) != len(self.machines):
            raise _fail(kind, f"machines repeat: {list(self.machines)}")
        self._set("sent_at", _time(kind, "sent_at", self.sent_at))
        for name in ("signals", "setpoints"):
            table = dict(_mapping(kind, name, getattr(self, name)))
            for key, value in table.items():
                _text(kind, f"{name} key", key)
                _text(kind, f"{name}.{key}", value, empty=True)
            self._set(name, table)


@dataclass(frozen=True)
class NodeDeath(_Message):
    """A node went away (its last will, so no time: the will is written at connect)."""

    KIND: ClassVar[str] = "death"
    node: str
    bd_seq: int

    def _check(self) -> None:
        _name(self.KIND, "node", self.node)
        _integer(self.KIND, "bd_seq", self.bd_seq)


@dataclass(frozen=True)
class LineKpi(_Message):
    """The line's measured ``record`` (envs.kpi.IntervalRecord) of the decision interval that
    ended at plant time ``time_s``."""

    KIND: ClassVar[str] = "kpi"
    time_s: float
    record: IntervalRecord

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        raw = _mapping(cls.KIND, "record", data["record"])
        types = {f.name: f.type for f in dataclasses.fields(IntervalRecord)}
        unknown = sorted(set(raw) - set(types))
        if unknown:
            raise _fail(
                cls.KIND,
                f"record has unknown fields {unknown}; the fields are {sorted(types)}",
                "unknown_field",
            )
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if types[name] in (int, "int"):
                values[name] = _integer(cls.KIND, f"record.{name}", value)
            else:
                values[name] = _number(cls.KIND, f"record.{name}", value)
        try:
            data["record"] = IntervalRecord(**values)
        except (TypeError, ValueError) as error:
            raise _fail(cls.KIND, f"record: {error}") from None
        return data

    def _check(self) -> None:
        self._set("time_s", _time(self.KIND, "time_s", self.time_s))
        if not isinstance(self.record, IntervalRecord):
            raise _fail(self.KIND, "record must be an envs.kpi.IntervalRecord", "type")


@dataclass(frozen=True)
class BridgeState(_Message):
    """The bridge's Sparkplug-STATE-like presence: ``online`` since unix time ``since``."""

    KIND: ClassVar[str] = "state"
    online: bool
    since: float

    def _check(self) -> None:
        if not isinstance(self.online, bool):
            raise _fail(self.KIND, f"online = {self.online!r} must be true or false", "type")
        self._set("since", _time(self.KIND, "since", self.since))


@dataclass(frozen=True)
class BridgeStatus(_Message):
    """The rollout as the bridge sees it: gate ``stage``, the candidate ``policy_version``,
    the canary ``cohort``, ``trust`` per machine (0–1, None = unknown), ``modes`` per machine
    (e.g. candidate | incumbent | fallback | local), ``updated_at`` unix s."""

    KIND: ClassVar[str] = "status"
    stage: str
    policy_version: str
    updated_at: float
    cohort: tuple[str, ...] = ()
    trust: Mapping[str, float | None] = field(default_factory=dict)
    modes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("cohort"), list):
            data["cohort"] = tuple(data["cohort"])
        return data

    def _check(self) -> None:
        kind = self.KIND
        _text(kind, "stage", self.stage)
        _text(kind, "policy_version", self.policy_version)
        self._set("updated_at", _time(kind, "updated_at", self.updated_at))
        if not isinstance(self.cohort, tuple | list):
            raise _fail(kind, "cohort must be a list of machine names", "type")
        self._set("cohort", tuple(_name(kind, "cohort machine", m) for m in self.cohort))
        trust: dict[str, float | None] = {}
        for machine, value in _mapping(kind, "trust", self.trust).items():
            number = _number(kind, f"trust.{_name(kind, 'machine', machine)}", value, nullable=True)
            if number is not None and not 0.0 <= number <= 1.0:
                raise _fail(kind, f"trust.{machine} = {number} is outside [0, 1]")
            trust[machine] = number
        self._set("trust", trust)
        modes = {
            _name(kind, "machine", m): _text(kind, f"modes.{m}", v)
            for m, v in _mapping(kind, "modes", self.modes).items()
        }
        self._set("modes", modes)


@dataclass(frozen=True)
class OperatorCommand(_Message):
    """An operator's ``action`` (approve | reject | rollback | local_control | resume) with a
    unique ``request_id``, the ``operator``'s name, an optional ``machine`` (local_control and
    resume may name one; None = all) and a free-text ``reason``; ``issued_at`` unix s."""

    KIND: ClassVar[str] = "operator"
    action: str
    operator: str
    request_id: str
    issued_at: float
    machine: str | None = None
    reason: str = ""

    def _check(self) -> None:
        kind = self.KIND
        _choice(kind, "action", self.action, OPERATOR_ACTIONS)
        _text(kind, "operator", self.operator)
        _text(kind, "request_id", self.request_id)
        self._set("issued_at", _time(kind, "issued_at", self.issued_at))
        if self.machine is not None:
            _name(kind, "machine", self.machine)
        _text(kind, "reason", self.reason, _TEXT_LIMIT, empty=True)


Message = (
    Telemetry
    | Command
    | Ack
    | NodeBirth
    | NodeDeath
    | LineKpi
    | BridgeState
    | BridgeStatus
    | OperatorCommand
)

MESSAGE_TYPES: dict[str, type[_Message]] = {
    cls.KIND: cls
    for cls in (
        Telemetry,
        Command,
        Ack,
        NodeBirth,
        NodeDeath,
        LineKpi,
        BridgeState,
        BridgeStatus,
        OperatorCommand,
    )
}
"""Message kind (edge_bridge.topics.KINDS) → its class."""


def decode(topic: str, payload: bytes) -> Message:
    """The validated message ``payload`` received on ``topic``: the class comes from the topic,
    and a machine/node named in the payload must be the one in the topic. SchemaError
    (code ``topic`` for a topic outside the layout or a name mismatch) otherwise."""
    try:
        kind, _site, name = parse_topic(topic)
    except TopicError as error:
        raise SchemaError("unknown", str(error), "topic") from None
    message = MESSAGE_TYPES[kind].from_payload(payload)
    named = (
        getattr(message, "machine", None)
        if kind in ("telemetry", "command", "ack")
        else (getattr(message, "node", None) if kind in ("birth", "death") else name)
    )
    if named != name:
        raise SchemaError(
            kind,
            f"payload names {named!r} but the topic is for {name!r}; "
            "publish on the topic of the machine/node the payload is about",
            "topic",
        )
    return message  # type: ignore[return-value]
