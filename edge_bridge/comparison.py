"""Candidate against incumbent, interval by interval, on two copies of the twin.

The plant runs one mix of the two policies at a time (shadow: all incumbent; a canary: the
cohort on the candidate), so its measured KPIs cannot say what the other policy would have
done in the same hours. The gate's KPI evidence therefore comes from a paired simulation: two
twin lines of the nominal scenario (:class:`envs.line_env.ProductionLineEnv`), one driven by
the incumbent, one by the candidate, both on the *same* discrete-event seed (common random
numbers: the same orders, failures and repair times) and the plant's calendar (tariff, shifts).
Every decision interval each advances one interval and reports that interval's
:class:`envs.kpi.Kpis`; the gate sums the weighted objective Z over its window.

What this measures is the twin's prediction of the difference; the trust score is what says
whether the twin's physics can be believed on this plant (a candidate that only fails on the
real plant shows up as lost trust or drift on the machines that run it). The plant's own
measured line KPIs are recorded beside it in the audit log.

When an episode reaches the scenario's horizon (a week) both copies restart on the next seed at
Monday 00:00, which is where the plant's calendar is too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edge_bridge.proposers import load_proposer
from envs.kpi import Kpis
from envs.line_env import ProductionLineEnv
from envs.scenario import Scenario


@dataclass(frozen=True)
class PairedInterval:
    """One interval of the paired simulation."""

    incumbent: Kpis
    candidate: Kpis


class TwinComparison:
    """Paired simulation of ``incumbent`` and ``candidate`` (proposer specs, as in
    :func:`edge_bridge.proposers.load_proposer`) from plant time 0 = ``start_h`` hours into the
    week."""

    def __init__(
        self,
        scenario: Scenario,
        incumbent: str,
        candidate: str,
        *,
        start_h: float,
        seed: int = 0,
    ) -> None:
        self.scenario = scenario
        self.start_s = float(start_h) * 3600.0
        self.seed = int(seed)
        self.envs = {
            "incumbent": ProductionLineEnv(scenario),
            "candidate": ProductionLineEnv(scenario),
        }
        try:
            self.proposers = {
                role: load_proposer(spec, self.envs[role])
                for role, spec in (("incumbent", incumbent), ("candidate", candidate))
            }
            # each copy is brought to the plant's start by the incumbent acting on that copy
            self.burn_in = {role: load_proposer(incumbent, env) for role, env in self.envs.items()}
        except ValueError:
            self.close()
            raise
        self._episode = 0
        self._restart(burn_in_s=self.start_s)

    def _restart(self, *, burn_in_s: float) -> None:
        """Both copies on the next seed, advanced under the incumbent to ``burn_in_s``."""
        seed = self.seed + self._episode
        self._episode += 1
        for env in self.envs.values():
            env.reset(seed=seed)
        steps = round(burn_in_s / self.scenario.decision_interval_s)
        for role, env in self.envs.items():
            policy = self.burn_in[role].policy
            for _ in range(steps):
                action, _ = policy.predict(env.observation(), deterministic=True)
                env.step(np.clip(action, -1.0, 1.0))

    def step(self) -> PairedInterval:
        """Advance both copies one decision interval, each under its own policy."""
        results: dict[str, Kpis] = {}
        ended = False
        for role, env in self.envs.items():
            policy = self.proposers[role].policy
            action, _ = policy.predict(env.observation(), deterministic=True)
            _, _, terminated, truncated, info = env.step(np.clip(action, -1.0, 1.0))
            results[role] = Kpis.from_dict(info["kpi_step"])
            ended = ended or terminated or truncated
        if ended:
            self._restart(burn_in_s=0.0)
        return PairedInterval(results["incumbent"], results["candidate"])

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
