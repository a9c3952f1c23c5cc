"""The versioned MQTT topic layout of the edge bridge, the delivery rule (QoS, retain, expiry)
of every message kind, and what each role may publish and read. See ``edge_bridge/PROTOCOL.md``.

    twinfactory/v1/{site}/node/{node}/birth | death
    twinfactory/v1/{site}/machine/{machine}/telemetry | command | ack
    twinfactory/v1/{site}/line/kpi
    twinfactory/v1/{site}/bridge/state | status
    twinfactory/v1/{site}/operator/command

``v1`` is the layout version (a new layout gets ``v2`` beside it, so old and new equipment can
share a broker during a migration); payloads carry their own schema version. Names (site, node,
machine) match ``NAME_PATTERN``: letters, digits, ``_`` and ``-``, never MQTT wildcards or ``/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ACL",
    "DELIVERY",
    "KINDS",
    "NAMESPACE",
    "NAME_PATTERN",
    "ROLES",
    "Delivery",
    "Permission",
    "Role",
    "TopicError",
    "TopicName",
    "ack_topic",
    "birth_topic",
    "bridge_state_topic",
    "bridge_status_topic",
    "check_name",
    "command_topic",
    "death_topic",
    "filter_for",
    "kpi_topic",
    "operator_command_topic",
    "parse_topic",
    "subscriptions",
    "telemetry_topic",
    "topic_for",
]

NAMESPACE = "twinfactory/v1"
"""Root of every topic; ``v1`` is the topic-layout version."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""Site, node and machine names: 1–64 characters, letters/digits/``_``/``-``, not starting
with ``_`` or ``-`` (so never ``+``, ``#``, ``/`` or ``$``)."""

Kind = Literal[
    "birth", "death", "telemetry", "command", "ack", "twin", "kpi", "state", "status", "operator"
]
KINDS: tuple[str, ...] = (
    "birth",
    "death",
    "telemetry",
    "command",
    "ack",
    "twin",
    "kpi",
    "state",
    "status",
    "operator",
)

Role = Literal["equipment", "bridge", "operator"]
ROLES: tuple[str, ...] = ("equipment", "bridge", "operator")


class TopicError(ValueError):
    """A topic outside the layout, or a name that cannot be part of one."""


@dataclass(frozen=True)
class Delivery:
    """How one message kind travels: MQTT QoS, the retain flag, the MQTT 5 message expiry
    (seconds; ``None`` = never expires, ``"per_message"`` = set by each message, e.g. a
    command's ``expires_at``) and why."""

    qos: int
    retain: bool
    expiry_s: int | Literal["per_message"] | None
    reason: str


DELIVERY: dict[str, Delivery] = {
    "birth": Delivery(
        1,
        False,
        None,
        "must arrive (it names the machines and starts seq); not "
        "retained: a stale birth after a death would lie, nodes re-birth instead",
    ),
    "death": Delivery(
        1,
        False,
        None,
        "the last will: the bridge must learn a node is gone, "
        "once; bd_seq ties it to the birth it ends",
    ),
    "telemetry": Delivery(
        1,
        False,
        300,
        "the twin's trust needs complete series (a gap reads as "
        "a dropped signal); seq removes duplicates; older than one decision "
        "interval (300 s) it is useless, so it expires",
    ),
    "command": Delivery(
        1,
        False,
        "per_message",
        "must arrive despite a disconnect (persistent "
        "session), duplicates are caught by the idempotency key; never retained "
        "(a retained setpoint would be re-applied by any reconnecting node); "
        "expires with the command",
    ),
    "ack": Delivery(
        1, False, None, "the bridge's ledger needs every ack; duplicates are matched by command_id"
    ),
    "twin": Delivery(
        0,
        True,
        600,
        "the bridge's per-machine report of one interval (measured vs predicted, trust, "
        "what was proposed and applied) for consoles: only the latest matters and a lost one "
        "is replaced by the next, so QoS 0; retained so a console shows it on connect",
    ),
    "kpi": Delivery(
        1,
        False,
        None,
        "one record per decision interval feeds promotion and "
        "rollback; losing one would hide a regression",
    ),
    "state": Delivery(
        1,
        True,
        None,
        "Sparkplug primary-host STATE: retained so a node that "
        "connects later knows at once whether the bridge is online; will = offline",
    ),
    "status": Delivery(
        1,
        True,
        None,
        "retained so an operator console shows the current stage "
        "on connect; only the latest matters",
    ),
    "operator": Delivery(
        1,
        False,
        300,
        "an approval or rollback must arrive; it expires after "
        "5 min so a stale approval is never acted on",
    ),
}
"""The one table of delivery rules; ``edge_bridge.mqtt.MqttClient.publish`` applies it."""


def check_name(value: str, what: str = "name") -> str:
    """``value`` if it is a valid site/node/machine name, else TopicError saying the rule."""
    if not isinstance(value, str) or NAME_PATTERN.fullmatch(value) is None:
        raise TopicError(
            f"{what} {value!r} is not a valid name: use 1-64 letters, digits, '_' or '-' "
            "(starting with a letter or digit), e.g. 'machining-1'"
        )
    return value


def _topic(site: str, *parts: str) -> str:
    return "/".join((NAMESPACE, check_name(site, "site"), *parts))


def birth_topic(site: str, node: str) -> str:
    """Where node ``node`` publishes its birth certificate."""
    return _topic(site, "node", check_name(node, "node"), "birth")


def death_topic(site: str, node: str) -> str:
    """Where node ``node``'s last will (death certificate) is published."""
    return _topic(site, "node", check_name(node, "node"), "death")


def telemetry_topic(site: str, machine: str) -> str:
    """Where ``machine``'s telemetry samples are published."""
    return _topic(site, "machine", check_name(machine, "machine"), "telemetry")


def command_topic(site: str, machine: str) -> str:
    """Where the bridge sends ``machine``'s setpoint commands."""
    return _topic(site, "machine", check_name(machine, "machine"), "command")


def ack_topic(site: str, machine: str) -> str:
    """Where ``machine``'s equipment acknowledges commands."""
    return _topic(site, "machine", check_name(machine, "machine"), "ack")


def kpi_topic(site: str) -> str:
    """Where the line's KPI record of each decision interval is published."""
    return _topic(site, "line", "kpi")


def bridge_state_topic(site: str) -> str:
    """The bridge's retained online/offline state (Sparkplug primary-host STATE)."""
    return _topic(site, "bridge", "state")


def bridge_status_topic(site: str) -> str:
    """The bridge's retained rollout status (stage, cohort, trust)."""
    return _topic(site, "bridge", "status")


def operator_command_topic(site: str) -> str:
    """Where operators send approve/reject/rollback/local_control/resume."""
    return _topic(site, "operator", "command")


_PER_NAME = {
    "birth": "node",
    "death": "node",
    "telemetry": "machine",
    "command": "machine",
    "ack": "machine",
    "twin": "machine",
}
_SITE_WIDE = {
    ("line", "kpi"): "kpi",
    ("bridge", "state"): "state",
    ("bridge", "status"): "status",
    ("operator", "command"): "operator",
}


def topic_for(kind: str, site: str, name: str = "") -> str:
    """The topic of message ``kind`` for ``site`` and the node/machine ``name`` (empty for the
    site-wide kinds kpi, state, status, operator)."""
    check_name(site, "site")
    if kind in _PER_NAME:
        check_name(name, _PER_NAME[kind])
    return _layout(kind, site, name)


def filter_for(kind: str, site: str = "+") -> str:
    """The subscription filter of message ``kind`` at ``site`` (``+`` = every site), every
    node/machine: e.g. ``twinfactory/v1/plant-a/machine/+/telemetry``."""
    if site != "+":
        check_name(site, "site")
    return _layout(kind, site, "+")


def _layout(kind: str, site: str, name: str) -> str:
    if kind in _PER_NAME:
        return "/".join((NAMESPACE, site, _PER_NAME[kind], name, kind))
    for (group, leaf), site_kind in _SITE_WIDE.items():
        if site_kind == kind:
            return "/".join((NAMESPACE, site, group, leaf))
    raise TopicError(f"unknown message kind {kind!r}; the kinds are {list(KINDS)}")


@dataclass(frozen=True)
class TopicName:
    """A parsed topic: message ``kind``, ``site`` and node/machine ``name`` ('' if site-wide)."""

    kind: str
    site: str
    name: str = ""

    def __iter__(self) -> Iterator[str]:
        """Allows ``kind, site, name = parse_topic(topic)``."""
        return iter((self.kind, self.site, self.name))


def parse_topic(topic: str) -> TopicName:
    """Split a topic of the layout into (kind, site, name); TopicError for any other topic."""
    prefix = NAMESPACE + "/"
    if not topic.startswith(prefix):
        raise TopicError(f"topic {topic!r} is not under {prefix!r}: not a twinfactory v1 topic")
    parts = topic[len(prefix) :].split("/")
    try:
        if len(parts) == 4 and _PER_NAME.get(parts[3]) == parts[1]:
            return TopicName(parts[3], check_name(parts[0], "site"), check_name(parts[2], parts[1]))
        if len(parts) == 3 and (parts[1], parts[2]) in _SITE_WIDE:
            return TopicName(_SITE_WIDE[(parts[1], parts[2])], check_name(parts[0], "site"))
    except TopicError as error:
        raise TopicError(f"topic {topic!r}: {error}") from None
    raise TopicError(
        f"topic {topic!r} is not in the layout (see edge_bridge/PROTOCOL.md): expected "
        f"{NAMESPACE}/<site>/machine/<machine>/telemetry|command|ack|twin, "
        ".../node/<node>/birth|death, .../line/kpi, .../bridge/state|status or .../operator/command"
    )


@dataclass(frozen=True)
class Permission:
    """One ACL line: ``access`` (read | write) on topic ``filter`` (``+`` = any site/name)."""

    access: Literal["read", "write"]
    filter: str


def _rules(access: Literal["read", "write"], *kinds: str) -> tuple[Permission, ...]:
    return tuple(Permission(access, filter_for(kind)) for kind in kinds)


ACL: dict[str, tuple[Permission, ...]] = {
    # equipment reads bridge/state to re-publish its birth when the bridge comes online
    "equipment": _rules("write", "telemetry", "ack", "birth", "death", "kpi")
    + _rules("read", "command", "state"),
    "bridge": _rules("write", "command", "twin", "state", "status")
    + _rules("read", "telemetry", "ack", "birth", "death", "kpi", "operator", "state"),
    # operators (the console) see what the plant reports and what the bridge decides
    "operator": _rules("write", "operator")
    + _rules("read", "telemetry", "twin", "birth", "death", "kpi", "status", "state"),
}
"""What each role may publish (write) and receive (read); broker.py turns it into the
Mosquitto ACL file, configs/mosquitto/acl.conf is its production form."""


def subscriptions(role: str, site: str) -> tuple[str, ...]:
    """The topic filters a client of ``role`` subscribes to at ``site`` (its read rules)."""
    if role not in ACL:
        raise TopicError(f"unknown role {role!r}; the roles are {list(ROLES)}")
    check_name(site, "site")
    prefix = f"{NAMESPACE}/+/"
    return tuple(
        f"{NAMESPACE}/{site}/" + rule.filter[len(prefix) :]
        for rule in ACL[role]
        if rule.access == "read"
    )
