"""NSGA-II whose offspring a cheap surrogate screens: ``nsga2_screened``.

Each generation makes ``SCREENING_FACTOR`` × ``pop_size`` offspring with NSGA-II's mating
(tournament, SBX crossover, polynomial mutation, as in ``nsga2``) and as many uniform random
candidates in the bounds (global exploration: what random search would try); a surrogate fitted
on the evaluations so far predicts their ``F`` and ``G``, and the ``pop_size`` to simulate are
picked greedily by predicted hypervolume improvement over the feasible front evaluated so far
(normalised by that front's ideal and nadir, reference point 1.1, as the benchmark scores it;
a front of more than :data:`MAX_FRONT_POINTS` is thinned evenly first):
each pick is added to the front as if its prediction were true before the next is chosen, so a
batch spreads along the front instead of piling onto one spot. Candidates predicted infeasible
come after the feasible ones, by predicted violation; when no candidate is predicted to improve
the front, NSGA-II's survival (constraint domination, rank, crowding) on the predictions fills
the batch. Only simulated candidates count against the budget and only simulated values enter
NSGA-II's population and survival, so a wrong prediction costs an evaluation, never a wrong
front. This is the classic surrogate-assisted pre-selection (Loshchilov et al., GECCO 2010;
Jin, Swarm Evol. Comput. 2011) with an SMS-EGO-style hypervolume infill criterion (Ponweiser
et al., PPSN 2008).

The surrogate, :class:`Surrogate`, is SciPy's thin-plate-spline RBF interpolation with a small
smoothing term over the decision vector scaled to [0, 1], one output per objective and
constraint (each scaled by its spread), fitted on the most recent :data:`MAX_TRAINING_POINTS`
evaluations: it needs no training loop, fits a few hundred points in milliseconds and is exact
at the evaluated points (up to the smoothing). Until there are more points than ``n_var + 2``
(too few to fit it), or if the fit fails, the offspring are kept unscreened (the first
``pop_size``).

It depends on :mod:`optimizers.population` and :mod:`optimizers.archive` (the non-dominated
filter) only.
"""

from __future__ import annotations

import heapq
import logging
from typing import Any

import numpy as np

from optimizers.archive import non_dominated
from optimizers.population import BudgetedEvaluator, SearchSpace, initial_population, spread

__all__ = ["SCREENING_FACTOR", "Surrogate", "pick_by_hypervolume", "run_screened_nsga2"]

SCREENING_FACTOR = 5
"""Offspring made per generation, as a multiple of the population; ``pop_size`` are simulated."""
FAILED_ABOVE = 1e11
"""Rows with any |F| or |G| above this are failed evaluations (``optimizers.simulate``'s
FAILED_VALUE is 1e12) and are not fitted."""
SMOOTHING = 1e-3
MAX_TRAINING_POINTS = 300
"""The surrogate is fitted on the most recent evaluations only (the region the population is
in; an RBF fit grows with the cube of its points)."""
MAX_FRONT_POINTS = 40
"""A larger evaluated front is thinned to this many points, evenly by the first objective,
before the hypervolume improvements are computed (their cost grows with the front)."""
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


def _hypervolume(points: np.ndarray, reference: np.ndarray) -> float:
    from pymoo.indicators.hv import HV

    inside = points[np.all(points < reference, axis=1)]
    return float(HV(ref_point=reference)(inside)) if len(inside) else 0.0


def pick_by_hypervolume(
    front: np.ndarray, predicted: np.ndarray, violation: np.ndarray, count: int
) -> list[int]:
    """Indices of ``count`` rows of ``predicted`` (objectives, minimised) chosen greedily by
    hypervolume improvement over ``front`` (the feasible evaluated front; may be empty) and the
    picks before them, after normalising by the front's ideal and nadir (reference 1.1).
    Rows with ``violation`` > 0 are only picked once no feasible row improves the front, by
    smallest violation. Returns fewer than ``count`` indices when nothing else improves the
    front and nothing is left predicted infeasible (the caller fills up)."""
    predicted = np.atleast_2d(predicted)
    n_obj = predicted.shape[1]
    front = np.asarray(front, dtype=float).reshape(-1, n_obj)
    basis = front if len(front) else predicted
    ideal, nadir = basis.min(axis=0), basis.max(axis=0)
    span = np.where(nadir > ideal, nadir - ideal, 1.0)
    reference = np.full(n_obj, 1.1)
    current = (front - ideal) / span
    candidates = (predicted - ideal) / span
    feasible = np.flatnonzero(np.asarray(violation) <= 0)
    picked: list[int] = []
    base = _hypervolume(current, reference)
    # lazy greedy: a point's improvement only shrinks as the front grows, so a stale gain is an
    # upper bound and only the top of the queue needs recomputing
    queue = [(-np.inf, int(i)) for i in feasible]
    heapq.heapify(queue)
    while queue and len(picked) < count:
        _, i = heapq.heappop(queue)
        gain = _hypervolume(np.vstack([current, candidates[i]]), reference) - base
        if queue and gain < -queue[0][0] - 1e-15:
            heapq.heappush(queue, (-gain, i))  # someone else may gain more: look again
            continue
        if gain <= 1e-12:
            break
        picked.append(i)
        current = np.vstack([current, candidates[i]])
        current = current[non_dominated(current)]
        base = _hypervolume(current, reference)
    infeasible = [i for i in np.argsort(violation, kind="stable") if violation[i] > 0]
    picked.extend(int(i) for i in infeasible[: count - len(picked)])
    return picked


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
            recent = slice(-MAX_TRAINING_POINTS, None)
            if not seen_X or not surrogate.fit(np.array(seen_X[recent]), np.array(seen_Y[recent])):
                return offspring[: self.pop_size]
            uniform = self.random_state.uniform(
                problem.xl, problem.xu, size=(len(offspring), problem.n_var)
            )
            X = np.vstack([offspring.get("X"), uniform])
            Y = surrogate.predict(X)
            violation = np.maximum(Y[:, n_obj:], 0.0).sum(axis=1)
            seen = np.array(seen_Y)
            feasible = np.all(seen[:, n_obj:] <= 0, axis=1)
            front = seen[feasible, :n_obj]
            if len(front):
                front = front[non_dominated(front)]
                front = spread(front[np.argsort(front[:, 0], kind="stable")], MAX_FRONT_POINTS)
            picked = pick_by_hypervolume(front, Y[:, :n_obj], violation, self.pop_size)
            if len(picked) < self.pop_size:
                rest = np.setdiff1d(np.arange(len(X)), picked)
                predicted = Population.new(X=X[rest], F=Y[rest, :n_obj])
                if n_constr:
                    predicted.set("G", Y[rest, n_obj:])
                kept = self.survival.do(
                    self.problem,
                    predicted,
                    n_survive=self.pop_size - len(picked),
                    random_state=self.random_state,
                )
                return Population.new(X=np.vstack([X[picked], kept.get("X")]))
            return Population.new(X=X[picked])

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
