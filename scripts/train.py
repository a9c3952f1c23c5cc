"""Train PPO (stable-baselines3) on a twinfactory env.

    python scripts/train.py --config configs/ppo_production_line.toml
    python scripts/train.py --config configs/ppo_production_line.toml --resume    # after a kill
    python scripts/train.py --timesteps 20000 --out runs/quick --set horizon_h=24

A run folder gets config.toml, atomic checkpoints (kill -9 loses at most one checkpoint
interval), the best periodic evaluation under best/, model.zip + vecnormalize.pkl at the end and
TensorBoard logs under tb/ (tensorboard --logdir RUN/tb).

Exit status: 0 trained; 2 bad configuration or command line; 3 training diverged (non-finite
parameters or losses; the message names the last good checkpoint).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.config import TrainConfig, parse_env_kwargs  # noqa: E402
from agents.training import TrainingDiverged, train  # noqa: E402
from envs.config import ConfigError, load_config  # noqa: E402

DIVERGED = 3  # exit status of a run stopped on non-finite parameters or losses


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, bool]:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description="Train PPO on a twinfactory env from a TOML config (see configs/); options "
        "given here override the file, which overrides the defaults. Exit status 3 when "
        "training diverges.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file with TrainConfig fields (defaults for the rest)",
    )
    parser.add_argument(
        "--env", help=f"registered env id (overrides env_id; default {defaults.env_id})"
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        help=f"total environment steps (overrides total_timesteps; default "
        f"{defaults.total_timesteps})",
    )
    parser.add_argument("--out", help=f"run folder (overrides out_dir; default {defaults.out_dir})")
    parser.add_argument("--seed", type=int, help="training seed, 0..999 (overrides seed)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="numeric env keyword argument, e.g. horizon_h=24 (repeatable; merged into env_kwargs)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the run folder from its latest checkpoint",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {
        name: getattr(args, option)
        for option, name in (
            ("env", "env_id"),
            ("timesteps", "total_timesteps"),
            ("out", "out_dir"),
            ("seed", "seed"),
        )
        if getattr(args, option) is not None
    }
    try:
        if args.set:
            overrides["env_kwargs"] = parse_env_kwargs(args.set)
        config = load_config(TrainConfig, args.config, overrides)
    except ConfigError as error:
        parser.error(str(error))
    return config, args.resume, not args.no_progress


def main(argv: list[str] | None = None) -> int:
    config, resume, progress = parse_args(argv)
    started = time.perf_counter()
    try:
        model = train(config, resume=resume, progress_bar=progress)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return DIVERGED
    print(
        f"trained to {model.num_timesteps} steps in {time.perf_counter() - started:.0f} s; "
        f"model in {config.out_dir}/model.zip"
    )
    timing = getattr(model, "twinfactory_timing", None)
    if timing:
        print(
            f"{timing['env_steps']} env steps in {timing['wall_s']:.0f} s of training: "
            f"{timing['env_steps_per_s']:.0f} env steps/s; env {timing['env_share']:.0%} of the "
            f"wall time, rollouts {timing['rollout_s']:.0f} s, updates {timing['update_s']:.0f} s, "
            f"evaluation {timing['evaluation_s']:.0f} s (timing.json in the run folder)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
