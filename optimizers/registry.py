"""The algorithm registry: the one list of optimiser names, what runs behind each, and the
smallest budget each accepts.

=================  ==================================================================  ========
name               what runs                                                           batches
=================  ==================================================================  ========
``nsga2``          pymoo NSGA-II (the default), constraint domination                  pop_size
``nsga3``          pymoo NSGA-III, Das–Dennis reference directions (≤ pop_size)         pop_size
``moead``          pymoo MOEA/D (PBI for 3 objectives); it has no constraint handling,  1
                   so the factory's G enters as a penalty on every objective
``nsga2_screened``  NSGA-II whose 5 × pop_size offspring an RBF surrogate screens down  pop_size
                   to the pop_size simulated (:mod:`optimizers.screening`)
``random``         uniform random search in the bounds                                 pop_size
``weighted_sum``   Z = w·F + penalty·violation with SciPy's differential evolution     pop_size
                   (:mod:`optimizers.weighted_sum`)
``optuna_nsga2``   optuna multi-objective study, NSGAIISampler, constraints_func       pop_size
``optuna_tpe``     the same with the TPE sampler                                       pop_size
=================  ==================================================================  ========

:data:`ALGORITHMS` (the configuration's choices) is derived from :data:`REGISTRY`. Importing
this module imports neither pymoo, SciPy nor optuna: each runner imports its library when it
runs. A runner is ``runner(problem, evaluator, seed, pop_size, initial)`` and evaluates through
``evaluator`` until its budget is spent (:func:`optimizers.algorithms.run_algorithm` builds both).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizers import optuna_mo, screening, weighted_sum
from optimizers.population import (
    BudgetedEvaluator,
    SearchSpace,
    initial_population,
    penalised,
    reference_directions,
    spread,
)

__all__ = ["ALGORITHMS", "REGISTRY", "AlgorithmInfo", "Runner", "pymoo_adapter"]

Runner = Callable[[SearchSpace, BudgetedEvaluator, int, int, np.ndarray | None], None]
"""``runner(problem, evaluator, seed, pop_size, initial)``."""


@dataclass(frozen=True)
class AlgorithmInfo:
    """One registered optimiser."""

    name: str
    runner: Runner
    min_budget: Callable[[SearchSpace, int], int]
    """The smallest budget that completes the initial population, for ``(problem, pop_size)``."""
    summary: str


def pymoo_adapter(
    problem: SearchSpace, evaluator: BudgetedEvaluator, *, penalise: bool = False
) -> Any:
    """``problem`` as a pymoo ``Problem`` whose batches go through ``evaluator``; with
    ``penalise`` the constraints become a penalty on every objective (:func:`penalised`)."""
    from pymoo.core.problem import Problem

    constrained = problem.n_constr > 0 and not penalise

    class _Adapter(Problem):
        def __init__(self) -> None:
            super().__init__(
                n_var=problem.n_var,
                n_obj=problem.n_obj,
                n_ieq_constr=problem.n_constr if constrained else 0,
                xl=problem.xl,
                xu=problem.xu,
            )

        def _evaluate(self, X: np.ndarray, out: dict, *args: Any, **kwargs: Any) -> None:
            F, G = evaluator(X)
            if penalise and problem.n_constr:
                F = penalised(F, G, problem.violation_penalty)
            out["F"] = F
            if constrained:
                out["G"] = G

    return _Adapter()


def _run_pymoo(
    algorithm: Any,
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    penalise: bool = False,
) -> None:
    from pymoo.optimize import minimize

    minimize(
        pymoo_adapter(problem, evaluator, penalise=penalise),
        algorithm,
        ("n_eval", evaluator.budget),
        seed=seed,
        verbose=False,
        copy_algorithm=False,
    )


def _nsga2(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    sampling = initial_population(problem, pop_size, seed, initial)
    _run_pymoo(NSGA2(pop_size=pop_size, sampling=sampling), problem, evaluator, seed)


def _nsga2_screened(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    screening.run_screened_nsga2(problem, evaluator, seed, pop_size, initial)


def _nsga3(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    from pymoo.algorithms.moo.nsga3 import NSGA3

    ref_dirs = reference_directions(problem.n_obj, pop_size)
    pop_size = max(pop_size, len(ref_dirs))
    sampling = initial_population(problem, pop_size, seed, initial)
    algorithm = NSGA3(ref_dirs=ref_dirs, pop_size=pop_size, sampling=sampling)
    _run_pymoo(algorithm, problem, evaluator, seed)


def _moead(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    from pymoo.algorithms.moo.moead import MOEAD

    ref_dirs = reference_directions(problem.n_obj, pop_size)
    sampling = initial_population(problem, len(ref_dirs), seed, initial)
    algorithm = MOEAD(
        ref_dirs=ref_dirs,
        n_neighbors=min(15, len(ref_dirs)),
        prob_neighbor_mating=0.7,
        sampling=sampling,
    )
    _run_pymoo(algorithm, problem, evaluator, seed, penalise=True)


def _random(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    rng = np.random.default_rng(seed)
    if initial is not None:
        evaluator(spread(initial, evaluator.remaining))
    while not evaluator.exhausted:
        size = min(pop_size, evaluator.remaining)
        evaluator(rng.uniform(problem.xl, problem.xu, size=(size, problem.n_var)))


def _weighted_sum(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
) -> None:
    size = max(pop_size, weighted_sum.DE_MIN_POPULATION)
    weighted_sum.run_weighted_sum(problem, evaluator, seed, size, initial)


def _optuna(sampler: str) -> Runner:
    def runner(
        problem: SearchSpace,
        evaluator: BudgetedEvaluator,
        seed: int,
        pop_size: int,
        initial: np.ndarray | None,
    ) -> None:
        optuna_mo.run_optuna(problem, evaluator, seed, pop_size, initial, sampler)

    return runner


def _whole_population(problem: SearchSpace, pop_size: int) -> int:
    return pop_size


def _any(problem: SearchSpace, pop_size: int) -> int:
    return 1


def _nsga3_min(problem: SearchSpace, pop_size: int) -> int:
    return max(pop_size, problem.n_obj)


def _moead_min(problem: SearchSpace, pop_size: int) -> int:
    return len(reference_directions(problem.n_obj, pop_size))


def _weighted_sum_min(problem: SearchSpace, pop_size: int) -> int:
    return max(pop_size, weighted_sum.DE_MIN_POPULATION)


REGISTRY: dict[str, AlgorithmInfo] = {
    info.name: info
    for info in (
        AlgorithmInfo("nsga2", _nsga2, _whole_population, "pymoo NSGA-II (the default)"),
        AlgorithmInfo(
            "nsga2_screened",
            _nsga2_screened,
            _whole_population,
            "NSGA-II, offspring screened by an RBF surrogate",
        ),
        AlgorithmInfo("nsga3", _nsga3, _nsga3_min, "pymoo NSGA-III, Das-Dennis directions"),
        AlgorithmInfo("moead", _moead, _moead_min, "pymoo MOEA/D, constraints as a penalty"),
        AlgorithmInfo("random", _random, _any, "uniform random search in the bounds"),
        AlgorithmInfo(
            "weighted_sum",
            _weighted_sum,
            _weighted_sum_min,
            "weighted sum with SciPy's differential evolution",
        ),
        AlgorithmInfo("optuna_nsga2", _optuna("nsga2"), _any, "optuna NSGAIISampler study"),
        AlgorithmInfo("optuna_tpe", _optuna("tpe"), _any, "optuna TPESampler study"),
    )
}
"""Every optimiser by name, in the order of the table above."""

ALGORITHMS: tuple[str, ...] = tuple(REGISTRY)
"""Every algorithm name :func:`optimizers.run_algorithm` accepts; ``nsga2`` is the default."""
