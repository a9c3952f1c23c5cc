"""A PPO run folder: where everything lives, atomic saves, and resuming from the latest
checkpoint.

    RUN/config.toml                 what was asked (envs.config.write_toml)
    RUN/checkpoints/model.zip       the latest checkpoint, with vecnormalize.pkl and
    RUN/checkpoints/progress.json   {"num_timesteps": ..., "best_mean_reward": ...}
    RUN/best/model.zip              the best periodic evaluation (and its vecnormalize.pkl)
    RUN/model.zip                   the final model (and vecnormalize.pkl)
    RUN/timing.json                 where the wall time went
    RUN/tb/                         TensorBoard logs

Every file is written to a temporary file beside it and renamed (:mod:`envs.atomic`), so a
kill -9 leaves the previous version intact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.atomic import atomic_path, write_atomic
from envs.config import ConfigError

__all__ = ["Progress", "Run", "load_checkpoint", "save"]


@dataclass(frozen=True)
class Progress:
    """How far a run got at its latest checkpoint."""

    num_timesteps: int
    best_mean_reward: float = -math.inf
    """Best periodic-evaluation reward so far (``-inf`` before the first evaluation)."""


class Run:
    """Paths of a run folder."""

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)
        self.config = self.root / "config.toml"
        self.checkpoint = self.root / "checkpoints" / "model.zip"
        self.checkpoint_normalization = self.root / "checkpoints" / "vecnormalize.pkl"
        self.progress = self.root / "checkpoints" / "progress.json"
        self.model = self.root / "model.zip"
        self.normalization = self.root / "vecnormalize.pkl"
        self.best = self.root / "best" / "model.zip"
        self.best_normalization = self.root / "best" / "vecnormalize.pkl"
        self.timing = self.root / "timing.json"
        self.tensorboard = self.root / "tb"

    def check_start(self, *, resume: bool) -> None:
        """ConfigError when resuming a folder without a checkpoint, or starting afresh in a
        folder that already holds a run."""
        if resume and not self.checkpoint.is_file():
            raise ConfigError(
                f"{self.root}: nothing to resume (no {self.checkpoint}); start without --resume"
            )
        if not resume and self.checkpoint.is_file():
            raise ConfigError(
                f"{self.root} already holds a run; pass --resume to continue it or "
                "choose another out_dir"
            )

    def read_progress(self) -> Progress:
        """The progress saved with the latest checkpoint."""
        data = json.loads(self.progress.read_text())
        best = data.get("best_mean_reward")
        return Progress(int(data["num_timesteps"]), -math.inf if best is None else float(best))

    def write_progress(self, progress: Progress) -> Path:
        """Write ``progress.json`` atomically (``-inf`` as JSON null)."""
        best = progress.best_mean_reward
        data = {
            "num_timesteps": progress.num_timesteps,
            "best_mean_reward": best if math.isfinite(best) else None,
        }
        return write_atomic(self.progress, json.dumps(data))

    def checkpoint_now(self, model: Any, best_mean_reward: float) -> None:
        """Save the model, its normalisation and the progress as the latest checkpoint."""
        save(model, self.checkpoint, self.checkpoint_normalization)
        self.write_progress(Progress(int(model.num_timesteps), best_mean_reward))


def save(model: Any, model_path: Path, normalization_path: Path) -> None:
    """Model and (when used) VecNormalize statistics, both written atomically."""
    from stable_baselines3.common.vec_env import VecNormalize

    with atomic_path(model_path) as temporary:
        model.save(temporary)
    env = model.get_env()
    if isinstance(env, VecNormalize):
        with atomic_path(normalization_path) as temporary:
            env.save(str(temporary))


def load_checkpoint(run: Run, env: Any) -> tuple[Any, Progress]:
    """The latest checkpoint's PPO model on ``env`` (wrapped in its saved VecNormalize) and its
    progress; ConfigError for an unreadable checkpoint. ``env`` is not closed on error."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    try:
        if run.checkpoint_normalization.is_file():
            env = VecNormalize.load(str(run.checkpoint_normalization), env)
        model = PPO.load(
            run.checkpoint, env=env, device="cpu", tensorboard_log=str(run.tensorboard)
        )
        progress = run.read_progress()
    except Exception as error:
        raise ConfigError(
            f"{run.checkpoint}: unreadable checkpoint ({error}); delete the "
            "run folder to start afresh"
        ) from error
    model.num_timesteps = progress.num_timesteps
    return model, progress
