"""The archive of one run: every evaluation in the order it was made, failures included.

Hypervolume and the Pareto set are computed on the archive (all feasible, non-dominated points
evaluated so far), not on the algorithm's last population, as COCO and jMetal recommend; the
anytime curves look at the first ``k`` evaluations.
"""

from __future__ import annotations

from collections import Counter

import numpy as np


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of ``F`` (minimised) that no other row dominates; duplicates
    are all kept."""
    F = np.asarray(F, dtype=float)
    n = len(F)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by = np.all(F[i] >= F, axis=1) & np.any(F[i] > F, axis=1)
        if dominated_by.any():
            mask[i] = False
            continue
        dominates = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
        mask[dominates] = False
    return mask


class Archive:
    """Decision vectors, objectives, constraints, success flags and failure reasons."""

    def __init__(self, n_var: int, n_obj: int, n_constr: int, *, keep_x: bool = True) -> None:
        self.n_var, self.n_obj, self.n_constr = n_var, n_obj, n_constr
        self.keep_x = keep_x
        self._X: list[np.ndarray] = []
        self._F: list[np.ndarray] = []
        self._G: list[np.ndarray] = []
        self._ok: list[bool] = []
        self.kpis: list[dict[str, float]] = []
        self.reasons: Counter[str] = Counter()
        self.eval_seconds = 0.0

    def add(
        self,
        x: np.ndarray,
        f: np.ndarray,
        g: np.ndarray,
        ok: bool = True,
        reason: str = "",
        kpis: dict[str, float] | None = None,
        seconds: float = 0.0,
    ) -> None:
        self._X.append(np.asarray(x, dtype=float) if self.keep_x else np.empty(0))
        self._F.append(np.asarray(f, dtype=float))
        self._G.append(np.asarray(g, dtype=float).reshape(self.n_constr))
        self._ok.append(bool(ok))
        self.kpis.append(dict(kpis or {}))
        self.eval_seconds += seconds
        if not ok:
            self.reasons[reason] += 1

    def __len__(self) -> int:
        return len(self._F)

    @property
    def X(self) -> np.ndarray:
        return np.array(self._X).reshape(len(self), -1)

    @property
    def F(self) -> np.ndarray:
        return np.array(self._F, dtype=float).reshape(len(self), self.n_obj)

    @property
    def G(self) -> np.ndarray:
        return np.array(self._G, dtype=float).reshape(len(self), self.n_constr)

    @property
    def ok(self) -> np.ndarray:
        return np.array(self._ok, dtype=bool)

    @property
    def failures(self) -> int:
        return int(len(self) - self.ok.sum())

    def feasible(self, upto: int | None = None) -> np.ndarray:
        """Mask of successful evaluations with every G ≤ 0 (among the first ``upto``)."""
        n = len(self) if upto is None else min(upto, len(self))
        mask = self.ok[:n]
        if self.n_constr:
            mask = mask & np.all(self.G[:n] <= 0, axis=1)
        return mask

    def front_indices(self, upto: int | None = None) -> np.ndarray:
        """Indices of the feasible non-dominated evaluations among the first ``upto``."""
        candidates = np.flatnonzero(self.feasible(upto))
        if candidates.size == 0:
            return candidates
        return candidates[non_dominated(self.F[candidates])]

    def to_dict(self) -> dict:
        """JSON-ready content (X only when kept)."""
        return {
            "n_var": self.n_var,
            "n_obj": self.n_obj,
            "n_constr": self.n_constr,
            "X": self.X.tolist() if self.keep_x else None,
            "F": self.F.tolist(),
            "G": self.G.tolist(),
            "ok": self.ok.tolist(),
            "reasons": dict(self.reasons),
            "eval_seconds": self.eval_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Archive:
        archive = cls(data["n_var"], data["n_obj"], data["n_constr"], keep_x=data["X"] is not None)
        xs = data["X"] if data["X"] is not None else [np.empty(0)] * len(data["F"])
        for x, f, g, ok in zip(xs, data["F"], data["G"], data["ok"], strict=True):
            archive.add(x, f, g, ok)
        archive.reasons = Counter(data.get("reasons", {}))
        archive.eval_seconds = float(data.get("eval_seconds", 0.0))
        return archive
