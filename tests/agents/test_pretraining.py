"""Behaviour-cloning warm start: returns arithmetic, imitation of a heuristic, bad settings."""

from __future__ import annotations

import numpy as np
import pytest

from agents.heuristics import make_heuristic
from agents.pretraining import collect, pretrain, returns_to_go
from agents.training import TrainConfig, make_vec_env, train
from envs.config import ConfigError, from_mapping
from envs.line_env import ProductionLineEnv


def test_returns_to_go_restart_at_episode_ends():
    rewards = np.array([[1.0], [2.0], [3.0], [4.0]])
    dones = np.array([[0.0], [1.0], [0.0], [0.0]])
    expected = [[1 + 0.5 * 2], [2.0], [3 + 0.5 * 4], [4.0]]
    assert returns_to_go(rewards, dones, 0.5) == pytest.approx(np.array(expected))


def test_pretrained_policy_imitates_the_heuristic(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    config = TrainConfig(env_kwargs={"horizon_h": 4.0}, n_envs=2, net_arch=(32, 32))
    env = VecNormalize(make_vec_env(config, seed=0), gamma=config.gamma)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu")
    report = pretrain(
        model,
        "condition_based",
        steps=512,
        epochs=60,
        env_factory=lambda: ProductionLineEnv(horizon_h=4.0),
    )
    assert report["steps"] == 512 and report["actor_mse"] < 0.01
    assert np.isfinite(report["critic_mse"])
    layout = ProductionLineEnv(horizon_h=4.0)
    heuristic = make_heuristic("condition_based", layout)
    fresh = collect(env, heuristic, 64)  # states the learner has seen the like of
    raw = fresh.raw_observations.reshape(-1, fresh.raw_observations.shape[-1])
    imitated, _ = model.predict(env.normalize_obs(raw), deterministic=True)
    expected, _ = heuristic.predict(raw)
    assert np.abs(imitated - expected).mean() < 0.1
    layout.close()
    env.close()


def test_pretraining_runs_inside_train_and_refuses_other_envs(tmp_path, capsys):
    config = TrainConfig(
        env_kwargs={"horizon_h": 2.0},
        total_timesteps=128,
        n_envs=1,
        n_steps=128,
        batch_size=64,
        n_epochs=1,
        net_arch=(16,),
        pretrain_policy="condition_based",
        pretrain_steps=128,
        pretrain_epochs=2,
        out_dir=str(tmp_path / "run"),
    )
    model = train(config, progress_bar=False)
    assert model.num_timesteps == 128
    assert model.twinfactory_timing["env_steps"] == 128  # the imitation's steps are not counted
    assert "imitated condition_based for 128 env steps" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="production-line"):
        make_vec_env(TrainConfig(env_id="twinfactory/Fmu-v0", pretrain_policy="naive"), seed=0)
    with pytest.raises(ConfigError, match="pretrain_policy"):
        from_mapping(TrainConfig, {"pretrain_policy": "oracle"}, source="test")


def test_pretraining_imitates_a_tuned_rule_file_and_refuses_a_missing_one(tmp_path):
    from stable_baselines3 import PPO

    from agents.tuned_rule import TunedRulePolicy, load_rule

    rule = "configs/tuned_rule.toml"
    config = TrainConfig(
        env_kwargs={"horizon_h": 4.0}, n_envs=1, net_arch=(32, 32), pretrain_policy=rule
    )
    env = make_vec_env(config, seed=0)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=0, device="cpu")
    report = pretrain(
        model, rule, steps=256, epochs=60, env_factory=lambda: ProductionLineEnv(horizon_h=4.0)
    )
    assert report["steps"] == 256 and report["actor_mse"] < 0.1
    layout = ProductionLineEnv(horizon_h=4.0)
    observation, _ = layout.reset(seed=3)
    expected, _ = TunedRulePolicy(layout, load_rule(rule)).predict(observation)
    imitated, _ = model.predict(observation, deterministic=True)
    # the tuned rule's mills run at 0.70 of nominal speed: the imitation's speeds follow
    speeds = slice(0, None, 3)
    assert np.abs(imitated[speeds] - expected[speeds]).mean() < 0.15
    layout.close()
    env.close()
    with pytest.raises(ConfigError, match="no such tuned-rule file"):
        from_mapping(TrainConfig, {"pretrain_policy": str(tmp_path / "gone.toml")}, source="t")


def test_the_config_knows_every_heuristic_by_name():
    from agents.config import _HEURISTIC_NAMES
    from agents.heuristics import HEURISTICS

    assert set(_HEURISTIC_NAMES) == set(HEURISTICS)
