"""Tune the condition-based rule's settings with optuna on training seeds; write the best ones.

    python scripts/tune_rule.py --trials 40 --seeds 2            # -> configs/tuned_rule.toml
    python scripts/tune_rule.py --trials 60 --seeds 2            # after a kill, or to go on
    python scripts/evaluate.py --policies condition_based configs/tuned_rule.toml

The settings (speed factor per station, wear threshold and standby timeout per equipment kind,
power margin and slowdown, tariff multipliers; :mod:`agents.tuned_rule`) are searched with TPE;
each trial runs one full episode (the scenario's week) per training seed (below 1000, never an
evaluation seed) and scores the mean Z + constraint-violation penalty. The first trial is the
``condition_based`` default. The study is kept in SQLite (``--storage``), so a killed run goes on
where it stopped; the output file starts with the command, the seeds and the trial count.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.tuned_rule import TuneRuleConfig, tune_rule  # noqa: E402
from envs.config import ConfigError, load_config  # noqa: E402

# option -> TuneRuleConfig field
OPTIONS = {
    "scenario": "scenario",
    "horizon_h": "horizon_h",
    "trials": "trials",
    "seeds": "seeds",
    "first_seed": "first_seed",
    "sampler_seed": "sampler_seed",
    "storage": "storage",
    "study_name": "study_name",
    "out": "out",
}


def parse_args(argv: list[str] | None = None) -> TuneRuleConfig:
    defaults = TuneRuleConfig()
    parser = argparse.ArgumentParser(
        description="Tune the condition-based rule (speeds per station, wear thresholds and "
        "standby timeouts per equipment kind, power margin, tariff multipliers) with optuna "
        "TPE on training seeds, full episodes, minimising mean Z + constraint penalty; the "
        "study resumes from its storage. Options override the --config file, which overrides "
        "the defaults.",
    )
    parser.add_argument("--config", type=Path, help="TOML file with TuneRuleConfig fields")
    parser.add_argument(
        "--scenario", help=f"shipped scenario name or scenario TOML (default {defaults.scenario})"
    )
    parser.add_argument(
        "--horizon-h", type=float, help="episode length in hours (default: the scenario's week)"
    )
    parser.add_argument(
        "--trials",
        type=int,
        help=f"finished trials the study should reach, the defaults' trial included (default "
        f"{defaults.trials})",
    )
    parser.add_argument(
        "--seeds", type=int, help=f"training episodes per trial (default {defaults.seeds})"
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        help=f"first training seed; seeds stay below 1000 (default {defaults.first_seed})",
    )
    parser.add_argument(
        "--sampler-seed", type=int, help=f"TPE sampler seed (default {defaults.sampler_seed})"
    )
    parser.add_argument("--storage", help=f"optuna RDB URL (default {defaults.storage})")
    parser.add_argument("--study-name", help=f"study name (default {defaults.study_name})")
    parser.add_argument("--out", help=f"the tuned settings file (default {defaults.out})")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {field: getattr(args, option) for option, field in OPTIONS.items()}
    try:
        return load_config(TuneRuleConfig, args.config, overrides)
    except ConfigError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one progress line per trial instead
    started = time.perf_counter()

    def progress(number: int, score: float, best: float) -> None:
        elapsed = time.perf_counter() - started
        print(
            f"trial {number + 1}/{config.trials}: Z {score:,.0f} (best {best:,.0f}), "
            f"{elapsed:,.0f} s",
            flush=True,
        )

    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join(["python scripts/tune_rule.py", *map(shlex.quote, arguments)])
    try:
        outcome = tune_rule(config, header=[f"made by: {command}"], on_trial=progress)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"best mean Z + penalty {outcome['best']:,.0f} over {outcome['trials']} trials "
        f"(condition_based defaults {outcome['default']:,.0f}); wrote {outcome['out']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
