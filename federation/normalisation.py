"""Observation normalisation statistics, federated correctly: merged, not averaged.

Each node normalises its observations as SB3's ``VecNormalize`` does, with a running mean and
(population) variance. The statistics are data summaries, not weights: averaging two nodes'
variances ignores how far apart their means are, and averaging means ignores how much data each
saw. :func:`merge_norm_stats` merges them exactly — the mean and variance of the pooled data —
with the parallel formula of Chan, Golub and LeVeque (1979)::

    n = Σ nᵢ,   μ = Σ nᵢ·μᵢ / n,   σ² = Σ nᵢ·(σᵢ² + (μᵢ − μ)²) / n

The server's statistics after a round: ``merge_norm_stats([previous, *round_stats])``, where
each node's ``round_stats`` summarise only the observations it saw in that round
(:attr:`federation.task.LocalResult.norm`), so no observation is counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["NormStats", "merge_norm_stats"]


@dataclass(frozen=True, eq=False)
class NormStats:
    """Mean and population variance of ``count`` observations, per observation feature."""

    mean: np.ndarray
    var: np.ndarray
    count: float

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float64)
        var = np.asarray(self.var, dtype=np.float64)
        if mean.ndim != 1 or mean.shape != var.shape:
            raise ValueError(
                f"NormStats needs 1-d mean and var of one shape, got {mean.shape} and {var.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(var).all() and np.isfinite(self.count)):
            raise ValueError("NormStats values must be finite")
        if (var < 0).any() or self.count < 0:
            raise ValueError("NormStats variance and count must be >= 0")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)
        object.__setattr__(self, "count", float(self.count))

    @classmethod
    def empty(cls, size: int) -> NormStats:
        """No observations yet (mean 0, variance 1, count 0): normalisation is the identity
        until data arrive, and the entry weighs nothing in a merge."""
        return cls(np.zeros(size), np.ones(size), 0.0)

    @property
    def size(self) -> int:
        """Number of observation features."""
        return int(self.mean.shape[0])

    def to_arrays(self) -> list[np.ndarray]:
        """``[mean, var, [count]]`` as float64 arrays (for a Flower ``ArrayRecord``)."""
        return [self.mean.copy(), self.var.copy(), np.array([self.count], dtype=np.float64)]

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray]) -> NormStats:
        """The inverse of :meth:`to_arrays`; ValueError for anything else."""
        if len(arrays) != 3 or np.asarray(arrays[2]).size != 1:
            raise ValueError("NormStats arrays must be [mean, var, [count]]")
        return cls(np.asarray(arrays[0]), np.asarray(arrays[1]), float(np.asarray(arrays[2])[0]))

    def to_running_mean_std(self) -> Any:
        """As SB3's ``RunningMeanStd`` (what ``VecNormalize.obs_rms`` holds). SB3 cannot hold a
        count of 0 (its own start is 1e-4), so an empty one becomes that."""
        from stable_baselines3.common.running_mean_std import RunningMeanStd

        rms = RunningMeanStd(shape=self.mean.shape)
        rms.mean = self.mean.copy()
        rms.var = self.var.copy()
        rms.count = max(self.count, 1e-4)
        return rms

    @classmethod
    def from_running_mean_std(cls, rms: Any) -> NormStats:
        """From SB3's ``RunningMeanStd`` (mean, var, count)."""
        return cls(np.asarray(rms.mean), np.asarray(rms.var), float(rms.count))

    def normalize(
        self, observations: np.ndarray, *, clip: float = 10.0, epsilon: float = 1e-8
    ) -> np.ndarray:
        """Observations scaled as ``VecNormalize`` does: clip((x − μ)/√(σ² + ε), ±clip)."""
        scaled = (np.asarray(observations, dtype=np.float64) - self.mean) / np.sqrt(
            self.var + epsilon
        )
        return np.clip(scaled, -clip, clip)


def merge_norm_stats(stats: Sequence[NormStats]) -> NormStats:
    """The statistics of all the data behind ``stats`` pooled: count-weighted mean, and the
    variance including the spread between the parts' means (exact, Chan et al.). Entries with
    count 0 weigh nothing; if every count is 0 the first entry is returned."""
    if not stats:
        raise ValueError("merge_norm_stats needs at least one NormStats")
    sizes = {s.size for s in stats}
    if len(sizes) != 1:
        raise ValueError(f"NormStats of different sizes cannot be merged: {sorted(sizes)}")
    counts = np.array([s.count for s in stats])
    total = float(counts.sum())
    if total == 0:
        return stats[0]
    weights = counts / total
    means = np.stack([s.mean for s in stats])
    variances = np.stack([s.var for s in stats])
    mean = weights @ means
    var = weights @ (variances + (means - mean) ** 2)
    return NormStats(mean, np.maximum(var, 0.0), total)
