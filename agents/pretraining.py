"""Behaviour-cloning warm start for PPO: imitate a heuristic before reinforcement learning.

A fresh PPO policy on a production line starts far below the simple heuristics and spends most
of a run's budget climbing back to them. ``pretrain`` rolls a heuristic out in the run's own
vector env (so observation and reward normalisation start from the states the heuristic
visits), then fits the actor's mean action to the heuristic's actions and the critic to the
discounted returns the heuristic earned, by mean-squared error. PPO then improves on the
heuristic instead of rediscovering it ("kickstarting"; cf. Rajeswaran et al. 2018, DAPG).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Demonstrations:
    """What a heuristic did: per env, in time order."""

    raw_observations: np.ndarray  # (steps, n_envs, obs_dim), before normalisation
    actions: np.ndarray  # (steps, n_envs, act_dim)
    rewards: np.ndarray  # (steps, n_envs), as the learner sees them (normalised if so)
    dones: np.ndarray  # (steps, n_envs)


def collect(vec_env: Any, policy: Any, steps: int) -> Demonstrations:
    """Run ``policy`` (``predict(raw_observations)``) for ``steps`` env steps in total."""
    from stable_baselines3.common.vec_env import VecNormalize

    normalising = isinstance(vec_env, VecNormalize)
    observation = vec_env.reset()
    rounds = max(1, steps // vec_env.num_envs)
    raw, actions, rewards, dones = [], [], [], []
    for _ in range(rounds):
        original = vec_env.get_original_obs() if normalising else observation
        action, _ = policy.predict(original)
        observation, reward, done, _ = vec_env.step(action)
        raw.append(original.copy())
        actions.append(action)
        rewards.append(reward)
        dones.append(done)
    return Demonstrations(np.array(raw), np.array(actions), np.array(rewards), np.array(dones))


def returns_to_go(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Discounted return from each step to the end of its episode (or of the recording)."""
    result = np.zeros_like(rewards, dtype=np.float64)
    running = np.zeros(rewards.shape[1])
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running * (1.0 - dones[t])
        result[t] = running
    return result


def fit(
    model: Any, demonstrations: Demonstrations, *, epochs: int, batch_size: int = 256
) -> dict[str, float]:
    """Fit the actor mean to the demonstrated actions and the critic to their returns.

    Returns the final mean-squared errors. Steps within 1/(1 − γ) of the end of the recording
    have truncated returns and train the actor only."""
    import torch

    policy = model.policy
    env = model.get_env()
    observations = demonstrations.raw_observations
    if hasattr(env, "normalize_obs"):
        observations = env.normalize_obs(observations)
    steps, n_envs = demonstrations.rewards.shape
    targets = returns_to_go(demonstrations.rewards, demonstrations.dones, model.gamma)
    horizon = min(steps - 1, round(1.0 / max(1e-6, 1.0 - model.gamma)))
    complete = np.zeros((steps, n_envs), dtype=bool)
    complete[: steps - horizon] = True
    low, high = model.action_space.low, model.action_space.high
    tensors = [
        torch.as_tensor(a.reshape(steps * n_envs, -1), dtype=torch.float32)
        for a in (
            observations,
            np.clip(demonstrations.actions, low, high),
            targets[..., None],
            complete[..., None].astype(np.float32),
        )
    ]
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(int(model.seed or 0))
    count = tensors[0].shape[0]
    losses = {"actor_mse": float("nan"), "critic_mse": float("nan")}
    policy.set_training_mode(True)
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        actor_sum = critic_sum = 0.0
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            obs, action, target, mask = (t[index] for t in tensors)
            features = policy.extract_features(obs)
            pi_features, vf_features = features if isinstance(features, tuple) else (features,) * 2
            latent_pi = policy.mlp_extractor.forward_actor(pi_features)
            latent_vf = policy.mlp_extractor.forward_critic(vf_features)
            actor_loss = ((policy.action_net(latent_pi) - action) ** 2).mean()
            value_error = (policy.value_net(latent_vf) - target) ** 2
            critic_loss = (value_error * mask).sum() / mask.sum().clamp(min=1.0)
            optimizer.zero_grad()
            (actor_loss + 0.5 * critic_loss).backward()
            optimizer.step()
            actor_sum += actor_loss.item() * len(index)
            critic_sum += critic_loss.item() * len(index)
        losses = {"actor_mse": actor_sum / count, "critic_mse": critic_sum / count}
    policy.set_training_mode(False)
    return losses


def pretrain(
    model: Any,
    heuristic: str,
    *,
    steps: int,
    epochs: int,
    env_factory: Callable[[], Any],
) -> dict[str, float]:
    """Warm-start ``model`` by imitating ``heuristic`` — a heuristic's name or a tuned-rule TOML
    file (:mod:`agents.tuned_rule`) — for ``steps`` env steps in the model's own vector env.
    ``env_factory()`` makes one plain env the policy reads its layout from. Returns the fit's
    final errors and the demonstrations' mean episode reward."""
    from agents.heuristics import make_heuristic

    layout_env = env_factory()
    try:
        if heuristic.endswith(".toml"):
            from agents.tuned_rule import TunedRulePolicy, load_rule

            policy: Any = TunedRulePolicy(layout_env, load_rule(heuristic), source=heuristic)
        else:
            policy = make_heuristic(heuristic, layout_env)
    finally:
        layout_env.close()
    demonstrations = collect(model.get_env(), policy, steps)
    losses = fit(model, demonstrations, epochs=epochs)
    return {"steps": int(demonstrations.rewards.size), **losses}
