"""PPO training (stable-baselines3) on any registered twinfactory env: :func:`train` puts the
pieces together.

- :mod:`agents.config` — :class:`TrainConfig`, loaded from TOML through :mod:`envs.config`;
- :mod:`agents.env_factory` — the training and evaluation vector envs;
- :mod:`agents.run_folder` — the run folder, atomic saves, resuming from the latest checkpoint
  (at most one checkpoint interval of training is lost to a kill -9);
- :mod:`agents.callbacks` — divergence guard, atomic checkpoints, SB3's periodic evaluation
  keeping the best model, rollout timing.

A run that diverges (non-finite parameters or losses) raises :class:`TrainingDiverged`, which
names the last good checkpoint. The same config and seed give the same model on the same machine
(one torch thread, seeded envs and policy; ``tests/agents/test_training.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from agents.config import TrainConfig
from agents.env_factory import make_env, make_eval_env, make_vec_env
from agents.run_folder import Progress, Run, load_checkpoint, save
from envs.atomic import write_atomic
from envs.config import ConfigError, write_toml

if TYPE_CHECKING:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

__all__ = [
    "Run",
    "TrainConfig",
    "TrainingDiverged",
    "make_vec_env",
    "save",
    "train",
    "training_timing",
]


class TrainingDiverged(RuntimeError):
    """Training produced non-finite parameters or losses and was stopped.

    ``timesteps``: where it was noticed; ``checkpoint``: the last good checkpoint (``None`` when
    none was written yet) and ``checkpoint_timesteps`` its timesteps."""

    def __init__(
        self, timesteps: int, checkpoint: Path | None, checkpoint_timesteps: int | None
    ) -> None:
        self.timesteps = timesteps
        self.checkpoint = checkpoint
        self.checkpoint_timesteps = checkpoint_timesteps
        if checkpoint is None:
            where = "no checkpoint was written before it"
            fix = "start again with a smaller learning_rate (or clip_range)"
        else:
            where = f"the last good checkpoint is {checkpoint} ({checkpoint_timesteps} steps)"
            fix = "lower learning_rate (or clip_range) and start again, or resume from it"
        super().__init__(
            f"training diverged at {timesteps} steps (non-finite parameters or losses); "
            f"{where}; {fix}"
        )


def set_action_log_std(model: PPO, pattern: tuple[float, ...]) -> None:
    """Initial log std per action dimension, ``pattern`` tiled over the action vector."""
    import torch

    shape = model.action_space.shape
    size = int(shape[0]) if shape else 1
    if size % len(pattern):
        raise ConfigError(
            f"action_log_std has {len(pattern)} values, which do not tile the env's {size} "
            f"actions; give a pattern whose length divides {size}"
        )
    values = torch.tensor(pattern * (size // len(pattern)), dtype=torch.float32)
    log_std = model.policy.log_std  # (actions,) or, with gSDE, (latent, actions)
    with torch.no_grad():
        log_std.copy_(values.expand_as(log_std))


class PpoSettings(Protocol):
    """The PPO settings :func:`build_ppo` reads (:class:`TrainConfig` has them, and so has the
    federation's ``LocalConfig``); read-only, as frozen configs are."""

    @property
    def learning_rate(self) -> float: ...

    @property
    def n_steps(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def n_epochs(self) -> int: ...

    @property
    def gamma(self) -> float: ...

    @property
    def gae_lambda(self) -> float: ...

    @property
    def clip_range(self) -> float: ...

    @property
    def ent_coef(self) -> float: ...

    @property
    def use_sde(self) -> bool: ...

    @property
    def sde_sample_freq(self) -> int: ...

    @property
    def net_arch(self) -> tuple[int, ...]: ...

    @property
    def log_std_init(self) -> float: ...

    @property
    def action_log_std(self) -> tuple[float, ...]: ...


def build_ppo(
    settings: PpoSettings, env: Any, *, seed: int, tensorboard_log: str | None = None
) -> PPO:
    """The one construction of SB3's PPO (``MlpPolicy``, CPU) from the recipe's settings,
    seeded by ``seed``, with the recipe's initial action log std applied."""
    from stable_baselines3 import PPO

    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=settings.learning_rate,
        n_steps=settings.n_steps,
        batch_size=settings.batch_size,
        n_epochs=settings.n_epochs,
        gamma=settings.gamma,
        gae_lambda=settings.gae_lambda,
        clip_range=settings.clip_range,
        ent_coef=settings.ent_coef,
        use_sde=settings.use_sde,
        sde_sample_freq=settings.sde_sample_freq,
        policy_kwargs={"net_arch": list(settings.net_arch), "log_std_init": settings.log_std_init},
        seed=seed,
        device="cpu",
        tensorboard_log=tensorboard_log,
        verbose=0,
    )
    if settings.action_log_std:
        set_action_log_std(model, settings.action_log_std)
    return model


def _new_model(config: TrainConfig, run: Run, env: Any) -> PPO:
    """A fresh PPO model on ``env`` (normalised as configured), warm-started by imitation when
    configured; writes the run's config.toml."""
    from stable_baselines3.common.vec_env import VecNormalize

    if config.normalize_observations or config.normalize_rewards:
        env = VecNormalize(
            env,
            norm_obs=config.normalize_observations,
            norm_reward=config.normalize_rewards,
            gamma=config.gamma,
        )
    write_toml(config, run.config)
    model = build_ppo(config, env, seed=config.seed, tensorboard_log=str(run.tensorboard))
    if config.pretrain_policy:
        from agents.pretraining import pretrain

        report = pretrain(
            model,
            config.pretrain_policy,
            steps=config.pretrain_steps,
            epochs=config.pretrain_epochs,
            env_factory=lambda: make_env(config),
        )
        print(
            f"imitated {config.pretrain_policy} for {report['steps']} env steps: "
            f"actor MSE {report['actor_mse']:.4f}, critic MSE {report['critic_mse']:.4f}"
        )
    return model


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    progress_bar: bool = True,
    callbacks: Sequence[BaseCallback] = (),
) -> PPO:
    """Train (or resume) a run; returns the model (its ``twinfactory_timing`` is the run's
    timing.json). Errors in the setup (ConfigError) are raised before any training starts;
    :class:`TrainingDiverged` when training stops on non-finite parameters or losses.
    ``callbacks``: more SB3 callbacks, run after the run's own."""
    import torch

    from agents.callbacks import (
        AtomicCheckpoint,
        DivergenceGuard,
        RolloutTimer,
        SaveBest,
        TimedEvalCallback,
    )

    run = Run(config.out_dir)
    run.check_start(resume=resume)
    torch.set_num_threads(1)  # small MLPs: threads cost more than they give; and reproducible
    env = make_vec_env(config, seed=config.seed)
    eval_env = None
    try:
        eval_env = make_eval_env(config)
        run.root.mkdir(parents=True, exist_ok=True)
        if resume:
            model, progress = load_checkpoint(run, env)
        else:
            model, progress = _new_model(config, run, env), Progress(0)
        training_env = model.get_env()
        assert training_env is not None
        guard = DivergenceGuard()
        evaluation = TimedEvalCallback(
            eval_env,
            callback_on_new_best=SaveBest(run),
            n_eval_episodes=config.eval_episodes,
            eval_freq=max(1, config.eval_every // config.n_envs),
            deterministic=True,
            verbose=0,
            warn=False,
        )
        evaluation.best_mean_reward = progress.best_mean_reward
        checkpoint = AtomicCheckpoint(
            run, config.checkpoint_every, guard, lambda: evaluation.best_mean_reward
        )
        rollouts = RolloutTimer()
        remaining = config.total_timesteps - progress.num_timesteps
        before = {name: training_env.get_attr(name) for name in ("env_seconds", "env_steps")}
        started = time.perf_counter()
        if remaining > 0:
            try:
                model.learn(
                    total_timesteps=remaining,
                    callback=[guard, checkpoint, evaluation, rollouts, *callbacks],
                    progress_bar=progress_bar,
                    reset_num_timesteps=not resume,
                    tb_log_name="ppo",
                )
            except ValueError:  # torch refuses a Gaussian with NaN mean inside an update
                if guard.check(model):
                    raise
        healthy = guard.check(model)
        if healthy:
            save(model, run.model, run.normalization)
            run.checkpoint_now(model, evaluation.best_mean_reward)
        timing = training_timing(
            training_env,
            {"rollout": rollouts.seconds, "evaluation": evaluation.seconds},
            time.perf_counter() - started,
            before,
        )
        write_atomic(run.timing, _json(timing))
        model.twinfactory_timing = timing
    finally:
        env.close()
        if eval_env is not None:
            eval_env.close()
    if not healthy:
        assert guard.diverged_at is not None
        saved = run.read_progress().num_timesteps if run.progress.is_file() else None
        raise TrainingDiverged(
            guard.diverged_at, run.checkpoint if saved is not None else None, saved
        )
    return model


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, indent=1)


def training_timing(
    env: Any,
    seconds: dict[str, float],
    wall_s: float,
    before: dict[str, list[Any]] | None = None,
) -> dict[str, float]:
    """Where the wall time of ``learn`` went. Each worker's env time is measured inside the
    worker, minus what it had done ``before`` learning (an imitation warm start); ``env_share``
    is the mean worker's env time over the wall time (with subprocess envs the workers step in
    parallel, so this is the fraction the learner waits on them)."""
    start = before or {"env_seconds": [0.0] * env.num_envs, "env_steps": [0] * env.num_envs}
    env_seconds = [
        a - b for a, b in zip(env.get_attr("env_seconds"), start["env_seconds"], strict=True)
    ]
    env_steps = int(sum(env.get_attr("env_steps")) - sum(start["env_steps"]))
    evaluation = seconds["evaluation"]  # runs inside a rollout, from the callback
    rollout = seconds["rollout"] - evaluation
    mean_env = sum(env_seconds) / len(env_seconds)
    return {
        "wall_s": wall_s,
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / wall_s if wall_s > 0 else 0.0,
        "env_s_per_worker": mean_env,
        "env_share": mean_env / wall_s if wall_s > 0 else 0.0,
        "rollout_s": rollout,
        "update_s": max(0.0, wall_s - rollout - evaluation),
        "evaluation_s": evaluation,
    }
