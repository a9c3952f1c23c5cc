"""Every algorithm through the one interface: tiny budgets, seeds, warm starts, bad requests."""

from __future__ import annotations

import numpy as np
import pytest

from optimizers.algorithms import REGISTRY, run_algorithm
from optimizers.config import ALGORITHMS
from optimizers.problems import StandardProblem
from tests.optimizers.conftest import uniform_plan


def test_registry_matches_the_documented_names():
    assert tuple(REGISTRY) == ALGORITHMS


@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_runs_a_tiny_budget_on_the_factory(name, tiny_problem, serial):
    result = run_algorithm(name, tiny_problem, budget=6, seed=0, pop_size=5, engine=serial)
    archive = result.archive
    assert len(archive) == 6  # exactly the budget, never more
    assert archive.F.shape == (6, 3) and archive.G.shape == (6, 2)
    assert archive.failures == 0
    assert np.all(archive.X - tiny_problem.xl >= 0) and np.all(tiny_problem.xu - archive.X >= 0)
    assert result.evaluations_per_s > 0


@pytest.mark.parametrize("name", ALGORITHMS)
def test_same_seed_same_run(name):
    problem = StandardProblem("dtlz2")
    first = run_algorithm(name, problem, budget=40, seed=3, pop_size=10)
    again = run_algorithm(name, problem, budget=40, seed=3, pop_size=10)
    other = run_algorithm(name, problem, budget=40, seed=4, pop_size=10)
    assert np.array_equal(first.archive.X, again.archive.X)
    assert np.array_equal(first.archive.F, again.archive.F)
    assert not np.array_equal(first.archive.X, other.archive.X)


@pytest.mark.parametrize("name", ["nsga2", "random", "weighted_sum", "optuna_tpe"])
def test_warm_start_rows_are_evaluated_first(name, tiny_problem, serial):
    initial = np.array([uniform_plan(tiny_problem), uniform_plan(tiny_problem, speed=0.9)])
    result = run_algorithm(
        name, tiny_problem, budget=5, seed=0, pop_size=5, engine=serial, initial=initial
    )
    assert np.allclose(result.archive.X[:2], initial)


def test_unknown_algorithm_and_impossible_budget_are_clear_errors(tiny_problem):
    with pytest.raises(ValueError, match=r"unknown algorithm 'nsga4'; choose one of \['nsga2'"):
        run_algorithm("nsga4", tiny_problem, budget=10)
    with pytest.raises(ValueError, match="raise the budget to at least 20 or lower pop_size"):
        run_algorithm("nsga2", tiny_problem, budget=10, pop_size=20)
    with pytest.raises(ValueError, match="budget 0 is impossible"):
        run_algorithm("random", tiny_problem, budget=0)
    with pytest.raises(ValueError, match="pop_size must be a whole number >= 2"):
        run_algorithm("random", tiny_problem, budget=10, pop_size=1)


def test_a_large_warm_start_keeps_its_spread():
    from optimizers.population import spread

    rows = np.arange(10.0)[:, None]
    assert spread(rows, 4).ravel().tolist() == [0.0, 3.0, 6.0, 9.0]
    assert spread(rows, 20).shape == (10, 1)


def test_plain_pymoo_problem_for_any_pymoo_algorithm(tiny_problem, serial):
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.optimize import minimize

    from optimizers.algorithms import pymoo_problem

    problem = pymoo_problem(tiny_problem, serial)
    result = minimize(problem, NSGA2(pop_size=4), ("n_gen", 2), seed=1)
    assert len(problem.evaluator_archive) == 8
    assert result.F.shape[1] == 3
