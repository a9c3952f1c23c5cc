"""An evaluation report: what ``scripts/evaluate.py`` and ``scripts/demo.py`` print and write.
Policies (heuristics, tuned rules, optimiser plans, saved PPO models, exported policies) on the
same held-out seeds of a production-line env: the KPI table, the change against ``naive``, the
paired comparison of Z against a reference (default: the best baseline — heuristics, tuned rules
and plans — by mean Z), each learned policy's relative change of Z against it with the issue-16
goal (at least 10 % lower), optionally a JSON file and plots.

An optimiser plan is ``<pareto.json>[#<index>|#knee|#weights]`` (default the knee point, as
``scripts/optimize.py`` picks it; ``weights``: the smallest w·F with the scenario's weights),
read by :func:`optimizers.pareto.load_pareto` and run by :class:`optimizers.compare.PlanPolicy`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.heuristics import HEURISTICS
from agents.statistics import STATISTICS
from envs.config import setting
from envs.seeding import HELD_OUT_SEEDS_FROM, held_out_seeds

if TYPE_CHECKING:
    import gymnasium

    from agents.evaluation import Policy

__all__ = [
    "GOAL",
    "EvaluateConfig",
    "evaluation_report",
    "goal_lines",
    "load_plan_policy",
    "load_report_policy",
]

GOAL = 0.10
"""Issue 16's goal: a learned policy's mean Z at least this fraction below the best baseline's."""


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    """An evaluation. Every field has a default; a TOML file or the command line overrides."""

    env_id: str = setting(
        "twinfactory/ProductionLine-v0", doc="registered twinfactory production-line env"
    )
    scenario: str = setting(
        "automotive_components", doc="shipped scenario name or path of a scenario TOML"
    )
    horizon_h: float | None = setting(
        None, low=1e-6, high=1e6, doc="episode length in hours (default: the scenario's)"
    )
    policies: tuple[str, ...] = setting(
        tuple(HEURISTICS),
        doc="heuristic names, tuned-rule .toml files, pareto.json[#index] plans, saved PPO "
        "models (.zip) or exported policies (.npz)",
    )
    seeds: int = setting(10, low=1, high=100_000, doc="number of held-out seeds")
    first_seed: int = setting(
        HELD_OUT_SEEDS_FROM,
        low=HELD_OUT_SEEDS_FROM,
        high=10**9,
        doc="first seed; training uses seeds below envs.seeding.HELD_OUT_SEEDS_FROM",
    )
    statistic: str = setting(
        "iqm", choices=STATISTICS, doc="iqm (interquartile mean, bootstrap CI) or mean (t CI)"
    )
    reference: str = setting(
        "", doc="policy the others are paired against ('' = the best baseline by mean Z)"
    )
    json: str = setting("", doc="also write per-seed KPIs and the summary here ('' = no)")
    plots: str = setting("", doc="folder for kpis.png and trajectories.png ('' = no plots)")
    breakdown: bool = setting(False, doc="also print Z split into its parts, mean per episode")


def load_plan_policy(spec: str, env: gymnasium.Env) -> tuple[str, Policy]:
    """The plan ``spec`` names (``<pareto.json>[#<index>|#knee|#weights]``, module docstring)
    as a policy on ``env``; label ``plan#<index>``. ValueError for a missing or malformed file,
    an index outside the front, or a plan for another scenario or encoding."""
    from optimizers.compare import PlanPolicy
    from optimizers.config import ProblemConfig
    from optimizers.pareto import load_pareto, pick_plan
    from optimizers.problems import FactoryProblem

    path_text, _, pick = spec.partition("#")
    path = Path(path_text)
    scenario = env.unwrapped.scenario  # type: ignore[attr-defined]
    granularity, made_for = "machine", scenario.name
    try:  # the problem the front was made for; load_pareto reports a malformed file
        problem_table = json.loads(path.read_text(encoding="utf-8")).get("problem", {})
        granularity = str(problem_table.get("granularity", granularity))
        made_for = _scenario_name(str(problem_table.get("scenario", made_for)))
    except (OSError, ValueError, AttributeError):
        pass
    if made_for != scenario.name:
        raise ValueError(
            f"{path}: the plans are for scenario '{made_for}', the env runs '{scenario.name}'; "
            "optimise this scenario (scripts/optimize.py --scenario ...)"
        )
    problem = FactoryProblem(ProblemConfig(granularity=granularity), scenario=scenario)
    front = load_pareto(path, problem)
    if pick in ("", "knee", "weights"):
        objective = scenario.objective
        weights = (objective.w_cost, objective.w_energy, objective.w_downtime)
        index = pick_plan(front, pick or "knee", weights)
        if index is None:
            raise ValueError(f"{path}: the front holds no plan")
    elif pick.isdigit() and int(pick) < len(front):
        index = int(pick)
    else:
        raise ValueError(
            f"{spec}: the plan index must be a whole number below {len(front)} (the plans in "
            f"{path}), 'knee' or 'weights'"
        )
    return f"plan#{index}", PlanPolicy(env, problem.encoding.decode(front.X[index]))


def _scenario_name(scenario: str) -> str:
    """The name of a scenario given by name or TOML path (the text itself if it cannot load)."""
    from envs.scenario import load_scenario

    try:
        return load_scenario(scenario).name
    except (OSError, ValueError):
        return scenario


def load_report_policy(spec: str, env: gymnasium.Env) -> tuple[str, Policy, bool]:
    """(label, policy, is a baseline) for any policy ``spec`` of the report: a plan
    (:func:`load_plan_policy`), a tuned rule's settings (``.toml``,
    :class:`agents.tuned_rule.TunedRulePolicy`; label: the file's stem), or what
    :func:`agents.evaluation.load_policy` loads. Baselines are the heuristics, tuned rules and
    plans; learned models are not."""
    from agents.evaluation import load_policy
    from agents.tuned_rule import TunedRulePolicy, load_rule

    path_text = spec.partition("#")[0]
    if path_text.endswith(".json"):
        label, policy = load_plan_policy(spec, env)
        return label, policy, True
    if "#" in spec:
        raise ValueError(f"'{spec}': '#<index>' selects a plan of a pareto.json only")
    if spec.endswith(".toml"):
        return Path(spec).stem, TunedRulePolicy(env, load_rule(spec), source=spec), True
    label, policy = load_policy(spec, env)
    return label, policy, spec in HEURISTICS


def goal_lines(
    results: dict[str, list[Any]], paired: dict[str, Any], learned: list[str], reference: str
) -> str:
    """One line per learned policy: its mean Z against the reference's as a relative change and
    whether it is at least :data:`GOAL` lower."""
    import numpy as np

    base = float(np.mean([r.objective for r in results[reference]]))
    lines = [f"learned policies against {reference} (mean Z {base:,.0f}; goal: >= 10 % lower):"]
    width = max(len(label) for label in learned)
    for label in learned:
        change = float(np.mean([r.objective for r in results[label]])) / base - 1.0
        c = paired[label]
        verdict = "met" if change <= -GOAL and c.high < 0 else "missed"
        lines.append(
            f"  {label.ljust(width)}  Z {100 * change:+.1f} %, better in {c.wins} of {c.count} "
            f"weeks: goal {verdict}"
        )
    return "\n".join(lines)


# (title, part of Z per episode): C's parts (w1 = w_cost), then w2·E and w3·D
_PARTS = (
    ("energy EUR", lambda k, w: w.w_cost * k["energy_cost"]),
    ("maint. EUR", lambda k, w: w.w_cost * k["maintenance_cost"]),
    ("repair EUR", lambda k, w: w.w_cost * k["repair_cost"]),
    ("scrap EUR", lambda k, w: w.w_cost * k["scrap_cost"]),
    ("backlog EUR", lambda k, w: w.w_cost * k["backlog_cost"]),
    ("w2·E", lambda k, w: w.w_energy * k["energy_kwh"]),
    ("w3·D", lambda k, w: w.w_downtime * k["downtime_h"]),
)


def format_breakdown(results: dict[str, list[Any]], weights: Any) -> str:
    """Z = w1·(energy + maintenance + repair + scrap + backlog cost) + w2·E + w3·D, each part's
    mean over a policy's episodes (``weights``: the scenario's objective), with the Z it sums
    to."""
    header = ["policy", *[title for title, _ in _PARTS], "Z"]
    rows = [header]
    for label, runs in results.items():
        parts = [float(np.mean([part(r.kpis, weights) for r in runs])) for _, part in _PARTS]
        z = float(np.mean([r.objective for r in runs]))
        rows.append([label, *[f"{v:,.0f}" for v in parts], f"{z:,.0f}"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "Z by part, mean per episode:\n" + "\n".join(lines)


def evaluation_report(
    config: EvaluateConfig,
    *,
    out: Callable[[str], None] = print,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the evaluation, print (``out``) the table, the changes and the paired comparison,
    write the JSON and plots when asked; returns the JSON payload. ValueError for an env that
    cannot be made or a policy that cannot be loaded."""
    import gymnasium
    from tqdm import tqdm

    import envs  # noqa: F401 - registers the envs
    from agents import evaluation
    from agents.comparison import format_paired, paired_comparisons
    from envs.atomic import write_atomic

    kwargs: dict[str, Any] = {"scenario": config.scenario}
    if config.horizon_h is not None:
        kwargs["horizon_h"] = config.horizon_h
    try:
        env = gymnasium.make(config.env_id, **kwargs)
    except gymnasium.error.Error as error:
        raise ValueError(f"cannot make env '{config.env_id}': {error}") from error
    seeds = held_out_seeds(config.seeds, config.first_seed)
    try:
        policies: dict[str, Policy] = {}
        baselines: list[str] = []
        for spec in config.policies:
            label, policy, is_baseline = load_report_policy(spec, env)
            if label in policies:
                raise ValueError(
                    f"two policies are labelled '{label}' ({spec} and an earlier one); "
                    "rename one of the files"
                )
            policies[label] = policy
            if is_baseline:
                baselines.append(label)
        if config.reference and config.reference not in policies:
            raise ValueError(
                f"reference '{config.reference}' is not among the evaluated policies "
                f"({', '.join(policies)})"
            )
        steps = env.unwrapped.horizon_steps * len(seeds) * len(policies)  # type: ignore[attr-defined]
        with tqdm(total=steps, desc="evaluating", unit="step", disable=not progress) as bar:
            results = evaluation.evaluate(env, policies, seeds, on_step=lambda: bar.update(1))
        summary = evaluation.summarise(results, config.statistic)
        changes = evaluation.relative_changes(summary)
        paired: dict[str, Any] = {}
        reference = config.reference or min(
            baselines,
            key=lambda label: float(np.mean([r.objective for r in results[label]])),
            default="",
        )
        if len(policies) > 1 and reference:
            paired = paired_comparisons(results, reference)
        out(evaluation.format_table(summary, config.statistic))
        if changes:
            out(evaluation.format_changes(changes))
        if paired:
            out(format_paired(paired))
            learned = [label for label in policies if label not in baselines]
            if learned and reference in baselines:
                out(goal_lines(results, paired, learned, reference))
        if config.breakdown:
            out(format_breakdown(results, env.unwrapped.scenario.objective))  # type: ignore[attr-defined]
        if config.plots:
            folder = Path(config.plots)
            line_env: Any = env.unwrapped
            written = [
                evaluation.plot_kpis(summary, folder / "kpis.png"),
                evaluation.plot_trajectories(
                    results,
                    line_env.machine_names,
                    line_env.scenario.objective.peak_max_kw,
                    folder / "trajectories.png",
                ),
            ]
            out("wrote " + ", ".join(str(p) for p in written))
    finally:
        env.close()
    payload = {
        "config": {
            "env_id": config.env_id,
            "scenario": config.scenario,
            "horizon_h": config.horizon_h,
            "seeds": seeds,
            "statistic": config.statistic,
        },
        "baselines": baselines,
        "reference": reference,
        "summary": {
            label: {key: vars(value) for key, value in values.items()}
            for label, values in summary.items()
        },
        "change_against_naive": {
            label: {name: None if math.isnan(v) else v for name, v in values.items()}
            for label, values in changes.items()
        },
        "paired": {label: c.as_dict() for label, c in paired.items()},
        "episodes": {
            label: [
                {"seed": r.seed, "objective": r.objective, "violation": r.violation, **r.kpis}
                for r in runs
            ]
            for label, runs in results.items()
        },
    }
    if config.json:
        write_atomic(config.json, json.dumps(payload, indent=2))
        out(f"wrote {config.json}")
    return payload
