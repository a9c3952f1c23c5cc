"""Hybrid prediction: a learned model y blended with the physics simulation S.

The FECO formulation (shared literature 000): ``R = α·y + (1 − α)·S``, where S is the twin's
simulated signal and y = M(D) a model learned from plant data D. Here y is, per signal, a ridge
regression of the measured value on the twin's simulated signals of the same machine that
physically drive it (:data:`FEATURES`: a temperature on the simulated temperature and power, a
wear on the simulated wear; standardised, with an intercept), fitted on a training window of
(simulated, measured) pairs. It can learn what a mis-calibrated twin gets systematically wrong
(an offset from a wrong ambient temperature, a gain from a wrong thermal resistance) but knows
nothing the twin does not simulate. α ∈ [0, 1] is chosen on a separate validation window, on a
grid, as the value with the lowest mean NRMSE over the signals; α = 0 keeps the physics alone.

When it helps (see the README's synchronisation results): on an uncalibrated twin the learned
model removes most of the systematic error, and α comes out large; after calibration the twin's
residual is mostly sensor noise and unmodelled discrete timing, y then adds variance, and the
validation picks a small α. Where the validation window does not look like the prediction
window (a drift in between), y is extrapolating and can hurt: re-fit after calibration or drift.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from envs.sync.metrics import SPANS, nrmse, scale_of

FEATURES = {
    "temperature": ("temperature", "power"),
    "wear": ("wear",),
    "power": ("power",),
    "vibration": ("vibration", "wear"),
}
"""Simulated signal kinds of the same machine used as regressors, per predicted kind. Only
physical drivers: a regressor that merely trends with time (wear in a temperature model)
fits the training window and extrapolates badly beyond it."""


def _features(simulated: Sequence[dict[str, float]], signal: str) -> np.ndarray:
    machine, kind = signal.rsplit(".", 1)
    kinds = FEATURES.get(kind, (kind,))
    columns = [[sample.get(f"{machine}.{k}", 0.0) for k in kinds] for sample in simulated]
    return np.asarray(columns, dtype=float)


@dataclass
class _Ridge:
    mean: np.ndarray
    std: np.ndarray
    weights: np.ndarray  # intercept first

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.std
        return self.weights[0] + z @ self.weights[1:]


class HybridPredictor:
    """``R = α·y + (1 − α)·S`` per signal (``<machine>.<kind>``).

    ``scales`` give each signal kind's normalising span for the NRMSE that chooses α
    (default :data:`envs.sync.metrics.SPANS`, as for :class:`envs.sync.FidelityMonitor`);
    ``ridge`` is the L2 penalty on the standardised weights.
    """

    def __init__(
        self,
        signals: Sequence[str],
        *,
        scales: Mapping[str, float] | None = None,
        ridge: float = 1.0,
    ) -> None:
        if not signals:
            raise ValueError("give at least one signal to predict")
        if not (math.isfinite(ridge) and ridge >= 0):
            raise ValueError(f"ridge must be a number >= 0, not {ridge!r}")
        self.signals = tuple(signals)
        self.scales = dict(SPANS if scales is None else scales)
        for signal in self.signals:
            self._scale(signal)  # raises for a signal without a scale
        self.ridge = float(ridge)
        self.models: dict[str, _Ridge] = {}
        self.alpha = 0.0
        self.validation: dict[float, float] = {}

    def _scale(self, signal: str) -> float:
        scale = scale_of(signal, self.scales)
        if scale is None:
            raise ValueError(f"no scale for '{signal}'; add its kind to scales")
        return scale

    def fit(
        self, simulated: Sequence[dict[str, float]], measured: Sequence[dict[str, float]]
    ) -> None:
        """Fit y on a training window: the twin's signals and the plant's measurements at the
        same instants (NaN measurements are skipped)."""
        if len(simulated) != len(measured) or not simulated:
            raise ValueError("fit needs as many simulated samples as measured ones, and some")
        self.models = {}
        for signal in self.signals:
            x = _features(simulated, signal)
            y = np.array([m.get(signal, math.nan) for m in measured], dtype=float)
            valid = np.isfinite(y)
            if valid.sum() < x.shape[1] + 2:
                raise ValueError(
                    f"'{signal}' has {int(valid.sum())} valid measurements in the training "
                    f"window; y needs at least {x.shape[1] + 2}: record a longer window"
                )
            mean, std = x[valid].mean(axis=0), x[valid].std(axis=0)
            std[std < 1e-9] = 1.0  # a constant feature (e.g. power of an idle machine)
            z = np.column_stack([np.ones(valid.sum()), (x[valid] - mean) / std])
            penalty = self.ridge * np.eye(z.shape[1])
            penalty[0, 0] = 0.0  # the intercept is not shrunk
            weights = np.linalg.solve(z.T @ z + penalty, z.T @ y[valid])
            self.models[signal] = _Ridge(mean, std, weights)

    def learned(self, simulated: Sequence[dict[str, float]]) -> dict[str, np.ndarray]:
        """y per signal over a window of the twin's signals."""
        if not self.models:
            raise RuntimeError("call fit() before predicting")
        return {
            signal: model(_features(simulated, signal)) for signal, model in self.models.items()
        }

    def predict(
        self, simulated: Sequence[dict[str, float]], alpha: float | None = None
    ) -> dict[str, np.ndarray]:
        """R per signal over a window (``alpha`` default: the chosen one)."""
        alpha = self.alpha if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], not {alpha}")
        learned = self.learned(simulated)
        return {
            signal: alpha * learned[signal]
            + (1.0 - alpha) * np.array([s[signal] for s in simulated], dtype=float)
            for signal in self.signals
        }

    def score(
        self,
        simulated: Sequence[dict[str, float]],
        measured: Sequence[dict[str, float]],
        alpha: float | None = None,
    ) -> float:
        """Mean NRMSE over the signals of R against ``measured``."""
        predicted = self.predict(simulated, alpha)
        values = [
            nrmse(
                predicted[signal],
                np.array([m.get(signal, math.nan) for m in measured], dtype=float),
                self._scale(signal),
            )
            for signal in self.signals
        ]
        finite = [v for v in values if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    def choose_alpha(
        self,
        simulated: Sequence[dict[str, float]],
        measured: Sequence[dict[str, float]],
        grid: Sequence[float] = tuple(np.linspace(0.0, 1.0, 11)),
    ) -> float:
        """Pick α on a validation window (not the training one); stores and returns it.
        Ties go to the smaller α (less reliance on the learned model)."""
        if len(simulated) != len(measured) or not simulated:
            raise ValueError("validation needs as many simulated samples as measured ones")
        self.validation = {float(a): self.score(simulated, measured, a) for a in sorted(grid)}
        best = min(self.validation.values())
        self.alpha = next(a for a, v in self.validation.items() if v <= best + 1e-12)
        return self.alpha
