"""The chosen plan against the heuristics, on the same held-out seeds and horizon, through the
same harness (:mod:`agents.evaluation`): the plan becomes a policy with SB3's ``predict`` that
reads the env's line (machine states, wear, calendar) and answers in the env's action space.

Seeds are held out (:func:`envs.seeding.held_out_seeds`, from
:data:`envs.seeding.HELD_OUT_SEEDS_FROM`), so a plan is never scored on a week it was optimised
on; changes against a baseline are :func:`envs.kpi.relative_change` of each headline KPI
(:data:`envs.kpi.HEADLINE_KPIS`), left out where the baseline is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from envs.kpi import HEADLINE_KPIS, relative_change
from envs.scenario import Scenario
from envs.seeding import HELD_OUT_SEEDS_FROM
from optimizers.plan import OperatingPlan, PlanController

__all__ = [
    "BASELINES",
    "PlanPolicy",
    "compare_with_heuristics",
    "comparison_report",
    "plan_changes",
]

BASELINES = ("naive", "condition_based")


class PlanPolicy:
    """An :class:`OperatingPlan` as a policy for ``twinfactory/ProductionLine-v0``."""

    name = "plan"

    def __init__(self, env: Any, plan: OperatingPlan) -> None:
        self.env = env.unwrapped
        self.controller = PlanController(plan, self.env.scenario)
        self.machines = len(self.env.machine_names)

    def act(self) -> np.ndarray:
        """The env action for the line's current state (speed, maintenance, standby per
        machine, flattened)."""
        line = self.env.line
        if line.system.ticks == 0:  # a new episode: forget the idle timers
            self.controller.reset()
        speed, maintenance, standby = self.controller.decide(line)
        action = np.empty((self.machines, 3))
        action[:, 0] = [self.env.speed_action(float(s), k) for k, s in enumerate(speed)]
        action[:, 1] = np.where(maintenance, 1.0, -1.0)  # the env maintains at wear >= 1 - a
        action[:, 2] = np.where(standby, 1.0, -1.0)
        return action.ravel().astype(np.float32)

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: the action for one env's observation (the plan reads the line)."""
        if np.ndim(observation) == 2:
            raise ValueError("PlanPolicy acts on one env (it reads the env's line), not a batch")
        return self.act(), None


def plan_changes(summary: Mapping[str, Mapping[str, Any]], baseline: str) -> dict[str, float]:
    """Change of each headline KPI of ``summary["plan"]`` against ``summary[baseline]``
    (point estimates, fractions); a KPI whose baseline is 0 is left out (no meaningful
    relative change)."""
    plan, base = summary["plan"], summary[baseline]
    changes = {}
    for name, key in HEADLINE_KPIS.items():
        if key in plan and key in base:
            change = relative_change(float(plan[key].value), float(base[key].value))
            if not math.isnan(change):
                changes[name] = change
    return changes


def compare_with_heuristics(
    scenario: str | Scenario,
    plan: OperatingPlan,
    seeds: Sequence[int],
    *,
    horizon_h: float | None = None,
    baselines: Sequence[str] = BASELINES,
    statistic: str = "mean",
    on_step: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the plan and the ``baselines`` heuristics on ``seeds`` (held out: from
    :data:`~envs.seeding.HELD_OUT_SEEDS_FROM`), the same seeds for all; returns ``results``
    (per episode), ``summary`` (per KPI estimate), ``changes`` (of each headline KPI against
    every baseline, fractions) and ``steps`` (decision intervals per episode)."""
    import gymnasium

    import envs  # noqa: F401 - registers the envs
    from agents.evaluation import evaluate, summarise
    from agents.heuristics import make_heuristic

    training = [seed for seed in seeds if seed < HELD_OUT_SEEDS_FROM]
    if training:
        raise ValueError(
            f"comparison seeds must be held out (>= {HELD_OUT_SEEDS_FROM}); got {training}"
        )
    kwargs: dict[str, Any] = {"scenario": scenario}
    if horizon_h is not None:
        kwargs["horizon_h"] = horizon_h
    env = gymnasium.make("twinfactory/ProductionLine-v0", **kwargs)
    try:
        policies: dict[str, Any] = {"plan": PlanPolicy(env, plan)}
        policies.update({name: make_heuristic(name, env) for name in baselines})
        results = evaluate(env, policies, list(seeds), record_first=False, on_step=on_step)
        steps = int(getattr(env.unwrapped, "horizon_steps"))  # noqa: B009 - not on gymnasium.Env
    finally:
        env.close()
    summary = summarise(results, statistic)
    changes = {name: plan_changes(summary, name) for name in baselines}
    return {"results": results, "summary": summary, "changes": changes, "steps": steps}


def compare_plan_shown(
    scenario: Scenario,
    plan: OperatingPlan,
    seeds: Sequence[int],
    horizon_h: float,
    *,
    title: str,
    desc: str = "comparing",
    progress: bool = True,
    echo: Callable[[str], object] = print,
) -> dict[str, Any]:
    """:func:`compare_with_heuristics` with a progress bar (``desc``), then ``title``, the KPI
    table and the plan's changes against each baseline through ``echo``; returns the outcome."""
    from tqdm import tqdm

    from agents.evaluation import format_changes, format_table

    steps = round(horizon_h * 3600 / scenario.decision_interval_s) * (1 + len(BASELINES))
    with tqdm(total=steps * len(seeds), desc=desc, unit="step", disable=not progress) as bar:
        outcome = compare_with_heuristics(
            scenario, plan, seeds, horizon_h=horizon_h, on_step=lambda: bar.update(1)
        )
    echo(title)
    echo(format_table(outcome["summary"], "mean"))
    for baseline, changes in outcome["changes"].items():
        echo(format_changes({"plan": changes}, baseline))
    return outcome


def comparison_report(
    outcome: Mapping[str, Any], seeds: Sequence[int], horizon_h: float
) -> dict[str, Any]:
    """``comparison.json``'s content: the seeds and horizon, the summary per policy and KPI,
    the plan's change against each baseline, and every episode."""
    return {
        "seeds": list(seeds),
        "horizon_h": horizon_h,
        "summary": {
            label: {key: vars(value) for key, value in values.items()}
            for label, values in outcome["summary"].items()
        },
        "change_of_plan_against": outcome["changes"],
        "episodes": {
            label: [{"seed": r.seed, "objective": r.objective, **r.kpis} for r in runs]
            for label, runs in outcome["results"].items()
        },
    }
