"""Paired comparison of policies on the same held-out seeds (common random numbers): for each
seed the difference of the weighted objective Z between a policy and a reference, the mean
difference with a Student-t 95 % interval, and the count of episodes the policy won (lower Z).

Pairing removes the week-to-week variation every policy shares (demand, failures), so a
difference far smaller than either policy's own interval can still be clear."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agents.evaluation import EpisodeResult
from agents.heuristics import HEURISTICS
from agents.statistics import mean_ci

__all__ = ["PairedComparison", "best_baseline", "format_paired", "paired_comparisons"]


@dataclass(frozen=True)
class PairedComparison:
    """``policy`` against ``reference`` on the same seeds; differences are policy − reference
    (negative: the policy's Z is lower, i.e. better)."""

    policy: str
    reference: str
    key: str
    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    """Student-t 95 % interval of the mean difference."""
    wins: int
    """Seeds on which the policy's value is lower than the reference's."""

    @property
    def count(self) -> int:
        return len(self.seeds)

    @property
    def half_width(self) -> float:
        """Half the width of the t interval (the ``±`` of the mean)."""
        return (self.high - self.low) / 2.0

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields (and ``count``, ``half_width``)."""
        return {
            "policy": self.policy,
            "reference": self.reference,
            "key": self.key,
            "seeds": list(self.seeds),
            "differences": list(self.differences),
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "half_width": self.half_width,
            "wins": self.wins,
            "count": self.count,
        }


def best_baseline(results: Mapping[str, Sequence[EpisodeResult]], key: str = "objective") -> str:
    """The heuristic among ``results`` with the lowest mean ``key`` (Z by default); ValueError
    when ``results`` holds no heuristic."""
    heuristics = [label for label in results if label in HEURISTICS and results[label]]
    if not heuristics:
        raise ValueError(
            f"no heuristic among the policies ({', '.join(results)}) to compare against; "
            "evaluate one of " + ", ".join(HEURISTICS) + " or name a reference"
        )
    return min(heuristics, key=lambda label: np.mean([r.value(key) for r in results[label]]))


def paired_comparisons(
    results: Mapping[str, Sequence[EpisodeResult]],
    reference: str | None = None,
    *,
    key: str = "objective",
    confidence: float = 0.95,
) -> dict[str, PairedComparison]:
    """Every policy but ``reference`` (default: :func:`best_baseline`) against it, seed by seed.
    The two must have been evaluated on the same seeds."""
    reference = reference or best_baseline(results, key)
    if reference not in results:
        raise ValueError(
            f"reference '{reference}' was not evaluated; choose one of {', '.join(results)}"
        )
    base = {r.seed: r.value(key) for r in results[reference]}
    comparisons = {}
    for label, runs in results.items():
        if label == reference:
            continue
        seeds = tuple(r.seed for r in runs)
        missing = [seed for seed in seeds if seed not in base]
        if missing or len(seeds) != len(base):
            raise ValueError(
                f"'{label}' and '{reference}' were not evaluated on the same seeds; a paired "
                "comparison needs both on every seed"
            )
        differences = np.array([r.value(key) - base[r.seed] for r in runs])
        low, high = mean_ci(differences, confidence)
        comparisons[label] = PairedComparison(
            policy=label,
            reference=reference,
            key=key,
            seeds=seeds,
            differences=tuple(float(d) for d in differences),
            mean=float(differences.mean()),
            low=low,
            high=high,
            wins=int((differences < 0).sum()),
        )
    return comparisons


def format_paired(comparisons: Mapping[str, PairedComparison], pattern: str = "{:,.0f}") -> str:
    """``paired against <reference> ...`` and one line per policy: mean difference ± half of
    the 95 % t interval, the interval, and the episodes won."""
    if not comparisons:
        return ""
    first = next(iter(comparisons.values()))
    name = "Z" if first.key == "objective" else first.key
    lines = [
        f"paired against {first.reference} on the same {first.count} seeds "
        f"({name} policy − {first.reference}; negative is better):"
    ]
    width = max(len(label) for label in comparisons)
    for label, c in comparisons.items():
        lines.append(
            f"  {label.ljust(width)}  {pattern.format(c.mean)} ± {pattern.format(c.half_width)} "
            f"[95 % t CI {pattern.format(c.low)}, {pattern.format(c.high)}], "
            f"better in {c.wins} of {c.count} episodes"
        )
    return "\n".join(lines)
