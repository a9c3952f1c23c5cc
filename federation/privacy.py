"""Differential privacy of the federation: the settings' names and the privacy accountant.

With ``dp = "server"`` the ServerApp wraps the strategy in Flower's
``DifferentialPrivacyServerSideFixedClipping``; with ``dp = "client"`` in
``DifferentialPrivacyClientSideFixedClipping``, and each node clips its own update with Flower's
``fixedclipping_mod`` before it leaves (:mod:`federation.client_app`). Either way every accepted
update's difference from the global weights is clipped to L2 norm ``C`` (``dp-clipping-norm``),
the clipped updates are averaged, and Gaussian noise of standard deviation ``z·C/m`` is added
to the average of ``m`` updates (``z`` = ``dp-noise-multiplier``). This is client-level
(node-level) DP: it bounds what the released global weights tell about any one node's whole
update, hence its twin's data, and says nothing about the per-round metrics and normalisation
statistics the nodes send (they are not noised).

Accounting. Each round is one Gaussian mechanism of noise multiplier ``z_t`` (the standard
deviation over the sensitivity of the average); ``T`` rounds compose. All sampled nodes take
part in every round, so no amplification by sampling is claimed (Flower's ``no-amplification``
model, add-or-remove-one neighbouring). Flower's own accountant
(``flwr.supercore.privacy_accounting.RdpAccountant``) needs ``dp-accounting`` (the ``flwr[dp]``
extra), which is not installed, and accepts only a bare ``FedAvg`` inside the DP wrapper (ours is
inside the screening wrapper), so ε is computed here with two closed forms for the Gaussian
mechanism:

- :func:`rdp_epsilon` — Rényi DP: round ``t`` is (α, α/(2 z_t²))-RDP for every α > 1 (Mironov
  2017, Prop. 7), RDP composes by addition, ρ = Σ 1/(2 z_t²), and the conversion
  ε = ρα + ln(1/δ)/(α − 1) (Mironov 2017, Prop. 3) minimised over real α gives
  ε = ρ + 2·√(ρ·ln(1/δ)) — the zCDP bound (Bun & Steinke 2016, Prop. 1.3). This is the figure
  reported as ``epsilon``: the method Flower's accountant uses, with a slightly looser
  conversion.
- :func:`gdp_epsilon` — exact: a Gaussian mechanism of multiplier ``z`` is 1/z-Gaussian DP and
  Gaussians compose exactly, μ = √(Σ 1/z_t²) (Dong, Roth & Su 2022, Cor. 3.3); the smallest ε
  with δ(ε) = Φ(−ε/μ + μ/2) − e^ε·Φ(−ε/μ − μ/2) ≤ δ (Balle & Wang 2018, Thm. 8) is found by
  bisection. It is tight for this mechanism; reported as ``epsilon_gdp``.

:func:`effective_noise_multiplier` is ``z_t`` for one round: the wrapper's noise ``z·C/m`` over
the sensitivity ``C·max_i w_i / Σ w_i`` of the weighted average of the ``m`` accepted updates
(``w_i`` = each node's ``num-examples``); it equals ``z`` when the nodes' weights are equal
(they are: every node runs ``local-steps``) and is smaller — more ε — otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envs.atomic import write_atomic

__all__ = [
    "DP_MODES",
    "DP_STRATEGIES",
    "LEDGER_FILE",
    "PrivacyLedger",
    "effective_noise_multiplier",
    "gdp_epsilon",
    "rdp_epsilon",
]

DP_MODES = ("off", "server", "client")
"""Values of the run-config key ``dp``."""

DP_STRATEGIES = ("fedavg", "fedprox")
"""The strategies DP may wrap: those whose aggregate is the plain weighted average of the
clipped updates (FedAvg's ``aggregate_train``), for which the sensitivity above holds. FedAvgM
and FedAdam carry past averages in server state, the median, trimmed mean and Krum are not
averages: their sensitivity is not ``C/m``."""

LEDGER_FILE = "privacy.json"
"""The ledger's file in the federation's ``out-dir`` (read back on resume)."""


def _check(noise_multipliers: Sequence[float], delta: float) -> None:
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if any(not z >= 0.0 for z in noise_multipliers):
        raise ValueError(f"noise multipliers must be >= 0, got {list(noise_multipliers)}")


def rdp_epsilon(noise_multipliers: Sequence[float], delta: float) -> float:
    """ε at ``delta`` after one Gaussian release per entry of ``noise_multipliers`` (RDP /
    zCDP bound, see the module docstring); 0 for no release, inf if a multiplier is 0."""
    _check(noise_multipliers, delta)
    if any(z == 0.0 for z in noise_multipliers):
        return math.inf
    rho = sum(1.0 / (2.0 * z * z) for z in noise_multipliers)
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _gdp_delta(epsilon: float, mu: float) -> float:
    return _normal_cdf(-epsilon / mu + mu / 2.0) - math.exp(epsilon) * _normal_cdf(
        -epsilon / mu - mu / 2.0
    )


def gdp_epsilon(noise_multipliers: Sequence[float], delta: float) -> float:
    """The exact ε at ``delta`` of the composed Gaussian releases (μ-GDP, see the module
    docstring), to a relative 1e-9; 0 for no release, inf if a multiplier is 0."""
    _check(noise_multipliers, delta)
    if not noise_multipliers:
        return 0.0
    if any(z == 0.0 for z in noise_multipliers):
        return math.inf
    mu = math.sqrt(sum(1.0 / (z * z) for z in noise_multipliers))
    if _gdp_delta(0.0, mu) <= delta:
        return 0.0
    low, high = 0.0, 1.0
    while _gdp_delta(high, mu) > delta:  # δ(ε) decreases in ε
        low, high = high, 2.0 * high
    while high - low > 1e-9 * high:
        middle = 0.5 * (low + high)
        if _gdp_delta(middle, mu) > delta:
            low = middle
        else:
            high = middle
    return high


def effective_noise_multiplier(noise_multiplier: float, weights: Sequence[float]) -> float:
    """The noise multiplier of one round's release: the wrapper's noise ``z·C/m`` over the
    sensitivity ``C·max(w)/Σw`` of the weighted average of ``m`` clipped updates with weights
    ``weights`` (``z·Σw/(m·max w)``; ``z`` when the weights are equal)."""
    if not weights or any(not w > 0.0 for w in weights):
        raise ValueError(f"weights must be positive, got {list(weights)}")
    if min(weights) == max(weights):
        return float(noise_multiplier)
    return noise_multiplier * sum(weights) / (len(weights) * max(weights))


@dataclass
class PrivacyLedger:
    """The privacy spent so far: one noise multiplier per released aggregate, at ``delta``."""

    delta: float
    noise_multipliers: list[float] = field(default_factory=list)

    def record(self, noise_multiplier: float) -> None:
        """One more released aggregate with this (effective) noise multiplier."""
        if not noise_multiplier >= 0.0:
            raise ValueError(f"noise multiplier must be >= 0, got {noise_multiplier}")
        self.noise_multipliers.append(float(noise_multiplier))

    @property
    def releases(self) -> int:
        """The number of aggregates released."""
        return len(self.noise_multipliers)

    def epsilon(self) -> float:
        """ε at ``delta`` so far, RDP/zCDP bound (:func:`rdp_epsilon`)."""
        return rdp_epsilon(self.noise_multipliers, self.delta)

    def epsilon_gdp(self) -> float:
        """ε at ``delta`` so far, exact for the Gaussian mechanism (:func:`gdp_epsilon`)."""
        return gdp_epsilon(self.noise_multipliers, self.delta)

    def save(self, folder: str | Path) -> Path:
        """Write the ledger to ``folder/privacy.json`` atomically."""
        data = {
            "delta": self.delta,
            "noise_multipliers": self.noise_multipliers,
            "epsilon": self.epsilon(),
            "epsilon_gdp": self.epsilon_gdp(),
        }
        return write_atomic(Path(folder) / LEDGER_FILE, json.dumps(data, indent=2))

    @classmethod
    def load(cls, folder: str | Path, delta: float) -> PrivacyLedger:
        """The ledger saved in ``folder`` (an empty one if there is none); ValueError if it was
        kept at another ``delta``."""
        path = Path(folder) / LEDGER_FILE
        if not path.exists():
            return cls(delta)
        data = json.loads(path.read_text())
        if float(data["delta"]) != delta:
            raise ValueError(f"{path} accounts at delta {data['delta']}, this run at {delta}")
        return cls(delta, [float(z) for z in data["noise_multipliers"]])
