"""The benchmark's problem ladder: the new scenarios load and simulate with sane KPIs, the
heuristics' plans, per-problem budgets, and the goal tests against random search."""

from __future__ import annotations

import numpy as np
import pytest

from envs.config import ConfigError
from envs.scenario import load_scenario
from optimizers.benchmark_plans import best_algorithm, median_run
from optimizers.config import BenchmarkConfig, ProblemConfig, load_benchmark_config
from optimizers.engines import SerialEngine
from optimizers.heuristic_plans import FIXED_INTERVAL_MILL_WEAR, HEURISTIC_PLANS, heuristic_plans
from optimizers.problems import FactoryProblem, make_problem
from optimizers.scores import format_goal_tests, goal_tests


@pytest.mark.parametrize(
    ("name", "machines", "per_station"),
    [("small_line", 4, (2, 1, 1)), ("large_line", 32, (18, 9, 5))],
)
def test_ladder_scenario_loads_and_simulates_an_hour_with_sane_kpis(name, machines, per_station):
    scenario = load_scenario(name)
    assert scenario.machine_count == machines
    assert tuple(s.machines for s in scenario.stations) == per_station
    problem = make_problem(name, ProblemConfig(horizon_h=0.5, seeds=1, granularity="station"))
    assert problem.name == name and problem.n_var == 3 * 3 + 3
    nominal = heuristic_plans(problem.encoding)["naive"]
    with SerialEngine() as engine:
        (result,) = problem.evaluate_batch(nominal[None, :], engine)
    assert result.ok, result.reason
    kpis = result.kpis
    per_machine_kw = kpis["peak_kw"] / machines
    assert 0.5 < per_machine_kw < 12.0  # a mill cuts at ~10 kW, a robot draws less
    assert kpis["energy_kwh"] > 0 and kpis["cost"] > 0 and kpis["good_parts"] > 0
    assert kpis["peak_kw"] < scenario.objective.peak_max_kw  # nominal speed fits the contract


@pytest.mark.parametrize("name", ["small_line", "large_line"])
def test_ladder_scenarios_have_the_shape_of_the_scaling_study(name):
    from envs.scaling import scaled_scenario

    shipped = load_scenario(name)
    scaled = scaled_scenario(shipped.machine_count)
    assert [(s.name, s.machines) for s in shipped.stations] == [
        (s.name, s.machines) for s in scaled.stations
    ]
    assert shipped.demand.orders_per_hour == pytest.approx(scaled.demand.orders_per_hour, 0.01)
    assert shipped.objective.throughput_min_per_h == pytest.approx(
        scaled.objective.throughput_min_per_h, 0.01
    )


def test_heuristic_plans_are_the_shipped_rules_for_any_granularity(tiny_problem):
    for granularity in ("machine", "station"):
        problem = FactoryProblem(ProblemConfig(horizon_h=1.0, granularity=granularity))
        plans = heuristic_plans(problem.encoding)
        assert tuple(plans) == HEURISTIC_PLANS
        decoded = {n: problem.encoding.decode(x) for n, x in plans.items()}
        assert np.isinf(decoded["naive"].standby_timeout_min).all()
        assert (decoded["condition_based"].standby_timeout_min == 0).all()
        assert np.allclose(decoded["condition_based_slow"].speed, 0.85)
        mills = [s.equipment == "CncMill" for _, s in problem.scenario.machines()]
        wear = decoded["fixed_interval"].wear_threshold
        assert np.allclose(wear[mills], FIXED_INTERVAL_MILL_WEAR)
        assert np.allclose(wear[~np.array(mills)], 1.0)


def test_problem_budgets_apply_per_factory_problem_and_reject_bad_entries(tmp_path):
    path = tmp_path / "ladder.toml"
    path.write_text("factory_budget = 50\n[problem_budgets]\nlarge_line = 20\n")
    config = load_benchmark_config(path)
    assert config.budget_for("large_line") == 20
    assert config.budget_for("small_line") == config.budget_for("factory") == 50
    assert config.budget_for("zdt1") == config.standard_budget
    with pytest.raises(ValueError, match="problem_budgets names 'zdt1'"):
        BenchmarkConfig(problem_budgets={"zdt1": 10.0})
    with pytest.raises(ValueError, match="whole number"):
        BenchmarkConfig(problem_budgets={"large_line": 10.5})
    path.write_text('problems = ["huge_line"]\n')
    with pytest.raises(ConfigError, match="'huge_line' is not one of"):
        load_benchmark_config(path)
    with pytest.raises(ValueError, match="unknown problem 'huge_line'"):
        make_problem("huge_line")


def test_goal_tests_are_one_sided_and_holm_corrected_across_problems():
    better = np.array([0.80, 0.82, 0.85, 0.81, 0.83])
    base = np.array([0.60, 0.62, 0.61, 0.63, 0.64])
    hv = {
        "a": {"nsga2": better, "random": base},
        "b": {"nsga2": base * 1.01, "random": base},
        "c": {"nsga2": better},  # no random search: not tested
    }
    tests = {t["problem"]: t for t in goal_tests(hv, 1.2)}
    assert set(tests) == {"a", "b"}
    assert tests["a"]["x_random"] == pytest.approx(0.82 / 0.62)
    assert tests["a"]["p"] < 0.01 and tests["a"]["p_holm"] == pytest.approx(2 * tests["a"]["p"])
    assert tests["a"]["goal_met"] and not tests["b"]["goal_met"]
    zero = goal_tests({"z": {"nsga2": better, "random": np.zeros(5)}}, 1.2)[0]
    assert zero["x_random"] == np.inf and zero["goal_met"]  # random search found nothing
    reverse = goal_tests({"a": {"nsga2": base, "random": better}}, 1.2)[0]
    assert reverse["p"] > 0.99  # one-sided: worse than random is no evidence
    table = format_goal_tests(list(tests.values()))
    assert "| a | nsga2 | 1.32 |" in table and "Holm-corrected over these 2 tests" in table


def test_the_chosen_plan_comes_from_the_best_algorithms_median_run():
    hv = {"random": np.array([0.9, 0.9]), "nsga2": np.array([0.5, 0.7, 0.6])}
    assert best_algorithm(hv) == "nsga2"  # random search only when it ran alone
    assert best_algorithm({"random": np.array([0.1])}) == "random"
    assert median_run(np.array([0.5, 0.7, 0.6])) == 2
    assert median_run(np.array([0.4, 0.1, 0.3, 0.2])) == 3  # lower middle: 0.2
