"""The plant emulator: reproducible, noise and dropouts as configured, drift on schedule,
hidden parameters in the FMUs, and configuration errors that name the key."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from envs.config import ConfigError, from_mapping
from envs.plant import (
    DriftEvent,
    HiddenParameter,
    NoiseConfig,
    Plant,
    PlantConfig,
    check_plant_config,
    load_plant_config,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "configs" / "plant_example.toml"


def run(config: PlantConfig, intervals: int) -> tuple[Plant, list[dict], list[dict]]:
    plant = Plant(config)
    plant.reset()
    samples, truths = list(plant.samples), list(plant.true_samples)
    for _ in range(intervals):
        plant.advance()
        samples += plant.samples
        truths += plant.true_samples
    return plant, samples, truths


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a
    )


def test_example_config_loads_and_runs():
    config = load_plant_config(EXAMPLE)
    with Plant(config) as plant:
        first = plant.reset()
        assert first["time_s"] == 0.0
        plant.advance()
        sample = plant.measure()
        assert sample["time_s"] == plant.decision_interval_s
        assert len(plant.samples) == plant.samples_per_decision == 5
        assert {"machining-1.vibration", "welding-2.temperature", "inspection-1.state"} <= set(
            sample
        )


def test_same_seed_same_samples_and_other_seed_differs():
    config = dataclasses.replace(load_plant_config(EXAMPLE), drift=())
    plant_a, samples_a, _ = run(config, 6)
    plant_b, samples_b, _ = run(config, 6)
    plant_c, samples_c, _ = run(dataclasses.replace(config, seed=12), 6)
    for plant in (plant_a, plant_b, plant_c):
        plant.close()
    assert all(same(a, b) for a, b in zip(samples_a, samples_b, strict=True))
    assert not all(same(a, c) for a, c in zip(samples_a, samples_c, strict=True))


def test_hidden_parameters_reach_the_fmus():
    config = load_plant_config(EXAMPLE)
    with Plant(config) as plant:
        plant.reset()
        mill = plant.line.machines[0].unit
        assert mill.get("thermal_resistance") == pytest.approx(0.021)
        assert mill.get("thermal_capacity") == pytest.approx(30000.0)
        hidden = plant.hidden_parameters()
        assert hidden["machining-4.wear_rate_factor"] == pytest.approx(1.2)
        assert hidden["welding-1.ambient_temperature"] == pytest.approx(23.0)


def test_noise_statistics_match_the_settings():
    noise = NoiseConfig(temperature=0.5, wear=0.01, power=0.2, vibration=0.05)
    config = PlantConfig(seed=3, sample_interval_s=30.0, noise=noise)
    plant, samples, truths = run(config, 12)  # 1 h, 121 samples x 7 machines
    plant.close()
    for kind in ("temperature", "wear", "power", "vibration"):
        residuals = np.array(
            [
                s[k] - t[k]
                for s, t in zip(samples, truths, strict=True)
                for k in t
                if k.endswith("." + kind)
            ]
        )
        std = getattr(noise, kind)
        assert len(residuals) > 400
        assert np.std(residuals) == pytest.approx(std, rel=0.12), kind
        assert abs(np.mean(residuals)) < 4 * std / math.sqrt(len(residuals)), kind


def test_dropout_rate_matches_the_setting_and_state_is_never_dropped():
    config = PlantConfig(seed=5, sample_interval_s=30.0, dropout_probability=0.2)
    plant, samples, _ = run(config, 6)
    plant.close()
    measured = [v for s in samples for k, v in s.items() if k != "time_s" and "state" not in k]
    fraction = sum(math.isnan(v) for v in measured) / len(measured)
    sigma = math.sqrt(0.2 * 0.8 / len(measured))
    assert abs(fraction - 0.2) < 4 * sigma
    assert not any(math.isnan(s[k]) for s in samples for k in s if k.endswith(".state"))


def test_drift_event_changes_the_hidden_parameter_at_its_time():
    config = PlantConfig(
        seed=2,
        drift=(
            DriftEvent(time_h=1.0, target="wear_rate_factor", machine="machining-2", value=2.0),
            DriftEvent(time_h=0.5, target="ambient_temperature", operation="add", value=5.0),
        ),
    )
    with Plant(config) as plant:
        plant.reset()
        for _ in range(6):  # 30 min: nothing has happened yet
            plant.advance()
        assert plant.hidden_parameters()["machining-1.ambient_temperature"] == 20.0
        for _ in range(6):  # to 60 min: the ambient step happened at 30 min
            plant.advance()
        hidden = plant.hidden_parameters()
        assert all(hidden[f"{n}.ambient_temperature"] == 25.0 for n in plant.machine_names)
        assert hidden["machining-2.wear_rate_factor"] == 1.0
        plant.advance()
        hidden = plant.hidden_parameters()
        assert hidden["machining-2.wear_rate_factor"] == 2.0
        assert hidden["machining-1.wear_rate_factor"] == 1.0
        assert [time_s for time_s, _ in plant.drift_log] == [1800.0, 3600.0]


def test_doubled_wear_rate_doubles_the_wear_increment():
    base = PlantConfig(seed=4, noise=NoiseConfig(temperature=0, wear=0, power=0, vibration=0))
    event = DriftEvent(time_h=0.0, target="wear_rate_factor", machine="machining-1", value=2.0)
    nominal, _, truth_nominal = run(base, 3)
    drifted, _, truth_drifted = run(dataclasses.replace(base, drift=(event,)), 3)
    nominal.close()
    drifted.close()
    key = "machining-1.wear"
    ratio = truth_drifted[-1][key] / truth_nominal[-1][key]
    assert ratio == pytest.approx(2.0, rel=0.05)  # dull-tool heating feeds back only weakly
    other = "machining-3.wear"
    assert truth_drifted[-1][other] == truth_nominal[-1][other]


def test_apply_rejects_bad_setpoints_and_keeps_the_old_ones():
    with Plant(PlantConfig()) as plant:
        with pytest.raises(RuntimeError, match="reset"):
            plant.apply(speed_factors=np.ones(7))
        plant.reset()
        plant.apply(speed_factors=np.full(7, 1.2))
        with pytest.raises(ValueError, match="one value per machine"):
            plant.apply(speed_factors=np.ones(3))
        with pytest.raises(ValueError, match="outside its range"):
            plant.apply(speed_factors=np.full(7, 5.0), standby=np.ones(7, bool))
        speed, standby, maintenance = plant.setpoints()
        assert speed.tolist() == [1.2] * 7
        assert not standby.any() and not maintenance.any()


def test_setpoints_are_copies_and_maintenance_is_one_shot():
    with Plant(PlantConfig()) as plant:
        with pytest.raises(RuntimeError, match="reset"):
            plant.setpoints()
        plant.reset()
        speed, standby, maintenance = plant.setpoints()
        assert speed.tolist() == [1.0] * 7 and not standby.any() and not maintenance.any()
        requested = np.zeros(7, bool)
        requested[2] = True
        plant.apply(speed_factors=np.full(7, 0.9), standby=np.ones(7, bool), maintenance=requested)
        speed, standby, maintenance = plant.setpoints()
        speed[:] = 1.1  # a copy: the plant keeps its own
        assert plant.setpoints()[0].tolist() == [0.9] * 7
        assert standby.all() and maintenance.tolist() == requested.tolist()
        plant.advance()
        speed, standby, maintenance = plant.setpoints()
        assert speed.tolist() == [0.9] * 7 and standby.all()  # sticky
        assert not maintenance.any()  # used by that advance


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"sample_rate": 1.0}, "unknown key 'sample_rate'"),
        ({"dropout_probability": 1.5}, "'dropout_probability' = 1.5 is outside"),
        ({"noise": {"temperature": -1.0}}, "'noise.temperature'"),
        ({"sample_interval_s": 45.0}, "'sample_interval_s' = 45.0 must be a whole multiple"),
        ({"wear_rate_factors": [1.0, 2.0]}, "'wear_rate_factors' needs one value per machine"),
        (
            {"hidden": [{"station": "paint", "name": "thermal_resistance", "value": 1.0}]},
            "'hidden[0].station' = 'paint' is not a station",
        ),
        (
            {"hidden": [{"station": "machining", "name": "colour", "value": 1.0}]},
            "'hidden[0].name' = 'colour' is not a parameter of CncMill",
        ),
        (
            {"hidden": [{"station": "machining", "name": "wear_limit", "value": 9.0}]},
            "'hidden[0].value' = 9.0 is outside the allowed range",
        ),
        (
            {
                "drift": [
                    {
                        "time_h": 1.0,
                        "target": "wear_rate_factor",
                        "value": 2.0,
                        "machine": "machining-9",
                    }
                ]
            },
            "'drift[0].machine' = 'machining-9' is not a machine",
        ),
        (
            {"drift": [{"time_h": 1.0, "target": "bearing", "value": 2.0}]},
            "'drift[0].target' = 'bearing' is not one of",
        ),
    ],
)
def test_bad_config_is_a_clear_config_error(data, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        config = from_mapping(PlantConfig, data, source="plant.toml")
        check_plant_config(config, source="plant.toml")


def test_bad_file_names_the_file(tmp_path):
    path = tmp_path / "plant.toml"
    path.write_text('seed = 1\n[[hidden]]\nstation = "welding"\nname = "x"\nvalue = 1.0\n')
    with pytest.raises(ConfigError, match=r"plant\.toml: 'hidden\[0\]\.name'"):
        load_plant_config(path)
    assert HiddenParameter(station="a", name="b", value=1.0).value == 1.0
