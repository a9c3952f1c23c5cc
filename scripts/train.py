"""Train PPO (stable-baselines3) on a twinfactory env.

    python scripts/train.py --config configs/ppo_production_line.toml
    python scripts/train.py --config configs/ppo_production_line.toml --resume    # after a kill
    python scripts/train.py --timesteps 20000 --out runs/quick --set horizon_h=24

A run folder gets config.toml, atomic checkpoints (kill -9 loses at most one checkpoint
interval), the best periodic evaluation under best/, model.zip + vecnormalize.pkl at the end and
TensorBoard logs under tb/ (tensorboard --logdir RUN/tb).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents.training import TrainConfig, train  # noqa: E402
from envs.config import ConfigError, from_mapping  # noqa: E402


def parse_args(argv: list[str] | None = None) -> tuple[TrainConfig, bool, bool]:
    parser = argparse.ArgumentParser(
        description="Train PPO on a twinfactory env from a TOML config (see configs/); options "
        "given here override the file.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML file with TrainConfig fields (defaults for the rest)",
    )
    parser.add_argument("--env", default=None, help="registered env id (overrides env_id)")
    parser.add_argument(
        "--timesteps",
        type=int,
        default=None,
        help="total environment steps (overrides total_timesteps)",
    )
    parser.add_argument("--out", default=None, help="run folder (overrides out_dir)")
    parser.add_argument("--seed", type=int, default=None, help="training seed (0..999)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=NUMBER",
        help="numeric env keyword argument, e.g. horizon_h=24 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the run folder from its latest checkpoint",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        config = TrainConfig.from_toml(args.config) if args.config else TrainConfig()
        overrides: dict = {}
        for option, name in (
            ("env", "env_id"),
            ("timesteps", "total_timesteps"),
            ("out", "out_dir"),
            ("seed", "seed"),
        ):
            if getattr(args, option) is not None:
                overrides[name] = getattr(args, option)
        if args.set:
            kwargs = dict(config.env_kwargs)
            for item in args.set:
                name, _, value = item.partition("=")
                try:
                    kwargs[name] = float(value)
                except ValueError:
                    parser.error(f"--set {item}: expected NAME=NUMBER")
            overrides["env_kwargs"] = kwargs
        if overrides:
            merged = {**dataclasses.asdict(config), **overrides}
            config = from_mapping(TrainConfig, merged, source="command line")
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
