"""The JSON payloads of the edge bridge's MQTT messages: one frozen dataclass per message kind,
``to_payload() -> bytes`` and ``from_payload(bytes)`` that validates everything, and
``decode(topic, payload)`` that picks the class from the topic.

Every payload is a UTF-8 JSON object with ``"schema": "twinfactory.<kind>/<version>"`` and at
most ``MAX_PAYLOAD_BYTES``. Numbers are finite; a dropped signal is ``null`` (NaN is not JSON;
``Telemetry`` turns a NaN it is given into ``None``). Unknown fields are rejected, so a typo in
a sender is found at once instead of being silently ignored. Any violation raises
``SchemaError(kind, reason)``; the message says what was wrong and how to fix it. Times: ``*_at``
are unix wall-clock seconds, ``time_s`` is plant time in seconds. Field lists and examples are
in ``edge_bridge/PROTOCOL.md``. The field checks live in :mod:`edge_bridge.schema_checks`;
``SchemaError`` and ``SETPOINT_TAGS`` (the one list of setpoint tags) are re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from edge_bridge import schema_checks as checks
from edge_bridge.schema_checks import SETPOINT_TAGS, SchemaError
from edge_bridge.topics import TopicError, parse_topic
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
    "TwinReport",
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

ACK_STATUSES = ("applied", "duplicate", "expired", "rejected")
OPERATOR_ACTIONS = ("approve", "reject", "rollback", "local_control", "resume")


def new_command_id() -> str:
    """A fresh command id: a uuid4 as 32 lowercase hex digits."""
    return uuid.uuid4().hex


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
        """Validate and normalise the fields; every message kind defines its own (this base
        class is never instantiated, so reaching it is a programming error)."""
        raise NotImplementedError(f"{type(self).__name__} must define _check")

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
            raise checks.fail(
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
            raise checks.fail(
                kind,
                f"payload is {len(payload)} bytes, over the limit of {MAX_PAYLOAD_BYTES}",
                "too_large",
            )
        try:
            data = json.loads(payload, parse_constant=_no_constant)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise checks.fail(
                kind, f"payload is not UTF-8 JSON ({error}); send a JSON object", "json"
            ) from None
        except ValueError as error:
            raise checks.fail(
                kind, f"{error}; send finite numbers (null for a dropped signal)", "not_finite"
            ) from None
        if not isinstance(data, dict):
            raise checks.fail(
                kind, f"payload must be a JSON object, got {type(data).__name__}", "json"
            )
        schema = data.pop("schema", None)
        if schema != cls.schema_name():
            raise checks.fail(
                kind,
                f"schema = {schema!r}, expected {cls.schema_name()!r} (the "
                "sender speaks another kind or version of the protocol)",
                "schema",
            )
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise checks.fail(
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
            raise checks.fail(kind, f"missing fields {missing}", "missing")
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
        checks.topic_name(kind, "machine", self.machine)
        checks.integer(kind, "seq", self.seq)
        self._set("time_s", checks.seconds(kind, "time_s", self.time_s))
        self._set("sent_at", checks.seconds(kind, "sent_at", self.sent_at))
        raw = dict(checks.mapping(kind, "signals", self.signals))
        unknown = sorted(set(raw) - set(SIGNALS) - {"state"})
        if unknown:
            raise checks.fail(
                kind,
                f"signals has unknown names {unknown}; the signals are {[*SIGNALS, 'state']}",
                "unknown_field",
            )
        missing = [n for n, need in (*SIGNALS.items(), ("state", True)) if need and n not in raw]
        if missing:
            raise checks.fail(
                kind, f"signals lacks {missing} (send null for a dropped value)", "missing"
            )
        signals: dict[str, float | int | None] = {}
        for name, value in raw.items():
            if name == "state":
                state = value
                if isinstance(state, float) and state.is_integer():
                    state = int(state)  # plant samples carry the code as a float
                signals[name] = checks.integer(kind, "signals.state", state, 0, 256)
            else:
                if isinstance(value, float) and math.isnan(value):
                    value = None  # a dropped sample
                signals[name] = checks.number(kind, f"signals.{name}", value, nullable=True)
        self._set("signals", signals)
        self._set(
            "setpoints",
            checks.setpoints(kind, "setpoints", self.setpoints, ("speed_factor", "standby")),
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
        if not isinstance(self.command_id, str) or not checks.HEX32.fullmatch(self.command_id):
            raise checks.fail(
                kind,
                f"command_id {self.command_id!r} must be 32 lowercase hex "
                "digits (uuid4().hex; edge_bridge.schema.new_command_id)",
            )
        checks.text(kind, "idempotency_key", self.idempotency_key)
        checks.integer(kind, "decision_index", self.decision_index)
        checks.topic_name(kind, "machine", self.machine)
        checks.text(kind, "policy_version", self.policy_version)
        checks.text(kind, "stage", self.stage)
        self._set("issued_at", checks.seconds(kind, "issued_at", self.issued_at))
        self._set("expires_at", checks.seconds(kind, "expires_at", self.expires_at))
        if self.expires_at <= self.issued_at:
            raise checks.fail(
                kind,
                f"expires_at {self.expires_at} is not after issued_at "
                f"{self.issued_at}; give the command a positive lifetime",
            )
        self._set(
            "setpoints", checks.setpoints(kind, "setpoints", self.setpoints, tuple(SETPOINT_TAGS))
        )

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
        if not isinstance(self.command_id, str) or not checks.HEX32.fullmatch(self.command_id):
            raise checks.fail(
                kind, f"command_id {self.command_id!r} must be the command's 32 hex digits"
            )
        checks.text(kind, "idempotency_key", self.idempotency_key)
        checks.topic_name(kind, "machine", self.machine)
        checks.choice(kind, "status", self.status, ACK_STATUSES)
        self._set("acked_at", checks.seconds(kind, "acked_at", self.acked_at))
        self._set("readback", checks.setpoints(kind, "readback", self.readback, ()))
        checks.text(kind, "reason", self.reason, checks.TEXT_LIMIT, empty=True)


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
        checks.topic_name(kind, "node", self.node)
        checks.integer(kind, "bd_seq", self.bd_seq)
        if not isinstance(self.machines, tuple | list) or not self.machines:
            raise checks.fail(kind, "machines must be a non-empty list of machine names", "type")
        self._set("machines", tuple(checks.topic_name(kind, "machine", m) for m in self.machines))
        if len(set(self.machines)) != len(self.machines):
            raise checks.fail(kind, f"machines repeat: {list(self.machines)}")
        self._set("sent_at", checks.seconds(kind, "sent_at", self.sent_at))
        for name in ("signals", "setpoints"):
            table = dict(checks.mapping(kind, name, getattr(self, name)))
            for key, value in table.items():
                checks.text(kind, f"{name} key", key)
                checks.text(kind, f"{name}.{key}", value, empty=True)
            self._set(name, table)


@dataclass(frozen=True)
class NodeDeath(_Message):
    """A node went away (its last will, so no time: the will is written at connect)."""

    KIND: ClassVar[str] = "death"
    node: str
    bd_seq: int

    def _check(self) -> None:
        checks.topic_name(self.KIND, "node", self.node)
        checks.integer(self.KIND, "bd_seq", self.bd_seq)


@dataclass(frozen=True)
class LineKpi(_Message):
    """The line's measured ``record`` (envs.kpi.IntervalRecord) of the decision interval that
    ended at plant time ``time_s``."""

    KIND: ClassVar[str] = "kpi"
    time_s: float
    record: IntervalRecord

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        raw = checks.mapping(cls.KIND, "record", data["record"])
        types = {f.name: f.type for f in dataclasses.fields(IntervalRecord)}
        unknown = sorted(set(raw) - set(types))
        if unknown:
            raise checks.fail(
                cls.KIND,
                f"record has unknown fields {unknown}; the fields are {sorted(types)}",
                "unknown_field",
            )
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if types[name] in (int, "int"):
                values[name] = checks.integer(cls.KIND, f"record.{name}", value)
            else:
                values[name] = checks.number(cls.KIND, f"record.{name}", value)
        try:
            data["record"] = IntervalRecord(**values)
        except (TypeError, ValueError) as error:
            raise checks.fail(cls.KIND, f"record: {error}") from None
        return data

    def _check(self) -> None:
        self._set("time_s", checks.seconds(self.KIND, "time_s", self.time_s))
        if not isinstance(self.record, IntervalRecord):
            raise checks.fail(self.KIND, "record must be an envs.kpi.IntervalRecord", "type")


@dataclass(frozen=True)
class BridgeState(_Message):
    """The bridge's Sparkplug-STATE-like presence: ``online`` since unix time ``since``."""

    KIND: ClassVar[str] = "state"
    online: bool
    since: float

    def _check(self) -> None:
        if not isinstance(self.online, bool):
            raise checks.fail(self.KIND, f"online = {self.online!r} must be true or false", "type")
        self._set("since", checks.seconds(self.KIND, "since", self.since))


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
        checks.text(kind, "stage", self.stage)
        checks.text(kind, "policy_version", self.policy_version)
        self._set("updated_at", checks.seconds(kind, "updated_at", self.updated_at))
        if not isinstance(self.cohort, tuple | list):
            raise checks.fail(kind, "cohort must be a list of machine names", "type")
        self._set(
            "cohort", tuple(checks.topic_name(kind, "cohort machine", m) for m in self.cohort)
        )
        trust: dict[str, float | None] = {}
        for machine, value in checks.mapping(kind, "trust", self.trust).items():
            number = checks.number(
                kind, f"trust.{checks.topic_name(kind, 'machine', machine)}", value, nullable=True
            )
            if number is not None and not 0.0 <= number <= 1.0:
                raise checks.fail(kind, f"trust.{machine} = {number} is outside [0, 1]")
            trust[machine] = number
        self._set("trust", trust)
        modes = {
            checks.topic_name(kind, "machine", m): checks.text(kind, f"modes.{m}", v)
            for m, v in checks.mapping(kind, "modes", self.modes).items()
        }
        self._set("modes", modes)


@dataclass(frozen=True)
class TwinReport(_Message):
    """The bridge's account of one decision interval for one ``machine`` (for consoles):
    ``measured`` and ``predicted`` (the twin's one-sample-ahead prediction) at the interval's
    last sample {temperature °C, wear (0–1), power kW; None = not measured}, ``trust`` (0–1,
    None during the warm-up), ``drift`` (flagged signals), the gate's ``stage`` and this
    machine's ``assignment``, the ``incumbent`` / ``candidate`` proposals and what was
    ``applied`` ({} = nothing sent), the envelope's speed ``limits`` {low, high, max_step}
    and the ``reason``; ``time_s`` plant time, ``decision_index``."""

    KIND: ClassVar[str] = "twin"
    machine: str
    decision_index: int
    time_s: float
    stage: str
    assignment: str
    measured: Mapping[str, float | None]
    predicted: Mapping[str, float | None]
    trust: float | None = None
    drift: tuple[str, ...] = ()
    incumbent: Mapping[str, float | bool] = field(default_factory=dict)
    candidate: Mapping[str, float | bool] = field(default_factory=dict)
    applied: Mapping[str, float | bool] = field(default_factory=dict)
    limits: Mapping[str, float | None] = field(default_factory=dict)
    reason: str = ""

    @classmethod
    def _convert(cls, data: dict[str, Any]) -> dict[str, Any]:
        if isinstance(data.get("drift"), list):
            data["drift"] = tuple(data["drift"])
        return data

    def _check(self) -> None:
        kind = self.KIND
        checks.topic_name(kind, "machine", self.machine)
        checks.integer(kind, "decision_index", self.decision_index)
        self._set("time_s", checks.seconds(kind, "time_s", self.time_s))
        checks.text(kind, "stage", self.stage)
        checks.text(kind, "assignment", self.assignment)
        for name in ("measured", "predicted", "limits"):
            values = checks.mapping(kind, name, getattr(self, name))
            self._set(
                name,
                {
                    checks.text(kind, f"{name} key", k): checks.number(
                        kind, f"{name}.{k}", v, nullable=True
                    )
                    for k, v in values.items()
                },
            )
        if self.trust is not None:
            trust = checks.number(kind, "trust", self.trust)
            if trust is None or not 0.0 <= trust <= 1.0:
                raise checks.fail(kind, f"trust = {self.trust} is outside [0, 1]")
            self._set("trust", trust)
        if not isinstance(self.drift, tuple | list):
            raise checks.fail(kind, "drift must be a list of signal kinds", "type")
        self._set("drift", tuple(checks.text(kind, "drift signal", d) for d in self.drift))
        for name in ("incumbent", "candidate", "applied"):
            self._set(name, checks.setpoints(kind, name, getattr(self, name), ()))
        checks.text(kind, "reason", self.reason, checks.TEXT_LIMIT, empty=True)


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
        checks.choice(kind, "action", self.action, OPERATOR_ACTIONS)
        checks.text(kind, "operator", self.operator)
        checks.text(kind, "request_id", self.request_id)
        self._set("issued_at", checks.seconds(kind, "issued_at", self.issued_at))
        if self.machine is not None:
            checks.topic_name(kind, "machine", self.machine)
        checks.text(kind, "reason", self.reason, checks.TEXT_LIMIT, empty=True)


Message = (
    Telemetry
    | Command
    | Ack
    | TwinReport
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
        TwinReport,
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
        if kind in ("telemetry", "command", "ack", "twin")
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
