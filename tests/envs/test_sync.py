"""Twin synchronisation: state writes through FMU serialisation, nudging against an
unsynchronised twin, fidelity and trust on a healthy and a drifting plant, Page-Hinkley."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fmus
from envs.fmu import FmuUnit
from envs.fmu.errors import FmuVariableError
from envs.line import ProductionLine
from envs.plant import DriftEvent, Plant, PlantConfig
from envs.sync import FidelityMonitor, Nudger, PageHinkley, StateEditor, TwinTracker

HEALTHY_FACTORS = (1.05, 0.95, 1.0, 1.1, 1.0, 0.9, 1.05)


@pytest.fixture
def mill():
    unit = FmuUnit(fmus.path("CncMill"))
    unit.set("mode", 3)
    unit.step(120.0)
    yield unit
    unit.close()


# -- StateEditor ------------------------------------------------------------------------
def test_outputs_cannot_be_set_directly(mill):
    with pytest.raises(FmuVariableError, match="only inputs and parameters"):
        mill.set("spindle_temperature", 60.0)


def test_state_editor_writes_a_state_and_outputs_follow(mill):
    editor = StateEditor(mill)
    time, energy, hazard = mill.time, mill.get("energy"), mill.get("hazard_rate")
    editor.write({"spindle_temperature": 75.0, "tool_wear": 0.1})
    assert mill.get("spindle_temperature") == 75.0
    assert mill.get("tool_wear") == 0.1
    assert mill.time == time and mill.get("energy") == energy
    # derived outputs are recomputed from the new state: 20 K above the alarm temperature
    assert mill.get("hazard_rate") > 5 * hazard
    mill.step(60.0)  # the physics continues from the written state: it cools toward steady
    assert 30.0 < mill.get("spindle_temperature") < 75.0
    assert mill.get("tool_wear") > 0.1


def test_state_editor_rejects_bad_values_and_changes_nothing(mill):
    editor = StateEditor(mill)
    before = mill.get("spindle_temperature"), mill.get("tool_wear")
    with pytest.raises(ValueError, match="not a finite number"):
        editor.write({"spindle_temperature": 50.0, "tool_wear": math.nan})
    with pytest.raises(ValueError, match="pass clip=True"):
        editor.write({"tool_wear": -0.01})
    with pytest.raises(KeyError, match="no Real variable 'colour'"):
        editor.write({"spindle_temperature": 50.0, "colour": 1.0})
    assert (mill.get("spindle_temperature"), mill.get("tool_wear")) == before
    assert editor.write({"tool_wear": -0.01}, clip=True) == {"tool_wear": 0.0}
    assert mill.get("tool_wear") == 0.0


# -- nudging ----------------------------------------------------------------------------
def twin_of(plant: Plant) -> ProductionLine:
    twin = ProductionLine(plant.nominal_scenario)
    twin.reset(np.random.default_rng(plant.config.seed), start_s=plant.config.start_h * 3600.0)
    return twin


def test_nudging_reduces_error_against_an_unsynchronised_twin():
    config = PlantConfig(
        seed=11,
        ambient_temperature=23.0,
        wear_rate_factors=(1.15, 0.9, 1.05, 1.2, 1.1, 0.95, 1.0),
        dropout_probability=0.05,
    )
    plant = Plant(config)
    plant.reset()
    twins = {beta: twin_of(plant) for beta in (0.0, 0.5)}
    nudgers = {beta: Nudger(twin, beta) for beta, twin in twins.items()}
    errors: dict[float, dict[str, list[float]]] = {
        b: {"temperature": [], "wear": []} for b in twins
    }
    n = len(plant.machine_names)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    for _ in range(24):  # 2 h
        plant.advance()
        truth, measurement = plant.true_samples[-1], plant.measure()
        for beta, twin in twins.items():
            twin.advance(ones, off, off)
            predicted = nudgers[beta].predict()  # one interval ahead of the last nudge
            for key, value in truth.items():
                kind = key.rsplit(".", 1)[-1]
                if kind in errors[beta]:
                    errors[beta][kind].append(predicted[key] - value)
            nudgers[beta].nudge(measurement)
    plant.close()
    for twin in twins.values():
        twin.close()
    rmse = {
        beta: {kind: float(np.sqrt(np.mean(np.square(v)))) for kind, v in kinds.items()}
        for beta, kinds in errors.items()
    }
    assert rmse[0.5]["temperature"] < 0.7 * rmse[0.0]["temperature"]
    assert rmse[0.5]["wear"] < 0.3 * rmse[0.0]["wear"]


def test_nudge_moves_the_state_by_beta_and_skips_dropouts():
    plant = Plant(PlantConfig(seed=1))
    plant.reset()
    twin = twin_of(plant)
    nudger = Nudger(twin, {"temperature": 0.25})
    n = len(plant.machine_names)
    twin.advance(np.ones(n), np.zeros(n, bool), np.zeros(n, bool))
    before = nudger.predict()
    measurement = {"machining-1.temperature": before["machining-1.temperature"] + 4.0}
    measurement["machining-2.temperature"] = math.nan
    measurement["machining-1.wear"] = 0.9  # wear has no gain here: untouched
    innovations = nudger.nudge(measurement)
    after = nudger.predict()
    assert innovations == {"machining-1.temperature": pytest.approx(4.0)}
    assert after["machining-1.temperature"] == pytest.approx(before["machining-1.temperature"] + 1)
    assert after["machining-2.temperature"] == before["machining-2.temperature"]
    assert after["machining-1.wear"] == before["machining-1.wear"]
    with pytest.raises(ValueError, match=r"beta for 'wear' must be a number in \[0, 1\]"):
        Nudger(twin, {"wear": 1.5})
    with pytest.raises(ValueError, match="cannot nudge 'power'"):
        Nudger(twin, {"power": 0.5})
    plant.close()
    twin.close()


# -- trust and drift on a real plant ----------------------------------------------------
def track(drift: tuple[DriftEvent, ...], intervals: int = 24):
    config = PlantConfig(seed=1, wear_rate_factors=HEALTHY_FACTORS, drift=drift)
    plant = Plant(config)
    plant.reset()
    twin = twin_of(plant)
    tracker = TwinTracker(twin, beta=0.5)
    n = len(plant.machine_names)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    steps = []
    for _ in range(intervals):
        plant.apply(speed_factors=ones, maintenance=off, standby=off)
        plant.advance()
        steps.append(tracker.step(plant.measure(), ones, off, off))
    plant.close()
    twin.close()
    return steps


@pytest.mark.parametrize(
    ("event", "signal"),
    [
        (
            DriftEvent(time_h=1.5, target="wear_rate_factor", machine="machining-2", value=3.0),
            "machining-2.wear",
        ),
        (
            DriftEvent(time_h=1.5, target="ambient_temperature", operation="add", value=8.0),
            "machining-1.temperature",
        ),
    ],
)
def test_trust_is_high_on_a_healthy_plant_and_falls_after_drift(event, signal):
    steps = track((event,))
    healthy, drifted = steps[2:18], steps[18:]  # the drift acts from interval 19 on
    assert min(s.trust for s in healthy) > 0.6
    assert not any(s.drifted for s in steps[:18])  # no false alarm in 1.5 h
    assert drifted[2].trust < 0.5  # within 3 intervals of the drift
    assert max(s.trust for s in drifted[3:]) < 0.3  # and it stays low
    flagged = [k for k, s in enumerate(drifted) if signal in s.drifted]
    assert flagged and flagged[0] <= 2  # Page-Hinkley flags within 3 intervals


# -- Page-Hinkley and the fidelity monitor on known streams -----------------------------
def test_page_hinkley_flags_a_mean_shift_within_a_few_samples():
    rng = np.random.default_rng(0)
    detector = PageHinkley(delta=0.5, threshold=12.0)
    stationary = rng.normal(0.0, 1.0, 3000)
    assert not any(detector.update(x) for x in stationary)
    shifted = rng.normal(3.0, 1.0, 50)
    flags = [detector.update(x) for x in shifted]
    assert True in flags and flags.index(True) < 8
    down = PageHinkley(delta=0.5, threshold=12.0, direction="down")
    assert not any(down.update(x) for x in np.concatenate([stationary[:500], shifted]))
    assert not detector.update(math.nan)
    with pytest.raises(ValueError, match="threshold must be a positive number"):
        PageHinkley(threshold=0.0)


def test_fidelity_metrics_and_trust_on_known_residuals():
    monitor = FidelityMonitor({"temperature": 10.0}, window=4, tolerance=0.1, min_samples=2)
    assert monitor.trust() == 0.0  # no evidence, no trust
    for residual in (1.0, -1.0, 1.0, -1.0, 3.0):
        monitor.update({"m.temperature": 50.0 + residual, "m.power": 1.0}, {"m.temperature": 50.0})
    metrics = monitor.metrics()
    assert set(metrics) == {"m.temperature"}  # power has no scale, so it is not monitored
    window = np.array([-1.0, 1.0, -1.0, 3.0])
    assert metrics["m.temperature"].nrmse == pytest.approx(np.sqrt(np.mean(window**2)) / 10)
    assert metrics["m.temperature"].bias == pytest.approx(window.mean())
    assert monitor.trust() == pytest.approx(2 ** (-metrics["m.temperature"].nrmse / 0.1))
    monitor.update({"m.temperature": math.nan}, {"m.temperature": 50.0})  # a dropout
    assert monitor.metrics()["m.temperature"].samples == 4
    with pytest.raises(ValueError, match="scale of 'wear' must be a positive number"):
        FidelityMonitor({"wear": 0.0})
