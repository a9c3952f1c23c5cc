"""Evaluate heuristics and saved policies on a production-line env over held-out seeds.

Prints a KPI table (C, E, D, T, R, the weighted objective Z and constraint violations) as IQM with
a 95 % bootstrap interval (or mean with a t interval), and the change of each KPI against
``naive`` the way the digital-twin literature reports it.

    python scripts/evaluate.py                                  # the three heuristics, 10 seeds
    python scripts/evaluate.py --policies naive runs/ppo/model.zip --plots runs/eval
    python scripts/evaluate.py --horizon-h 24 --seeds 3 --statistic mean --json runs/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.heuristics import HEURISTICS  # noqa: E402
from agents.statistics import STATISTICS  # noqa: E402


@dataclass(frozen=True)
class EvaluateConfig:
    env_id: str = "twinfactory/ProductionLine-v0"
    """Registered twinfactory production-line env."""
    scenario: str = "automotive_components"
    """Shipped scenario name or path of a scenario TOML."""
    horizon_h: float | None = None
    """Episode length in hours (default: the scenario's)."""
    policies: tuple[str, ...] = tuple(HEURISTICS)
    """Heuristic names and/or paths of saved PPO models."""
    seeds: int = 10
    """Number of held-out seeds."""
    first_seed: int = 1000
    """First seed; training uses seeds below 1000, so evaluation seeds are held out."""
    statistic: str = "iqm"
    """iqm (interquartile mean, bootstrap CI) or mean (t CI)."""
    json: Path | None = None
    """Also write per-seed KPIs and the summary here."""
    plots: Path | None = None
    """Folder for kpis.png and trajectories.png."""


def run(config: EvaluateConfig) -> dict:
    import gymnasium
    from tqdm import tqdm

    import envs  # noqa: F401 - registers the envs
    from agents import evaluation

    kwargs = {"scenario": config.scenario}
    if config.horizon_h is not None:
        kwargs["horizon_h"] = config.horizon_h
    try:
        env = gymnasium.make(config.env_id, **kwargs)
    except gymnasium.error.Error as error:
        raise ValueError(f"cannot make env '{config.env_id}': {error}") from error
    try:
        policies = dict(evaluation.load_policy(spec, env) for spec in config.policies)
        steps = env.unwrapped.horizon_steps * config.seeds * len(policies)
        seeds = range(config.first_seed, config.first_seed + config.seeds)
        with tqdm(total=steps, desc="evaluating", unit="step") as progress:
            results = evaluation.evaluate(env, policies, seeds, on_step=lambda: progress.update(1))
        summary = evaluation.summarise(results, config.statistic)
        changes = evaluation.relative_changes(summary)
        print(evaluation.format_table(summary, config.statistic))
        if changes:
            print(evaluation.format_changes(changes))
        if config.plots:
            line_env = env.unwrapped
            written = [
                evaluation.plot_kpis(summary, config.plots / "kpis.png"),
                evaluation.plot_trajectories(
                    results,
                    line_env.machine_names,
                    line_env.scenario.objective.peak_max_kw,
                    config.plots / "trajectories.png",
                ),
            ]
            print("wrote " + ", ".join(str(p) for p in written))
    finally:
        env.close()
    payload = {
        "config": {
            "env_id": config.env_id,
            "scenario": config.scenario,
            "horizon_h": config.horizon_h,
            "seeds": list(seeds),
            "statistic": config.statistic,
        },
        "summary": {
            label: {key: vars(value) for key, value in values.items()}
            for label, values in summary.items()
        },
        "change_against_naive": changes,
        "episodes": {
            label: [
                {"seed": r.seed, "objective": r.objective, "violation": r.violation, **r.kpis}
                for r in runs
            ]
            for label, runs in results.items()
        },
    }
    if config.json:
        config.json.parent.mkdir(parents=True, exist_ok=True)
        config.json.write_text(json.dumps(payload, indent=2))
        print(f"wrote {config.json}")
    return payload


def parse_args(argv: list[str] | None = None) -> EvaluateConfig:
    defaults = EvaluateConfig()
    parser = argparse.ArgumentParser(
        description="Evaluate heuristics and saved PPO policies on a twinfactory production-line "
        "env over held-out seeds: KPI table with confidence intervals, change against naive, "
        "optional JSON and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", default=defaults.env_id, help="registered env id")
    parser.add_argument(
        "--scenario",
        default=defaults.scenario,
        help="shipped scenario name or path of a scenario TOML",
    )
    parser.add_argument(
        "--horizon-h",
        type=float,
        default=None,
        help="episode length in hours (default: the scenario's)",
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        default=list(defaults.policies),
        help="heuristic names (naive, fixed_interval, condition_based) and/or "
        "paths of saved PPO models",
    )
    parser.add_argument(
        "--seeds", type=int, default=defaults.seeds, help="number of held-out evaluation seeds"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=defaults.first_seed,
        help="first evaluation seed (training uses seeds below 1000)",
    )
    parser.add_argument(
        "--statistic",
        choices=STATISTICS,
        default=defaults.statistic,
        help="iqm: interquartile mean with bootstrap CI; mean: mean with t CI",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="write per-seed KPIs and the summary to this file"
    )
    parser.add_argument(
        "--plots",
        type=Path,
        default=None,
        help="write kpis.png and trajectories.png into this folder",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.horizon_h is not None and args.horizon_h <= 0:
        parser.error("--horizon-h must be positive")
    return EvaluateConfig(
        env_id=args.env,
        scenario=args.scenario,
        horizon_h=args.horizon_h,
        policies=tuple(args.policies),
        seeds=args.seeds,
        first_seed=args.first_seed,
        statistic=args.statistic,
        json=args.json,
        plots=args.plots,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
