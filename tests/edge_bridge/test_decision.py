"""The bridge's decision loop on the emulated plant, in process (the MQTT service around it is
tested in test_service.py): warm-up hold, promotion on healthy evidence, rollback on a drift,
envelope and audit rows, restart from the store."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_bridge.assembler import IntervalAssembler
from edge_bridge.audit import AuditLog
from edge_bridge.decision import DecisionLoop
from edge_bridge.settings import BridgeSettings
from edge_bridge.store import Store
from envs.plant import DriftEvent, Plant, load_plant_config

GATE = """
rollout_id = "test-rollout"
min_intervals = {n}
kpi_min_intervals = {n}
trust_threshold = 0.5
kpi_tolerance = 0.05
rollback_kpi_tolerance = 0.5
require_approval = false
start_h = 6.0

[[cohorts]]
name = "mill-1"
machines = ["machining-1"]

[[cohorts]]
name = "rest"
"""


def settings(tmp_path, *, n: int = 2, candidate: str = "condition_based") -> BridgeSettings:
    gate = tmp_path / "gate.toml"
    gate.write_text(GATE.format(n=n))
    return BridgeSettings(
        incumbent="condition_based",
        candidate=candidate,
        shadow_pairs=1,  # one paired week keeps the test quick (the default is 4)
        gate=str(gate),
        store=str(tmp_path / "bridge.sqlite"),
    )


def healthy_plant(drift: tuple[DriftEvent, ...] = ()) -> Plant:
    config = load_plant_config("configs/plant_example.toml")
    plant = Plant(dataclasses.replace(config, drift=drift))
    plant.reset()
    return plant


class Run:
    """The plant and a decision loop, commands applied and acknowledged in process."""

    def __init__(self, tmp_path, plant: Plant, **options) -> None:
        self.settings = settings(tmp_path, **options)
        self.store = Store(self.settings.store)
        self.loop = DecisionLoop.from_settings(
            self.settings, AuditLog(self.store), clock=lambda: 1.0e9
        )
        self.plant = plant
        names = plant.machine_names
        self.signals = {
            name: ("temperature", "wear", "power", "vibration", "state") for name in names
        }
        self.assembler = IntervalAssembler(
            names,
            self.signals,
            decision_interval_s=300.0,
            stale_after_s=180.0,
            wait_s=1.0,
            clock=lambda: self.now,
        )
        self.now = 0.0
        self.pending = [plant.samples[-1]]  # the t = 0 sample
        self.silent: set[str] = set()

    def interval(self):
        self.plant.advance()
        self.pending += self.plant.samples
        for sample in self.pending:
            for machine in self.plant.machine_names:
                if machine in self.silent:
                    continue
                values = {s: sample.get(f"{machine}.{s}") for s in self.signals[machine]}
                self.assembler.add(machine, sample["time_s"], values)
        self.pending = []
        if self.silent:
            assert not self.assembler.ready()  # waits for the silent machine ...
            self.now += 1.0  # ... for wait_s
        assert self.assembler.ready()
        decision = self.loop.decide(self.assembler.complete())
        speed = np.array(
            [
                self.loop.reported.get(m, {}).get("speed_factor", 1.0)
                for m in self.plant.machine_names
            ]
        )
        for command in decision.commands:
            k = self.plant.machine_names.index(command.machine)
            speed[k] = command.setpoints["speed_factor"]
            settled = self.loop.ledger.record_ack(
                command.command_id, "applied", readback=dict(command.setpoints)
            )
            self.loop.acknowledged(settled)
        self.plant.apply(speed_factors=speed)
        for k, machine in enumerate(self.plant.machine_names):
            self.loop.reported[machine] = {"speed_factor": float(speed[k]), "standby": False}
        return decision

    def close(self) -> None:
        self.loop.close()
        self.store.close()
        self.plant.close()


def test_warm_up_holds_then_healthy_evidence_promotes_to_the_canary_and_on(tmp_path):
    run = Run(tmp_path, healthy_plant())
    try:
        stages, decisions = [], []
        for _ in range(18):
            decision = run.interval()
            decisions.append(decision)
            stages.append(decision.stage)
        assert stages[0] == "shadow"
        ready_at = next(i for i, d in enumerate(decisions) if min(d.trust.values()) > 0)
        assert ready_at >= 10  # an hour of samples (60) before trust means anything
        assert "canary[0]" in stages
        promoted = stages.index("canary[0]")
        assert promoted >= ready_at + 2 - 1  # N = 2 healthy intervals after the warm-up
        canary = decisions[promoted]
        assert canary.assignments["machining-1"] == "candidate"
        assert canary.assignments["machining-2"] == "incumbent"
        assert [e.kind for e in canary.events] == ["promotion"]
        report = decisions[-1].reports[0]  # what a console shows of machining-1
        assert [r.machine for r in decisions[-1].reports] == run.plant.machine_names
        assert report.trust is not None and report.assignment == "candidate"
        assert abs(report.predicted["temperature"] - report.measured["temperature"]) < 3.0
        assert report.limits["low"] == 0.7 and report.applied["speed_factor"] > 0
        assert decisions[0].reports[0].trust is None  # warming up: no score yet
        rows = run.loop.audit.query()
        assert len(rows) == 18 * 7
        assert all(row.ack_status == "confirmed" for row in rows if row.command_id)
        assert {row.machine for row in rows} == set(run.plant.machine_names)
    finally:
        run.close()


def test_a_drift_on_the_canary_machine_rolls_back_within_three_intervals(tmp_path):
    drift = (DriftEvent(time_h=1.75, target="wear_rate_factor", machine="machining-1", value=3.0),)
    run = Run(tmp_path, healthy_plant(drift), n=6)
    try:
        stages = [run.interval().stage for _ in range(30)]
        drift_index = round(1.75 * 12)  # the interval whose samples first show the drift
        assert stages[drift_index - 1] == "canary[0]"
        rolled = stages.index("rolled_back")
        assert rolled - drift_index <= 3
        events = run.loop.audit.events()
        rollback = next(e for e in events if e.kind == "rollback")
        assert "machining-1" in rollback.reason
        after = run.interval()
        assert set(after.assignments.values()) == {"incumbent"}
    finally:
        run.close()


def test_a_silent_machine_gets_its_last_known_good_setpoints(tmp_path):
    run = Run(tmp_path, healthy_plant())
    try:
        for _ in range(2):
            run.interval()
        good = dict(run.loop.last_good["welding-1"])
        run.silent = {"welding-1"}
        for _ in range(4):
            decision = run.interval()
        assert decision.assignments["welding-1"] == "fallback"
        command = next(c for c in decision.commands if c.machine == "welding-1")
        assert command.setpoints == good
        row = run.loop.audit.query(machine="welding-1")[-1]
        assert row.reason.startswith("fallback: no telemetry")
    finally:
        run.close()


def test_a_restart_resumes_the_stage_and_never_sends_a_decision_twice(tmp_path):
    run = Run(tmp_path, healthy_plant())
    try:
        while True:
            decision = run.interval()
            if decision.stage == "canary[0]":
                break
        index = decision.index
        sent = len(run.loop.ledger.commands())
        run.loop.close()
        run.store.close()
        run.store = Store(run.settings.store)
        run.loop = DecisionLoop.from_settings(
            run.settings, AuditLog(run.store), clock=lambda: 1.0e9
        )
        assert run.loop.gate.stage_label == "canary[0]"
        assert run.loop.gate.last_decision_index == index
        assert len(run.loop.ledger.commands()) == sent
        assert run.loop.last_good  # rebuilt from the confirmed commands
    finally:
        run.close()


def test_a_policy_that_does_not_fit_the_plant_fails_at_start(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a policy")
    config = settings(tmp_path, candidate=str(bad))
    store = Store(config.store)
    with pytest.raises(ValueError, match="not an exported policy"):
        DecisionLoop.from_settings(config, AuditLog(store), clock=lambda: 0.0)
    store.close()


def test_out_of_envelope_proposals_are_clamped_and_audited_never_sent_as_proposed(tmp_path):
    from envs.line_env import ProductionLineEnv
    from tests.edge_bridge.test_proposers import write_policy

    fast = tmp_path / "fast.npz"  # every machine at the top of its speed range
    env = ProductionLineEnv()
    write_policy(fast, env, scenario=env.scenario.name, bias=1.0)
    env.close()
    run = Run(tmp_path, healthy_plant())
    run.loop.close()
    run.settings = dataclasses.replace(run.settings, incumbent=str(fast), candidate="")
    run.loop = DecisionLoop.from_settings(run.settings, AuditLog(run.store), clock=lambda: 1e9)
    try:
        first = run.interval()
        speeds = {c.machine: c.setpoints["speed_factor"] for c in first.commands}
        assert speeds["machining-1"] == pytest.approx(1.3)  # no last applied: bounds only
        assert speeds["machining-2"] == pytest.approx(1.2)  # the envelope's cap for it
        row = run.loop.audit.query(machine="machining-2")[0]
        assert row.incumbent["speed_factor"] == pytest.approx(1.3)
        assert row.envelope_actions and row.envelope_actions[0][:2] == ["speed_factor", "clamp"]
        run.loop.last_good["welding-1"] = {"speed_factor": 1.0, "standby": False}
        second = run.interval()
        welding = next(c for c in second.commands if c.machine == "welding-1")
        assert welding.setpoints["speed_factor"] == pytest.approx(1.1)  # at most +0.1 a step
    finally:
        run.close()
