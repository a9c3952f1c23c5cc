"""Population helpers every algorithm shares, and the penalised objective: the leaf of the
optimisers (it imports no other :mod:`optimizers` module).

What an algorithm needs of a problem and of its evaluator is written here as two protocols,
:class:`SearchSpace` and :class:`BudgetedEvaluator`, which
:class:`optimizers.problems.BaseProblem` and :class:`optimizers.problems.Evaluator` satisfy, so
that the algorithm modules (:mod:`optimizers.registry`, :mod:`optimizers.weighted_sum`,
:mod:`optimizers.optuna_mo`) depend on this module alone.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from envs.kpi import penalised_objective

__all__ = [
    "BudgetedEvaluator",
    "SearchSpace",
    "initial_population",
    "penalised",
    "reference_directions",
    "spread",
]


class SearchSpace(Protocol):
    """The parts of a problem an algorithm reads: sizes, bounds, names and weights."""

    n_var: int
    n_obj: int
    n_constr: int
    xl: np.ndarray
    xu: np.ndarray
    var_names: list[str]
    constr_names: tuple[str, ...]
    default_weights: tuple[float, ...]
    violation_penalty: float


class BudgetedEvaluator(Protocol):
    """``evaluator(X) -> (F, G)`` with a fixed budget of evaluations."""

    budget: int

    @property
    def remaining(self) -> int: ...

    @property
    def exhausted(self) -> bool: ...

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def penalised(F: np.ndarray, G: np.ndarray, penalty: float) -> np.ndarray:
    """Every objective of every row plus ``penalty`` per unit of constraint violation of that
    row (:func:`envs.kpi.penalised_objective`; for algorithms without constraint handling)."""
    return np.asarray(penalised_objective(np.atleast_2d(F), np.atleast_2d(G), penalty))


def reference_directions(n_obj: int, at_most: int) -> np.ndarray:
    """The largest Das–Dennis set of reference directions with at most ``at_most`` members
    (at least the ``n_obj`` axis directions)."""
    from pymoo.util.ref_dirs import get_reference_directions

    partitions = 1
    while math.comb(partitions + 1 + n_obj - 1, n_obj - 1) <= at_most:
        partitions += 1
    return np.asarray(get_reference_directions("das-dennis", n_obj, n_partitions=partitions))


def spread(rows: np.ndarray, size: int) -> np.ndarray:
    """At most ``size`` of ``rows``: all of them, or evenly spaced ones in their order."""
    rows = np.atleast_2d(rows)
    if len(rows) <= size:
        return rows
    return rows[np.linspace(0, len(rows) - 1, size).round().astype(int)]


def initial_population(
    problem: SearchSpace, size: int, seed: int, initial: np.ndarray | None = None
) -> np.ndarray:
    """``size`` rows: the ``initial`` ones first, then uniform random. When there are more
    initial rows than ``size``, evenly spaced ones in their order are kept (a front saved by
    cost keeps its spread)."""
    rng = np.random.default_rng(seed)
    rows = np.empty((0, problem.n_var)) if initial is None else spread(initial, size)
    missing = size - len(rows)
    random = rng.uniform(problem.xl, problem.xu, size=(missing, problem.n_var))
    return np.vstack([rows, random])
