"""One synchronisation loop: a twin line follows a plant interval by interval.

Each interval the twin runs under the same setpoints as the plant, predicts the plant's
signals (one interval ahead, from the last corrected state), compares the prediction with the
plant's latest measurement (fidelity window, trust score, Page-Hinkley on the normalised
residual of every signal), and then corrects its states toward the measurement, with fixed-gain
nudging (:class:`Nudger`, the default) or the extended Kalman filter (:class:`KalmanFilter`).
Both offer ``begin()`` (before the twin advances), ``predict()`` and ``correct(measurement)``.
Scoring the prediction *before* the nudge is what makes the trust score honest: after a nudge
the twin sits near the measurement by construction. With ``follow_states`` the twin also adopts
the plant's reported failures and repairs (:class:`DiscreteStateSync`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from envs.line import ProductionLine
from envs.sync.discrete import DiscreteStateSync
from envs.sync.drift import PageHinkley
from envs.sync.fidelity import FidelityMonitor
from envs.sync.kalman import KalmanFilter
from envs.sync.metrics import SPANS
from envs.sync.nudging import Nudger
from envs.sync.replay import StateReplay
from envs.sync.state import SYNCED_KINDS


@dataclass(frozen=True)
class TrackStep:
    """What one synchronisation interval found."""

    time_s: float
    """Measurement time, s since the plant's reset."""
    residuals: dict[str, float]
    """measured − predicted per signal with a valid measurement, signal units."""
    trust: float
    """Trust score after this interval, [0, 1]."""
    drifted: tuple[str, ...]
    """Signals whose Page-Hinkley detector flagged a change at this interval."""
    state_mismatch: tuple[str, ...] = ()
    """Machines whose reported state differed from the twin's at the measurement (before the
    discrete correction, if states are followed)."""


class TwinTracker:
    """Runs a twin :class:`ProductionLine` alongside a plant and keeps it synchronised.

    The defaults are the settings measured in ``scripts/sync_report.py`` (README: drift flagged
    within 2–3 intervals, no false alarm in 2–3 healthy hours). ``synchroniser`` corrects the
    twin's states (default: ``Nudger(twin, beta)``; pass a
    :class:`KalmanFilter` on the same twin, or ``Nudger(twin, 0.0)`` for a free-running twin
    that is only scored). ``scales`` are the fidelity normalising spans (see
    :class:`FidelityMonitor`; default: :data:`envs.sync.metrics.SPANS` of the synchronised
    kinds, temperature and wear); the Page-Hinkley detectors run on residual / scale with
    ``ph_delta`` and ``ph_threshold`` in those normalised units. ``follow_states``: adopt the
    plant's reported failures and repairs (needs ``<machine>.state`` in the measurements).
    ``replay``: a :class:`StateReplay` on the twin; the twin's machines then follow every
    reported state instead of running the twin's own discrete events (a twin of a plant whose
    orders and failures it cannot know), and :meth:`step` takes the interval's ``samples``.
    """

    def __init__(
        self,
        twin: ProductionLine,
        *,
        beta: float | Mapping[str, float] = 0.5,
        synchroniser: Nudger | KalmanFilter | None = None,
        scales: Mapping[str, float] | None = None,
        window: int = 4,
        tolerance: float = 0.1,
        ph_delta: float = 0.02,
        ph_threshold: float = 0.2,
        follow_states: bool = True,
        replay: StateReplay | None = None,
    ) -> None:
        self.twin = twin
        if replay is not None and replay.line is not twin:
            raise ValueError("the state replay must be built on the tracked twin line")
        self.replay = replay
        self._previous: Mapping[str, float] | None = None
        if synchroniser is not None and synchroniser.line is not twin:
            raise ValueError("the synchroniser must be built on the tracked twin line")
        self.synchroniser = synchroniser if synchroniser is not None else Nudger(twin, beta)
        self.monitor = FidelityMonitor(
            scales or {kind: SPANS[kind] for kind in SYNCED_KINDS},
            window=window,
            tolerance=tolerance,
        )
        self.discrete = DiscreteStateSync(twin)
        self.follow_states = follow_states
        self.ph_delta = ph_delta
        self.ph_threshold = ph_threshold
        self.detectors: dict[str, PageHinkley] = {}

    def step(
        self,
        measurement: Mapping[str, float],
        speed_factors: np.ndarray,
        maintenance: np.ndarray,
        standby: np.ndarray,
        *,
        substeps: int = 1,
        samples: Sequence[Mapping[str, float]] | None = None,
    ) -> TrackStep:
        """Advance the twin one decision interval under the plant's setpoints, score its
        prediction against ``measurement`` (taken at the end of the same interval), correct.
        ``substeps`` > 1 advances the twin that many of its own intervals first (a twin that
        steps per sample, tracked once per decision interval). With a ``replay`` the twin
        instead follows ``samples`` (every sample of the interval, ``measurement`` last;
        default: ``[measurement]``) one sample interval each."""
        if not (isinstance(substeps, int) and substeps >= 1):
            raise ValueError(f"substeps must be a whole number >= 1, not {substeps!r}")
        if self.replay is not None:
            samples = list(samples) if samples else [measurement]
            if samples[-1] is not measurement and samples[-1] != measurement:
                raise ValueError("samples must end with the measurement being scored")
            self.synchroniser.begin()
            for sample in samples:
                self.replay.step(self._previous or sample, sample, speed_factors)
                self._previous = sample
        else:
            self.synchroniser.begin()
            self.twin.advance(speed_factors, maintenance, standby)
            for _ in range(substeps - 1):  # a maintenance request acts once, at the start
                self.twin.advance(speed_factors, np.zeros_like(maintenance), standby)
        predicted = self.synchroniser.predict()
        self.monitor.update(measurement, predicted)
        residuals: dict[str, float] = {}
        drifted = []
        for name, prediction in predicted.items():
            value = measurement.get(name)
            scale = self.monitor.scale(name)
            if value is None or not math.isfinite(value) or scale is None:
                continue
            residuals[name] = float(value) - prediction
            detector = self.detectors.setdefault(
                name, PageHinkley(delta=self.ph_delta, threshold=self.ph_threshold)
            )
            if detector.update(residuals[name] / scale):
                drifted.append(name)
        mismatch: tuple[str, ...]
        if self.replay is not None:
            mismatch = ()  # the machines are in the reported states by construction
        elif self.follow_states:
            mismatch = self.discrete.correct(measurement).mismatched
        else:
            mismatch = self.discrete.mismatched(measurement)
        self.synchroniser.correct(measurement)
        return TrackStep(
            time_s=float(measurement.get("time_s", math.nan)),
            residuals=residuals,
            trust=self.monitor.trust(),
            drifted=tuple(drifted),
            state_mismatch=mismatch,
        )
