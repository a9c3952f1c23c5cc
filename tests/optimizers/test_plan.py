"""The decision vector: names, bounds, decoding, and the controller's decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.scenario import load_scenario
from optimizers.plan import PlanBoundsError, PlanController, PlanEncoding


@pytest.fixture(scope="module")
def scenario():
    return load_scenario("automotive_components")


def test_machine_encoding_names_and_bounds(scenario):
    encoding = PlanEncoding(scenario, "machine")
    assert encoding.n_var == 7 * 3 + 3  # 7 machines x (speed, threshold, timeout) + 3 prices
    assert encoding.names[0] == "speed:machining-1"
    assert "tariff_speed:0.260" in encoding.names
    speed = encoding.names.index("speed:welding-1")
    assert (encoding.xl[speed], encoding.xu[speed]) == (0.5, 1.25)  # the station's speed_range


def test_station_encoding_shares_values(scenario):
    encoding = PlanEncoding(scenario, "station")
    assert encoding.n_var == 3 * 3 + 3
    x = encoding.vector(speed=0.9)
    x[0] = 0.75  # machining
    plan = encoding.decode(x)
    assert np.allclose(plan.speed[:4], 0.75) and np.allclose(plan.speed[4:], 0.9)


def test_out_of_bounds_vector_is_a_clear_error(scenario):
    encoding = PlanEncoding(scenario)
    x = encoding.vector()
    x[encoding.names.index("wear_threshold:machining-2")] = 1.5
    with pytest.raises(
        PlanBoundsError, match=r"wear_threshold:machining-2 = 1.5 not in \[0.3, 1\]"
    ):
        encoding.decode(x)
    with pytest.raises(PlanBoundsError, match="non-finite"):
        encoding.check(np.full(encoding.n_var, np.nan))
    with pytest.raises(PlanBoundsError, match="24 entries"):
        encoding.check(x[:5])
    with pytest.raises(ValueError, match="unknown granularity"):
        PlanEncoding(scenario, "shift")


def test_standby_upper_bound_means_never(scenario):
    encoding = PlanEncoding(scenario)
    plan = encoding.decode(encoding.vector(standby_min=120.0))
    assert all(math.isinf(t) for t in plan.standby_timeout_min)


def test_controller_applies_tariff_speed_and_thresholds(scenario):
    from envs.line import ProductionLine

    encoding = PlanEncoding(scenario)
    x = encoding.vector(speed=1.2, wear_threshold=0.3, standby_min=10.0)
    x[encoding.names.index("tariff_speed:0.120")] = 1.2  # night price: 1.2 x 1.2, clipped
    controller = PlanController(encoding.decode(x), scenario)
    line = ProductionLine(scenario)
    try:
        line.reset(np.random.default_rng(0))  # Monday 00:00: price 0.12
        speed, maintenance, standby = controller.decide(line)
        highs = np.array([s.speed_range[1] for s in scenario.stations for _ in range(s.machines)])
        assert np.allclose(speed, np.minimum(1.44, highs))
        assert not maintenance.any()  # fresh tools: wear below 0.3
        assert not standby.any()  # not yet 10 minutes without work
        line.advance(speed, maintenance, standby)
        controller.decide(line)  # 5 minutes idle (night)
        line.advance(speed, maintenance, standby)
        _, _, standby = controller.decide(line)  # 10 minutes idle: standby allowed
        assert standby.all()
    finally:
        line.close()
