"""The extended Kalman filter: it tracks a mis-calibrated plant better than fixed-gain nudging,
its FMU-snapshot Jacobian is physically sane, and bad settings or measurements change nothing."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from envs.line import ProductionLine
from envs.plant import HiddenParameter, Plant, PlantConfig
from envs.sync import KalmanFilter, Nudger, TwinTracker

MISCALIBRATED = PlantConfig(
    seed=11,
    ambient_temperature=23.0,
    wear_rate_factors=(1.15, 0.9, 1.05, 1.2, 1.1, 0.95, 1.0),
    dropout_probability=0.05,
    hidden=(HiddenParameter(station="machining", name="thermal_resistance", value=0.021),),
)


def per_sample_twin(plant: Plant) -> ProductionLine:
    """A nominal twin that advances one plant sample interval per step."""
    scenario = dataclasses.replace(
        plant.nominal_scenario, decision_interval_s=plant.config.sample_interval_s
    )
    twin = ProductionLine(scenario)
    twin.reset(np.random.default_rng(plant.config.seed), start_s=plant.config.start_h * 3600.0)
    return twin


def test_kalman_beats_nudging_and_the_free_running_twin():
    plant = Plant(MISCALIBRATED)
    plant.reset()
    twins = {name: per_sample_twin(plant) for name in ("free", "nudging", "kalman")}
    syncs = {
        "free": Nudger(twins["free"], 0.0),
        "nudging": Nudger(twins["nudging"], 0.5),
        "kalman": KalmanFilter(twins["kalman"]),
    }
    errors = {name: {"temperature": [], "wear": []} for name in twins}
    n = len(plant.machine_names)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    for interval in range(12):  # 1 h, 60 samples
        plant.advance()
        for measured, truth in zip(plant.samples, plant.true_samples, strict=True):
            for name, sync in syncs.items():
                sync.begin()
                twins[name].advance(ones, off, off)
                predicted = sync.predict()  # one sample ahead of the last correction
                if interval >= 2:
                    for key, value in truth.items():
                        kind = key.rsplit(".", 1)[-1]
                        if kind in errors[name]:
                            errors[name][kind].append(predicted[key] - value)
                sync.correct(measured)
    plant.close()
    for twin in twins.values():
        twin.close()
    rmse = {
        name: {kind: float(np.sqrt(np.mean(np.square(v)))) for kind, v in kinds.items()}
        for name, kinds in errors.items()
    }
    assert rmse["kalman"]["temperature"] < 0.2 * rmse["free"]["temperature"]
    assert rmse["kalman"]["wear"] < 0.2 * rmse["free"]["wear"]
    assert rmse["kalman"]["temperature"] < rmse["nudging"]["temperature"]
    assert rmse["kalman"]["wear"] < 1.05 * rmse["nudging"]["wear"]


@pytest.fixture
def twin_and_filter():
    plant = Plant(PlantConfig(seed=2))
    twin = ProductionLine(plant.nominal_scenario)
    twin.reset(np.random.default_rng(2), start_s=6 * 3600.0)
    plant.close()
    n = len(twin.machines)
    ones, off = np.ones(n), np.zeros(n, dtype=bool)
    for _ in range(3):  # warm up: machines busy and heating
        twin.advance(ones, off, off)
    yield twin, KalmanFilter(twin), (ones, off, off)
    twin.close()


def test_jacobian_from_fmu_replays_is_physical(twin_and_filter):
    twin, kalman, setpoints = twin_and_filter
    mill = twin.machines[0]
    start = mill.unit.snapshot()
    elapsed = 300.0
    twin.advance(*setpoints)
    reached, time = kalman.state(mill), mill.unit.time
    jacobian = kalman._jacobian(mill, start, elapsed)
    # the replays restore the advanced FMU exactly
    assert np.array_equal(kalman.state(mill), reached) and mill.unit.time == time
    # a temperature offset decays (first-order lag, tau = R_th * C_th = 486 s nominal),
    # wear carries over one to one, and neither state drives the other much
    tau = mill.unit.get("thermal_resistance") * mill.unit.get("thermal_capacity")
    assert jacobian[0, 0] == pytest.approx(math.exp(-elapsed / tau), abs=0.1)
    assert jacobian[1, 1] == pytest.approx(1.0, abs=0.02)
    assert abs(jacobian[1, 0]) < 0.01
    assert 0 < jacobian[0, 0] < 1


def test_predict_grows_and_correct_shrinks_the_uncertainty(twin_and_filter):
    twin, kalman, setpoints = twin_and_filter
    name = twin.machines[0].name
    std0 = kalman.std()
    kalman.begin()
    twin.advance(*setpoints)
    predicted = kalman.predict()
    grown = kalman.std()
    assert grown[f"{name}.wear"] > std0[f"{name}.wear"]
    measurement = {
        f"{name}.temperature": predicted[f"{name}.temperature"] + 2.0,
        f"{name}.wear": math.nan,  # dropped: only the temperature corrects
    }
    innovations = kalman.correct(measurement)
    after = kalman.predict()
    assert innovations == {f"{name}.temperature": pytest.approx(2.0)}
    gain = after[f"{name}.temperature"] - predicted[f"{name}.temperature"]
    assert 1.0 < gain < 2.0  # the twin is uncertain after reset: a large gain, not all the way
    assert kalman.std()[f"{name}.temperature"] < 0.3  # close to the 0.2 K sensor noise
    # a machine without any measurement keeps its state and its covariance
    other = twin.machines[1].name
    assert after[f"{other}.temperature"] == predicted[f"{other}.temperature"]
    assert kalman.std()[f"{other}.temperature"] == grown[f"{other}.temperature"]


def test_bad_settings_are_rejected(twin_and_filter):
    twin, _, _ = twin_and_filter
    with pytest.raises(ValueError, match=r"process_std\['wear'\] must be a positive number"):
        KalmanFilter(twin, process_std={"wear": -1.0})
    with pytest.raises(ValueError, match="unknown signal kind 'power'"):
        KalmanFilter(twin, measurement_std={"power": 0.1})
    with pytest.raises(ValueError, match="must be a positive number, not nan"):
        KalmanFilter(twin, initial_std={"temperature": math.nan})
    other = ProductionLine(twin.scenario)
    other.reset(np.random.default_rng(0))
    with pytest.raises(ValueError, match="built on the tracked twin"):
        TwinTracker(twin, synchroniser=KalmanFilter(other))
    other.close()
