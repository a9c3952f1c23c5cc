"""Tune PPO hyper-parameters with optuna on a twinfactory production-line env.

    python scripts/tune.py --trials 20 --timesteps 50000                  # SQLite under runs/tune
    python scripts/tune.py --storage postgresql://user:pw@localhost/optuna   # any optuna RDB URL
    python scripts/tune.py --trials 30        # after a kill: continues the same study

Each trial trains in --chunks pieces, is scored after each (the weighted objective Z on held-out
seeds, plus a penalty per unit of constraint violation; lower is better) and pruned by the
median rule. Prints the best trial and writes optuna's plots under OUT/plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.training import TrainConfig  # noqa: E402
from agents.tuning import TuneConfig, storage_url, tune, write_plots  # noqa: E402
from envs.config import ConfigError, from_mapping  # noqa: E402


def parse_args(argv: list[str] | None = None) -> TuneConfig:
    defaults = TuneConfig()
    parser = argparse.ArgumentParser(
        description="optuna over PPO hyper-parameters (learning rate, rollout length, gamma, "
        "entropy, clip range, network width) with median pruning; resumable.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="TrainConfig TOML for everything not tuned"
    )
    parser.add_argument(
        "--trials", type=int, default=defaults.trials, help="finished trials the study should reach"
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=defaults.chunks,
        help="training chunks per trial; the trial is scored after each",
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        default=None,
        help="training steps per trial (overrides total_timesteps)",
    )
    parser.add_argument(
        "--eval-seeds", type=int, default=defaults.eval_seeds, help="held-out seeds per score"
    )
    parser.add_argument(
        "--storage", default="", help="optuna RDB URL (default: sqlite:///OUT/study.db)"
    )
    parser.add_argument("--study-name", default=defaults.study_name, help="study name")
    parser.add_argument("--out", default=defaults.out_dir, help="folder for trials and plots")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="numeric env keyword argument, e.g. horizon_h=24 (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        base = TrainConfig.from_toml(args.config) if args.config else TrainConfig()
        changes: dict = {}
        if args.timesteps is not None:
            changes["total_timesteps"] = args.timesteps
        if args.set:
            kwargs = dict(base.env_kwargs)
            for item in args.set:
                name, _, value = item.partition("=")
                try:
                    kwargs[name] = float(value)
                except ValueError:
                    parser.error(f"--set {item}: expected NAME=NUMBER")
            changes["env_kwargs"] = kwargs
        if changes:
            base = from_mapping(
                TrainConfig, {**dataclasses.asdict(base), **changes}, source="command line"
            )
        return from_mapping(
            TuneConfig,
            {
                "base": dataclasses.asdict(base),
                "trials": args.trials,
                "chunks": args.chunks,
                "eval_seeds": args.eval_seeds,
                "storage": args.storage,
                "study_name": args.study_name,
                "out_dir": args.out,
            },
            source="command line",
        )
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    study = tune(config)
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    print(
        f"study '{config.study_name}' in {storage_url(config)}: {len(study.trials)} trials, "
        f"{len(finished)} complete"
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
