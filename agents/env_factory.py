"""The envs of a PPO run: the training vector env (wear shaping when configured, a step timer
in every worker) and the unshaped evaluation env, both made through SB3's ``make_vec_env`` so
worker ``i`` is seeded ``seed + i``."""

from __future__ import annotations

import time
from typing import Any

import gymnasium

from agents.config import TrainConfig
from envs.config import ConfigError
from envs.seeding import HELD_OUT_SEEDS_FROM

__all__ = ["StepTimer", "env_kwargs", "make_env", "make_eval_env", "make_vec_env"]


class StepTimer(gymnasium.Wrapper):
    """Adds up the wall time spent in the wrapped env's ``step`` and ``reset``
    (``env_seconds``) and counts steps (``env_steps``): the env's share of a training run."""

    def __init__(self, env: gymnasium.Env) -> None:
        super().__init__(env)
        self.env_seconds = 0.0
        self.env_steps = 0

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        started = time.perf_counter()
        try:
            return self.env.step(action)
        finally:
            self.env_seconds += time.perf_counter() - started
            self.env_steps += 1

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        started = time.perf_counter()
        try:
            return self.env.reset(**kwargs)
        finally:
            self.env_seconds += time.perf_counter() - started


def env_kwargs(config: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of ``gymnasium.make`` for the run's env."""
    kwargs: dict[str, Any] = {"render_mode": None, **config.env_kwargs}  # SB3 asks "rgb_array"
    if config.is_production_line:
        kwargs.setdefault("scenario", config.scenario)
    return kwargs


def check_env_id(config: TrainConfig) -> None:
    """ConfigError for an unregistered env id, or production-line options on another env."""
    import envs  # noqa: F401 - registers the envs

    if config.env_id not in gymnasium.registry:
        known = sorted(e for e in gymnasium.registry if e.startswith("twinfactory/"))
        raise ConfigError(
            f"env_id '{config.env_id}' is not registered; twinfactory envs: {', '.join(known)}"
        )
    if not config.is_production_line:
        for name, value in (
            ("wear_shaping_eur", config.wear_shaping_eur),
            ("pretrain_policy", config.pretrain_policy),
        ):
            if value:
                raise ConfigError(
                    f"{name} applies to production-line envs, not '{config.env_id}'; unset it"
                )


def make_env(config: TrainConfig) -> gymnasium.Env:
    """One plain env of the run (no shaping, no timer): what heuristics read their layout from
    and what a trained model is scored on."""
    check_env_id(config)
    return gymnasium.make(config.env_id, **env_kwargs(config))


def _wrap(env: gymnasium.Env, *, eur_per_wear: float = 0.0, gamma: float = 0.99) -> gymnasium.Env:
    if eur_per_wear > 0:
        from agents.shaping import WearShaping

        env = WearShaping(env, eur_per_wear=eur_per_wear, gamma=gamma)
    return StepTimer(env)


def make_vec_env(
    config: TrainConfig, *, seed: int, n_envs: int | None = None, shaped: bool = True
) -> Any:
    """The vector env of a run (wear shaping when configured and ``shaped``; worker ``i``
    seeded ``seed + i``); raises ConfigError for a bad env id."""
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    check_env_id(config)
    vec_class = SubprocVecEnv if config.vectorization == "subproc" else DummyVecEnv
    # "envs:<id>" makes Gymnasium import envs (and so register the ids) in subprocess workers
    return sb3_make_vec_env(
        f"envs:{config.env_id}",
        n_envs=n_envs or config.n_envs,
        seed=seed,
        env_kwargs=env_kwargs(config),
        vec_env_cls=vec_class,
        wrapper_class=_wrap,
        wrapper_kwargs={
            "eur_per_wear": config.wear_shaping_eur if shaped else 0.0,
            "gamma": config.gamma,
        },
    )


def make_eval_env(config: TrainConfig) -> Any:
    """The periodic-evaluation env: one unshaped worker on the first held-out seed, wrapped
    in a frozen VecNormalize (statistics synchronised from training) when the run normalises."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = make_vec_env(config, seed=HELD_OUT_SEEDS_FROM, n_envs=1, shaped=False)
    if config.normalize_observations or config.normalize_rewards:
        env = VecNormalize(
            env, norm_obs=config.normalize_observations, norm_reward=False, training=False
        )
    return env
