"""The federation's baselines: one PPO trained on pooled twins, without federation.

:func:`train_pooled` trains one SB3 PPO — the federated task's network, recipe and
normalisation (:mod:`federation.weights`) — on a vectorised env with one twin per node
profile, for ``steps_per_node`` env steps on each:

- **central** (all training nodes' profiles): what a single owner of every plant's data would
  train, with as many env steps in all as the federation (``rounds × local_steps`` per node)
  and as many gradient steps (``n_steps`` per env per rollout, the same minibatch size and
  epochs: a rollout of N nodes × ``n_steps`` gives N times the minibatches of one node's);
- **local-only** (one profile): what one plant trains alone with its ``rounds × local_steps``.

Observations are normalised by VecNormalize over the pooled observations (what the
federation's exact count-weighted merge computes across nodes); rewards are not normalised
and the wear shaping is on, as in local training. Every ``checkpoint_steps`` env steps per node
the policy's weights and normalisation statistics are handed to ``on_checkpoint`` (to evaluate
a learning curve in the units of federation rounds).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from federation.normalisation import NormStats
from federation.profiles import NodeProfile
from federation.weights import OBS_CLIP, OBS_EPSILON, build_model, get_weights, vec_env

if TYPE_CHECKING:
    from federation.task import LocalConfig

__all__ = ["PooledPolicy", "train_pooled"]


@dataclass
class PooledPolicy:
    """A pooled PPO's policy: weights in :func:`federation.task.weight_names` order and the
    observation statistics it normalises with (what :func:`federation.task.evaluate_weights`
    and :func:`federation.task.export_policy` take)."""

    weights: list[np.ndarray]
    norm: NormStats
    steps_per_node: int
    """Env steps trained on each node's twin so far."""


def _pooled_env(profiles: Sequence[NodeProfile], config: LocalConfig) -> Any:
    """A DummyVecEnv with one shaped twin per profile (the env each node trains on)."""
    import dataclasses

    from stable_baselines3.common.vec_env import DummyVecEnv

    single = dataclasses.replace(config, n_envs=1)

    def maker(profile: NodeProfile) -> Callable[[], Any]:
        return lambda: vec_env(profile, single, shaped=True).envs[0]

    return DummyVecEnv([maker(profile) for profile in profiles])


def train_pooled(
    profiles: Sequence[NodeProfile],
    config: LocalConfig,
    steps_per_node: int,
    *,
    seed: int,
    checkpoint_steps: int | None = None,
    on_checkpoint: Callable[[PooledPolicy], None] | None = None,
) -> PooledPolicy:
    """One PPO from a fresh policy (``config.seed``'s initial weights are not reused: ``seed``
    seeds the network, envs and sampling) trained on the twins of ``profiles`` for
    ``steps_per_node`` env steps on each (rounded up to whole rollouts of ``config.n_steps``
    per env). ``on_checkpoint`` gets the policy every ``checkpoint_steps`` steps per node
    (rounded up to whole rollouts) and at the end."""
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecNormalize

    if not profiles:
        raise ValueError("train_pooled needs at least one node profile")
    if steps_per_node < 1:
        raise ValueError(f"steps_per_node must be >= 1, got {steps_per_node}")
    if checkpoint_steps is not None and checkpoint_steps < 1:
        raise ValueError(f"checkpoint_steps must be >= 1, got {checkpoint_steps}")
    env = VecNormalize(
        _pooled_env(profiles, config),
        norm_obs=config.normalize_observations,
        norm_reward=False,
        clip_obs=OBS_CLIP,
        epsilon=OBS_EPSILON,
        gamma=config.gamma,
    )
    nodes = len(profiles)

    def snapshot(model: Any) -> PooledPolicy:
        return PooledPolicy(
            weights=get_weights(model.policy),
            norm=NormStats.from_running_mean_std(env.obs_rms),
            steps_per_node=int(model.num_timesteps) // nodes,
        )

    class Checkpoints(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_at = checkpoint_steps or 0

        def _on_step(self) -> bool:
            return True

        def _on_rollout_start(self) -> None:
            done = int(self.model.num_timesteps) // nodes
            if checkpoint_steps and on_checkpoint is not None and done > 0 and done >= self.next_at:
                on_checkpoint(snapshot(self.model))
                while self.next_at <= done:
                    self.next_at += checkpoint_steps

    try:
        model = build_model(config, env, seed)
        model.learn(total_timesteps=steps_per_node * nodes, callback=Checkpoints())
        final = snapshot(model)
        if on_checkpoint is not None:
            on_checkpoint(final)
        return final
    finally:
        env.close()
