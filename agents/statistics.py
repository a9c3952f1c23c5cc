"""Aggregate statistics over evaluation seeds, as rliable recommends for few runs: the
interquartile mean (IQM) with a percentile-bootstrap confidence interval, or the plain mean with a
Student-t 95 % interval."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

STATISTICS = ("iqm", "mean")


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50 % (scipy's 25 % trimmed mean)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("the IQM of no values is undefined")
    return float(stats.trim_mean(array, 0.25))


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic`` (seeded, so reports are reproducible)."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        value = statistic(array)
        return value, value
    rng = np.random.default_rng(seed)
    samples = rng.choice(array, size=(resamples, array.size), replace=True)
    estimates = np.array([statistic(sample) for sample in samples])
    tail = (1.0 - confidence) / 2.0
    return float(np.quantile(estimates, tail)), float(np.quantile(estimates, 1.0 - tail))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if array.size < 2:
        return mean, mean
    half = (
        stats.t.ppf(0.5 + confidence / 2.0, array.size - 1)
        * array.std(ddof=1)
        / np.sqrt(array.size)
    )
    return mean - float(half), mean + float(half)


@dataclass(frozen=True)
class Estimate:
    """A point estimate over seeds with its confidence interval."""

    value: float
    low: float
    high: float

    def format(self, pattern: str = "{:.2f}") -> str:
        low, high = pattern.format(self.low), pattern.format(self.high)
        return f"{pattern.format(self.value)} [{low}, {high}]"


def estimate(values: Sequence[float], statistic: str = "iqm", *, seed: int = 0) -> Estimate:
    """IQM with bootstrap CI (``"iqm"``) or mean with t CI (``"mean"``)."""
    if statistic == "iqm":
        low, high = bootstrap_ci(values, iqm, seed=seed)
        return Estimate(iqm(values), low, high)
    if statistic == "mean":
        low, high = mean_ci(values)
        return Estimate(float(np.mean(values)), low, high)
    raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")
