"""envs.scaling: the shipped line grown to N machines (stations split into cells of at most 20),
and envs.profiling's cost-of-a-step figures on a tiny line."""

from __future__ import annotations

import pytest

from envs.scaling import MAX_PER_STATION, scaled_scenario
from envs.scenario import load_scenario


@pytest.mark.parametrize("machines", [7, 30, 100])
def test_scaled_lines_keep_the_stations_and_their_parameters(machines):
    scenario = scaled_scenario(machines)
    assert scenario.machine_count == machines
    assert all(1 <= s.machines <= MAX_PER_STATION for s in scenario.stations)
    base = load_scenario("automotive_components")
    for station in scenario.stations:
        shipped = next(s for s in base.stations if station.name.endswith(s.name))
        assert station.parameters == shipped.parameters


def test_seven_machines_is_the_shipped_line():
    base = load_scenario("automotive_components")
    scaled = scaled_scenario(7)
    assert scaled.stations == base.stations
    assert scaled.demand == base.demand and scaled.objective == base.objective


@pytest.mark.parametrize("machines", [2, 7.0, "30"])
def test_a_bad_machine_count_says_what_is_allowed(machines):
    with pytest.raises(ValueError, match="machines must be a whole number >= 3"):
        scaled_scenario(machines)
