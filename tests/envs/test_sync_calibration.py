"""Calibration recovers known hidden parameters from 1 h of noisy plant data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.fmu.errors import FmuVariableError
from envs.plant import HiddenParameter, Plant, PlantConfig
from envs.sync import Calibrator, FitParameter, record

TRUE = {
    "machining.thermal_resistance": 0.021,  # nominal 0.018 K/W
    "machining.thermal_capacity": 30000.0,  # nominal 27000 J/K
    "*.ambient_temperature": 23.0,  # nominal 20 degC
    "machining-1.wear_rate_factor": 1.15,  # nominal 1
    "machining-4.wear_rate_factor": 1.2,
}


@pytest.fixture(scope="module")
def recording_and_scenario():
    config = PlantConfig(
        seed=3,
        ambient_temperature=23.0,
        wear_rate_factors=(1.15, 0.9, 1.05, 1.2, 1.1, 0.95, 1.0),
        dropout_probability=0.02,
        hidden=(
            HiddenParameter(station="machining", name="thermal_resistance", value=0.021),
            HiddenParameter(station="machining", name="thermal_capacity", value=30000.0),
        ),
    )
    with Plant(config) as plant:
        yield record(plant, 12), plant.nominal_scenario  # 1 h, 60 noisy samples


def test_calibration_recovers_hidden_parameters_within_5_percent(recording_and_scenario):
    recording, scenario = recording_and_scenario
    calibrator = Calibrator(
        scenario,
        [
            FitParameter("machining", "thermal_resistance"),
            FitParameter("machining", "thermal_capacity"),
            FitParameter("", "ambient_temperature"),
            FitParameter("machining-1", "wear_rate_factor", (0.2, 5.0)),
            FitParameter("machining-4", "wear_rate_factor", (0.2, 5.0)),
        ],
    )
    nominal_rmse = float(
        np.sqrt(np.mean(calibrator.residuals(recording, calibrator.nominal(recording)) ** 2))
    )
    result = calibrator.fit(recording)
    calibrator.close()
    assert result.success
    assert result.initial["*.ambient_temperature"] == 20.0  # warm start from the twin
    for key, true in TRUE.items():
        assert result.values[key] == pytest.approx(true, rel=0.05), key
        assert 0 < result.std_errors[key] < 0.05 * true, key  # uncertainty is reported, small
    assert result.rmse < 0.5 * nominal_rmse


def test_calibrator_rejects_unknown_targets_and_names(recording_and_scenario):
    recording, scenario = recording_and_scenario
    with pytest.raises(ValueError, match="neither a machine"):
        Calibrator(scenario, [FitParameter("paint", "thermal_resistance")]).fit(recording)
    with pytest.raises(FmuVariableError, match="no variable 'thermal_resistence'"):
        Calibrator(scenario, [FitParameter("machining", "thermal_resistence")]).fit(recording)
    with pytest.raises(ValueError, match="at least one FitParameter"):
        Calibrator(scenario, [])
    assert math.isfinite(recording.samples[-1]["time_s"])
