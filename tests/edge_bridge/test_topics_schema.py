"""The topic layout and the payload schemas: builders and parsing, every message kind's round
trip, and every way a payload is rejected (with a message that says what to fix)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from edge_bridge import topics
from edge_bridge.schema import (
    MAX_PAYLOAD_BYTES,
    MESSAGE_TYPES,
    Ack,
    BridgeState,
    BridgeStatus,
    Command,
    LineKpi,
    NodeBirth,
    NodeDeath,
    OperatorCommand,
    SchemaError,
    Telemetry,
    TwinReport,
    decode,
    new_command_id,
)
from envs.kpi import IntervalRecord

NOW = 1_700_000_000.0
SITE = "plant-a"


def telemetry(**changes) -> Telemetry:
    fields = dict(
        machine="machining-1",
        seq=7,
        time_s=300.0,
        sent_at=NOW,
        signals={"temperature": 41.5, "wear": 0.12, "power": 5.5, "vibration": None, "state": 3},
        setpoints={"speed_factor": 1.1, "standby": False},
    )
    return Telemetry(**(fields | changes))


def command(**changes) -> Command:
    fields = dict(
        command_id=new_command_id(),
        idempotency_key="machining-1:12:ppo-3",
        decision_index=12,
        machine="machining-1",
        policy_version="ppo-3",
        stage="canary",
        issued_at=NOW,
        expires_at=NOW + 60,
        setpoints={"speed_factor": 1.05, "standby": True, "maintenance": False},
    )
    return Command(**(fields | changes))


def examples() -> list[tuple[str, str, object]]:
    cmd = command()
    return [
        ("telemetry", "machining-1", telemetry()),
        ("command", "machining-1", cmd),
        (
            "ack",
            "machining-1",
            Ack(
                cmd.command_id,
                cmd.idempotency_key,
                "machining-1",
                "applied",
                NOW + 1,
                {"speed_factor": 1.05, "standby": True},
            ),
        ),
        (
            "birth",
            "gw-1",
            NodeBirth(
                "gw-1",
                3,
                ("machining-1", "welding-1"),
                NOW,
                {"temperature": "degC"},
                {"speed_factor": "float"},
            ),
        ),
        ("death", "gw-1", NodeDeath("gw-1", 3)),
        (
            "twin",
            "machining-1",
            TwinReport(
                "machining-1",
                12,
                3900.0,
                "canary[0]",
                "candidate",
                {"temperature": 41.2, "wear": 0.31, "power": None},
                {"temperature": 41.0, "wear": 0.30, "power": 10.1},
                0.93,
                (),
                {"speed_factor": 1.0, "standby": False, "maintenance": False},
                {"speed_factor": 1.1, "standby": False, "maintenance": False},
                {"speed_factor": 1.1, "standby": False, "maintenance": False},
                {"low": 0.7, "high": 1.3, "max_step": 0.1},
                "candidate",
            ),
        ),
        (
            "kpi",
            "",
            LineKpi(
                300.0,
                IntervalRecord(duration_h=5 / 60, energy_kwh=12.5, energy_price=0.2, good_parts=4),
            ),
        ),
        ("state", "", BridgeState(True, NOW)),
        (
            "status",
            "",
            BridgeStatus(
                "canary",
                "ppo-3",
                NOW,
                ("machining-1",),
                {"machining-1": 0.93, "welding-1": None},
                {"machining-1": "candidate"},
            ),
        ),
        ("operator", "", OperatorCommand("approve", "alice", "req-1", NOW, None, "looks good")),
    ]


# --- topics ------------------------------------------------------------------------------


def test_every_kind_builds_a_topic_that_parses_back():
    for kind in topics.KINDS:
        name = "" if kind in ("kpi", "state", "status", "operator") else "machining-1"
        topic = topics.topic_for(kind, SITE, name)
        assert topic.startswith("twinfactory/v1/plant-a/")
        assert tuple(topics.parse_topic(topic)) == (kind, SITE, name)
    assert topics.telemetry_topic(SITE, "m1") == "twinfactory/v1/plant-a/machine/m1/telemetry"
    assert topics.death_topic(SITE, "gw") == "twinfactory/v1/plant-a/node/gw/death"
    assert topics.operator_command_topic(SITE) == "twinfactory/v1/plant-a/operator/command"


@pytest.mark.parametrize(
    "topic",
    [
        "spBv1.0/plant-a/NDATA/gw",
        "twinfactory/v2/plant-a/line/kpi",
        "twinfactory/v1/plant-a/machine/m1/telemetry/extra",
        "twinfactory/v1/plant-a/node/m1/telemetry",
        "twinfactory/v1/plant-a/machine/m1/birth",
        "twinfactory/v1/plant-a/line/state",
        "twinfactory/v1/plant a/line/kpi",
        "twinfactory/v1/plant-a/machine/+/telemetry",
    ],
)
def test_foreign_topics_are_refused(topic):
    with pytest.raises(topics.TopicError, match="topic"):
        topics.parse_topic(topic)


@pytest.mark.parametrize("name", ["", "+", "#", "a/b", "-x", "x" * 65, "dé"])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(topics.TopicError, match="1-64 letters"):
        topics.telemetry_topic(SITE, name)


def test_delivery_table_covers_every_kind_with_a_reason():
    assert set(topics.DELIVERY) == set(topics.KINDS)
    for rule in topics.DELIVERY.values():
        assert rule.qos in (0, 1, 2) and len(rule.reason) > 20
    assert topics.DELIVERY["state"].retain and topics.DELIVERY["status"].retain
    assert not topics.DELIVERY["command"].retain
    assert topics.DELIVERY["command"].expiry_s == "per_message"


def test_roles_subscribe_to_what_they_may_read():
    assert topics.subscriptions("equipment", SITE) == (
        "twinfactory/v1/plant-a/machine/+/command",
        "twinfactory/v1/plant-a/bridge/state",
    )
    bridge = topics.subscriptions("bridge", SITE)
    assert "twinfactory/v1/plant-a/machine/+/ack" in bridge
    assert "twinfactory/v1/plant-a/operator/command" in bridge
    operator = topics.subscriptions("operator", SITE)
    assert "twinfactory/v1/plant-a/machine/+/twin" in operator  # the console's live views
    assert "twinfactory/v1/plant-a/machine/+/telemetry" in operator
    assert "twinfactory/v1/plant-a/bridge/status" in operator
    assert not any(f.endswith(("/command", "/ack")) for f in operator)
    with pytest.raises(topics.TopicError, match="roles"):
        topics.subscriptions("admin", SITE)


def test_shipped_acl_grants_each_role_exactly_its_rules():
    text = (Path(__file__).parents[2] / "configs/mosquitto/acl.conf").read_text()
    sections: dict[str, set[str]] = {}
    role = None
    for line in text.splitlines():
        if line.startswith("# role: "):
            role = line.split(": ", 1)[1]
        elif line.startswith("topic ") and role:
            sections.setdefault(role, set()).add(line)
    for name, rules in topics.ACL.items():
        assert sections[name] == {f"topic {r.access} {r.filter}" for r in rules}


# --- schema round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("kind,name,message", examples(), ids=[e[0] for e in examples()])
def test_every_message_round_trips_through_its_topic(kind, name, message):
    payload = message.to_payload()
    assert json.loads(payload)["schema"] == f"twinfactory.{kind}/1"
    assert type(message).from_payload(payload) == message
    assert decode(topics.topic_for(kind, SITE, name), payload) == message


def test_a_dropped_signal_is_null_and_a_plant_state_float_is_an_int():
    sample = telemetry(signals={"temperature": math.nan, "wear": 0.1, "power": 2.0, "state": 3.0})
    data = json.loads(sample.to_payload())
    assert data["signals"] == {"temperature": None, "wear": 0.1, "power": 2.0, "state": 3}


def test_command_expiry_helpers():
    cmd = command(issued_at=NOW, expires_at=NOW + 10.5)
    assert not cmd.expired(NOW + 10) and cmd.expired(NOW + 10.5)
    assert cmd.remaining_s(NOW) == 11 and cmd.remaining_s(NOW + 10.4) == 1
    assert cmd.remaining_s(NOW + 11) == 0


# --- rejections -----------------------------------------------------------------------------


def reject(cls, payload: bytes, code: str, text: str) -> SchemaError:
    with pytest.raises(SchemaError) as caught:
        cls.from_payload(payload)
    assert caught.value.code == code, caught.value
    assert text in str(caught.value)
    return caught.value


def edited(message, **changes) -> bytes:
    data = message.to_fields() | changes
    return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()


def test_garbled_json_and_non_objects_are_rejected():
    reject(Telemetry, b'{"schema": "twinfactory.telemetry/1", "seq": ', "json", "not UTF-8 JSON")
    reject(Telemetry, b"\xff\xfe", "json", "not UTF-8 JSON")
    reject(Telemetry, b"[1, 2]", "json", "must be a JSON object")


def test_wrong_schema_kind_or_version_is_rejected():
    reject(Telemetry, edited(telemetry(), schema="twinfactory.telemetry/2"), "schema", "/1")
    reject(Command, telemetry().to_payload(), "schema", "twinfactory.command/1")
    reject(Telemetry, edited(telemetry(), schema=...), "schema", "expected")


def test_missing_and_unknown_fields_are_rejected():
    reject(Command, edited(command(), expires_at=...), "missing", "expires_at")
    reject(Command, edited(command(), expiry=5), "unknown_field", "expiry")
    setpoints = {"speed_factor": 1.0, "standby": False}
    reject(Command, edited(command(), setpoints=setpoints), "missing", "maintenance")
    reject(
        Telemetry,
        edited(telemetry(), signals={"wear": 0.1, "power": 1, "state": 2}),
        "missing",
        "temperature",
    )
    reject(
        Telemetry,
        edited(telemetry(), setpoints={"speed": 1.0, "standby": False}),
        "unknown_field",
        "speed",
    )


def test_non_finite_numbers_are_rejected_naming_the_field():
    text = telemetry().to_payload().decode()
    reject(Telemetry, text.replace('"power":5.5', '"power":NaN').encode(), "not_finite", "null")
    reject(
        Telemetry,
        text.replace('"power":5.5', '"power":1e999').encode(),
        "not_finite",
        "signals.power",
    )
    raw = edited(
        command(), setpoints={"speed_factor": 1e999, "standby": 1 > 0, "maintenance": False}
    )
    reject(Command, raw, "not_finite", "Infinity is not valid JSON")
    with pytest.raises(SchemaError, match="time_s"):
        telemetry(time_s=math.inf)


def test_wrong_types_and_values_are_rejected():
    reject(Telemetry, edited(telemetry(), seq="7"), "type", "seq")
    reject(Telemetry, edited(telemetry(), seq=-1), "value", "seq")
    reject(
        Command,
        edited(command(), setpoints={"speed_factor": 1.0, "standby": "yes", "maintenance": False}),
        "type",
        "standby",
    )
    reject(Command, edited(command(), command_id="42"), "value", "32 lowercase hex")
    reject(Command, edited(command(), expires_at=NOW - 1), "value", "positive lifetime")
    ack = examples()[2][2]
    reject(Ack, edited(ack, status="done"), "value", "applied")
    reject(OperatorCommand, edited(examples()[9][2], action="delete"), "value", "rollback")
    reject(BridgeStatus, edited(examples()[8][2], trust={"machining-1": 1.5}), "value", "[0, 1]")
    reject(TwinReport, edited(examples()[5][2], trust=-0.1), "value", "[0, 1]")
    reject(
        TwinReport, edited(examples()[5][2], predicted={"temperature": "hot"}), "type", "predicted"
    )
    reject(LineKpi, edited(examples()[6][2], record={"duration_h": 0.1}), "value", "record")
    reject(
        LineKpi,
        edited(
            examples()[6][2],
            record={"duration_h": 0.1, "energy_kwh": 1, "energy_price": 0.1, "good_parts": 1.5},
        ),
        "type",
        "good_parts",
    )


def test_bad_machine_names_are_rejected():
    reject(Telemetry, edited(telemetry(), machine="mill/1"), "name", "machine")
    reject(NodeBirth, edited(examples()[3][2], machines=["ok", "bad name"]), "name", "bad name")
    reject(NodeBirth, edited(examples()[3][2], machines=["a", "a"]), "value", "repeat")


def test_oversized_payloads_are_rejected_both_ways():
    big = b'{"schema":"twinfactory.telemetry/1","pad":"' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    reject(Telemetry, big, "too_large", str(MAX_PAYLOAD_BYTES))
    birth = NodeBirth("gw", 0, tuple(f"machine-{i:05d}" for i in range(2000)), NOW)
    with pytest.raises(SchemaError, match="over the limit") as caught:
        birth.to_payload()
    assert caught.value.code == "too_large"


def test_decode_checks_the_topic_against_the_payload():
    payload = telemetry().to_payload()
    with pytest.raises(SchemaError, match="topic is for 'welding-1'") as caught:
        decode(topics.telemetry_topic(SITE, "welding-1"), payload)
    assert caught.value.code == "topic" and caught.value.kind == "telemetry"
    with pytest.raises(SchemaError, match="not a twinfactory v1 topic") as caught:
        decode("other/topic", payload)
    assert caught.value.code == "topic"
    with pytest.raises(SchemaError, match="schema"):
        decode(topics.command_topic(SITE, "machining-1"), payload)


def test_every_kind_has_a_message_class():
    assert set(MESSAGE_TYPES) == set(topics.KINDS)
    assert time.time() > 0
