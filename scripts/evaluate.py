"""Evaluate heuristics, tuned rules, optimiser plans and saved policies on a production-line env
over held-out seeds.

Prints a KPI table (C, E, D, T, R, OEE, the weighted objective Z and constraint violations) as
IQM with a 95 % bootstrap interval (or mean with a t interval), the change of each KPI against
``naive`` the way the digital-twin literature reports it, and the paired comparison of Z against
the best baseline (heuristics, tuned rules and plans; or ``--reference``) seed by seed: mean
difference with a 95 % t interval and the episodes won; then each learned policy's change of Z
against that baseline and whether it meets the 10 % goal. The work is
:func:`agents.report.evaluation_report`.

    python scripts/evaluate.py                                  # the three heuristics, 10 seeds
    python scripts/evaluate.py --policies naive runs/ppo/model.zip --plots runs/eval
    python scripts/evaluate.py --horizon-h 24 --seeds 3 --statistic mean --json runs/eval.json
    python scripts/evaluate.py --policies condition_based configs/tuned_rule.toml \
        runs/optimize/pareto.json#weights runs/ppo_production_line/model.zip
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.report import EvaluateConfig, evaluation_report  # noqa: E402
from agents.statistics import STATISTICS  # noqa: E402
from envs.config import ConfigError, load_config  # noqa: E402

# option -> EvaluateConfig field
OPTIONS = {
    "env": "env_id",
    "scenario": "scenario",
    "horizon_h": "horizon_h",
    "policies": "policies",
    "seeds": "seeds",
    "first_seed": "first_seed",
    "statistic": "statistic",
    "reference": "reference",
    "json": "json",
    "plots": "plots",
    "breakdown": "breakdown",
}


def build_parser() -> argparse.ArgumentParser:
    defaults = EvaluateConfig()
    parser = argparse.ArgumentParser(
        description="Evaluate heuristics, tuned rules, optimiser plans and saved PPO policies on "
        "a twinfactory production-line env over the same held-out seeds: KPI table with "
        "confidence intervals, change against naive, paired comparison of Z against the best "
        "baseline (heuristics, tuned rules, plans), the learned policies' change of Z against "
        "it, optional JSON and plots. Options override the --config file, which overrides the "
        "defaults.",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TOML file with EvaluateConfig fields"
    )
    parser.add_argument("--env", help=f"registered env id (default {defaults.env_id})")
    parser.add_argument(
        "--scenario",
        help=f"shipped scenario name or path of a scenario TOML (default {defaults.scenario})",
    )
    parser.add_argument(
        "--horizon-h", type=float, help="episode length in hours (default: the scenario's)"
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        help="heuristic names (naive, fixed_interval, condition_based), tuned-rule settings "
        "(.toml, e.g. configs/tuned_rule.toml), optimiser plans (PARETO.json[#INDEX|#knee|"
        "#weights], default the knee), saved PPO models (.zip) or exported policies (.npz) "
        "(default: the three heuristics)",
    )
    parser.add_argument(
        "--seeds", type=int, help=f"number of held-out evaluation seeds (default {defaults.seeds})"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        help=f"first evaluation seed, at least {defaults.first_seed} (training uses seeds "
        f"below it; default {defaults.first_seed})",
    )
    parser.add_argument(
        "--statistic",
        choices=STATISTICS,
        help="iqm: interquartile mean with bootstrap CI; mean: mean with t CI "
        f"(default {defaults.statistic})",
    )
    parser.add_argument(
        "--reference",
        help="label of the policy the others are paired against, seed by seed (default: the "
        "baseline — heuristic, tuned rule or plan — with the lowest mean Z)",
    )
    parser.add_argument("--json", help="write per-seed KPIs and the summary to this file")
    parser.add_argument("--plots", help="write kpis.png and trajectories.png into this folder")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        default=None,
        help="also print Z split into energy, maintenance, repair, scrap and backlog cost, "
        "w2·E and w3·D (mean per episode)",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> EvaluateConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        field: getattr(args, option)
        for option, field in OPTIONS.items()
        if getattr(args, option) is not None
    }
    try:
        return load_config(EvaluateConfig, args.config, overrides)
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        evaluation_report(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
