"""BridgeTwin: live feed, bad samples rejected without a change, the env observation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edge_bridge.twin import BridgeTwin
from envs.line_env import ProductionLineEnv
from envs.plant import Plant, load_plant_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def intervals() -> list[list[dict[str, float]]]:
    """Three decision intervals of plant samples (the reset sample first)."""
    config = dataclasses.replace(
        load_plant_config(REPO / "configs" / "plant_example.toml"), drift=()
    )
    with Plant(config) as plant:
        plant.reset()
        result = [list(plant.samples)]
        for _ in range(3):
            plant.advance()
            result.append(list(plant.samples))
    return result


@pytest.fixture
def twin() -> Iterator[BridgeTwin]:
    with BridgeTwin("automotive_components", sample_interval_s=60.0, start_s=6 * 3600.0) as made:
        yield made


def speeds(twin: BridgeTwin) -> np.ndarray:
    return np.ones(len(twin.machine_names))


def test_update_reports_every_machine(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    update = twin.update(intervals[1], {n: {"speed_factor": 1.0} for n in twin.machine_names})
    assert set(update.trust) == set(twin.machine_names) == set(update.drifted)
    assert update.samples == 5 and update.time_s == intervals[1][-1]["time_s"]
    assert not update.ready  # the warm-up lasts an hour
    assert "machining-1.temperature" in update.residuals
    assert all(math.isfinite(v) for v in update.residuals.values())


def test_observation_has_the_env_shape(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    twin.update(intervals[1], speeds(twin))
    env = ProductionLineEnv("automotive_components")
    try:
        assert twin.observation().shape == env.observation_space.shape
        assert env.observation_space.contains(twin.observation())
    finally:
        env.close()
    measured = intervals[1][-1]["machining-1.temperature"]
    if math.isfinite(measured):  # temperature is nudged with gain 1: the twin sits on it
        assert twin.observation()[0] == pytest.approx(measured / 100.0, abs=1e-4)


def _bad_inputs(samples: list[dict[str, float]]) -> list[tuple[list[dict[str, float]], str]]:
    unknown = [dict(s) for s in samples]
    unknown[2]["milling-9.temperature"] = 40.0
    backwards = [dict(s) for s in samples]
    backwards[1], backwards[2] = backwards[2], backwards[1]
    stateless = [dict(s) for s in samples]
    del stateless[3]["welding-1.state"]
    nan_state = [dict(s) for s in samples]
    nan_state[0]["inspection-1.state"] = math.nan
    wrong_kind = [dict(s) for s in samples]
    wrong_kind[0]["machining-1.pressure"] = 1.0
    no_time = [dict(s) for s in samples]
    del no_time[4]["time_s"]
    return [
        (unknown, "unknown machine"),
        (backwards, "advance in time"),
        (stateless, "welding-1.state"),
        (nan_state, "inspection-1.state"),
        (wrong_kind, "not a measured signal"),
        (no_time, "time_s"),
        ([], "no samples"),
    ]


def test_bad_samples_raise_and_change_nothing(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    for bad, message in _bad_inputs(intervals[1]):
        with pytest.raises(ValueError, match=message):
            twin.update(bad, speeds(twin))
    with pytest.raises(ValueError, match="outside"):
        twin.update(intervals[1], np.full(len(twin.machine_names), 9.0))
    with pytest.raises(ValueError, match="missing machines"):
        twin.update(intervals[1], {"machining-1": {"speed_factor": 1.0}})
    with pytest.raises(ValueError, match="advance in time"):  # a replayed old interval
        twin.update(intervals[0], speeds(twin))
    got = twin.update(intervals[1], speeds(twin))
    with BridgeTwin("automotive_components", sample_interval_s=60.0, start_s=6 * 3600.0) as clean:
        clean.update(intervals[0], speeds(clean))
        expected = clean.update(intervals[1], speeds(clean))
    assert got == expected
    assert np.array_equal(twin.observation(), clean.observation())


def test_dropped_signals_and_gaps_are_accepted(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    dropped = [dict(s) for s in intervals[1]]
    dropped[0]["machining-2.temperature"] = math.nan
    del dropped[1]["machining-3.wear"]
    gap = dropped[:2] + dropped[3:]  # one sample lost in transit: replayed as held
    update = twin.update(gap, speeds(twin))
    assert update.samples == 4


def test_a_time_gap_resyncs_every_machine(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    assert twin.update(intervals[1], speeds(twin)).resynced == ()
    update = twin.update(intervals[3], speeds(twin))  # interval 2 never arrived: 5 samples
    assert update.resynced == twin.machine_names
    for machine in twin.line.machines:  # restarted from the measurement (gain 1)
        measured = intervals[3][-1][f"{machine.name}.temperature"]
        if math.isfinite(measured):
            assert machine.temperature == pytest.approx(measured, abs=1e-6)


def test_a_silent_machine_is_resynced_when_it_reports_again(
    twin: BridgeTwin, intervals: list[list[dict[str, float]]]
) -> None:
    twin.update(intervals[0], speeds(twin))
    silent = [dict(s) for s in intervals[1]]
    for sample in silent[:4]:  # machining-2's gateway lost 4 samples (state held by the bridge)
        for kind in ("temperature", "wear", "power", "vibration"):
            sample[f"machining-2.{kind}"] = math.nan
    assert twin.update(silent, speeds(twin)).resynced == ("machining-2",)
    assert twin.update(intervals[2], speeds(twin)).resynced == ()


def test_constructor_checks_the_sample_interval() -> None:
    with pytest.raises(ValueError, match="whole number"):
        BridgeTwin("automotive_components", sample_interval_s=45.0)
