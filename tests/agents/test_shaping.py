"""Potential-based wear shaping: telescopes, credits maintenance, refuses what it cannot shape."""

from __future__ import annotations

import numpy as np
import pytest

from agents.heuristics import make_heuristic
from agents.shaping import WearShaping
from agents.training import TrainConfig, make_vec_env
from envs.config import ConfigError
from envs.fmu_env import FmuEnv
from envs.line_env import ProductionLineEnv


def rollout(env, policy, steps):
    observation, _ = env.reset(seed=3)
    start = env.potential()
    shaped, unshaped, maintenance_steps = [], [], []
    for step in range(steps):
        action, _ = policy.predict(observation)
        observation, reward, _, _, info = env.step(action)
        shaped.append(reward)
        unshaped.append(info["reward_unshaped"])
        if info["maintenances"]:
            maintenance_steps.append(step)
    return start, env.potential(), np.array(shaped), np.array(unshaped), maintenance_steps


def test_shaping_telescopes_and_credits_maintenance():
    env = WearShaping(ProductionLineEnv(horizon_h=24.0), eur_per_wear=150.0, gamma=1.0)
    policy = make_heuristic("condition_based", env)
    start, end, shaped, unshaped, maintained = rollout(env, policy, 288)
    # with γ = 1 the shaping terms sum to Φ(end) − Φ(start): the return changes by a constant
    assert shaped.sum() - unshaped.sum() == pytest.approx(end - start, abs=1e-9)
    assert maintained, "condition_based changes tools within a day"
    bonus = shaped - unshaped
    # renewing a worn tool (when the 30-min maintenance ends) raises the potential: credited
    credited = np.flatnonzero(bonus > 0)
    for step in maintained:
        assert any(step <= c <= step + 7 for c in credited), step
    # cutting wears tools: the other steps are charged (or neutral when nothing cuts)
    others = np.setdiff1d(np.arange(288), credited)
    assert (bonus[others] <= 0).all() and bonus[others].min() < 0
    env.close()


def test_shaping_refuses_bad_settings():
    env = ProductionLineEnv(horizon_h=1.0)
    with pytest.raises(ValueError, match="eur_per_wear"):
        WearShaping(env, eur_per_wear=float("nan"), gamma=0.99)
    with pytest.raises(ValueError, match="gamma"):
        WearShaping(env, eur_per_wear=1.0, gamma=1.5)
    env.close()
    with pytest.raises(ConfigError, match="production-line"):
        make_vec_env(TrainConfig(env_id="twinfactory/Fmu-v0", wear_shaping_eur=10.0), seed=0)
    assert FmuEnv  # the Fmu env exists but has no tools to shape
