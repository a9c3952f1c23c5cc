"""Candidate against incumbent, interval by interval, on two copies of the twin.

The plant runs one mix of the two policies at a time (shadow: all incumbent; a canary: the
cohort on the candidate), so its measured KPIs cannot say what the other policy would have
done in the same hours. The gate's KPI evidence therefore comes from a paired simulation: two
twin lines of the nominal scenario (:class:`envs.line_env.ProductionLineEnv`), one driven by
the incumbent, one by the candidate, both on the *same* discrete-event seed (common random
numbers: the same orders, failures and repair times) and the plant's calendar (tariff, shifts),
on several seeds at once (``pairs``). Every decision interval each copy advances one interval
and reports that interval's :class:`envs.kpi.Kpis`; the gate gets the weighted objective Z
summed over the pairs and judges it over its KPI window (:mod:`edge_bridge.gate`).

What this measures is the twin's prediction of the difference; the trust score is what says
whether the twin's physics can be believed on this plant (a candidate that only fails on the
real plant shows up as lost trust or drift on the machines that run it). The plant's own
measured line KPIs are recorded beside it in the audit log.

Each copy's line starts at the plant's hour of the week (``start_h``); when an episode reaches
the scenario's horizon (a week later, the same hour of the week) both copies of a pair restart
on a new seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_bridge.proposers import load_proposer
from edge_bridge.settings import BridgeSettings
from envs.kpi import Kpis
from envs.line_env import ProductionLineEnv
from envs.scenario import Scenario
from envs.seeding import event_rng


@dataclass(frozen=True)
class PairedInterval:
    """One interval of the paired simulation: every pair's KPIs and their weighted objective
    Z summed over the pairs (the gate's evidence)."""

    incumbent: tuple[Kpis, ...]
    candidate: tuple[Kpis, ...]
    incumbent_z: float
    candidate_z: float


class _Pair:
    """One seed: an incumbent copy and a candidate copy of the twin."""

    def __init__(
        self, scenario: Scenario, incumbent: str, candidate: str, seed: int, start_s: float
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.start_s = start_s
        self.envs = {
            "incumbent": ProductionLineEnv(scenario),
            "candidate": ProductionLineEnv(scenario),
        }
        try:
            self.proposers = {
                role: load_proposer(spec, self.envs[role])
                for role, spec in (("incumbent", incumbent), ("candidate", candidate))
            }
        except ValueError:
            self.close()
            raise
        self.episode = 0

    def restart(self, start_s: float) -> None:
        """Both copies on the next episode's seed, their lines starting at ``start_s`` into
        the week (the plant's time 0) as the plant's line does (:mod:`envs.plant`)."""
        seed = self.seed + 7919 * self.episode  # episodes of one pair never meet another pair's
        self.episode += 1
        for env in self.envs.values():
            env.reset(seed=seed)
            env.line.reset(event_rng(seed), start_s=start_s)

    def step(self) -> tuple[Kpis, Kpis]:
        results: dict[str, Kpis] = {}
        ended = False
        for role, env in self.envs.items():
            policy = self.proposers[role].policy
            action, _ = policy.predict(env.observation(), deterministic=True)
            _, _, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
            results[role] = Kpis.from_dict(info["kpi_step"])
            ended = ended or terminated or truncated
        if ended:  # a week after the start: the same hour of the week again
            self.restart(self.start_s)
        return results["incumbent"], results["candidate"]

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


class TwinComparison:
    """Paired simulation of ``incumbent`` and ``candidate`` (proposer specs, as in
    :func:`edge_bridge.proposers.load_proposer`) from plant time 0 = ``start_h`` hours into the
    week, on ``pairs`` seeds at once (``seed``, ``seed + 1``, ...): one line's day is dominated
    by a few failures and maintenances, so several weeks side by side give the gate's bounds
    their evidence sooner."""

    def __init__(
        self,
        scenario: Scenario,
        incumbent: str,
        candidate: str,
        *,
        start_h: float,
        seed: int = 0,
        pairs: int = 4,
    ) -> None:
        if not (isinstance(pairs, int) and pairs >= 1):
            raise ValueError(f"pairs must be a whole number >= 1, not {pairs!r}")
        self.scenario = scenario
        self.start_s = float(start_h) * 3600.0
        self.pairs: list[_Pair] = []
        try:
            for k in range(pairs):
                self.pairs.append(
                    _Pair(scenario, incumbent, candidate, int(seed) + k, self.start_s)
                )
                self.pairs[-1].restart(self.start_s)
        except ValueError:
            self.close()
            raise

    @classmethod
    def from_settings(cls, settings: BridgeSettings, scenario: Scenario) -> TwinComparison:
        """The comparison a bridge with ``settings`` feeds its gate (its incumbent, candidate,
        start hour, ``shadow_seed`` and ``shadow_pairs``)."""
        return cls(
            scenario,
            settings.incumbent,
            settings.candidate,
            start_h=settings.start_h,
            seed=settings.shadow_seed,
            pairs=settings.shadow_pairs,
        )

    def step(self) -> PairedInterval:
        """Advance every copy one decision interval, each under its own policy."""
        results = [pair.step() for pair in self.pairs]
        o = self.scenario.objective

        def z(kpis: Kpis) -> float:
            return kpis.weighted_objective(o.w_cost, o.w_energy, o.w_downtime)

        return PairedInterval(
            incumbent=tuple(r[0] for r in results),
            candidate=tuple(r[1] for r in results),
            incumbent_z=sum(z(r[0]) for r in results),
            candidate_z=sum(z(r[1]) for r in results),
        )

    def close(self) -> None:
        for pair in self.pairs:
            pair.close()
