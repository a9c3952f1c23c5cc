"""Aggregate statistics over evaluation seeds, as rliable recommends for few runs: the
interquartile mean (IQM) with a seeded percentile-bootstrap confidence interval
(:func:`scipy.stats.bootstrap`), or the plain mean with a Student-t interval
(:func:`scipy.stats.t.interval`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["STATISTICS", "Estimate", "bootstrap_ci", "estimate", "iqm", "mean_ci"]

STATISTICS = ("iqm", "mean")
BOOTSTRAP_METHODS = ("percentile", "BCa", "basic")


def iqm(values: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean: the mean of the middle 50 % (scipy's 25 % trimmed mean)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("the IQM of no values is undefined")
    return float(stats.trim_mean(array, 0.25))


def _iqm_along(sample: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.asarray(stats.trim_mean(sample, 0.25, axis=axis))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float],
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    method: str = "percentile",
) -> tuple[float, float]:
    """Bootstrap interval of ``statistic`` by :func:`scipy.stats.bootstrap` (``method``:
    percentile, BCa or basic), seeded so reports are reproducible. Fewer than two values, or
    values that are all equal, give the point value as both ends."""
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, not {method!r}")
    array = np.asarray(values, dtype=float)
    if array.size < 2 or np.ptp(array) == 0:
        value = float(statistic(array))
        return value, value
    vectorized = statistic is iqm
    result = stats.bootstrap(
        (array,),
        _iqm_along if vectorized else statistic,
        n_resamples=resamples,
        confidence_level=confidence,
        method=method,
        vectorized=vectorized,
        random_state=np.random.default_rng(seed),  # ``rng=`` only exists from SciPy 1.15
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean (the mean itself for fewer than two values)."""
    array = np.asarray(values, dtype=float)
    mean = float(array.mean())
    if array.size < 2 or np.ptp(array) == 0:
        return mean, mean
    low, high = stats.t.interval(confidence, array.size - 1, loc=mean, scale=stats.sem(array))
    return float(low), float(high)


@dataclass(frozen=True)
class Estimate:
    """A point estimate over seeds with its confidence interval."""

    value: float
    low: float
    high: float

    def format(self, pattern: str = "{:.2f}") -> str:
        """``value [low, high]`` with each number formatted by ``pattern``."""
        low, high = pattern.format(self.low), pattern.format(self.high)
        return f"{pattern.format(self.value)} [{low}, {high}]"

    def format_pm(self, pattern: str = "{:.2f}") -> str:
        """``value ± half-width`` (the larger side of the interval)."""
        half = max(self.high - self.value, self.value - self.low)
        return f"{pattern.format(self.value)} ± {pattern.format(half)}"


def estimate(
    values: Sequence[float] | np.ndarray, statistic: str = "iqm", *, seed: int = 0
) -> Estimate:
    """IQM with bootstrap CI (``"iqm"``) or mean with t CI (``"mean"``)."""
    if statistic == "iqm":
        low, high = bootstrap_ci(values, iqm, seed=seed)
        return Estimate(iqm(values), low, high)
    if statistic == "mean":
        low, high = mean_ci(values)
        return Estimate(float(np.mean(values)), low, high)
    raise ValueError(f"statistic must be one of {STATISTICS}, not {statistic!r}")
