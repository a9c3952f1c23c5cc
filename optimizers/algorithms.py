"""One interface to every optimiser: :func:`run_algorithm(name, problem, budget=..., seed=...)`.

The algorithms and their names are in :mod:`optimizers.registry` (``nsga2`` — the default —,
``nsga3``, ``moead``, ``random``, ``weighted_sum``, ``optuna_nsga2``, ``optuna_tpe``).

Every algorithm gets exactly ``budget`` evaluations (the :class:`~optimizers.problems.Evaluator`
refuses more) and a ``seed`` for its own randomness; ``initial`` rows (a warm start, e.g. the
previous Pareto set) are evaluated first. A batch is evaluated in parallel on the engine.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizers.archive import Archive
from optimizers.engines import Engine, SerialEngine
from optimizers.problems import BaseProblem, Evaluator
from optimizers.registry import REGISTRY, AlgorithmInfo, pymoo_adapter

__all__ = ["REGISTRY", "RunResult", "check_request", "pymoo_problem", "run_algorithm"]


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
        """Evaluations made (the archive's length)."""
        return len(self.archive)

    @property
    def evaluations_per_s(self) -> float:
        """Evaluations per second of evaluation wall time (NaN before any)."""
        return self.evaluations / self.eval_seconds if self.eval_seconds > 0 else math.nan

    def front_indices(self) -> np.ndarray:
        """Archive indices of the feasible non-dominated evaluations."""
        return self.archive.front_indices()


def pymoo_problem(problem: BaseProblem, engine: Engine | None = None, budget: int = 10**9) -> Any:
    """``problem`` as a plain pymoo ``Problem`` (``out["F"]``, ``out["G"]``) whose batches run
    on ``engine`` (default: this process), for use with any pymoo algorithm::

        pymoo.optimize.minimize(pymoo_problem(FactoryProblem(), engine), NSGA2(), ("n_gen", 5))

    Its ``evaluator_archive`` keeps every evaluation."""
    evaluator = Evaluator(problem, engine or SerialEngine(), budget)
    adapter = pymoo_adapter(problem, evaluator)
    adapter.evaluator_archive = evaluator.archive
    return adapter


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
    engine: Engine | None = None,
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
