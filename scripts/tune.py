"""Tune PPO hyper-parameters with optuna on a twinfactory production-line env.

    python scripts/tune.py --trials 20 --timesteps 50000                  # SQLite under runs/tune
    python scripts/tune.py --storage postgresql://user:pw@localhost/optuna   # any optuna RDB URL
    python scripts/tune.py --trials 30        # after a kill: continues the same study

Each trial trains in --chunks pieces, is scored after each (the weighted objective Z on held-out
seeds, plus a penalty per unit of constraint violation; lower is better) and pruned by the
median rule; a trial whose training diverges is pruned and the study goes on. Prints the best
trial and writes optuna's plots under OUT/plots.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.config import TrainConfig, parse_env_kwargs  # noqa: E402
from agents.tuning import TuneConfig, storage_url, tune, write_plots  # noqa: E402
from envs.config import ConfigError, config_to_dict, load_config  # noqa: E402

# option -> TuneConfig field
OPTIONS = {
    "trials": "trials",
    "chunks": "chunks",
    "eval_seeds": "eval_seeds",
    "storage": "storage",
    "study_name": "study_name",
    "out": "out_dir",
}


def parse_args(argv: list[str] | None = None) -> TuneConfig:
    defaults = TuneConfig()
    parser = argparse.ArgumentParser(
        description="optuna over PPO hyper-parameters (learning rate, rollout length, gamma, "
        "entropy, clip range, network width) with median pruning; resumable. Options override "
        "the --config file, which overrides the defaults.",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TrainConfig TOML for everything not tuned"
    )
    parser.add_argument(
        "--trials",
        type=int,
        help=f"finished trials the study should reach (default {defaults.trials})",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        help=f"training chunks per trial; the trial is scored after each (default "
        f"{defaults.chunks})",
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        help="training steps per trial (overrides total_timesteps)",
    )
    parser.add_argument(
        "--eval-seeds",
        type=int,
        help=f"held-out seeds per score (default {defaults.eval_seeds})",
    )
    parser.add_argument("--storage", help="optuna RDB URL (default: sqlite:///OUT/study.db)")
    parser.add_argument("--study-name", help=f"study name (default {defaults.study_name})")
    parser.add_argument(
        "--out", help=f"folder for trials, the study and plots (default {defaults.out_dir})"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="numeric env keyword argument, e.g. horizon_h=24 (repeatable)",
    )
    args = parser.parse_args(argv)
    base_overrides: dict[str, Any] = {}
    if args.timesteps is not None:
        base_overrides["total_timesteps"] = args.timesteps
    overrides: dict[str, Any] = {
        field: getattr(args, option)
        for option, field in OPTIONS.items()
        if getattr(args, option) is not None
    }
    try:
        if args.set:
            base_overrides["env_kwargs"] = parse_env_kwargs(args.set)
        base = load_config(TrainConfig, args.config, base_overrides)
        return load_config(TuneConfig, overrides={**overrides, "base": config_to_dict(base)})
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    study = tune(config)
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    diverged = [t for t in study.trials if "diverged" in t.user_attrs]
    print(
        f"study '{config.study_name}' in {storage_url(config)}: {len(study.trials)} trials, "
        f"{len(finished)} complete, {len(diverged)} pruned on divergence"
    )
    if finished:
        best = study.best_trial
        print(f"best trial #{best.number}: score {best.value:,.1f}")
        for name, value in best.params.items():
            print(f"  {name} = {value}")
    for path in write_plots(study, Path(config.out_dir) / "plots"):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
