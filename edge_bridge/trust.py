"""Per-machine trust and drift detection for the bridge's seed-free twin (issue 14).

Why not the old signal: :class:`envs.sync.FidelityMonitor` scores ``2^(−NRMSE/0.1)`` of the
raw twin-vs-plant residual over fixed spans (1 K, 0.015 of the wear limit for trust ½). A
twin of the *nominal* scenario that follows reported states (:class:`envs.sync.StateReplay`)
has residuals that are mostly *systematic*: the plant's hidden parameters (thermal resistance
and capacity, cutting energy, ambient, wear-rate factors) bias every one-sample prediction by
an amount that depends on the operating point (a busy mill's temperature residual sits ~1 K
above an idle one's). Scored against a fixed span that bias alone keeps healthy trust near ½.

The model here, per signal ``s`` (a machine's ``temperature`` or ``wear``), per sample:

1. **Residual** ``r = measured − predicted``, the prediction one sample interval ahead from the
   twin's corrected state (the twin, :mod:`edge_bridge.twin`, is nudged toward every sample).
2. **Learned healthy residual** ``r̂ = θ·x``: a linear model of the twin's systematic error on
   features ``x`` the twin supplies (for temperature 1, the state before the step and the
   twin's own change over it; for wear 1 and the twin's own wear increments, filtered as the
   nudge carries errors over). A first-order thermal model and a wear rate that scales the
   twin's are linear in those features, so one least-squares fit during a **warm-up**
   (``warmup_samples``) absorbs the hidden parameters at every operating point, including ones
   the warm-up did not visit (night idle after a busy first hour). The fit is a ridge
   (``ridge``) least squares, refitted once without the samples beyond 3 robust deviations.
3. **Standardised residual** ``z = clip((r − r̂) / σ, ±clip)``, ``σ = max(1.4826·MAD of the
   warm-up fit's residuals, noise_floor)``: in units of the signal's own healthy spread, so
   every signal of every machine is judged on the same scale; the clip bounds what one sample
   (a state change placed half a sample off, a tool change) can contribute.
4. **Two-sided CUSUM** ``S⁺ = max(0, S⁺ + z − k)``, ``S⁻ = max(0, S⁻ − z − k)``, ``S =
   max(S⁺, S⁻)``: ``k`` (``allowance``) is half the mean shift (in σ) worth detecting, ``h``
   (``alarm``) the evidence that calls it a drift. The CUSUM is not reset on an alarm: it stays
   above ``h`` while the shift lasts and decays by ``k`` per healthy sample after it.

Trust of a signal ``= 2^(−S/h)``: 1 with no evidence of a shift, ½ exactly at the alarm, toward
0 beyond. A machine's trust is the minimum over its signals (a line-wide minimum would distrust
every machine for one machine's drift); its drift flags name the signals with ``S > h``. During
the warm-up a machine has no trust (0: no evidence, no trust) and no flags; the gate should stay
in shadow until :attr:`MachineTrust.ready`. ``TrustConfig.threshold`` is what the gate calls
trusted; with the default ½ a machine is untrusted exactly when it is flagged.

**Common mode.** The hall's ambient moves every machine's temperature at once, by about 2σ of
a mill and under ``k`` of a welder (a slower thermal mass): alone each machine needs ~3
intervals. :class:`CommonModeDetector` scores ``Z = Σ z_i / √n`` over the machines' temperature
residuals of each sample with its own CUSUM (σ of ``Z`` learned in its own warm-up after the
machines', at least 1), which sees +6 K in ~4σ per sample: flagged (``line.temperature``, on
every machine) in 2 intervals. Healthy 24 h runs keep its ``S`` below 4.2 (h = 15).

**Gaps.** A machine back after ``gap_samples`` missing samples (a time gap: the gateway was
offline; or its values all NaN: it was stale) has been replayed on held states it may not have
had (a failure, a tool change) and would show a burst of residuals. The twin re-syncs it to the
measurement and :meth:`SignalDetector.rewarm` skips the next ``rewarm_samples`` residuals: not
:attr:`~SignalDetector.ready`, so the gate gets no evidence (candidate machines are held on the
incumbent) for two decision intervals; the fitted model and the CUSUM are kept.

Why these defaults (measured with ``scripts/trust_report.py``, emulator ``plant_example``, 60 s
samples): ``allowance`` 1.0 σ and ``alarm`` 15 σ leave every healthy 24 h run without an
untrusted interval, while a doubled wear rate on a cutting mill (≈ 2σ per sample once the
nudged wear lags) crosses ``h`` within 2 decision intervals. A machine that does not cut (idle
or off, as every mill is from 22:00 to 06:00) does not wear: a wear-rate change there is
invisible until it cuts again.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from envs.config import setting

__all__ = [
    "DEFAULT_NOISE_FLOOR",
    "CommonModeDetector",
    "MachineTrust",
    "SignalDetector",
    "TrustConfig",
]

DEFAULT_NOISE_FLOOR: Mapping[str, float] = {"temperature": 0.2, "wear": 0.005}
"""Smallest σ per signal kind (signal units): the emulator's sensor noise (K, fraction of the
wear limit), so that a warm-up with a lucky fit cannot make the detector hair-triggered."""


@dataclass(frozen=True, kw_only=True)
class TrustConfig:
    """Settings of the trust score and drift detector (module docstring); validated on
    construction (``ValueError`` naming the field and its allowed range)."""

    warmup_samples: int = setting(
        60, low=10, high=100_000, doc="samples per signal to learn the healthy residual model"
    )
    allowance: float = setting(1.0, low=0.0, high=10.0, doc="CUSUM k: half the shift, in σ")
    alarm: float = setting(15.0, low=0.5, high=1000.0, doc="CUSUM h: drift when S > h, in σ")
    clip: float = setting(4.0, low=0.5, high=100.0, doc="|z| bound of one sample, in σ")
    threshold: float = setting(
        0.5, low=0.0, high=1.0, doc="trust at or above which the gate calls a machine trusted"
    )
    ridge: float = setting(1e-6, low=0.0, high=1e6, doc="ridge penalty of the warm-up fit")
    learn_below: float = setting(
        1.0, low=0.0, high=1.0, doc="keep learning while S < learn_below·alarm"
    )
    memory_samples: float = setting(
        240.0, low=10.0, high=1e9, doc="healthy model keeps learning with this memory (samples)"
    )
    gap_samples: int = setting(
        3, low=1, high=100_000, doc="missing samples (time gap or silent machine) that re-sync"
    )
    rewarm_samples: int = setting(
        10, low=1, high=100_000, doc="samples after a re-sync's not scored (machine not ready)"
    )
    noise_floor: dict[str, float] = setting(  # noqa: RUF009 a copied default per instance
        dict(DEFAULT_NOISE_FLOOR), doc="smallest σ per signal kind, signal units"
    )

    def __post_init__(self) -> None:
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            low, high = item.metadata.get("low"), item.metadata.get("high")
            if item.name == "noise_floor":
                for kind, floor in value.items():
                    if not (isinstance(floor, int | float) and math.isfinite(floor) and floor > 0):
                        raise ValueError(f"TrustConfig.noise_floor[{kind!r}] must be > 0")
                continue
            wanted = int if item.type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"TrustConfig.{item.name} must be a number, not {value!r}")
            if wanted is int and not isinstance(value, int):
                raise ValueError(f"TrustConfig.{item.name} must be a whole number, not {value!r}")
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(
                    f"TrustConfig.{item.name} = {value!r} is outside [{low:g}, {high:g}] "
                    f"({item.metadata.get('doc')})"
                )

    def trusted(self, trust: float) -> bool:
        """Whether a machine with this trust counts as trusted."""
        return trust >= self.threshold


class SignalDetector:
    """Learned residual model + CUSUM of one signal (module docstring, steps 2–4)."""

    def __init__(self, config: TrustConfig, noise_floor: float) -> None:
        self.config = config
        self.noise_floor = float(noise_floor)
        self._warmup_x: list[np.ndarray] = []
        self._warmup_r: list[float] = []
        self.theta: np.ndarray | None = None
        self._covariance: np.ndarray | None = None
        self._covariance_cap = math.inf
        self.sigma = math.nan
        self.up = 0.0
        self.down = 0.0
        self.last_z = math.nan
        self._rewarm_left = 0

    @property
    def ready(self) -> bool:
        """Whether the warm-up is over (the healthy model is fitted) and no re-warm runs."""
        return self.theta is not None and self._rewarm_left == 0

    def rewarm(self) -> None:
        """After a re-sync (a telemetry gap): the next ``config.rewarm_samples`` residuals are
        not scored and the detector is not :attr:`ready`; the fitted model and the CUSUM are
        kept (the evidence before the gap still counts). Before the first fit: nothing."""
        if self.theta is not None:
            self._rewarm_left = self.config.rewarm_samples

    @property
    def statistic(self) -> float:
        """The CUSUM ``S`` in σ units (0 during the warm-up)."""
        return max(self.up, self.down)

    @property
    def drifted(self) -> bool:
        return self.statistic > self.config.alarm

    @property
    def trust(self) -> float:
        """``2^(−S/h)``; 0 during the warm-up or a re-warm."""
        return 2.0 ** (-self.statistic / self.config.alarm) if self.ready else 0.0

    def update(self, residual: float, features: Sequence[float]) -> float:
        """Add one sample's residual (signal units) with its features; returns ``z`` (NaN
        during the warm-up)."""
        x = np.asarray(features, dtype=float)
        if self._rewarm_left > 0:
            self._rewarm_left -= 1
            return math.nan
        if self.theta is None:
            self._warmup_x.append(x)
            self._warmup_r.append(float(residual))
            if len(self._warmup_r) >= self.config.warmup_samples:
                self._fit()
            return math.nan
        z = (float(residual) - float(x @ self.theta)) / self.sigma
        z = max(-self.config.clip, min(self.config.clip, z))
        k = self.config.allowance
        self.up = max(0.0, self.up + z - k)
        self.down = max(0.0, self.down - z - k)
        self.last_z = z
        if self.statistic < self.config.learn_below * self.config.alarm:
            self._learn(x, z * self.sigma)
        return z

    def _learn(self, x: np.ndarray, error: float) -> None:
        """One recursive-least-squares step with forgetting on a (clipped) healthy error."""
        assert self.theta is not None and self._covariance is not None
        forget = 1.0 - 1.0 / self.config.memory_samples
        p = self._covariance
        gain = p @ x / (forget + float(x @ p @ x))
        self.theta = self.theta + gain * error
        p = (p - np.outer(gain, x @ p)) / forget
        trace = float(np.trace(p))
        if trace > self._covariance_cap:  # no wind-up while a machine stands still
            p *= self._covariance_cap / trace
        self._covariance = p

    def _fit(self) -> None:
        x = np.vstack(self._warmup_x)
        r = np.asarray(self._warmup_r)
        keep = np.ones(len(r), dtype=bool)
        for _ in range(2):  # fit, then refit without the outliers of the first fit
            theta = _ridge(x[keep], r[keep], self.config.ridge)
            errors = r - x @ theta
            spread = 1.4826 * float(np.median(np.abs(errors[keep] - np.median(errors[keep]))))
            keep = np.abs(errors) <= 3.0 * max(spread, self.noise_floor)
        self.theta = theta
        self.sigma = max(spread, self.noise_floor)
        information = x[keep].T @ x[keep] + 1e-9 * np.eye(x.shape[1])
        self._covariance = np.linalg.inv(information)
        self._covariance_cap = 10.0 * float(np.trace(self._covariance))
        self._warmup_x, self._warmup_r = [], []


def _ridge(x: np.ndarray, r: np.ndarray, penalty: float) -> np.ndarray:
    """Least squares with a ridge on every coefficient but the first (the intercept)."""
    scale = np.maximum(np.abs(x).max(axis=0), 1e-12)  # penalise in comparable units
    xs = x / scale
    regulariser = penalty * len(r) * np.eye(x.shape[1])
    regulariser[0, 0] = 0.0
    theta = np.linalg.solve(xs.T @ xs + regulariser + 1e-12 * np.eye(x.shape[1]), xs.T @ r)
    return theta / scale


@dataclass
class MachineTrust:
    """The detectors of one machine's signals; trust = the minimum over them."""

    config: TrustConfig
    detectors: dict[str, SignalDetector] = field(default_factory=dict)

    def detector(self, signal: str) -> SignalDetector:
        """The detector of ``signal`` (``<machine>.<kind>``), created on first use."""
        if signal not in self.detectors:
            kind = signal.rsplit(".", 1)[-1]
            floor = self.config.noise_floor.get(kind, DEFAULT_NOISE_FLOOR.get(kind, 1e-6))
            self.detectors[signal] = SignalDetector(self.config, floor)
        return self.detectors[signal]

    @property
    def ready(self) -> bool:
        """Every signal has finished its warm-up (and there is at least one)."""
        return bool(self.detectors) and all(d.ready for d in self.detectors.values())

    @property
    def trust(self) -> float:
        """Minimum signal trust, 0 until :attr:`ready`."""
        if not self.ready:
            return 0.0
        return min(d.trust for d in self.detectors.values())

    @property
    def drifted(self) -> tuple[str, ...]:
        """Signals whose CUSUM is above the alarm now."""
        return tuple(sorted(s for s, d in self.detectors.items() if d.ready and d.drifted))

    def statistics(self) -> dict[str, float]:
        """CUSUM ``S`` per signal, σ units."""
        return {s: d.statistic for s, d in self.detectors.items()}

    def rewarm(self) -> None:
        """Re-warm every detector (:meth:`SignalDetector.rewarm`)."""
        for detector in self.detectors.values():
            detector.rewarm()


class CommonModeDetector:
    """The line-wide detector of one signal kind (module docstring, "Common mode").

    Per sample it takes the machines' standardised residuals ``z_i`` of that kind and scores
    ``Z = Σ z_i / √n`` (n = machines with a residual, at least ``min_machines``) with a
    :class:`SignalDetector` on the intercept alone (σ of ``Z`` learned in its own warm-up,
    at least 1: the value for independent machines). Until that warm-up is over it has no
    evidence and trust 1 (it adds to the machines' own detectors, never holds them back).
    """

    def __init__(self, config: TrustConfig, kind: str, min_machines: int = 3) -> None:
        self.signal = f"line.{kind}"
        self.min_machines = min_machines
        self.detector = SignalDetector(config, 1.0)

    def update(self, z: Sequence[float]) -> float:
        """One sample's machine residuals (NaN = none); returns the standardised ``Z``."""
        finite = [v for v in z if math.isfinite(v)]
        if len(finite) < self.min_machines:
            return math.nan
        return self.detector.update(sum(finite) / math.sqrt(len(finite)), (1.0,))

    @property
    def trust(self) -> float:
        """``2^(−S/h)`` once fitted, 1 before."""
        return self.detector.trust if self.detector.theta is not None else 1.0

    @property
    def drifted(self) -> bool:
        return self.detector.theta is not None and self.detector.drifted

    @property
    def statistic(self) -> float:
        return self.detector.statistic
