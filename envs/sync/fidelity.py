"""Fidelity of a twin against plant measurements: NRMSE and bias per signal over a rolling
window, and a trust score in [0, 1].

Per signal ``s`` with residuals ``r = measured − predicted`` over the last ``window`` valid
samples (NaN measurements are skipped):

- ``bias_s = mean(r)`` in the signal's unit;
- ``nrmse_s = sqrt(mean(r²)) / scale_s``, dimensionless: the one NRMSE of
  :mod:`envs.sync.metrics`, where ``scale_s`` is the signal's fixed normalising span (default
  :data:`envs.sync.metrics.SPANS`, e.g. 10 K for temperatures: the range over which the twin is
  expected to track; a fixed span keeps the score meaningful on flat signals, where a window's
  own range would be noise).

Trust: ``trust = min_s 2^(−nrmse_s / tolerance)``: 1 for a perfect twin, ½ when the worst
signal's NRMSE equals ``tolerance``, toward 0 beyond. The worst signal decides, because one
machine drifting away is enough to distrust a plan for the whole line. Signals with fewer than
``min_samples`` valid samples in the window do not count; with none counting, trust is 0
(no evidence, no trust).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from envs.sync.metrics import SPANS, nrmse, scale_of


@dataclass(frozen=True)
class SignalFidelity:
    nrmse: float
    """RMSE over the window divided by the signal's scale (dimensionless)."""
    bias: float
    """Mean of measured − predicted over the window, in the signal's unit."""
    samples: int
    """Valid samples in the window."""


class FidelityMonitor:
    """Rolling fidelity of twin predictions against measurements.

    ``scales`` maps a signal kind (the part after the last dot, e.g. ``temperature``) or a
    full signal name to its normalising span (signal unit, > 0; default
    :data:`envs.sync.metrics.SPANS`); signals with no scale are ignored.
    """

    def __init__(
        self,
        scales: Mapping[str, float] | None = None,
        *,
        window: int = 12,
        tolerance: float = 0.1,
        min_samples: int = 3,
    ) -> None:
        scales = SPANS if scales is None else scales
        for name, scale in scales.items():
            if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
                raise ValueError(f"scale of '{name}' must be a positive number, not {scale!r}")
        if not (isinstance(window, int) and window >= 1):
            raise ValueError(f"window must be a whole number of samples >= 1, not {window!r}")
        if not (isinstance(min_samples, int) and 1 <= min_samples <= window):
            raise ValueError(f"min_samples must be in [1, window={window}], not {min_samples!r}")
        if not (math.isfinite(tolerance) and tolerance > 0):
            raise ValueError(f"tolerance must be a positive NRMSE, not {tolerance!r}")
        self.scales = dict(scales)
        self.window = window
        self.tolerance = float(tolerance)
        self.min_samples = min_samples
        self._residuals: dict[str, deque[float]] = {}

    def scale(self, name: str) -> float | None:
        """The normalising span of ``name`` (None: the signal is not monitored)."""
        return scale_of(name, self.scales)

    def update(self, measured: Mapping[str, float], predicted: Mapping[str, float]) -> None:
        """Add one sample: every signal present in both with a finite measurement."""
        for name, prediction in predicted.items():
            value = measured.get(name)
            if value is None or not math.isfinite(value) or self.scale(name) is None:
                continue
            residuals = self._residuals.setdefault(name, deque(maxlen=self.window))
            residuals.append(float(value) - float(prediction))

    def reset(self) -> None:
        """Forget every residual (e.g. after a re-calibration)."""
        self._residuals.clear()

    def metrics(self) -> dict[str, SignalFidelity]:
        """NRMSE, bias and sample count per signal over the window."""
        result = {}
        for name, residuals in self._residuals.items():
            scale = self.scale(name)
            if not residuals or scale is None:
                continue
            count = len(residuals)
            fit = nrmse(0.0, list(residuals), scale)
            result[name] = SignalFidelity(fit, sum(residuals) / count, count)
        return result

    def signal_trust(self) -> dict[str, float]:
        """Trust per signal with at least ``min_samples`` samples."""
        return {
            name: 2.0 ** (-item.nrmse / self.tolerance)
            for name, item in self.metrics().items()
            if item.samples >= self.min_samples
        }

    def trust(self) -> float:
        """The twin's trust score in [0, 1] (see the module docstring)."""
        scores = self.signal_trust()
        return min(scores.values()) if scores else 0.0
