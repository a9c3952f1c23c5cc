# ruff: noqa: F811  (pytest fixtures imported from broker_fixtures are parameters here)
"""The plant emulator on a real Mosquitto: birth, telemetry and KPI per interval, the command
lifecycle (applied with read-back, duplicate, expired, rejected), lock-step timeout, going
offline (death, rebirth with bd_seq + 1), dropped telemetry, delayed acks, rebirth when the
bridge comes online, free-running mode."""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import time
from pathlib import Path

import pytest

from edge_bridge import topics
from edge_bridge.equipment import DropFault, EmulatorConfig, PlantEmulator
from edge_bridge.schema import (
    Ack,
    BridgeState,
    Command,
    LineKpi,
    NodeBirth,
    NodeDeath,
    Telemetry,
    new_command_id,
)
from envs.plant import DriftEvent, Plant, load_plant_config
from tests.edge_bridge.broker_fixtures import (  # noqa: F401
    module_broker,
    mqtt_clients,
    wait_until,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "plant_example.toml"
_sites = itertools.count()
MACHINES = 7


@pytest.fixture(scope="module")
def plant():
    with Plant(dataclasses.replace(load_plant_config(EXAMPLE), drift=())) as shared:
        yield shared


class BridgeSide:
    """A bridge-role client that records everything the emulator publishes at one site."""

    def __init__(self, make, broker, site: str) -> None:
        self.site = site
        self.messages: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        filters = {
            topics.filter_for(kind, site): self._record
            for kind in ("telemetry", "ack", "birth", "death", "kpi")
        }
        self.client = make(broker, "bridge", f"bridge-{site}", subscribe=filters)

    def _record(self, topic: str, message: object) -> None:
        with self.lock:
            self.messages.append((topic, message))

    def of(self, kind: type) -> list:
        with self.lock:
            return [m for _t, m in self.messages if isinstance(m, kind)]

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def command(
        self,
        machine: str,
        decision: int,
        *,
        speed: float = 1.0,
        standby=False,
        maintenance=False,
        life_s: float = 60.0,
        command_id: str | None = None,
    ) -> Command:
        now = time.time()
        command = Command(
            command_id=command_id or new_command_id(),
            idempotency_key=f"{machine}:{decision}:test-1",
            decision_index=decision,
            machine=machine,
            policy_version="test-1",
            stage="canary",
            issued_at=now - 1.0,
            expires_at=now + life_s,
            setpoints={"speed_factor": speed, "standby": standby, "maintenance": maintenance},
        )
        topic = topics.command_topic(self.site, machine)
        if command.expired(now):
            self.client.publish_raw(topic, command.to_payload())  # the broker forwards it
        else:
            self.client.publish(topic, command)
        return command

    def command_all(self, machines, decision: int, **setpoints) -> None:
        for machine in machines:
            self.command(machine, decision, **setpoints)

    def acks_for(self, command: Command) -> list[Ack]:
        return [a for a in self.of(Ack) if a.command_id == command.command_id]


@pytest.fixture
def setup(module_broker, mqtt_clients, plant):
    """make(**config) -> (emulator started, bridge side); both stopped after the test."""
    made: list[PlantEmulator] = []

    def make(**config) -> tuple[PlantEmulator, BridgeSide]:
        site = f"site{next(_sites)}"
        bridge = BridgeSide(mqtt_clients, module_broker, site)
        settings = module_broker.settings("equipment", f"gw-{site}", session_expiry_s=600)
        config.setdefault("command_timeout_s", 2.0)
        emulator = PlantEmulator(plant, settings, EmulatorConfig(site=site, node="gw", **config))
        made.append(emulator)
        emulator.start()
        assert wait_until(lambda: bridge.of(NodeBirth), 15)
        return emulator, bridge

    yield make
    for emulator in made:
        emulator.close()


def test_birth_telemetry_and_kpi(setup, plant):
    emulator, bridge = setup()
    (birth,) = bridge.of(NodeBirth)
    assert birth.machines == tuple(plant.machine_names) and len(birth.machines) == MACHINES
    assert birth.bd_seq == 0 and birth.signals["power"] == "kW"
    assert birth.setpoints == {"speed_factor": "float", "standby": "bool", "maintenance": "bool"}
    first = emulator.reset()
    assert first is not None and first.time_s == 0.0
    results = [emulator.step(wait=False) for _ in range(2)]
    samples = 1 + 2 * plant.samples_per_decision
    assert wait_until(lambda: len(bridge.of(Telemetry)) == samples * MACHINES, 15)
    assert wait_until(lambda: len(bridge.of(LineKpi)) == 2, 15)
    for machine in plant.machine_names:
        stream = [t for t in bridge.of(Telemetry) if t.machine == machine]
        assert [t.seq for t in stream] == list(range(samples))
        assert [t.time_s for t in stream] == [60.0 * i for i in range(samples)]
        assert stream[-1].setpoints == {"speed_factor": 1.0, "standby": False}
        assert ("vibration" in stream[0].signals) == machine.startswith("machining")
    kpis = bridge.of(LineKpi)
    for kpi, result in zip(kpis, results, strict=True):
        assert kpi.time_s == result.time_s
        assert kpi.record.energy_kwh == pytest.approx(sum(r.energy_kwh for r in result.records))
        assert kpi.record.good_parts == sum(r.good_parts for r in result.records)
        assert kpi.record.duration_h == pytest.approx(plant.decision_interval_s / 3600)
    assert results[1].interval == 1 and len(results[1].telemetry) == 5 * MACHINES


def test_dropped_sample_is_null_on_the_wire(setup):
    emulator, bridge = setup()
    emulator.reset()
    for _ in range(4):  # 2 % dropouts in the example: some NaN reach the wire as null
        emulator.step(wait=False)
    assert wait_until(lambda: len(bridge.of(Telemetry)) == 21 * MACHINES, 15)
    nulls = [t for t in bridge.of(Telemetry) if None in t.signals.values()]
    assert nulls, "expected a dropped (null) signal in 4 intervals at 2 % dropouts"
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in nulls[0].signals.values())


def test_command_applied_with_readback_then_duplicate(setup, plant):
    emulator, bridge = setup()
    emulator.reset()
    emulator.step()  # interval 0; nothing to wait for yet
    machine = plant.machine_names[1]
    command = bridge.command(machine, 0, speed=1.2, standby=True, maintenance=True)
    others = [m for m in plant.machine_names if m != machine]
    bridge.command_all(others, 0)
    result = emulator.step()  # waits for decision 0, applies, runs interval 1
    assert result.missing == () and result.applied == MACHINES
    assert wait_until(lambda: bridge.acks_for(command), 15)
    (ack,) = bridge.acks_for(command)
    assert ack.status == "applied"
    assert ack.readback == {"speed_factor": 1.2, "standby": True, "maintenance": True}
    shown = [t for t in result.telemetry if t.machine == machine]
    assert all(t.setpoints == {"speed_factor": 1.2, "standby": True} for t in shown)
    assert emulator.readback(machine)["maintenance"] is False  # one-shot, used by interval 1
    # the same command again (a replay after a reconnect): duplicate, applied once
    bridge.client.publish(topics.command_topic(bridge.site, machine), command)
    bridge.command_all(others, 1)
    bridge.command(machine, 1, speed=1.2, standby=True, command_id=command.command_id)
    emulator.step()
    assert wait_until(lambda: len(bridge.acks_for(command)) == 3, 15)
    assert [a.status for a in bridge.acks_for(command)] == ["applied", "duplicate", "duplicate"]
    assert emulator.counters.applied == MACHINES + len(others)
    assert emulator.counters.duplicate == 2
    assert emulator.readback(machine)["maintenance"] is False  # not requested a second time


def test_expired_and_rejected_change_nothing(setup, plant):
    emulator, bridge = setup()
    emulator.reset()
    emulator.step()
    machine = plant.machine_names[4]  # welding: speed range [0.5, 1.25]
    before = emulator.readback(machine)
    expired = bridge.command(machine, 0, speed=0.8, life_s=-0.5)
    too_fast = bridge.command(machine, 0, speed=1.3, standby=True)
    bridge.command_all([m for m in plant.machine_names if m != machine], 0)
    result = emulator.step()
    assert result.missing == ()
    assert wait_until(lambda: bridge.acks_for(expired) and bridge.acks_for(too_fast), 15)
    (expired_ack,), (rejected_ack,) = bridge.acks_for(expired), bridge.acks_for(too_fast)
    assert expired_ack.status == "expired" and "expires_at" in expired_ack.reason
    assert rejected_ack.status == "rejected" and "outside its range" in rejected_ack.reason
    assert emulator.readback(machine) == before
    assert all(t.setpoints["speed_factor"] == 1.0 for t in result.telemetry if t.machine == machine)
    assert (emulator.counters.expired, emulator.counters.rejected) == (1, 1)


def test_lockstep_timeout_keeps_setpoints_and_counts_missing(setup, plant):
    emulator, bridge = setup(command_timeout_s=0.3)
    emulator.reset()
    emulator.step()
    bridge.command_all(plant.machine_names[:2], 0, speed=1.1)
    emulator.step()
    bridge.command_all(plant.machine_names[:5], 1, speed=0.9)
    began = time.monotonic()
    result = emulator.step()
    assert 0.25 <= time.monotonic() - began < 2.0
    assert result.missing == tuple(plant.machine_names[5:])
    assert emulator.missing_per_interval == {0: tuple(plant.machine_names[2:]), 1: result.missing}
    assert emulator.counters.missing == 5 + 2
    assert emulator.readback(plant.machine_names[0])["speed_factor"] == 0.9
    assert emulator.readback(plant.machine_names[6])["speed_factor"] == 1.0


def test_go_offline_death_then_rebirth_and_queued_command(setup, plant):
    emulator, bridge = setup()
    emulator.reset()
    emulator.step(wait=False)
    emulator.go_offline(1)
    assert wait_until(lambda: bridge.of(NodeDeath), 15)
    assert bridge.of(NodeDeath)[0].bd_seq == 0
    bridge.clear()
    # sent while the gateway is away: the persistent session keeps it
    queued = bridge.command(plant.machine_names[0], 0, speed=1.15)
    offline = emulator.step()  # the offline interval: lost, then the reconnect
    assert not offline.online and offline.telemetry == () and offline.kpi is None
    assert wait_until(lambda: bridge.of(NodeBirth), 15)
    (birth,) = bridge.of(NodeBirth)
    assert birth.bd_seq == 1 and emulator.online
    assert emulator.lost_samples == 5 * MACHINES
    assert not bridge.of(Telemetry) and not bridge.of(LineKpi)
    assert wait_until(lambda: emulator.process_commands(0.05) == 1, 5)  # the queued command
    back = emulator.step(wait=False)
    assert wait_until(lambda: bridge.acks_for(queued), 15)
    assert bridge.acks_for(queued)[0].status == "applied"
    assert [t.seq for t in back.telemetry if t.machine == plant.machine_names[0]] == [0, 1, 2, 3, 4]
    assert all(
        t.setpoints["speed_factor"] == 1.15
        for t in back.telemetry
        if t.machine == plant.machine_names[0]
    )
    emulator.close()
    time.sleep(0.2)
    assert len(bridge.of(NodeDeath)) == 0  # a clean close sends no will


def test_buffered_offline_samples_follow_the_rebirth(setup):
    emulator, bridge = setup(buffer_offline=True)
    emulator.reset()
    emulator.go_offline(1)
    bridge.clear()
    emulator.step()
    # 30 s: the broker's deliveries can lag on a loaded CI machine (15 s timed out once)
    assert wait_until(lambda: len(bridge.of(Telemetry)) >= 5 * MACHINES, 30)
    assert wait_until(lambda: len(bridge.of(LineKpi)) >= 1, 30)
    time.sleep(0.2)  # nothing more may follow
    assert len(bridge.of(Telemetry)) == 5 * MACHINES and len(bridge.of(LineKpi)) == 1
    assert bridge.of(NodeBirth)[0].bd_seq == 1
    first = [t for t in bridge.of(Telemetry) if t.machine == "machining-1"]
    assert [t.seq for t in first] == [0, 1, 2, 3, 4] and first[0].time_s == 60.0
    assert emulator.lost_samples == 0


def test_dropped_telemetry_fault(setup, plant):
    machine = plant.machine_names[2]
    emulator, bridge = setup(drops=(DropFault(machine, 1, 1),), command_timeout_s=0.2)
    emulator.reset()
    counts = []
    for _ in range(3):
        result = emulator.step(wait=False)
        counts.append(sum(t.machine == machine for t in result.telemetry))
    assert counts == [5, 0, 5]
    assert wait_until(lambda: len(bridge.of(Telemetry)) == (1 + 15) * MACHINES - 5, 15)
    times = [t.time_s for t in bridge.of(Telemetry) if t.machine == machine]
    assert not any(300.0 < t <= 600.0 for t in times)
    assert wait_until(lambda: len(bridge.of(LineKpi)) == 3, 15)  # published after the telemetry
    emulator.drop_telemetry(plant.machine_names[0], 1)
    assert not any(t.machine == plant.machine_names[0] for t in emulator.step(wait=False).telemetry)
    with pytest.raises(ValueError, match="not on this line"):
        emulator.drop_telemetry("milling-9", 1)


def test_delayed_acks(setup, plant):
    emulator, bridge = setup()
    emulator.delay_acks(0.4)
    emulator.reset()
    emulator.step()
    command = bridge.command(plant.machine_names[0], 0)
    began = time.monotonic()
    assert wait_until(lambda: emulator.process_commands(0.05) == 1, 15)
    assert not bridge.acks_for(command)
    assert wait_until(lambda: bridge.acks_for(command), 15)
    assert time.monotonic() - began >= 0.35


def test_rebirth_when_the_bridge_comes_online(setup):
    emulator, bridge = setup()
    emulator.reset()
    emulator.step(wait=False)
    state = topics.bridge_state_topic(bridge.site)
    bridge.client.publish(state, BridgeState(online=False, since=time.time()))
    time.sleep(0.1)
    assert len(bridge.of(NodeBirth)) == 1
    bridge.client.publish(state, BridgeState(online=True, since=time.time()))
    assert wait_until(lambda: len(bridge.of(NodeBirth)) == 2, 15)
    assert bridge.of(NodeBirth)[1].bd_seq == 0
    result = emulator.step(wait=False)
    assert [t.seq for t in result.telemetry if t.machine == "machining-1"] == [0, 1, 2, 3, 4]


def test_free_running_applies_what_arrives(setup, plant):
    emulator, bridge = setup()
    period = plant.decision_interval_s / 3000.0  # 0.1 s per interval
    sent = threading.Timer(
        0.15, lambda: bridge.command_all(plant.machine_names, 0, speed=0.95, standby=True)
    )
    sent.start()
    began = time.monotonic()
    results = emulator.run(4, realtime_factor=3000.0)
    assert time.monotonic() - began >= 3.5 * period
    assert [r.interval for r in results] == [0, 1, 2, 3]
    assert all(r.missing == () for r in results)
    assert all(t.setpoints["speed_factor"] == 0.95 for t in results[-1].telemetry)
    assert emulator.counters.applied == MACHINES


def test_inject_drift_and_bad_input(setup, module_broker, plant):
    emulator, _bridge = setup()
    emulator.reset()
    emulator.inject_drift(DriftEvent(time_h=0.0, target="wear_rate_factor", value=2.0))
    emulator.step(wait=False)
    assert len(plant.drift_log) == 1
    with pytest.raises(ValueError, match="persistent session"):
        PlantEmulator(plant, module_broker.settings("equipment", "x"))
    with pytest.raises(ValueError, match="not a valid name"):
        EmulatorConfig(site="a/b")
    with pytest.raises(ValueError, match="count"):
        DropFault("machining-1", 0, 0)
    with pytest.raises(ValueError, match="not on this line"):
        PlantEmulator(
            plant,
            module_broker.settings("equipment", "x", session_expiry_s=60),
            EmulatorConfig(drops=(DropFault("milling-9", 0, 1),)),
        )
