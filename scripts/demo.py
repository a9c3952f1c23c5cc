"""The main job on embedded defaults: train a short PPO run on the default production-line
scenario, evaluate it against the three heuristics on held-out seeds, print the KPI table and
write the plots.

    python scripts/demo.py                      # ~3-5 minutes on 2 cores, into runs/demo
    python scripts/demo.py --timesteps 100000 --seeds 5
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.training import TrainConfig, train  # noqa: E402
from scripts import evaluate  # noqa: E402

RECIPE = REPO / "configs" / "ppo_production_line.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Train a short PPO run on twinfactory/ProductionLine-v0 (recipe "
        "configs/ppo_production_line.toml), then evaluate it against naive, fixed_interval and "
        "condition_based on held-out seeds: KPI table, change against naive, plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        default=30_000,
        help="PPO training steps (the recipe trains far longer)",
    )
    parser.add_argument("--seeds", type=int, default=3, help="held-out evaluation seeds")
    parser.add_argument(
        "--horizon-h", type=float, default=168.0, help="evaluation episode length in hours"
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
    started = time.perf_counter()
    run_dir = args.out / "ppo"
    shutil.rmtree(run_dir, ignore_errors=True)  # the demo always trains afresh
    recipe = TrainConfig.from_toml(RECIPE)
    config = dataclasses.replace(
        recipe,
        total_timesteps=args.timesteps,
        pretrain_steps=min(recipe.pretrain_steps, args.timesteps),  # the imitation scales too
        out_dir=str(run_dir),
        checkpoint_every=10_000,
        eval_every=10 * args.timesteps,
    )
    print(f"training PPO for {args.timesteps} steps ({config.n_envs} envs) ...")
    train(config)
    trained = time.perf_counter()
    print(f"trained in {trained - started:.0f} s; evaluating on {args.seeds} held-out seeds ...")
    evaluate.run(
        evaluate.EvaluateConfig(
            horizon_h=args.horizon_h,
            seeds=args.seeds,
            statistic="mean",
            policies=(*evaluate.EvaluateConfig().policies, str(run_dir / "model.zip")),
            json=args.out / "evaluation.json",
            plots=args.out,
        )
    )
    print(
        f"demo finished in {time.perf_counter() - started:.0f} s "
        f"(training {trained - started:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
