"""The benchmark's chosen plans on held-out weeks: for each factory problem, the best
algorithm's plan meets the heuristics through :func:`optimizers.compare.compare_with_heuristics`.

"Best algorithm" is the one with the highest median final HV among those that are not random
search (random search when it ran alone); its run with the median HV (the lower middle one for
an even count) is the one a user would typically get; from that run's archive the feasible
non-dominated plan with the smallest w·F (the scenario's weights) is chosen, as
``scripts/optimize.py --pick weights`` does. The weeks are held out
(:func:`envs.seeding.held_out_seeds`), so no plan is scored on a week it was optimised on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from envs.seeding import held_out_seeds
from optimizers.algorithms import RunResult
from optimizers.config import BenchmarkConfig
from optimizers.indicators import weighted_choice
from optimizers.problems import FactoryProblem

__all__ = ["best_algorithm", "compare_chosen_plans", "median_run"]


def best_algorithm(hv: Mapping[str, np.ndarray]) -> str:
    """The algorithm with the highest median HV, random search only when it is alone."""
    contenders = [a for a in hv if a != "random"] or list(hv)
    if not contenders:
        raise ValueError("no runs to choose an algorithm from")
    return max(contenders, key=lambda a: float(np.median(hv[a])))


def median_run(hv: np.ndarray) -> int:
    """Position of the run with the median HV (the lower middle one for an even count)."""
    order = np.argsort(np.asarray(hv), kind="stable")
    return int(order[(len(order) - 1) // 2])


def compare_chosen_plans(
    problems: Mapping[str, FactoryProblem],
    runs: Mapping[str, Mapping[tuple[str, int], RunResult]],
    hv: Mapping[str, Mapping[str, np.ndarray]],
    config: BenchmarkConfig,
    *,
    progress: bool = True,
    echo: Callable[[str], object] = print,
) -> dict[str, Any]:
    """Per factory problem: the chosen plan (module docstring) against ``naive`` and
    ``condition_based`` on ``config.compare_seeds`` held-out weeks (``compare_horizon_h``
    hours each, default the scenario's week); prints the KPI tables and returns, per problem,
    the algorithm, seed, plan and :func:`optimizers.compare.comparison_report`."""
    from optimizers.compare import compare_plan_shown, comparison_report

    seeds = held_out_seeds(config.compare_seeds)
    reports: dict[str, Any] = {}
    for name, problem in problems.items():
        algorithm = best_algorithm(hv[name])
        mine = sorted((seed, run) for (a, seed), run in runs[name].items() if a == algorithm)
        seed, run = mine[median_run(hv[name][algorithm])]
        archive = run.archive
        front = archive.front_indices()
        if not archive.keep_x or front.size == 0:
            echo(f"{name}: no plan to compare ({algorithm} seed {seed} kept no feasible vector)")
            continue
        index = int(front[weighted_choice(archive.F[front], problem.default_weights)])
        x = archive.X[index]
        horizon = config.compare_horizon_h or problem.scenario.horizon_h
        outcome = compare_plan_shown(
            problem.scenario,
            problem.encoding.decode(x),
            seeds,
            horizon,
            title=f"{name}: {algorithm}'s chosen plan (seed {seed}, the median-HV run; smallest "
            f"w·F of its front) on {len(seeds)} held-out weeks, {horizon:g} h each",
            desc=f"{name} held out",
            progress=progress,
            echo=echo,
        )
        reports[name] = {
            "algorithm": algorithm,
            "seed": seed,
            "plan": problem.encoding.as_dict(x),
            "F": archive.F[index].tolist(),
            **comparison_report(outcome, seeds, horizon),
        }
    return reports
