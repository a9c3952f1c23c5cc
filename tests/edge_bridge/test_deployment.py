"""LocalDeployment: broker, bridge and emulated plant on this machine, started and stopped in
order; bad input refused before anything starts."""

from __future__ import annotations

import dataclasses

import pytest

from edge_bridge.deployment import (
    CountingDedup,
    LocalDeployment,
    check_plant_matches,
    write_gate_config,
)
from edge_bridge.gate_config import load_gate_config
from edge_bridge.settings import BridgeSettings
from envs.config import ConfigError
from envs.plant import DriftEvent, load_plant_config


def unattended(tmp_path, **changes) -> BridgeSettings:
    gate = tmp_path / "gate.toml"
    write_gate_config(gate, require_approval=False, min_intervals=2)
    return BridgeSettings(gate=str(gate), **changes)


def test_a_lockstep_deployment_runs_intervals_applies_every_command_once_and_stops(tmp_path):
    drift = DriftEvent(time_h=0.1, target="wear_rate_factor", machine="machining-1", value=2.0)
    deployment = LocalDeployment(
        tmp_path / "local", unattended(tmp_path), keep_plant_drift=False, drift=[drift]
    )
    with pytest.raises(RuntimeError, match="start"):
        deployment.bridge  # noqa: B018
    with deployment:
        assert deployment.broker.running
        results = deployment.run(4)
        assert [r.interval for r in results] == [0, 1, 2, 3]
        assert deployment.settle()
        bridge, emulator = deployment.bridge, deployment.emulator
        commands = bridge.loop.ledger.commands()
        assert len(commands) == 4 * len(bridge.machines)
        assert {c.status for c in commands} == {"confirmed"}
        assert emulator.counters.applied == len(commands)
        assert deployment.dedup.applied_twice() == []
        assert len(deployment.dedup.applications) == len(commands)
        assert deployment.store_path.is_file()
    assert not deployment.broker.running
    with pytest.raises(RuntimeError, match="start"):
        deployment.emulator  # noqa: B018
    deployment.stop()  # twice is fine


def test_a_free_running_deployment_steps_on_the_wall_clock(tmp_path):
    deployment = LocalDeployment(tmp_path / "local", unattended(tmp_path), realtime_factor=1200.0)
    with deployment:
        deployment.run_emulator(3)
        assert deployment.running
        with pytest.raises(RuntimeError, match="already running"):
            deployment.run_emulator(1)
        assert deployment.wait(10.0)
        assert len(deployment.results) == 3
        assert deployment.settle()


def test_bad_input_is_refused_before_anything_starts(tmp_path):
    plant = load_plant_config("configs/plant_example.toml")
    with pytest.raises(ValueError, match="start_h"):
        LocalDeployment(tmp_path / "a", BridgeSettings(start_h=7.0))
    with pytest.raises(ValueError, match="sample_interval_s"):
        check_plant_matches(BridgeSettings(), dataclasses.replace(plant, sample_interval_s=30.0))
    with pytest.raises(ValueError, match="realtime_factor"):
        LocalDeployment(tmp_path / "b", realtime_factor=0.0)
    bad = DriftEvent(time_h=1.0, target="wear_rate_factor", machine="machining-9", value=2.0)
    with pytest.raises(ValueError, match="machining-9"):
        LocalDeployment(tmp_path / "c", drift=[bad])
    assert not any((tmp_path / name).exists() for name in "abc")  # nothing was written


def test_write_gate_config_validates_before_writing(tmp_path):
    path = tmp_path / "gate.toml"
    config = write_gate_config(path, require_approval=False, rollback_kpi_tolerance=0.5)
    assert load_gate_config(path) == config
    assert not config.require_approval and config.rollback_kpi_tolerance == 0.5
    with pytest.raises(ConfigError, match="min_intervals"):
        write_gate_config(tmp_path / "bad.toml", min_intervals=0)
    assert not (tmp_path / "bad.toml").exists()


def test_the_counting_dedup_window_counts_applications_per_key():
    window = CountingDedup()
    assert window  # empty, still a window (PlantEmulator takes `dedup or DedupWindow()`)
    assert window.remember("id-1", "m:0:v")
    assert not window.remember("id-1", "m:0:v")
    assert window.applied_twice() == ["m:0:v"]
