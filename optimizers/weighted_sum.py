"""The classic digital-twin baseline: one weighted sum, minimised with SciPy.

    Z(x) = w1·C + w2·E + w3·D + penalty · Σ max(0, G_j)

with the scenario's weights (``[objective]``: per EUR, per kWh, per unplanned hour) and
``penalty`` (:attr:`BaseProblem.violation_penalty`, 1000 per part/h short of Tmin or kW over
Rmax) turning the constraints into cost. The simulation is piecewise constant in the decision
vector (discrete events), so gradient methods stall; the solver is
:func:`scipy.optimize.differential_evolution` (global, bounded, derivative-free), run
vectorised so that each generation of ``pop_size`` candidates is one parallel batch, with
``tol = 0`` so that it uses the whole budget like the other algorithms, and no gradient
polishing. Its archive of every evaluated point is scored like any other algorithm's.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

from envs.kpi import penalised_objective
from optimizers.population import BudgetedEvaluator, SearchSpace, initial_population

DE_MIN_POPULATION = 5
"""SciPy's differential evolution needs more than 4 members."""
SCIPY_RNG_KEYWORD_SINCE = (1, 15)
"""SciPy takes the generator as ``rng=`` from 1.15 on; older versions only know ``seed=``."""


@cache
def scipy_rng_keyword() -> str:
    """The keyword this SciPy takes a ``numpy.random.Generator`` by: ``rng`` (SciPy >= 1.15,
    where ``seed`` is on its way out) or ``seed`` (1.11 to 1.14). Both use the generator as it
    is, so the same seed gives the same run whichever spelling the installed SciPy needs."""
    import scipy

    major, minor = (int(part) for part in scipy.__version__.split(".")[:2])
    return "rng" if (major, minor) >= SCIPY_RNG_KEYWORD_SINCE else "seed"


def scalarise(F: np.ndarray, G: np.ndarray, weights: Sequence[float], penalty: float) -> np.ndarray:
    """Z per row: weighted objectives plus ``penalty`` per unit of constraint violation
    (:func:`envs.kpi.penalised_objective`)."""
    Z = np.atleast_2d(F) @ np.asarray(weights, dtype=float)
    if np.size(G):
        Z = np.asarray(penalised_objective(Z, np.atleast_2d(G), penalty))
    return Z


def run_weighted_sum(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None = None,
    weights: Sequence[float] | None = None,
) -> np.ndarray:
    """Minimise Z until the evaluator's budget is spent; returns the best vector found."""
    from scipy.optimize import differential_evolution

    weights = problem.default_weights if weights is None else weights
    rng = np.random.default_rng(seed)
    start = initial_population(problem, pop_size, seed, initial)
    best: dict[str, Any] = {"z": np.inf, "x": start[0]}

    def objective(columns: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(columns.T)
        F, G = evaluator(X)
        Z = scalarise(F, G, weights, problem.violation_penalty)
        k = int(np.argmin(Z))
        if Z[k] < best["z"]:
            best.update(z=float(Z[k]), x=X[k].copy())
        return Z

    def stop(x: np.ndarray, convergence: float = 0.0) -> bool:
        # the (x, convergence) signature: every SciPy from 1.11 calls it so
        return evaluator.exhausted

    generations = -(-evaluator.budget // pop_size) + 1
    differential_evolution(
        objective,
        list(zip(problem.xl, problem.xu, strict=True)),
        init=start,
        maxiter=generations,
        tol=0.0,
        atol=0.0,
        polish=False,
        vectorized=True,
        updating="deferred",
        callback=stop,
        **{scipy_rng_keyword(): rng},
    )
    return np.asarray(best["x"])
