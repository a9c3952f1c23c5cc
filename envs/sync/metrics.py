"""The one NRMSE of twin synchronisation, and the scales it and the calibration normalise by.

Every fidelity figure in :mod:`envs.sync` (the rolling fidelity and trust of
:class:`~envs.sync.FidelityMonitor`, the Page-Hinkley residuals of
:class:`~envs.sync.TwinTracker`, the α choice of :class:`~envs.sync.HybridPredictor`, the
prediction errors of :mod:`envs.sync.benchmark`, the before/after figures of
``scripts/calibrate.py``) is

    NRMSE = sqrt(mean((predicted − measured)²)) / span

over the finite measurements (a NaN measurement is a lost sample and is skipped), where
``span`` is a fixed, per-signal-kind normalising span from :data:`SPANS`: the range over which
a twin is expected to track that kind of signal. A fixed span, not the range of the data at
hand, because (1) a window's own range is mostly noise on a flat signal (a machine at steady
temperature would get a huge NRMSE for a tiny miss), and (2) the same miss gets the same figure
in every window, seed and report, so figures compare across them.

The calibration's least-squares residuals are weighted differently, on purpose:
``(predicted − measured) / scale`` with :data:`FIT_SCALES`, about five times each kind's sensor
noise, so that every kind weighs in by how precisely it is measured (a weighting of the fit, not
a fidelity figure; its RMS is :func:`residual_rms`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["FIT_SCALES", "SPANS", "nrmse", "residual_rms", "rmse", "scale_of"]

SPANS: Mapping[str, float] = {"temperature": 10.0, "wear": 0.15, "power": 5.0}
"""Normalising span per signal kind, in the signal's unit (degC; fraction of the wear limit;
kW). With the trust tolerance 0.1, trust is ½ at an RMS miss of 1 K or 0.015 of the wear limit
(a doubled mill wear rate adds ~0.025 per 5-minute interval) or 0.5 kW."""

FIT_SCALES: Mapping[str, float] = {"temperature": 1.0, "wear": 0.01, "power": 0.5}
"""Calibration residual scale per signal kind (signal units): about 5× the emulator's sensor
noise, so every kind weighs in; power is sampled at an instant, so cutting/handling swings make
it noisier than its 0.1 kW sensor noise. Kinds without a scale are not fitted against."""


def scale_of(name: str, scales: Mapping[str, float]) -> float | None:
    """The scale of signal ``name`` (``<machine>.<kind>``) in ``scales``, which maps full
    signal names or signal kinds to scales; a full name wins. None: no scale."""
    return scales.get(name, scales.get(name.rsplit(".", 1)[-1]))


def rmse(predicted: ArrayLike, measured: ArrayLike) -> float:
    """sqrt(mean((predicted − measured)²)) over the finite measurements (signal unit); NaN
    when no measurement is finite."""
    guess = np.asarray(predicted, dtype=float)
    value = np.asarray(measured, dtype=float)
    valid = np.isfinite(value)
    if not valid.any():
        return math.nan
    return float(np.sqrt(np.mean((np.broadcast_to(guess, value.shape)[valid] - value[valid]) ** 2)))


def nrmse(predicted: ArrayLike, measured: ArrayLike, span: float) -> float:
    """The NRMSE (dimensionless): :func:`rmse` / ``span`` (see the module docstring)."""
    if not (math.isfinite(span) and span > 0):
        raise ValueError(f"the normalising span must be a positive number, not {span!r}")
    return rmse(predicted, measured) / span


def residual_rms(residuals: ArrayLike) -> float:
    """RMS of already normalised residuals (the calibration's ``(p − m) / scale``); NaN if
    there are none."""
    values = np.asarray(residuals, dtype=float)
    return float(np.sqrt(np.mean(values**2))) if values.size else math.nan
