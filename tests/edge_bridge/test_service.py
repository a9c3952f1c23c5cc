"""The whole loop through a real Mosquitto: the plant emulator (lock-step) and the bridge
service. Healthy rollout to full; broker restart mid-rollout (no command lost, none applied
twice); bridge restart (gate state and commands recovered); bad input rejected and audited."""

# ruff: noqa: F811
from __future__ import annotations

import dataclasses
import json
import time
import uuid

import pytest

from edge_bridge import topics
from edge_bridge.commands import LedgerConfig
from edge_bridge.equipment import EmulatorConfig, PlantEmulator
from edge_bridge.schema import OperatorCommand, Telemetry
from edge_bridge.service import BridgeService
from edge_bridge.settings import BridgeSettings, MqttSettings
from envs.plant import Plant, load_plant_config
from tests.edge_bridge.broker_fixtures import broker, module_broker, mqtt_clients, wait_until  # noqa: F401

SITE = "plant-a"
GATE = """
rollout_id = "service-test"
min_intervals = 2
kpi_min_intervals = 2
trust_threshold = 0.5
kpi_tolerance = 0.05
rollback_kpi_tolerance = 0.5
require_approval = {approval}
start_h = 6.0

[[cohorts]]
name = "mill-1"
machines = ["machining-1"]

[[cohorts]]
name = "rest"
"""


def bridge_settings(
    tmp_path, running, *, approval: bool = False, ledger: LedgerConfig | None = None
) -> BridgeSettings:
    gate = tmp_path / "gate.toml"
    gate.write_text(GATE.format(approval=str(approval).lower()))
    account = running.account("bridge")
    return BridgeSettings(
        incumbent="condition_based",
        candidate="condition_based",
        shadow_pairs=1,  # one paired week keeps the test quick (the default is 4)
        gate=str(gate),
        store=str(tmp_path / "bridge.sqlite"),
        interval_wait_s=0.5,
        commands=ledger or LedgerConfig(),
        mqtt=MqttSettings(
            site=SITE,
            host=running.host,
            port=running.port,
            username=account.username,
            client_id=f"bridge-{uuid.uuid4().hex[:8]}",  # a fresh persistent session per test
        ),
    )


class Loop:
    """Emulator (this thread, lock-step) + bridge service (background thread)."""

    def __init__(self, tmp_path, running, **options) -> None:  # options: bridge_settings's
        self.running = running
        self.settings = bridge_settings(tmp_path, running, **options)
        self.password = running.account("bridge").password
        self.bridge = self.start_bridge()
        config = load_plant_config("configs/plant_example.toml")
        self.plant = Plant(dataclasses.replace(config, drift=()))
        self.emulator = PlantEmulator(
            self.plant,
            running.settings("equipment", f"gw-{uuid.uuid4().hex[:8]}", session_expiry_s=3600),
            EmulatorConfig(site=SITE, node="gw-1", command_timeout_s=5.0),
        )
        self.emulator.start()
        self.emulator.reset()

    def start_bridge(self) -> BridgeService:
        bridge = BridgeService(self.settings, password=self.password)
        bridge.start()
        return bridge

    def steps(self, count: int) -> list:
        return [self.emulator.step() for _ in range(count)]

    def close(self) -> None:
        self.emulator.close()
        self.bridge.stop()
        self.plant.close()


def assert_each_command_applied_once(loop: Loop) -> None:
    """Every command the bridge issued reached the plant exactly once and was confirmed."""
    counters = loop.emulator.counters
    wait_until(  # the last interval's commands, held for the next step: answer them now
        lambda: (
            loop.emulator.process_commands(0.05) >= 0
            and counters.applied >= len(loop.bridge.loop.ledger.commands())
        ),
        5,
    )
    commands = loop.bridge.loop.ledger.commands()
    assert counters.applied == len(commands) == len({c.idempotency_key for c in commands})
    assert counters.expired == counters.rejected == 0
    confirmed = wait_until(
        lambda: all(c.status == "confirmed" for c in loop.bridge.loop.ledger.commands()), 5
    )
    statuses = [
        (c.decision_index, c.machine, c.status, c.ack_status, c.mismatches)
        for c in loop.bridge.loop.ledger.commands()
        if c.status != "confirmed"
    ]
    assert confirmed, statuses


@pytest.fixture
def loop(tmp_path, module_broker):
    running = Loop(tmp_path, module_broker)
    yield running
    running.close()


def test_a_healthy_plant_is_rolled_out_shadow_canary_full_with_every_command_confirmed(
    loop, mqtt_clients
):
    reports: list = []
    mqtt_clients(
        loop.running,
        "operator",
        f"console-{uuid.uuid4().hex[:6]}",
        subscribe={topics.filter_for("twin", SITE): lambda t, m: reports.append(m)},
    )
    results = loop.steps(20)
    assert wait_until(lambda: len(loop.bridge.decisions) == 20, 10)
    stages = [d.stage for d in loop.bridge.decisions]
    assert stages[0] == "shadow" and "canary[0]" in stages and stages[-1] == "full"
    assert all(not r.missing for r in results[1:])  # a command for every machine, every interval
    counters = loop.emulator.counters
    assert counters.duplicate == counters.expired == counters.rejected == 0
    assert wait_until(lambda: loop.bridge.counts["ack_confirmed"] == counters.applied, 5)
    rows = loop.bridge.audit.query()
    assert len(rows) == 20 * 7
    assert wait_until(lambda: len(reports) >= 20 * 7, 5)  # the console's per-machine view
    assert {r.machine for r in reports} == set(loop.plant.machine_names)
    last = loop.bridge.decisions[-1].index  # its commands hold for the next, unrun interval
    assert {row.ack_status for row in rows if row.decision_index != last} == {"confirmed"}


def test_a_broker_restart_mid_rollout_loses_no_command_and_applies_none_twice(loop):
    loop.steps(6)
    loop.running.restart()
    results = loop.steps(8)
    assert wait_until(lambda: len(loop.bridge.decisions) == 14, 15)
    assert all(not r.missing for r in results[1:])
    assert_each_command_applied_once(loop)
    assert loop.bridge.client.connects >= 2


def test_a_bridge_restart_resumes_its_stage_and_its_commands(loop):
    loop.steps(16)
    assert wait_until(lambda: len(loop.bridge.decisions) == 16, 10)
    before = loop.bridge.decisions[-1]
    assert before.stage != "shadow"
    loop.bridge.stop()
    loop.bridge = loop.start_bridge()
    assert loop.bridge.loop.gate.stage_label == before.stage
    assert loop.bridge.assembler.index == before.index + 1
    results = loop.steps(3)
    assert all(not r.missing for r in results[1:])
    assert wait_until(lambda: len(loop.bridge.decisions) == 3, 10)
    assert loop.bridge.decisions[0].index == before.index + 1
    assert_each_command_applied_once(loop)  # the re-sent pending ones answered "duplicate"


def test_bad_input_is_refused_counted_audited_and_never_applied(loop, mqtt_clients):
    loop.steps(2)
    equipment = mqtt_clients(loop.running, "equipment", "rogue-equipment")
    telemetry = topics.telemetry_topic(SITE, "machining-1")
    equipment.publish_raw(telemetry, b"{not json")
    equipment.publish_raw(telemetry, json.dumps({"schema": "twinfactory.telemetry/9"}).encode())
    unknown = Telemetry(
        machine="machining-9",
        seq=0,
        time_s=600.0,
        sent_at=time.time(),
        signals={"temperature": 20.0, "wear": 0.0, "power": 1.0, "vibration": 0.1, "state": 2},
        setpoints={"speed_factor": 1.0, "standby": False},
    )
    equipment.publish(topics.telemetry_topic(SITE, "machining-9"), unknown)
    replayed = loop.emulator.plant.samples[-1]["time_s"]  # a sample the bridge already took
    old = dataclasses.replace(unknown, machine="machining-1", time_s=replayed)
    equipment.publish(telemetry, old)
    forged = OperatorCommand(
        action="rollback", operator="mallory", request_id="r-1", issued_at=time.time()
    )
    equipment.publish(topics.operator_command_topic(SITE), forged)  # equipment may not: ACL
    bridge = loop.bridge
    assert wait_until(lambda: bridge.counts["invalid"] >= 2, 5)
    assert wait_until(lambda: bridge.counts["telemetry_refused"] >= 1, 5)
    time.sleep(0.3)
    assert bridge.counts["operator"] == 0 and bridge.loop.gate.stage_label == "shadow"
    reasons = [e.reason for e in bridge.audit.events() if e.kind == "rejected_message"]
    assert any("out of order or replayed" in r for r in reasons)
    assert any("schema" in r or "JSON" in r for r in reasons)
    results = loop.steps(2)
    assert all(not r.missing for r in results)
    assert loop.emulator.counters.rejected == 0


def test_an_operator_approves_a_promotion_and_a_replayed_request_is_refused(
    tmp_path, module_broker, mqtt_clients
):
    running = Loop(tmp_path, module_broker, approval=True)
    try:
        running.steps(16)
        bridge = running.bridge
        assert wait_until(lambda: bridge.loop.gate.pending_approvals(), 10)
        assert bridge.loop.gate.stage_label == "shadow"
        operator = mqtt_clients(module_broker, "operator", "console-1")
        approve = OperatorCommand(
            action="approve", operator="alice", request_id="req-1", issued_at=time.time()
        )
        operator.publish(topics.operator_command_topic(SITE), approve)
        assert wait_until(lambda: bridge.loop.gate.stage_label == "canary[0]", 5)
        operator.publish(topics.operator_command_topic(SITE), approve)  # the same request again
        assert wait_until(lambda: bridge.counts["operator_replayed"] == 1, 5)
        events = bridge.audit.events()
        assert any(e.kind == "operator" and e.operator == "alice" for e in events)
        assert bridge.loop.gate.stage_label == "canary[0]"
    finally:
        running.close()


def test_an_unacknowledged_command_is_resent_then_escalated_and_a_late_ack_settles_it(
    tmp_path, module_broker
):
    quick = LedgerConfig(ttl_s=60.0, retry_after_s=0.3, max_attempts=2)
    running = Loop(tmp_path, module_broker, ledger=quick)
    try:
        running.steps(2)
        bridge = running.bridge
        assert wait_until(lambda: len(bridge.decisions) == 2, 10)
        # the equipment goes quiet: the last interval's commands stay unanswered
        assert wait_until(lambda: bridge.counts["commands_resent"] >= 7, 5)
        assert wait_until(
            lambda: sum(e.kind == "command_escalated" for e in bridge.audit.events()) == 7, 5
        )
        last = bridge.decisions[-1].index
        rows = [r for r in bridge.audit.query() if r.decision_index == last]
        assert {r.ack_status for r in rows} == {"escalated"}
        running.emulator.process_commands(1.0)  # it answers at last: each applied once
        assert_each_command_applied_once(running)
        assert running.emulator.counters.duplicate >= 7  # the re-sent copies
    finally:
        running.close()


def test_stale_telemetry_puts_the_machine_on_its_last_known_good_setpoints_then_back(loop):
    loop.steps(3)
    bridge = loop.bridge
    assert wait_until(lambda: len(bridge.decisions) == 3, 10)
    good = dict(bridge.loop.last_good["welding-1"])
    loop.emulator.drop_telemetry("welding-1", 3)
    loop.steps(4)
    assert wait_until(lambda: len(bridge.decisions) == 7, 15)
    modes = [d.assignments["welding-1"] for d in bridge.decisions]
    assert "fallback" in modes[3:6]
    stale = next(d for d in bridge.decisions if d.assignments["welding-1"] == "fallback")
    command = next(c for c in stale.commands if c.machine == "welding-1")
    assert command.setpoints == good
    loop.steps(2)
    assert wait_until(lambda: len(bridge.decisions) == 9, 15)
    assert bridge.decisions[-1].assignments["welding-1"] != "fallback"  # fresh again
    kinds = [e.reason for e in bridge.audit.events() if e.kind == "override"]
    assert any("fallback" in r for r in kinds)
