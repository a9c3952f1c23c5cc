"""Scoring a benchmark's runs, following COCO and jMetal practice: the archive hypervolume after
one fixed normalisation per problem, anytime HV curves, median/IQR tables with the ratio to
random search, pairwise Wilcoxon rank-sum tests (two-sided, Holm-corrected per problem), and the
goal tests: every algorithm against random search on every problem (one-sided rank-sum, "HV
higher than random's"), Holm-corrected across that whole problem × algorithm family.
:mod:`optimizers.benchmark` runs (or loads) the cells and calls these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from optimizers.algorithms import RunResult
from optimizers.archive import Archive, non_dominated
from optimizers.indicators import Normalisation, hypervolume, igd
from optimizers.problems import BaseProblem, StandardProblem

__all__ = [
    "ProblemScores",
    "anytime_hv",
    "format_goal_tests",
    "format_table",
    "format_tests",
    "goal_tests",
    "holm",
    "normalisation_for",
    "score",
    "summary_rows",
    "wilcoxon_table",
]


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


def ratio_of_medians(values: np.ndarray, base: np.ndarray) -> float:
    """median(values) / median(base); inf when only the base median is 0, NaN when both are."""
    top, bottom = float(np.median(values)), float(np.median(base))
    if bottom > 0:
        return top / bottom
    return np.inf if top > 0 else np.nan


def goal_tests(hv: dict[str, dict[str, np.ndarray]], goal_ratio: float) -> list[dict]:
    """Every algorithm against ``random`` on every problem of ``hv`` (problem → algorithm →
    final HV per seed): the ratio of HV medians, the one-sided Wilcoxon rank-sum p-value of
    "higher HV than random search", that p Holm-corrected across all these tests together, and
    whether the goal is met (ratio ≥ ``goal_ratio`` and Holm p < 0.05). Problems without a
    random-search entry contribute nothing."""
    from scipy.stats import ranksums

    raw: dict[tuple[str, str], float] = {}
    ratios: dict[tuple[str, str], float] = {}
    for problem, by_algorithm in hv.items():
        if "random" not in by_algorithm:
            continue
        base = by_algorithm["random"]
        for algorithm, values in by_algorithm.items():
            if algorithm == "random":
                continue
            test = ranksums(values, base, alternative="greater")
            raw[(problem, algorithm)] = float(test.pvalue)
            ratios[(problem, algorithm)] = ratio_of_medians(values, base)
    adjusted = holm(raw)
    return [
        {
            "problem": problem,
            "algorithm": algorithm,
            "x_random": ratios[(problem, algorithm)],
            "p": p,
            "p_holm": adjusted[(problem, algorithm)],
            "goal_ratio": goal_ratio,
            "goal_met": bool(
                ratios[(problem, algorithm)] >= goal_ratio and adjusted[(problem, algorithm)] < 0.05
            ),
        }
        for (problem, algorithm), p in raw.items()
    ]


def format_goal_tests(tests: list[dict]) -> str:
    """The goal tests as a Markdown table."""
    if not tests:
        return "(no goal tests: they need random search and another algorithm on a problem)"
    lines = [
        f"Goal: HV median >= {tests[0]['goal_ratio']:g}x random search's, one-sided Wilcoxon "
        f"rank-sum, Holm-corrected over these {len(tests)} tests:",
        "",
        "| problem | algorithm | × random | p | p (Holm) | goal met |",
        "|---|---|---|---|---|---|",
    ]
    for t in tests:
        lines.append(
            f"| {t['problem']} | {t['algorithm']} | {t['x_random']:.2f} | {t['p']:.3g} | "
            f"{t['p_holm']:.3g} | {'yes' if t['goal_met'] else 'no'} |"
        )
    return "\n".join(lines)


def summary_rows(scores: ProblemScores) -> list[dict]:
    rows = []
    for name, values in scores.hv.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        row = {
            "problem": scores.problem,
            "algorithm": name,
            "runs": len(values),
            "hv_median": float(median),
            "hv_iqr": float(q3 - q1),
            "x_random": ratio_of_medians(values, scores.hv["random"])
            if "random" in scores.hv
            else np.nan,
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
