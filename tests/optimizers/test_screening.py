"""NSGA-II with surrogate screening: the surrogate itself, the budget, and that screening pays
on a problem with a known front."""

from __future__ import annotations

import numpy as np
import pytest

from optimizers.algorithms import run_algorithm
from optimizers.indicators import igd
from optimizers.problems import StandardProblem
from optimizers.screening import Surrogate, pick_by_hypervolume


def test_surrogate_fits_a_smooth_function_and_refuses_too_few_points():
    rng = np.random.default_rng(0)
    xl, xu = np.zeros(3), np.array([1.0, 2.0, 4.0])
    X = rng.uniform(xl, xu, size=(60, 3))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5], np.sin(X[:, 0]) + X[:, 1] ** 2])
    model = Surrogate(xl, xu)
    with pytest.raises(RuntimeError, match="fit the surrogate"):
        model.predict(X)
    assert model.fit(X, Y)
    assert np.allclose(model.predict(X), Y, atol=0.05)  # near-exact at the data
    test = rng.uniform(xl, xu, size=(20, 3))
    truth = np.column_stack([test @ [1.0, -2.0, 0.5], np.sin(test[:, 0]) + test[:, 1] ** 2])
    assert np.abs(model.predict(test) - truth).mean() < 0.1
    assert not model.fit(X[:4], Y[:4])  # fewer than n_var + 2 distinct points
    assert not model.fit(np.repeat(X[:1], 10, axis=0), np.repeat(Y[:1], 10, axis=0))


def test_screening_spends_exactly_the_budget_and_beats_plain_nsga2():
    problem = StandardProblem("dtlz2")
    igd_of = {}
    for name in ("nsga2", "nsga2_screened"):
        result = run_algorithm(name, problem, budget=150, seed=0, pop_size=10)
        assert len(result.archive) == 150
        front = result.archive.F[result.archive.front_indices()]
        igd_of[name] = igd(front, problem.true_front())
    # at 150 evaluations (seeds 0, 1, 2): IGD 0.23, 0.28, 0.32 against 0.41, 0.40, 0.55
    assert igd_of["nsga2_screened"] < 0.8 * igd_of["nsga2"]


def test_batch_picks_extend_the_front_and_leave_predicted_infeasible_rows_last():
    front = np.array([[0.0, 1.0], [1.0, 0.0]])
    predicted = np.array(
        [
            [0.5, 0.5],  # fills the gap: the largest gain
            [0.52, 0.52],  # dominated by the first pick once it is taken
            [0.1, 0.8],
            [2.0, 2.0],  # dominated: no gain
            [0.2, 0.2],  # the best of all, but predicted infeasible
        ]
    )
    violation = np.array([0.0, 0.0, 0.0, 0.0, 3.0])
    assert pick_by_hypervolume(front, predicted, violation, 2) == [0, 2]
    assert pick_by_hypervolume(front, predicted, violation, 5) == [0, 2, 4]  # caller fills up
    assert pick_by_hypervolume(np.zeros((0, 2)), predicted[:1], np.zeros(1), 1) == [0]
