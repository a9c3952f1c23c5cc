"""Discrete-state synchronisation: the twin adopts a failure it did not draw and a repair that
ended in the plant; busy/idle differences are only counted; bad state codes change nothing."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.line import DOWN_STATES, ProductionLine
from envs.machines import MachineState
from envs.plant import Plant, PlantConfig
from envs.sync import DiscreteStateSync, TwinTracker


def plant_and_twin(seed: int = 4):
    plant = Plant(PlantConfig(seed=seed))
    plant.reset()
    twin = ProductionLine(plant.nominal_scenario)
    twin.reset(np.random.default_rng(seed), start_s=plant.config.start_h * 3600.0)
    return plant, twin


def run_with_injected_failure(follow_states: bool):
    """The plant's first mill fails after 30 min (an event the twin did not draw)."""
    plant, twin = plant_and_twin()
    tracker = TwinTracker(twin, beta=0.5, follow_states=follow_states)
    n = len(plant.machine_names)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    steps, twin_states = [], []
    for interval in range(12):
        if interval == 6:
            plant.line.request_failure(0)
        plant.advance()
        steps.append(tracker.step(plant.measure(), ones, off, off))
        twin_states.append(twin.machines[0].state)
    plant_state = plant.line.machines[0].state
    plant.close()
    twin.close()
    return steps, twin_states, plant_state


def test_twin_adopts_a_failure_it_did_not_draw():
    followed, states, plant_state = run_with_injected_failure(True)
    free, free_states, _ = run_with_injected_failure(False)
    assert plant_state in DOWN_STATES  # repairs take about an hour: still down at the end
    assert all(s.state_mismatch == () for s in followed[:6])  # same seed: same states before
    assert "machining-1" in followed[6].state_mismatch  # seen at the first measurement after
    assert all(state in DOWN_STATES for state in states[7:])  # ... adopted from the next one
    assert all("machining-1" not in s.state_mismatch for s in followed[8:])
    assert all("machining-1" in s.state_mismatch for s in free[6:])
    assert not any(state in DOWN_STATES for state in free_states)

    # the failed mill cools; the twin that followed predicts it, the other keeps it cutting
    def error(steps):
        return np.mean([abs(s.residuals["machining-1.temperature"]) for s in steps[8:]])

    assert error(followed) < 0.25 * error(free)


def test_twin_ends_a_repair_the_plant_has_finished():
    plant, twin = plant_and_twin()
    n = len(twin.machines)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    twin.request_failure(1)  # the twin draws a failure the plant does not have
    plant.advance()
    twin.advance(ones, off, off)
    assert twin.machines[1].state in DOWN_STATES
    assert plant.line.machines[1].state not in DOWN_STATES
    sync = DiscreteStateSync(twin)
    correction = sync.correct(plant.measure())
    assert correction.restored == ("machining-2",) and correction.failed == ()
    twin.advance(ones, off, off)
    assert twin.machines[1].state not in DOWN_STATES
    assert twin.machines[1].wear_ratio < 0.05  # back from repair with a new tool
    plant.close()
    twin.close()


def test_busy_idle_differences_are_counted_not_forced():
    plant, twin = plant_and_twin()
    n = len(twin.machines)
    twin.advance(np.ones(n), np.zeros(n, bool), np.zeros(n, bool))
    sync = DiscreteStateSync(twin)
    report = {f"{m.name}.state": float(int(m.state)) for m in twin.machines}
    other = MachineState.IDLE if twin.machines[0].state is MachineState.BUSY else MachineState.BUSY
    report["machining-1.state"] = float(int(other))
    report["machining-2.state"] = math.nan  # no report: left alone
    assert sync.mismatched(report) == ("machining-1",)
    correction = sync.correct(report)
    assert correction.mismatched == ("machining-1",)
    assert correction.failed == () and correction.restored == ()
    _, events = twin.advance(np.ones(n), np.zeros(n, bool), np.zeros(n, bool))
    assert events["failures"] == 0  # nothing was forced
    plant.close()
    twin.close()


def test_bad_state_codes_and_indices_are_rejected():
    plant, twin = plant_and_twin()
    sync = DiscreteStateSync(twin)
    report = {f"{m.name}.state": float(MachineState.FAILED) for m in twin.machines}
    report["welding-1.state"] = 9.0
    with pytest.raises(ValueError, match=r"welding-1.state = 9.0 is not a machine state code"):
        sync.correct(report)
    n = len(twin.machines)
    _, events = twin.advance(np.ones(n), np.zeros(n, bool), np.zeros(n, bool))
    assert events["failures"] == 0  # the rejected report requested nothing
    report["welding-1.state"] = 2.5
    with pytest.raises(ValueError, match="is not a machine state code"):
        sync.correct(report)
    with pytest.raises(IndexError, match=r"machine index 7 is not in 0..6"):
        twin.request_failure(7)
    plant.close()
    twin.close()
