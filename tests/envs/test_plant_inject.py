"""Plant.inject_drift: a drift event scheduled at runtime applies at its time like a configured
one; invalid events are refused like the config's and schedule nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from envs.config import ConfigError
from envs.plant import DriftEvent, Plant, load_plant_config

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "plant_example.toml"


@pytest.fixture(scope="module")
def plant():
    config = dataclasses.replace(load_plant_config(EXAMPLE), drift=())
    with Plant(config) as running:
        yield running


def test_injected_drift_applies_at_its_time(plant):
    plant.reset()
    before = plant.hidden_parameters()["machining-2.wear_rate_factor"]
    plant.inject_drift(
        DriftEvent(time_h=10 / 60, target="wear_rate_factor", machine="machining-2", value=3.0)
    )
    plant.advance()  # 0-5 min: not yet due
    assert plant.hidden_parameters()["machining-2.wear_rate_factor"] == before
    plant.advance()  # 5-10 min: the sub-steps start at 5..9 min, still before it
    assert plant.drift_log == []
    plant.advance()  # the first sub-step of this advance starts at 10 min: applied
    assert plant.hidden_parameters()["machining-2.wear_rate_factor"] == pytest.approx(before * 3)
    assert plant.hidden_parameters()["machining-1.wear_rate_factor"] != pytest.approx(before * 3)
    assert [event.value for _t, event in plant.drift_log] == [3.0]


def test_past_time_applies_at_the_next_sample_and_reset_forgets(plant):
    plant.reset()
    plant.advance()
    ambient = plant.hidden_parameters()["welding-1.ambient_temperature"]
    plant.inject_drift(
        DriftEvent(time_h=0.0, target="ambient_temperature", operation="add", value=4)
    )
    plant.advance()
    assert plant.hidden_parameters()["welding-1.ambient_temperature"] == pytest.approx(ambient + 4)
    plant.inject_drift(DriftEvent(time_h=0.0, target="ambient_temperature", value=30.0))
    plant.reset()  # the runtime event belonged to the previous episode
    plant.advance()
    assert plant.drift_log == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            DriftEvent(time_h=0.0, target="wear_rate_factor", machine="milling-9", value=2),
            "milling-9",
        ),
        (DriftEvent(time_h=0.0, target="speed", value=2), "'target'"),
        (DriftEvent(time_h=0.0, target="wear_rate_factor", operation="pow", value=2), "operation"),
        (DriftEvent(time_h=-1.0, target="wear_rate_factor", value=2), "time_h"),
        (DriftEvent(time_h=0.0, target="wear_rate_factor", value=float("nan")), "value"),
    ],
)
def test_invalid_event_is_refused_and_schedules_nothing(plant, event, message):
    plant.reset()
    with pytest.raises(ConfigError, match=message):
        plant.inject_drift(event)
    plant.advance()
    assert plant.drift_log == []


def test_inject_before_reset_is_refused():
    config = dataclasses.replace(load_plant_config(EXAMPLE), drift=())
    with Plant(config) as fresh, pytest.raises(RuntimeError, match="reset"):
        fresh.inject_drift(DriftEvent(time_h=1.0, target="wear_rate_factor", value=2))
