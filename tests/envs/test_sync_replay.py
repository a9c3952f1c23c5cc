"""State replay: a twin whose machines follow a recording's reported states reproduces the
plant's physics without the plant's event seed, so calibration works on data no seed replays."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from envs.line import ProductionLine
from envs.machines import MachineState
from envs.plant import HiddenParameter, Plant, PlantConfig
from envs.sync import Calibrator, FitParameter, TwinTracker
from envs.sync.recorder import record
from envs.sync.replay import StateReplay

PLANT = PlantConfig(
    seed=7,
    sample_interval_s=30.0,  # one sample per tick: the reported states are the whole story
    ambient_temperature=23.0,
    wear_rate_factors=(1.15, 0.9, 1.05, 1.2, 1.1, 0.95, 1.0),
    hidden=(HiddenParameter(station="machining", name="thermal_resistance", value=0.021),),
)
FITS = [
    FitParameter("machining", "thermal_resistance"),
    FitParameter("", "ambient_temperature"),
    FitParameter("machining-1", "wear_rate_factor", (0.2, 5.0)),
]
TRUE = {  # value, relative tolerance from 30 noisy minutes
    "machining.thermal_resistance": (0.021, 0.01),
    "*.ambient_temperature": (23.0, 0.01),
    "machining-1.wear_rate_factor": (1.15, 0.03),
}


@pytest.fixture(scope="module")
def recording_and_scenario():
    with Plant(PLANT) as plant:
        yield record(plant, 6), plant.nominal_scenario  # 30 min, 60 samples


def test_calibration_by_state_replay_needs_no_seed(recording_and_scenario):
    recording, scenario = recording_and_scenario
    unknown_events = dataclasses.replace(recording, seed=12345)  # a seed that replays nothing
    calibrator = Calibrator(scenario, FITS, replay="states")
    result = calibrator.fit(unknown_events)
    calibrator.close()
    for key, (true, tolerance) in TRUE.items():
        assert result.values[key] == pytest.approx(true, rel=tolerance), key
    events = Calibrator(scenario, FITS)  # replaying the wrong seed instead: the flow parts
    wrong = events.fit(unknown_events)
    events.close()
    assert wrong.rmse > result.rmse


def test_replayed_machines_are_in_the_reported_states(recording_and_scenario):
    recording, scenario = recording_and_scenario
    twin = ProductionLine(dataclasses.replace(scenario, decision_interval_s=30.0))
    twin.reset(np.random.default_rng(99), start_s=recording.start_s)
    replay = StateReplay(twin, recording)
    assert replay.ticks == 1
    threshold = replay.thresholds["machining-1"]
    assert 5.0 < threshold < 11.0  # between handling (~5 kW) and cutting (~11 kW)
    assert replay.thresholds["welding-1"] is None  # robots have no cutting phase
    cutting_agrees = []
    for index, sample in enumerate(recording.samples):
        replay.advance(index)
        for machine in twin.machines:
            assert int(machine.state) == sample[f"{machine.name}.state"]
        mill = twin.machines[0]
        measured = sample["machining-1.power"]
        if mill.state is MachineState.BUSY and math.isfinite(measured):
            cutting_agrees.append((mill.output("power") > threshold) == (measured > threshold))
    assert twin.time_s == pytest.approx(recording.start_s + 30.0 * len(recording.samples))
    assert cutting_agrees and all(cutting_agrees)
    twin.close()


def test_state_replay_rejects_recordings_it_cannot_follow(recording_and_scenario):
    recording, scenario = recording_and_scenario
    twin = ProductionLine(dataclasses.replace(scenario, decision_interval_s=30.0))
    twin.reset(np.random.default_rng(0), start_s=recording.start_s)
    samples = [dict(s) for s in recording.samples]
    samples[3]["welding-2.state"] = math.nan
    with pytest.raises(ValueError, match=r"missing or NaN: welding-2.state"):
        StateReplay(twin, dataclasses.replace(recording, samples=tuple(samples)))
    with pytest.raises(ValueError, match="not a whole number of the scenario's 30.0 s ticks"):
        StateReplay(twin, dataclasses.replace(recording, sample_interval_s=45.0))
    with pytest.raises(ValueError, match=r"replay must be one of \('events', 'states'\)"):
        Calibrator(scenario, FITS, replay="seed")
    twin.close()


def test_tracker_with_state_replay_follows_a_plant_it_cannot_replay():
    config = dataclasses.replace(PLANT, sample_interval_s=60.0, seed=3)
    with Plant(config) as plant:
        recording = record(plant, 6)
        scenario = plant.nominal_scenario
    twin = ProductionLine(dataclasses.replace(scenario, decision_interval_s=60.0))
    twin.reset(np.random.default_rng(999), start_s=recording.start_s)  # not the plant's seed
    replay = StateReplay(twin, recording)
    tracker = TwinTracker(twin, replay=replay)
    speed, maintenance, standby = recording.setpoints[0]
    steps = []
    for j in range(6):
        interval = recording.samples[5 * j : 5 * j + 5]
        steps.append(tracker.step(interval[-1], speed, maintenance, standby, samples=interval))
        for machine in twin.machines:
            assert int(machine.state) == interval[-1][f"{machine.name}.state"]
    assert all(step.state_mismatch == () for step in steps)
    # the uncalibrated twin (R_th, ambient hidden) misses by a few kelvin, never by more
    temperatures = [r for s in steps for k, r in s.residuals.items() if k.endswith("temperature")]
    assert temperatures and all(abs(r) < 8.0 for r in temperatures)
    with pytest.raises(ValueError, match="samples must end with the measurement"):
        tracker.step(interval[0], speed, maintenance, standby, samples=interval)
    bad = dict(interval[-1], **{"inspection-1.state": 11.0})
    with pytest.raises(ValueError, match=r"inspection-1.state = 11.0: replaying states needs"):
        tracker.step(bad, speed, maintenance, standby, samples=[bad])
    twin.close()


def test_replayed_machines_count_their_operating_hours_as_the_line_does(recording_and_scenario):
    recording, scenario = recording_and_scenario
    twin = ProductionLine(dataclasses.replace(scenario, decision_interval_s=30.0))
    twin.reset(np.random.default_rng(99), start_s=recording.start_s)
    replay = StateReplay(twin, recording)
    busy_ticks = dict.fromkeys((m.name for m in twin.machines), 0)
    for index in range(len(recording.samples)):
        replay.advance(index)
        for machine in twin.machines:
            busy_ticks[machine.name] += machine.state is MachineState.BUSY
    for machine in twin.machines:  # no repair in the window: every busy tick counts
        assert machine.hours_since_maintenance == pytest.approx(busy_ticks[machine.name] / 120)
    assert max(busy_ticks.values()) > 0
    twin.close()
