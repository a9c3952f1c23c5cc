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

import numpy as np

from optimizers.problems import BaseProblem, Evaluator


def scalarise(F: np.ndarray, G: np.ndarray, weights, penalty: float) -> np.ndarray:
    """Z per row: weighted objectives plus ``penalty`` per unit of constraint violation."""
    Z = np.atleast_2d(F) @ np.asarray(weights, dtype=float)
    if G.size:
        Z = Z + penalty * np.maximum(np.atleast_2d(G), 0.0).sum(axis=1)
    return Z


def run_weighted_sum(
    problem: BaseProblem,
    evaluator: Evaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None = None,
    weights: tuple[float, ...] | None = None,
) -> np.ndarray:
    """Minimise Z until the evaluator's budget is spent; returns the best vector found."""
    from scipy.optimize import differential_evolution

    from optimizers.algorithms import initial_population

    weights = problem.default_weights if weights is None else weights
    rng = np.random.default_rng(seed)
    start = initial_population(problem, pop_size, seed, initial)
    best: dict[str, object] = {"z": np.inf, "x": start[0]}

    def objective(columns: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(columns.T)
        F, G = evaluator(X)
        Z = scalarise(F, G, weights, problem.violation_penalty)
        k = int(np.argmin(Z))
        if Z[k] < best["z"]:
            best.update(z=float(Z[k]), x=X[k].copy())
        return Z

    def stop(intermediate_result) -> bool:
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
        rng=rng,
    )
    return np.asarray(best["x"])
