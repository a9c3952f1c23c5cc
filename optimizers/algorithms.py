"""One interface to every optimiser: :func:`run_algorithm(name, problem, budget=..., seed=...)`.

=================  ==================================================================  ========
name               what runs                                                           batches
=================  ==================================================================  ========
``nsga2``          pymoo NSGA-II (the default), constraint domination                  pop_size
``nsga3``          pymoo NSGA-III, Das–Dennis reference directions (≤ pop_size)         pop_size
``moead``          pymoo MOEA/D (PBI for 3 objectives); it has no constraint handling,  1
                   so the factory's G enters as a penalty on every objective
``random``         uniform random search in the bounds                                 pop_size
``weighted_sum``   Z = w·F + penalty·violation with SciPy's differential evolution     pop_size
                   (:mod:`optimizers.weighted_sum`)
``optuna_nsga2``   optuna multi-objective study, NSGAIISampler, constraints_func       pop_size
``optuna_tpe``     the same with the TPE sampler                                       pop_size
=================  ==================================================================  ========

Every algorithm gets exactly ``budget`` evaluations (the :class:`~optimizers.problems.Evaluator`
refuses more) and a ``seed`` for its own randomness; ``initial`` rows (a warm start, e.g. the
previous Pareto set) are evaluated first. A batch is evaluated in parallel on the engine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from optimizers.archive import Archive
from optimizers.config import ALGORITHMS
from optimizers.engines import SerialEngine
from optimizers.problems import BaseProblem, Evaluator

DE_MIN_POPULATION = 5  # SciPy's differential evolution needs more than 4 members


@dataclass
class RunResult:
    """What one run produced: the archive of every evaluation and its timing."""

    algorithm: str
    seed: int
    budget: int
    pop_size: int
    archive: Archive
    seconds: float
    """Wall time of the whole run, s."""
    eval_seconds: float
    """Wall time spent waiting for evaluations, s."""

    @property
    def evaluations(self) -> int:
        return len(self.archive)

    @property
    def evaluations_per_s(self) -> float:
        return self.evaluations / self.eval_seconds if self.eval_seconds > 0 else math.nan

    def front_indices(self) -> np.ndarray:
        return self.archive.front_indices()


def reference_directions(n_obj: int, at_most: int) -> np.ndarray:
    """The largest Das–Dennis set of reference directions with at most ``at_most`` members
    (at least the ``n_obj`` axis directions)."""
    from pymoo.util.ref_dirs import get_reference_directions

    partitions = 1
    while math.comb(partitions + 1 + n_obj - 1, n_obj - 1) <= at_most:
        partitions += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=partitions)


def spread(rows: np.ndarray, size: int) -> np.ndarray:
    """At most ``size`` of ``rows``: all of them, or evenly spaced ones in their order."""
    rows = np.atleast_2d(rows)
    if len(rows) <= size:
        return rows
    return rows[np.linspace(0, len(rows) - 1, size).round().astype(int)]


def initial_population(
    problem: BaseProblem, size: int, seed: int, initial: np.ndarray | None = None
) -> np.ndarray:
    """``size`` rows: the ``initial`` ones first, then uniform random. When there are more
    initial rows than ``size``, evenly spaced ones in their order are kept (a front saved by
    cost keeps its spread)."""
    rng = np.random.default_rng(seed)
    rows = np.empty((0, problem.n_var)) if initial is None else spread(initial, size)
    missing = size - len(rows)
    random = rng.uniform(problem.xl, problem.xu, size=(missing, problem.n_var))
    return np.vstack([rows, random])


def _pymoo_problem(problem: BaseProblem, evaluator: Evaluator, *, penalise: bool = False):
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

        def _evaluate(self, X, out, *args, **kwargs) -> None:
            F, G = evaluator(X)
            if penalise and problem.n_constr:
                violation = np.maximum(G, 0.0).sum(axis=1, keepdims=True)
                F = F + problem.violation_penalty * violation
            out["F"] = F
            if constrained:
                out["G"] = G

    return _Adapter()


def pymoo_problem(problem: BaseProblem, engine=None, budget: int = 10**9):
    """``problem`` as a plain pymoo ``Problem`` (``out["F"]``, ``out["G"]``) whose batches run
    on ``engine`` (default: this process), for use with any pymoo algorithm::

        pymoo.optimize.minimize(pymoo_problem(FactoryProblem(), engine), NSGA2(), ("n_gen", 5))

    Its ``evaluator_archive`` keeps every evaluation."""
    evaluator = Evaluator(problem, engine or SerialEngine(), budget)
    adapter = _pymoo_problem(problem, evaluator)
    adapter.evaluator_archive = evaluator.archive
    return adapter


def _run_pymoo(algorithm, problem: BaseProblem, evaluator: Evaluator, seed: int, penalise=False):
    from pymoo.optimize import minimize

    minimize(
        _pymoo_problem(problem, evaluator, penalise=penalise),
        algorithm,
        ("n_eval", evaluator.budget),
        seed=seed,
        verbose=False,
        copy_algorithm=False,
    )


def _nsga2(problem, evaluator, seed, pop_size, initial) -> None:
    from pymoo.algorithms.moo.nsga2 import NSGA2

    sampling = initial_population(problem, pop_size, seed, initial)
    _run_pymoo(NSGA2(pop_size=pop_size, sampling=sampling), problem, evaluator, seed)


def _nsga3(problem, evaluator, seed, pop_size, initial) -> None:
    from pymoo.algorithms.moo.nsga3 import NSGA3

    ref_dirs = reference_directions(problem.n_obj, pop_size)
    pop_size = max(pop_size, len(ref_dirs))
    sampling = initial_population(problem, pop_size, seed, initial)
    algorithm = NSGA3(ref_dirs=ref_dirs, pop_size=pop_size, sampling=sampling)
    _run_pymoo(algorithm, problem, evaluator, seed)


def _moead(problem, evaluator, seed, pop_size, initial) -> None:
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


def _random(problem, evaluator, seed, pop_size, initial) -> None:
    rng = np.random.default_rng(seed)
    if initial is not None:
        evaluator(spread(initial, evaluator.remaining))
    while not evaluator.exhausted:
        size = min(pop_size, evaluator.remaining)
        evaluator(rng.uniform(problem.xl, problem.xu, size=(size, problem.n_var)))


def _weighted_sum(problem, evaluator, seed, pop_size, initial) -> None:
    from optimizers.weighted_sum import run_weighted_sum

    run_weighted_sum(problem, evaluator, seed, max(pop_size, DE_MIN_POPULATION), initial)


def _optuna(sampler: str):
    def runner(problem, evaluator, seed, pop_size, initial) -> None:
        from optimizers.optuna_mo import run_optuna

        run_optuna(problem, evaluator, seed, pop_size, initial, sampler)

    return runner


@dataclass(frozen=True)
class AlgorithmInfo:
    name: str
    runner: Callable
    min_budget: Callable[[BaseProblem, int], int]
    """The smallest budget that completes the initial population."""


REGISTRY = {
    "nsga2": AlgorithmInfo("nsga2", _nsga2, lambda p, pop: pop),
    "nsga3": AlgorithmInfo("nsga3", _nsga3, lambda p, pop: max(pop, p.n_obj)),
    "moead": AlgorithmInfo("moead", _moead, lambda p, pop: len(reference_directions(p.n_obj, pop))),
    "random": AlgorithmInfo("random", _random, lambda p, pop: 1),
    "weighted_sum": AlgorithmInfo(
        "weighted_sum", _weighted_sum, lambda p, pop: max(pop, DE_MIN_POPULATION)
    ),
    "optuna_nsga2": AlgorithmInfo("optuna_nsga2", _optuna("nsga2"), lambda p, pop: 1),
    "optuna_tpe": AlgorithmInfo("optuna_tpe", _optuna("tpe"), lambda p, pop: 1),
}
assert tuple(REGISTRY) == ALGORITHMS


def check_request(name: str, problem: BaseProblem, budget: int, pop_size: int) -> AlgorithmInfo:
    """The algorithm's entry, or a ValueError that names the fix (unknown name, budget or
    population too small)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown algorithm '{name}'; choose one of {list(REGISTRY)}")
    if not isinstance(pop_size, int | np.integer) or pop_size < 2:
        raise ValueError(f"pop_size must be a whole number >= 2, not {pop_size!r}")
    info = REGISTRY[name]
    needed = info.min_budget(problem, pop_size)
    if not isinstance(budget, int | np.integer) or budget < needed:
        raise ValueError(
            f"budget {budget!r} is impossible for {name} with pop_size {pop_size}: its first "
            f"population alone takes {needed} evaluations; raise the budget to at least {needed} "
            "or lower pop_size"
        )
    return info


def run_algorithm(
    name: str,
    problem: BaseProblem,
    *,
    budget: int,
    seed: int = 0,
    pop_size: int = 20,
    engine=None,
    initial: np.ndarray | None = None,
    progress: bool | str = False,
    keep_x: bool = True,
) -> RunResult:
    """Run algorithm ``name`` on ``problem`` for exactly ``budget`` evaluations.

    ``engine`` runs the batches (default: in this process); ``initial`` rows are evaluated
    first (warm start); ``progress`` shows a tqdm bar (a string is its label).
    """
    info = check_request(name, problem, budget, pop_size)
    if initial is not None:
        initial = problem.check(initial)
    bar = None
    if progress:
        from tqdm import tqdm

        label = progress if isinstance(progress, str) else name
        bar = tqdm(total=budget, desc=label, unit="eval", leave=False)
    engine = engine or SerialEngine()
    evaluator = Evaluator(
        problem, engine, budget, on_evaluation=bar.update if bar else None, keep_x=keep_x
    )
    started = time.perf_counter()
    try:
        info.runner(problem, evaluator, seed, pop_size, initial)
    finally:
        if bar is not None:
            bar.close()
    return RunResult(
        algorithm=name,
        seed=seed,
        budget=budget,
        pop_size=pop_size,
        archive=evaluator.archive,
        seconds=time.perf_counter() - started,
        eval_seconds=evaluator.wall_seconds,
    )
