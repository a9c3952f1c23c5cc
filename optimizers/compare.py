"""The chosen plan against the heuristics, on the same held-out seeds and horizon, through the
same harness (:mod:`agents.evaluation`): the plan becomes a policy with SB3's ``predict`` that
reads the env's line (machine states, wear, calendar) and answers in the env's action space."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from envs.scenario import Scenario
from optimizers.plan import OperatingPlan, PlanController

BASELINES = ("naive", "condition_based")


class PlanPolicy:
    """An :class:`OperatingPlan` as a policy for ``twinfactory/ProductionLine-v0``."""

    name = "plan"

    def __init__(self, env, plan: OperatingPlan) -> None:
        self.env = env.unwrapped
        self.controller = PlanController(plan, self.env.scenario)
        self.machines = len(self.env.machine_names)

    def act(self) -> np.ndarray:
        line = self.env.line
        if line.system.ticks == 0:  # a new episode: forget the idle timers
            self.controller.reset()
        speed, maintenance, standby = self.controller.decide(line)
        action = np.empty((self.machines, 3))
        action[:, 0] = [self.env.speed_action(float(s), k) for k, s in enumerate(speed)]
        action[:, 1] = np.where(maintenance, 1.0, -1.0)  # the env maintains at wear >= 1 - a
        action[:, 2] = np.where(standby, 1.0, -1.0)
        return action.ravel().astype(np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        if np.ndim(observation) == 2:
            raise ValueError("PlanPolicy acts on one env (it reads the env's line), not a batch")
        return self.act(), None


def compare_with_heuristics(
    scenario: str | Scenario,
    plan: OperatingPlan,
    seeds: Sequence[int],
    *,
    horizon_h: float | None = None,
    baselines: Sequence[str] = BASELINES,
    statistic: str = "mean",
    on_step: Callable[[], None] | None = None,
) -> dict:
    """Run the plan and the ``baselines`` heuristics on ``seeds`` (held out: >= 1000), the same
    seeds for all; returns ``results`` (per episode), ``summary`` (per KPI estimate) and the
    change of each headline KPI against every baseline (fractions)."""
    import gymnasium

    import envs  # noqa: F401 - registers the envs
    from agents.evaluation import evaluate, relative_changes, summarise
    from agents.heuristics import make_heuristic

    kwargs = {"scenario": scenario}
    if horizon_h is not None:
        kwargs["horizon_h"] = horizon_h
    env = gymnasium.make("twinfactory/ProductionLine-v0", **kwargs)
    try:
        policies = {"plan": PlanPolicy(env, plan)}
        policies.update({name: make_heuristic(name, env) for name in baselines})
        results = evaluate(env, policies, list(seeds), record_first=False, on_step=on_step)
        steps = env.unwrapped.horizon_steps
    finally:
        env.close()
    summary = summarise(results, statistic)
    changes = {name: relative_changes(summary, name).get("plan", {}) for name in baselines}
    return {"results": results, "summary": summary, "changes": changes, "steps": steps}
