"""The main job on embedded defaults: train a short PPO run on the default production-line
scenario, evaluate it against the three heuristics and the tuned rule (configs/tuned_rule.toml,
the strongest baseline) on held-out seeds, print the KPI table, the change against naive, the
paired comparison against the best baseline and the 10 % goal line, and write the plots.

    python scripts/demo.py                      # ~3-5 minutes on 2 cores, into runs/demo
    python scripts/demo.py --timesteps 100000 --seeds 5

The same options and seed give the same figures on the same machine (one torch thread, seeded
envs, policy and gSDE noise; tests/agents/test_training.py checks two runs are identical).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.config import TrainConfig  # noqa: E402
from agents.heuristics import HEURISTICS  # noqa: E402
from agents.report import EvaluateConfig, evaluation_report  # noqa: E402
from agents.training import TrainingDiverged, train  # noqa: E402
from envs.config import ConfigError, load_config, read_toml  # noqa: E402

RECIPE = REPO / "configs" / "ppo_production_line.toml"
# the strongest baseline (scripts/tune_rule.py): the demo compares against it, not only the defaults
TUNED_RULE = REPO / "configs" / "tuned_rule.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train a short PPO run on twinfactory/ProductionLine-v0 (recipe "
        "configs/ppo_production_line.toml), then evaluate it against naive, fixed_interval and "
        "condition_based on held-out seeds: KPI table, change against naive, paired comparison "
        "against the best heuristic, plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        default=30_000,
        help="PPO training steps, imitation included (the recipe trains far longer)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="held-out evaluation seeds")
    parser.add_argument(
        "--horizon-h", type=float, default=168.0, help="evaluation episode length in hours"
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="training seed, 0..999 (default: the recipe's)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("runs/demo"),
        help="folder for the PPO run, the evaluation JSON and the plots",
    )
    args = parser.parse_args(argv)
    if args.timesteps < 2048 or args.seeds < 1 or args.horizon_h <= 0:
        parser.error("--timesteps must be >= 2048, --seeds >= 1 and --horizon-h > 0")
    run_dir = args.out / "ppo"
    recipe = read_toml(RECIPE)
    overrides = {
        "total_timesteps": args.timesteps,
        # the imitation scales with the budget too
        "pretrain_steps": min(recipe.get("pretrain_steps", 20_000), args.timesteps),
        "out_dir": str(run_dir),
        "checkpoint_every": 10_000,
        "eval_every": 10 * args.timesteps,  # no periodic evaluation: the demo evaluates after
    }
    if args.seed is not None:
        overrides["seed"] = args.seed
    try:
        config = load_config(TrainConfig, RECIPE, overrides)
        evaluation = load_config(
            EvaluateConfig,
            overrides={
                "horizon_h": args.horizon_h,
                "seeds": args.seeds,
                "statistic": "mean",
                "policies": [*HEURISTICS, str(TUNED_RULE), str(run_dir / "model.zip")],
                "json": str(args.out / "evaluation.json"),
                "plots": str(args.out),
            },
        )
    except ConfigError as error:
        parser.error(str(error))
    started = time.perf_counter()
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo always trains afresh
    print(f"training PPO for {args.timesteps} steps ({config.n_envs} envs, seed {config.seed}) ...")
    try:
        train(config)
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    trained = time.perf_counter()
    print(f"trained in {trained - started:.0f} s; evaluating on {args.seeds} held-out seeds ...")
    evaluation_report(evaluation)
    print(
        f"demo finished in {time.perf_counter() - started:.0f} s "
        f"(training {trained - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
