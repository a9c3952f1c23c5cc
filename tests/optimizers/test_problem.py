"""The factory problem on real simulations: determinism, constraint signs, failures, engines."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from envs.scenario import load_scenario
from optimizers.config import PlantChange, ProblemConfig
from optimizers.engines import ProcessEngine
from optimizers.plan import PlanBoundsError
from optimizers.problems import Evaluator, FactoryProblem
from optimizers.simulate import FAILED_VALUE, evaluate_plan
from tests.optimizers.conftest import TINY, uniform_plan


def test_evaluation_is_deterministic_for_a_seed(tiny_problem):
    x = uniform_plan(tiny_problem, speed=0.9, standby_min=20.0)
    first = evaluate_plan((tiny_problem.spec, x))
    again = evaluate_plan((tiny_problem.spec, x))  # the worker's line is reused
    assert first.ok and again.ok
    assert np.array_equal(first.F, again.F) and np.array_equal(first.G, again.G)
    other_seed = dataclasses.replace(tiny_problem.spec, seeds=(7,))
    assert not np.array_equal(evaluate_plan((other_seed, x)).F, first.F)


def test_objectives_and_constraints_come_from_the_kpis(tiny_problem):
    result = evaluate_plan((tiny_problem.spec, uniform_plan(tiny_problem)))
    kpis = result.kpis
    assert np.array_equal(result.F, [kpis["cost"], kpis["energy_kwh"], kpis["downtime_h"]])
    assert result.G[0] == pytest.approx(25.0 - kpis["throughput_per_h"])
    assert result.G[1] == pytest.approx(kpis["peak_kw"] - 45.0)


def test_constraint_signs(tiny_problem):
    nominal = evaluate_plan((tiny_problem.spec, uniform_plan(tiny_problem)))
    slow = evaluate_plan(
        (tiny_problem.spec, uniform_plan(tiny_problem, speed=0.5, tariff_speed=0.8))
    )
    fast = evaluate_plan(
        (tiny_problem.spec, uniform_plan(tiny_problem, speed=1.3, tariff_speed=1.2))
    )
    assert nominal.feasible and (nominal.G <= 0).all()
    assert slow.G[0] > 0 and not slow.feasible  # T < Tmin: infeasible
    assert fast.G[1] > 0 and not fast.feasible  # R > Rmax: infeasible
    assert slow.kpis["throughput_per_h"] < 25.0 < nominal.kpis["throughput_per_h"]


def test_plant_change_is_applied_and_validated(tiny_problem):
    # machining-1's tools now start at 0.25 mm of the 0.3 mm wear limit (ratio 0.83)
    worn = PlantChange(machine="machining-1", parameter="initial_tool_wear", value=0.25)
    changed = FactoryProblem(dataclasses.replace(TINY, plant_changes=(worn,)))
    x = uniform_plan(tiny_problem, wear_threshold=0.8)
    assert evaluate_plan((changed.spec, x)).kpis["maintenance_cost"] > 0
    assert evaluate_plan((tiny_problem.spec, x)).kpis["maintenance_cost"] == 0
    for change, message in (
        (
            PlantChange(machine="machining-9", parameter="wear_rate_factor", value=2),
            r"machine 'machining-9'; the machines are \['inspection-1', 'machining-1'",
        ),
        (
            PlantChange(machine="welding-1", parameter="spindle", value=2),
            r"plant change: 'welding-1.spindle' is not a parameter of RobotCell; its parameters "
            r"are .*wear_rate_factor",
        ),
        (
            PlantChange(machine="welding-1", parameter="wear_rate_factor", value=99),
            r"plant change: 'welding-1.wear_rate_factor' = 99 is outside the allowed range \[",
        ),
    ):
        with pytest.raises(ValueError, match=message):
            FactoryProblem(dataclasses.replace(TINY, plant_changes=(change,)))


def test_failed_simulation_is_infeasible_logged_and_counted(serial, caplog):
    # A plant whose mills may be asked for more than the FMU's 2600 rpm: the FMU refuses.
    scenario = load_scenario("automotive_components")
    mills = dataclasses.replace(scenario.stations[0], nominal_speed=1400.0, speed_range=(0.7, 2.0))
    scenario = dataclasses.replace(scenario, stations=(mills, *scenario.stations[1:]))
    problem = FactoryProblem(TINY, scenario=scenario)
    good = uniform_plan(problem)
    too_fast = uniform_plan(problem, speed=1.95)
    evaluator = Evaluator(problem, serial, budget=3)
    with caplog.at_level(logging.WARNING):
        F, G = evaluator(np.array([good, too_fast, good]))
    archive = evaluator.archive
    assert archive.failures == 1 and archive.ok.tolist() == [True, False, True]
    assert (G[1] == FAILED_VALUE).all() and (F[1] == FAILED_VALUE).all()
    assert not archive.feasible()[1]
    assert np.array_equal(F[0], F[2])  # the line was rebuilt: the next candidate is unaffected
    (reason,) = archive.reasons
    assert "spindle_speed" in reason
    assert "simulation failed" in caplog.text and "spindle_speed" in caplog.text


def test_evaluator_checks_bounds_and_budget(tiny_problem, serial):
    evaluator = Evaluator(tiny_problem, serial, budget=2)
    x = uniform_plan(tiny_problem)
    bad = x.copy()
    bad[0] = 5.0
    with pytest.raises(PlanBoundsError, match="speed:machining-1 = 5"):
        evaluator(np.array([bad]))
    F, _ = evaluator(np.array([x, x, x]))  # the third is beyond the budget
    assert len(evaluator.archive) == 2 and evaluator.exhausted
    assert (F[2] == FAILED_VALUE).all()


def test_horizon_shorter_than_an_interval_is_an_error():
    with pytest.raises(ValueError, match="shorter than one decision interval"):
        FactoryProblem(ProblemConfig(horizon_h=0.01 * 3))


def test_parallel_equals_serial(tiny_problem, serial):
    rng = np.random.default_rng(3)
    X = rng.uniform(tiny_problem.xl, tiny_problem.xu, size=(4, tiny_problem.n_var))
    expected = tiny_problem.evaluate_batch(X, serial)
    with ProcessEngine(2) as engine:
        parallel = tiny_problem.evaluate_batch(X, engine)
    for a, b in zip(expected, parallel, strict=True):
        assert np.array_equal(a.F, b.F) and np.array_equal(a.G, b.G)


def test_dask_local_cluster_equals_serial(tiny_problem, serial):
    pytest.importorskip("dask.distributed", reason="the dask engine is the 'distributed' extra")
    from optimizers.engines import DaskEngine

    rng = np.random.default_rng(4)
    X = rng.uniform(tiny_problem.xl, tiny_problem.xu, size=(2, tiny_problem.n_var))
    expected = tiny_problem.evaluate_batch(X, serial)
    with DaskEngine(workers=2) as engine:
        distributed = tiny_problem.evaluate_batch(X, engine)
    for a, b in zip(expected, distributed, strict=True):
        assert np.array_equal(a.F, b.F) and np.array_equal(a.G, b.G)
