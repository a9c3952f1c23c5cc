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
- Runs are cached as JSON per (problem fingerprint, algorithm, pop size, budget, seed) under
  ``out_dir/cache``: a re-run computes only the cells that are missing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

from envs.atomic import write_atomic
from optimizers.algorithms import RunResult, check_request, run_algorithm
from optimizers.archive import Archive, non_dominated
from optimizers.config import BenchmarkConfig
from optimizers.indicators import Normalisation, hypervolume, igd
from optimizers.problems import BaseProblem, StandardProblem, make_problem


@dataclass
class ProblemScores:
    """Scores of every run of one problem."""

    problem: str
    budget: int
    normalisation: Normalisation
    checkpoints: np.ndarray
    hv: dict[str, np.ndarray] = field(default_factory=dict)
    """algorithm → final HV per seed."""
    igd: dict[str, np.ndarray] = field(default_factory=dict)
    anytime: dict[str, np.ndarray] = field(default_factory=dict)
    """algorithm → HV (seeds × checkpoints)."""
    failures: dict[str, int] = field(default_factory=dict)
    evaluations_per_s: dict[str, float] = field(default_factory=dict)


def cache_file(
    out_dir: Path, problem: BaseProblem, algorithm: str, pop: int, budget: int, seed: int
) -> Path:
    return (
        Path(out_dir)
        / "cache"
        / problem.fingerprint()
        / f"{algorithm}-p{pop}-b{budget}-s{seed}.json"
    )


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


def anytime_hv(
    archive: Archive, checkpoints: np.ndarray, normalisation: Normalisation, reference: float
) -> np.ndarray:
    """HV of the feasible non-dominated points among the first k evaluations, per checkpoint k
    (the front is updated incrementally)."""
    feasible = archive.feasible()
    F = archive.F
    front = np.empty(0, dtype=int)
    start = 0
    values = []
    for k in checkpoints:
        new = np.flatnonzero(feasible[start:k]) + start
        candidates = np.concatenate([front, new])
        if candidates.size:
            front = candidates[non_dominated(F[candidates])]
        start = int(k)
        values.append(hypervolume(F[front], normalisation, reference) if front.size else 0.0)
    return np.array(values)


def normalisation_for(problem: BaseProblem, runs: list[RunResult]) -> Normalisation:
    """The true front's bounds for a standard problem; else the union of all runs' fronts."""
    if isinstance(problem, StandardProblem):
        front = problem.true_front()
        return Normalisation(front.min(axis=0), front.max(axis=0))
    fronts = [r.archive.F[r.archive.front_indices()] for r in runs]
    union = np.vstack([f for f in fronts if len(f)] or [np.zeros((0, problem.n_obj))])
    if len(union) == 0:
        return Normalisation(np.zeros(problem.n_obj), np.ones(problem.n_obj))
    return Normalisation.of(union)


def score(
    problem: BaseProblem,
    runs: dict[tuple[str, int], RunResult],
    budget: int,
    checkpoints: int,
    reference: float,
) -> ProblemScores:
    normalisation = normalisation_for(problem, list(runs.values()))
    grid = np.unique(np.linspace(budget / checkpoints, budget, checkpoints).round().astype(int))
    scores = ProblemScores(problem.name, budget, normalisation, grid)
    true_front = problem.true_front() if isinstance(problem, StandardProblem) else None
    for name in dict.fromkeys(a for a, _ in runs):
        mine = [r for (a, _), r in sorted(runs.items()) if a == name]
        curves = np.array([anytime_hv(r.archive, grid, normalisation, reference) for r in mine])
        scores.anytime[name] = curves
        scores.hv[name] = curves[:, -1]
        if true_front is not None:
            scores.igd[name] = np.array(
                [igd(r.archive.F[r.archive.front_indices()], true_front) for r in mine]
            )
        scores.failures[name] = sum(r.archive.failures for r in mine)
        scores.evaluations_per_s[name] = float(np.nanmean([r.evaluations_per_s for r in mine]))
    return scores


def holm(p_values: dict) -> dict:
    """Holm–Bonferroni adjusted p-values (same keys)."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    adjusted, running = {}, 0.0
    for rank, (key, p) in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - rank) * p))
        adjusted[key] = running
    return adjusted


def wilcoxon_table(hv: dict[str, np.ndarray]) -> list[dict]:
    """Pairwise two-sided Wilcoxon rank-sum tests of the final HV, Holm-corrected."""
    from scipy.stats import ranksums

    raw = {(a, b): float(ranksums(hv[a], hv[b]).pvalue) for a, b in combinations(hv, 2)}
    adjusted = holm(raw)
    rows = []
    for (a, b), p in raw.items():
        better = a if np.median(hv[a]) > np.median(hv[b]) else b
        rows.append({"a": a, "b": b, "p": p, "p_holm": adjusted[(a, b)], "higher_median": better})
    return rows


def summary_rows(scores: ProblemScores) -> list[dict]:
    random_median = float(np.median(scores.hv["random"])) if "random" in scores.hv else np.nan
    rows = []
    for name, values in scores.hv.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        row = {
            "problem": scores.problem,
            "algorithm": name,
            "runs": len(values),
            "hv_median": float(median),
            "hv_iqr": float(q3 - q1),
            "x_random": float(median / random_median) if random_median > 0 else np.nan,
            "failures": scores.failures[name],
            "evaluations_per_s": scores.evaluations_per_s[name],
        }
        if name in scores.igd:
            i1, imed, i3 = np.percentile(scores.igd[name], [25, 50, 75])
            row.update(igd_median=float(imed), igd_iqr=float(i3 - i1))
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    titles = (
        "problem",
        "algorithm",
        "runs",
        "HV median",
        "HV IQR",
        "× random",
        "IGD median",
        "IGD IQR",
        "failures",
        "eval/s",
    )
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for r in rows:
        igd_cells = f"{r['igd_median']:.4f} | {r['igd_iqr']:.4f}" if "igd_median" in r else "– | –"
        lines.append(
            f"| {r['problem']} | {r['algorithm']} | {r['runs']} | {r['hv_median']:.4f} | "
            f"{r['hv_iqr']:.4f} | {r['x_random']:.2f} | {igd_cells} | {r['failures']} | "
            f"{r['evaluations_per_s']:,.1f} |"
        )
    return "\n".join(lines)


def format_tests(problem: str, tests: list[dict]) -> str:
    lines = [f"Wilcoxon rank-sum on final HV, {problem} (two-sided, Holm-corrected):"]
    for t in tests:
        lines.append(
            f"  {t['a']:>13} vs {t['b']:<13} p = {t['p']:.3g}  (Holm {t['p_holm']:.3g}); "
            f"higher median: {t['higher_median']}"
        )
    return "\n".join(lines)


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
    settings = {
        name: (config.factory_budget, config.factory_pop_size)
        if name == "factory"
        else (config.standard_budget, config.standard_pop_size)
        for name in problems
    }
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
            path = cache_file(out_dir, problem, algorithm, pop, budget, seed)
            result = None if force else load_run(path)
            if result is None:
                if name == "factory" and engine is None:
                    engine = make_engine(config.engine, config.workers, config.dask_address)
                bar.set_postfix_str(f"{name} {algorithm} seed {seed}")
                result = run_algorithm(
                    algorithm,
                    problem,
                    budget=budget,
                    seed=seed,
                    pop_size=pop,
                    engine=engine if name == "factory" else None,
                    progress=f"{name}/{algorithm}/{seed}"
                    if progress and name == "factory"
                    else False,
                    keep_x=False,
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
    for name, problem in problems.items():
        budget, _ = settings[name]
        scores = score(problem, runs[name], budget, config.checkpoints, config.reference_point)
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
    table = format_table(all_rows)
    echo(table)
    write_atomic(out_dir / "table.md", table + "\n")
    write_atomic(out_dir / "results.json", json.dumps(report, indent=2, default=float))
    report["written_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return report


def _config_dict(config: BenchmarkConfig) -> dict:
    from dataclasses import asdict

    return asdict(config)
