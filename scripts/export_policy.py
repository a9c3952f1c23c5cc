"""Export a trained PPO model as a self-contained policy file (numpy only) for the edge bridge.

    python scripts/export_policy.py runs/ppo_production_line            # run folder
    python scripts/export_policy.py runs/ppo/best/model.zip --out policy.npz

The file holds the actor network and the observation normalisation; load it with
``agents.exported.ExportedPolicy.load(path)`` and call ``predict(observation)``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Turn a trained PPO model (and its vecnormalize.pkl) into a numpy-only "
        "policy file that runs without torch, stable-baselines3 or Gymnasium.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "model", type=Path, help="run folder (uses its model.zip) or path of a model .zip"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output file, written atomically (default: policy.npz beside the model)",
    )
    args = parser.parse_args(argv)
    model = args.model / "model.zip" if args.model.is_dir() else args.model
    if not model.is_file():
        parser.error(f"{model}: no such model file; pass a run folder or a model .zip")
    from agents.exported import ExportedPolicyError, export
    from envs.config import ConfigError, read_toml

    normalization = model.with_name("vecnormalize.pkl")
    run_config = next(
        (
            p / "config.toml"
            for p in (model.parent, model.parent.parent)
            if (p / "config.toml").is_file()
        ),
        None,
    )
    try:
        meta = read_toml(run_config) if run_config else {}
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or model.with_name("policy.npz")
    try:
        written = export(
            model,
            out,
            normalization_path=normalization if normalization.is_file() else None,
            env_id=meta.get("env_id", ""),
            scenario=meta.get("scenario", ""),
        )
    except (ExportedPolicyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
