"""NSGA-II whose offspring a cheap surrogate screens: ``nsga2_screened``.

Each generation NSGA-II's mating (tournament, SBX crossover, polynomial mutation, as in
``nsga2``) makes ``SCREENING_FACTOR`` × ``pop_size`` offspring instead of ``pop_size``; a
surrogate fitted on every evaluation so far predicts their ``F`` and ``G``, and NSGA-II's own
survival (constraint domination, non-dominated rank, crowding distance) on the predictions keeps
the ``pop_size`` that are simulated. Only simulated candidates count against the budget, and
only simulated values enter the population, so a wrong prediction costs an evaluation, never a
wrong front. Pre-selection of this kind is the classic surrogate-assisted EA (e.g. Loshchilov et
al., "A Mono Surrogate for Multiobjective Optimization", GECCO 2010; Jin, "Surrogate-assisted
evolutionary computation", 2011).

The surrogate, :class:`Surrogate`, is SciPy's thin-plate-spline RBF interpolation with a small
smoothing term over the decision vector scaled to [0, 1], one output per objective and
constraint (each scaled by its spread), fitted on the most recent :data:`MAX_TRAINING_POINTS`
evaluations: it needs no training loop, fits a few hundred points in milliseconds and is exact
at the evaluated points (up to the smoothing). Until there are more
points than ``n_var + 2`` (too few to fit it), or if the fit fails, the offspring are kept
unscreened (the first ``pop_size``).

Like :mod:`optimizers.weighted_sum` it depends on :mod:`optimizers.population` alone.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from optimizers.population import BudgetedEvaluator, SearchSpace, initial_population

__all__ = ["SCREENING_FACTOR", "Surrogate", "run_screened_nsga2"]

SCREENING_FACTOR = 5
"""Offspring made per generation, as a multiple of the population; ``pop_size`` are simulated."""
FAILED_ABOVE = 1e11
"""Rows with any |F| or |G| above this are failed evaluations (``optimizers.simulate``'s
FAILED_VALUE is 1e12) and are not fitted."""
SMOOTHING = 1e-3
MAX_TRAINING_POINTS = 300
"""The surrogate is fitted on the most recent evaluations only (the region the population is
in; an RBF fit grows with the cube of its points)."""
log = logging.getLogger(__name__)


class Surrogate:
    """RBF model of ``(F, G)`` over the decision vector scaled by the bounds ``xl``, ``xu``."""

    def __init__(self, xl: np.ndarray, xu: np.ndarray) -> None:
        self.xl = np.asarray(xl, dtype=float)
        self.span = np.where(np.asarray(xu) > self.xl, np.asarray(xu) - self.xl, 1.0)
        self._model: Any = None

    def fit(self, X: np.ndarray, Y: np.ndarray) -> bool:
        """Fit on rows ``X`` with outputs ``Y`` (objectives then constraints); False (and no
        model) when there are too few distinct points or the fit fails."""
        from scipy.interpolate import RBFInterpolator

        X = (np.atleast_2d(X) - self.xl) / self.span
        X, unique = np.unique(X, axis=0, return_index=True)
        Y = np.atleast_2d(Y)[unique]
        self._model = None
        if len(X) < X.shape[1] + 2:
            return False
        self.center = Y.mean(axis=0)
        self.scale = np.where(Y.std(axis=0) > 0, Y.std(axis=0), 1.0)
        try:
            self._model = RBFInterpolator(
                X, (Y - self.center) / self.scale, kernel="thin_plate_spline", smoothing=SMOOTHING
            )
        except (np.linalg.LinAlgError, ValueError) as error:
            log.warning("surrogate fit failed (%s); offspring are not screened", error)
            return False
        return True

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted outputs for rows ``X`` (after a successful :meth:`fit`)."""
        if self._model is None:
            raise RuntimeError("fit the surrogate before predicting")
        scaled = (np.atleast_2d(X) - self.xl) / self.span
        return np.asarray(self._model(scaled)) * self.scale + self.center


def run_screened_nsga2(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None = None,
    factor: int = SCREENING_FACTOR,
) -> None:
    """Run ``nsga2_screened`` (module docstring) until the evaluator's budget is spent."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.population import Population
    from pymoo.core.problem import Problem
    from pymoo.optimize import minimize

    seen_X: list[np.ndarray] = []
    seen_Y: list[np.ndarray] = []
    n_obj, n_constr = problem.n_obj, problem.n_constr
    surrogate = Surrogate(problem.xl, problem.xu)

    class _Problem(Problem):
        def __init__(self) -> None:
            super().__init__(
                n_var=problem.n_var,
                n_obj=n_obj,
                n_ieq_constr=n_constr,
                xl=problem.xl,
                xu=problem.xu,
            )

        def _evaluate(self, X: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
            F, G = evaluator(X)
            Y = np.hstack([F, np.reshape(G, (len(F), n_constr))])
            ok = np.all(np.abs(Y) < FAILED_ABOVE, axis=1)
            seen_X.extend(np.atleast_2d(X)[ok])
            seen_Y.extend(Y[ok])
            out["F"] = F
            if n_constr:
                out["G"] = G

    class _ScreenedNSGA2(NSGA2):
        def _infill(self) -> Any:
            offspring = super()._infill()
            if offspring is None or len(offspring) <= self.pop_size:
                return offspring
            X = offspring.get("X")
            recent = slice(-MAX_TRAINING_POINTS, None)
            if not seen_X or not surrogate.fit(np.array(seen_X[recent]), np.array(seen_Y[recent])):
                return offspring[: self.pop_size]
            Y = surrogate.predict(X)
            predicted = Population.new(X=X, F=Y[:, :n_obj])
            if n_constr:
                predicted.set("G", Y[:, n_obj:])
            kept = self.survival.do(
                self.problem, predicted, n_survive=self.pop_size, random_state=self.random_state
            )
            return Population.new(X=kept.get("X"))

    sampling = initial_population(problem, pop_size, seed, initial)
    algorithm = _ScreenedNSGA2(pop_size=pop_size, n_offsprings=factor * pop_size, sampling=sampling)
    minimize(
        _Problem(),
        algorithm,
        ("n_eval", evaluator.budget),
        seed=seed,
        verbose=False,
        copy_algorithm=False,
    )
