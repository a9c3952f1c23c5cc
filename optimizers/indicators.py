"""Quality indicators and decision making on a front: hypervolume with a fixed normalisation,
IGD against a known front, the knee point and the weighted choice."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizers.archive import non_dominated


@dataclass(frozen=True)
class Normalisation:
    """Maps objectives to [0, 1] per axis with fixed ``ideal`` (→ 0) and ``nadir`` (→ 1); the
    same for every algorithm of a benchmark, so that their hypervolumes compare."""

    ideal: np.ndarray
    nadir: np.ndarray

    def __call__(self, F: np.ndarray) -> np.ndarray:
        span = np.where(self.nadir > self.ideal, self.nadir - self.ideal, 1.0)
        return (np.atleast_2d(F) - self.ideal) / span

    @classmethod
    def of(cls, F: np.ndarray) -> Normalisation:
        """Ideal and nadir of the non-dominated rows of ``F`` (e.g. the union of all fronts)."""
        F = np.atleast_2d(np.asarray(F, dtype=float))
        front = F[non_dominated(F)]
        return cls(front.min(axis=0), front.max(axis=0))

    def as_dict(self) -> dict[str, list[float]]:
        return {"ideal": self.ideal.tolist(), "nadir": self.nadir.tolist()}


def hypervolume(F: np.ndarray, normalisation: Normalisation, reference: float = 1.1) -> float:
    """Hypervolume of the points ``F`` after ``normalisation``, against the reference point
    (``reference``, ..., ``reference``); points beyond it add nothing. 0 for no points."""
    from pymoo.indicators.hv import HV

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if F.size == 0:
        return 0.0
    scaled = normalisation(F)
    inside = np.all(scaled < reference, axis=1)
    if not inside.any():
        return 0.0
    indicator = HV(ref_point=np.full(F.shape[1], reference))
    return float(indicator(scaled[inside]))


def igd(F: np.ndarray, true_front: np.ndarray) -> float:
    """Inverted generational distance of ``F`` to a known front (lower is better; inf for no
    points)."""
    from pymoo.indicators.igd import IGD

    F = np.atleast_2d(np.asarray(F, dtype=float))
    if F.size == 0:
        return float("inf")
    return float(IGD(true_front)(F))


def knee_point(F: np.ndarray) -> int:
    """Index of the knee of a front: after normalising the front to [0, 1] per objective, the
    point closest to the ideal point (the compromise solution)."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    if len(F) == 0:
        raise ValueError("no points to choose from: the run found no feasible plan")
    scaled = Normalisation(F.min(axis=0), F.max(axis=0))(F)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


def weighted_choice(F: np.ndarray, weights: Sequence[float] | np.ndarray) -> int:
    """Index of the point with the smallest w·F."""
    F = np.atleast_2d(np.asarray(F, dtype=float))
    if len(F) == 0:
        raise ValueError("no points to choose from: the run found no feasible plan")
    return int(np.argmin(F @ np.asarray(weights, dtype=float)))
