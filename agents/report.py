"""An evaluation report: what ``scripts/evaluate.py`` and ``scripts/demo.py`` print and write.
Policies (heuristics, saved PPO models, exported policies) on the same held-out seeds of a
production-line env: the KPI table, the change against ``naive``, the paired comparison of Z
against a reference (default: the best heuristic), optionally a JSON file and plots."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.heuristics import HEURISTICS
from agents.statistics import STATISTICS
from envs.config import setting
from envs.seeding import HELD_OUT_SEEDS_FROM, held_out_seeds

__all__ = ["EvaluateConfig", "evaluation_report"]


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
        tuple(HEURISTICS), doc="heuristic names and/or paths of saved PPO models or .npz files"
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
        "", doc="policy the others are paired against ('' = the best heuristic by mean Z)"
    )
    json: str = setting("", doc="also write per-seed KPIs and the summary here ('' = no)")
    plots: str = setting("", doc="folder for kpis.png and trajectories.png ('' = no plots)")


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
        policies = dict(evaluation.load_policy(spec, env) for spec in config.policies)
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
        if len(policies) > 1 and (config.reference or any(p in HEURISTICS for p in policies)):
            paired = paired_comparisons(results, config.reference or None)
        out(evaluation.format_table(summary, config.statistic))
        if changes:
            out(evaluation.format_changes(changes))
        if paired:
            out(format_paired(paired))
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
