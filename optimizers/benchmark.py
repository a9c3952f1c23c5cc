"""The optimiser benchmark, following COCO and jMetal practice.

- Every algorithm gets the same evaluation budget on a problem and runs with ``seeds`` seeds.
- Quality is the hypervolume of the archive (all feasible, non-dominated points evaluated), after
  one fixed normalisation per problem shared by every algorithm and seed: the true front's ideal
  and nadir for ZDT1/DTLZ2, the ideal and nadir of the union of all runs' fronts for the factory
  (recorded in the results). The reference point is ``reference_point`` on every axis (1.1).
- Anytime curves: HV of the first k evaluations at ``checkpoints`` values of k (PNG).
- Table: median and IQR of the final HV (and IGD against the true front for ZDT1 and DTLZ2), the
  ratio of medians to random search, failures; pairwise Wilcoxon rank-sum tests (two-sided,
  Holm-corrected per problem).
- Goal tests: every algorithm against random search on every problem, one-sided rank-sum,
  Holm-corrected across the whole problem × algorithm family (``goal_tests`` in the results,
  the second table of ``table.md``).
- The problem ladder: ``small_line`` (4 machines), ``factory`` (the ``[factory]`` table's
  scenario, by default the 7-machine line) and ``large_line`` (32 machines), with the
  ``[factory]`` table's horizon, seeds and granularity; ``problem_budgets`` sets a budget per
  factory problem. With ``seed_heuristics`` every algorithm, random search included, evaluates
  the heuristics' plans (:mod:`optimizers.heuristic_plans`) first.
- With ``compare_seeds`` the best algorithm's chosen plan on each factory problem (its
  median-HV run, picked by the scenario's weights) meets the heuristics on held-out weeks
  (:mod:`optimizers.benchmark_plans`).
- Runs are cached as JSON per (problem fingerprint, algorithm, pop size, budget, seed, seeded
  start or not) under ``out_dir/cache``: a re-run computes only the cells that are missing.

This module runs (or loads) the cells and writes the results; the scoring, statistics and
tables are :mod:`optimizers.scores`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from envs.atomic import write_atomic
from optimizers.algorithms import RunResult, check_request, run_algorithm
from optimizers.archive import Archive
from optimizers.config import BenchmarkConfig
from optimizers.problems import BaseProblem, FactoryProblem, make_problem
from optimizers.scores import (
    format_goal_tests,
    format_table,
    format_tests,
    goal_tests,
    score,
    summary_rows,
    wilcoxon_table,
)


def cache_file(
    out_dir: Path,
    problem: BaseProblem,
    algorithm: str,
    pop: int,
    budget: int,
    seed: int,
    seeded: bool = False,
) -> Path:
    """Where one run is cached; ``seeded`` runs (started from the heuristics' plans) end in
    ``-h``."""
    suffix = "-h" if seeded else ""
    return (
        Path(out_dir)
        / "cache"
        / problem.fingerprint()
        / f"{algorithm}-p{pop}-b{budget}-s{seed}{suffix}.json"
    )


def initial_plans(problem: BaseProblem, config: BenchmarkConfig) -> np.ndarray | None:
    """The heuristics' plans on a factory problem when ``config.seed_heuristics``, else None."""
    if not (config.seed_heuristics and isinstance(problem, FactoryProblem)):
        return None
    from optimizers.heuristic_plans import heuristic_plans

    return np.vstack(list(heuristic_plans(problem.encoding).values()))


def load_run(path: Path) -> RunResult | None:
    """A cached run, or None when the file is missing or unreadable (then it is recomputed)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunResult(
            algorithm=data["algorithm"],
            seed=data["seed"],
            budget=data["budget"],
            pop_size=data["pop_size"],
            archive=Archive.from_dict(data["archive"]),
            seconds=data["seconds"],
            eval_seconds=data["eval_seconds"],
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_run(path: Path, result: RunResult) -> None:
    payload = {
        "algorithm": result.algorithm,
        "seed": result.seed,
        "budget": result.budget,
        "pop_size": result.pop_size,
        "seconds": result.seconds,
        "eval_seconds": result.eval_seconds,
        "archive": result.archive.to_dict(),
    }
    write_atomic(path, json.dumps(payload))


def run_benchmark(
    config: BenchmarkConfig,
    *,
    force: bool = False,
    progress: bool = True,
    echo: Callable[[str], object] = print,
) -> dict:
    """Run (or load from the cache) every cell of the benchmark, score, write ``results.json``,
    ``table.md`` and ``anytime_<problem>.png`` into ``config.out_dir``; returns the results."""
    from tqdm import tqdm

    from optimizers.engines import make_engine
    from optimizers.plots import plot_anytime

    out_dir = Path(config.out_dir)
    problems = {name: make_problem(name, config.factory) for name in config.problems}
    factory = {name for name, p in problems.items() if isinstance(p, FactoryProblem)}
    settings = {
        name: (
            config.budget_for(name),
            config.factory_pop_size if name in factory else config.standard_pop_size,
        )
        for name in problems
    }
    initial = {name: initial_plans(problem, config) for name, problem in problems.items()}
    for name, problem in problems.items():  # every request is checked before anything runs
        for algorithm in config.algorithms:
            check_request(algorithm, problem, *settings[name])
    engine = None
    computed = loaded = 0
    report: dict = {"config": _config_dict(config), "problems": {}}
    try:
        cells = [
            (p, a, s) for p in problems for a in config.algorithms for s in range(config.seeds)
        ]
        bar = tqdm(total=len(cells), desc="benchmark", unit="run", disable=not progress)
        runs: dict[str, dict[tuple[str, int], RunResult]] = {p: {} for p in problems}
        for name, algorithm, seed in cells:
            problem = problems[name]
            budget, pop = settings[name]
            start = initial[name]
            path = cache_file(out_dir, problem, algorithm, pop, budget, seed, start is not None)
            result = None if force else load_run(path)
            if result is None:
                if name in factory and engine is None:
                    engine = make_engine(config.engine, config.workers, config.dask_address)
                bar.set_postfix_str(f"{name} {algorithm} seed {seed}")
                result = run_algorithm(
                    algorithm,
                    problem,
                    budget=budget,
                    seed=seed,
                    pop_size=pop,
                    engine=engine if name in factory else None,
                    initial=start,
                    progress=f"{name}/{algorithm}/{seed}"
                    if progress and name in factory
                    else False,
                    keep_x=name in factory,  # the chosen plan is picked from the archive
                )
                save_run(path, result)
                computed += 1
            else:
                loaded += 1
            runs[name][(algorithm, seed)] = result
            bar.update(1)
        bar.close()
    finally:
        if engine is not None:
            engine.close()
    echo(f"{computed} runs computed, {loaded} loaded from {out_dir / 'cache'}")
    all_rows = []
    final_hv = {}
    for name, problem in problems.items():
        budget, _ = settings[name]
        scores = score(problem, runs[name], budget, config.checkpoints, config.reference_point)
        final_hv[name] = scores.hv
        rows = summary_rows(scores)
        tests = wilcoxon_table(scores.hv) if len(scores.hv) > 1 else []
        all_rows.extend(rows)
        plot_anytime(
            {a: {"evaluations": scores.checkpoints, "hv": c} for a, c in scores.anytime.items()},
            out_dir / f"anytime_{name}.png",
            title=f"{name}: anytime hypervolume, median and IQR over {config.seeds} seeds",
        )
        report["problems"][name] = {
            "fingerprint": problem.fingerprint(),
            "budget": budget,
            "seeded_with_heuristics": initial[name] is not None,
            "normalisation": scores.normalisation.as_dict(),
            "reference_point": config.reference_point,
            "checkpoints": scores.checkpoints.tolist(),
            "hv": {a: v.tolist() for a, v in scores.hv.items()},
            "igd": {a: v.tolist() for a, v in scores.igd.items()},
            "anytime_median": {a: np.median(c, axis=0).tolist() for a, c in scores.anytime.items()},
            "summary": rows,
            "wilcoxon": tests,
        }
        if tests:
            echo(format_tests(name, tests))
    report["goal_tests"] = goals = goal_tests(final_hv, config.goal_ratio)
    table = format_table(all_rows) + "\n\n" + format_goal_tests(goals)
    echo(table)
    if config.compare_seeds > 0:
        from optimizers.benchmark_plans import compare_chosen_plans

        report["held_out"] = compare_chosen_plans(
            {n: p for n, p in problems.items() if isinstance(p, FactoryProblem)},
            runs,
            final_hv,
            config,
            progress=progress,
            echo=echo,
        )
    write_atomic(out_dir / "table.md", table + "\n")
    write_atomic(out_dir / "results.json", json.dumps(report, indent=2, default=float))
    report["written_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def _config_dict(config: BenchmarkConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)
