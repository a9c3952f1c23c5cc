"""The callbacks of a PPO run, each with one job (SB3's callback API,
``stable_baselines3/common/callbacks.py``):

- :class:`DivergenceGuard` stops training once parameters or losses are not finite;
- :class:`AtomicCheckpoint` keeps the latest checkpoint (model, normalisation, progress),
  written atomically and only while the guard reports a healthy model;
- :class:`TimedEvalCallback` is SB3's :class:`~stable_baselines3.common.callbacks.EvalCallback`
  (periodic deterministic evaluation on the held-out eval env, normalisation synchronised from
  training) that also adds up its wall time; with :class:`SaveBest` as ``callback_on_new_best``
  it keeps the best model under ``best/``;
- :class:`RolloutTimer` adds up the wall time of rollout collection.

SB3's own ``CheckpointCallback`` writes one file per checkpoint in place; a run here keeps the
latest only, renamed over the previous one, so a kill -9 never leaves a half-written model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, EvalCallback

from agents.run_folder import Run, save

__all__ = ["AtomicCheckpoint", "DivergenceGuard", "RolloutTimer", "SaveBest", "TimedEvalCallback"]


def model_is_finite(model: Any) -> bool:
    """Whether every policy parameter and every loss the logger holds is finite."""
    if not all(bool(p.detach().isfinite().all()) for p in model.policy.parameters()):
        return False
    logger = getattr(model, "_logger", None)  # set once learning starts
    values = logger.name_to_value.items() if logger is not None else ()
    return all(math.isfinite(v) for k, v in values if "loss" in k)


class DivergenceGuard(BaseCallback):
    """Checks the parameters and the last update's losses after every update (at the start of
    each rollout) and whenever :meth:`check` is called; once they are not finite it records
    ``diverged_at`` (the timestep) and stops training at the next step."""

    def __init__(self) -> None:
        super().__init__()
        self.diverged_at: int | None = None

    def check(self, model: Any = None) -> bool:
        """True while the model (the one training, or ``model`` before or after ``learn``) is
        finite; records the first timestep it was not."""
        model = self.model if model is None else model
        if self.diverged_at is None and not model_is_finite(model):
            self.diverged_at = int(model.num_timesteps)
        return self.diverged_at is None

    def _on_rollout_start(self) -> None:
        self.check()

    def _on_step(self) -> bool:
        return self.diverged_at is None


class AtomicCheckpoint(BaseCallback):
    """The latest checkpoint of ``run`` every ``every`` timesteps (model, VecNormalize
    statistics, progress with ``best_mean_reward()``), skipped once ``guard`` finds the model
    diverged, so the last checkpoint is always a good one."""

    def __init__(
        self, run: Run, every: int, guard: DivergenceGuard, best_mean_reward: Callable[[], float]
    ) -> None:
        super().__init__()
        self.run, self.every, self.guard = run, every, guard
        self.best_mean_reward = best_mean_reward
        self.next_checkpoint = every
        self.saved_at: int | None = None

    def _on_training_start(self) -> None:
        # resumed runs continue the schedule: the next multiple of ``every``
        self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_checkpoint:
            self.next_checkpoint = (self.num_timesteps // self.every + 1) * self.every
            if not self.guard.check():
                return False
            self.run.checkpoint_now(self.model, self.best_mean_reward())
            self.saved_at = int(self.num_timesteps)
        return True


class SaveBest(BaseCallback):
    """``callback_on_new_best`` of an EvalCallback: the model and its normalisation under
    ``best/``, written atomically."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def _on_step(self) -> bool:
        save(self.model, self.run.best, self.run.best_normalization)
        return True


class TimedEvalCallback(EvalCallback):
    """SB3's EvalCallback that also adds up the wall time it spends (``seconds``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seconds = 0.0

    def _on_step(self) -> bool:
        started = time.perf_counter()
        try:
            return super()._on_step()
        finally:
            self.seconds += time.perf_counter() - started


class RolloutTimer(BaseCallback):
    """Adds up the wall time of rollout collection (``seconds``; evaluations inside it too)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0
        self._started = 0.0

    def _on_rollout_start(self) -> None:
        self._started = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.seconds += time.perf_counter() - self._started

    def _on_step(self) -> bool:
        return True
