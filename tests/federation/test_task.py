"""The federated task with tiny step counts: real PPO on a node's twin, evaluation, export."""

from __future__ import annotations

import numpy as np
import pytest

from agents.exported import ExportedPolicy
from federation.normalisation import NormStats, merge_norm_stats
from federation.profiles import load_node_profile, make_node_env
from federation.task import (
    LocalConfig,
    evaluate_weights,
    export_policy,
    initial_weights,
    policy_from_weights,
    train_locally,
    weight_names,
)

OBS = 97  # the default scenario: 7 machines x 12 + 3 stations x 2 + 7


@pytest.fixture(scope="module")
def config() -> LocalConfig:
    return LocalConfig.from_recipe(
        n_steps=32, batch_size=32, n_epochs=2, local_steps=64, horizon_h=2.0
    )


@pytest.fixture(scope="module")
def weights(config) -> list[np.ndarray]:
    return initial_weights(config)


@pytest.fixture(scope="module")
def node2():
    return load_node_profile("node-2")


@pytest.fixture(scope="module")
def first_round(config, weights, node2):
    return train_locally(node2, weights, NormStats.empty(OBS), config, round_seed=7)


def _distance(a, b) -> float:
    return float(
        np.sqrt(
            sum(np.sum((np.float64(x) - np.float64(y)) ** 2) for x, y in zip(a, b, strict=True))
        )
    )


def test_config_comes_from_the_shipped_recipe(config):
    from agents.config import TrainConfig

    recipe = TrainConfig.from_toml("configs/ppo_production_line.toml")
    assert config.learning_rate == recipe.learning_rate
    assert config.net_arch == recipe.net_arch
    assert config.use_sde and config.action_log_std == recipe.action_log_std
    assert config.wear_shaping_eur == recipe.wear_shaping_eur
    assert config.n_steps == 32  # the override
    with pytest.raises(ValueError, match="batch_size"):
        LocalConfig(n_steps=32, batch_size=24)


def test_initial_weights_are_the_policy_parameters_in_a_fixed_order(config, weights):
    names = weight_names(config)
    assert names[0] == "log_std"
    assert names[1:3] == ["mlp_extractor.policy_net.0.weight", "mlp_extractor.policy_net.0.bias"]
    assert names[-4:] == [
        "action_net.weight",
        "action_net.bias",
        "value_net.weight",
        "value_net.bias",
    ]
    assert len(weights) == len(names)
    assert weights[1].shape == (128, OBS)
    assert weights[-4].shape == (21, 128)
    assert all(w.dtype == np.float32 for w in weights)
    # the recipe's exploration: log std -1.5 on speeds, -4 on maintenance and standby
    assert np.allclose(weights[0][:, 0], -1.5) and np.allclose(weights[0][:, 1], -4.0)
    again = initial_weights(config)
    assert all(np.array_equal(a, b) for a, b in zip(weights, again, strict=True))
    other = initial_weights(LocalConfig.from_recipe(n_steps=32, batch_size=32, seed=1))
    assert not np.array_equal(weights[1], other[1])


def test_train_locally_changes_the_weights_and_reports_round_statistics(
    config, weights, first_round
):
    result = first_round
    assert result.num_steps == 64
    assert [w.shape for w in result.weights] == [w.shape for w in weights]
    assert all(w.dtype == np.float32 for w in result.weights)
    assert _distance(result.weights, weights) > 0
    assert result.metrics["update_norm"] == pytest.approx(
        _distance(result.weights, weights), rel=1e-5
    )
    # this round's observations only: the first reset and one per step
    assert result.norm.count == 64 + config.n_envs
    assert result.norm.size == OBS
    assert np.all(result.norm.mean >= -1) and np.all(result.norm.mean <= 10)
    # 2 h episodes of 24 steps: two ended, and their return and Z are reported
    assert result.metrics["episodes"] == 2
    assert np.isfinite(result.metrics["train_return"]) and result.metrics["train_objective"] > 0
    assert set(result.state) == {"optimizer", "meta"}
    assert all(isinstance(v, bytes) for v in result.state.values())


def test_train_locally_is_reproducible_for_a_round_seed(config, weights, node2, first_round):
    again = train_locally(node2, weights, NormStats.empty(OBS), config, round_seed=7)
    assert all(
        np.array_equal(a, b) for a, b in zip(first_round.weights, again.weights, strict=True)
    )
    np.testing.assert_array_equal(first_round.norm.mean, again.norm.mean)
    other = train_locally(node2, weights, NormStats.empty(OBS), config, round_seed=8)
    assert not all(
        np.array_equal(a, b) for a, b in zip(first_round.weights, other.weights, strict=True)
    )


def test_local_state_carries_the_optimiser_into_the_next_round(config, node2, first_round):
    norm = merge_norm_stats([NormStats.empty(OBS), first_round.norm])
    kept = train_locally(
        node2, first_round.weights, norm, config, round_seed=9, state=first_round.state
    )
    fresh = train_locally(node2, first_round.weights, norm, config, round_seed=9, state=None)
    assert kept.metrics["local_rounds"] == 2 and fresh.metrics["local_rounds"] == 1
    # Adam's moments from round 1 change round 2's update
    assert _distance(kept.weights, fresh.weights) > 0


def test_fedprox_term_changes_the_local_update_and_pulls_towards_the_global_weights(
    config, weights, node2
):
    prox_config = LocalConfig.from_recipe(
        n_steps=32, batch_size=32, n_epochs=4, local_steps=64, horizon_h=2.0, learning_rate=3e-3
    )
    plain = train_locally(node2, weights, NormStats.empty(OBS), prox_config, round_seed=5)
    prox = train_locally(
        node2,
        weights,
        NormStats.empty(OBS),
        LocalConfig.from_recipe(
            n_steps=32,
            batch_size=32,
            n_epochs=4,
            local_steps=64,
            horizon_h=2.0,
            learning_rate=3e-3,
            proximal_mu=100.0,
        ),
        round_seed=5,
    )
    assert _distance(plain.weights, prox.weights) > 0
    assert _distance(prox.weights, weights) < 0.8 * _distance(plain.weights, weights)


def test_wrong_weights_are_refused(config, weights, node2):
    with pytest.raises(ValueError, match="weight arrays"):
        train_locally(node2, weights[:-1], NormStats.empty(OBS), config, round_seed=1)
    bad = [w.copy() for w in weights]
    bad[1] = np.zeros((64, OBS), np.float32)
    with pytest.raises(ValueError, match="mlp_extractor.policy_net.0.weight"):
        train_locally(node2, bad, NormStats.empty(OBS), config, round_seed=1)
    with pytest.raises(ValueError, match="features"):
        train_locally(node2, weights, NormStats.empty(5), config, round_seed=1)


def test_evaluate_weights_scores_the_policy_on_each_node_twin(config, first_round):
    scores = {
        name: evaluate_weights(
            load_node_profile(name), first_round.weights, first_round.norm, config, [1000]
        )
        for name in ("node-1", "node-3")
    }
    for values in scores.values():
        for key in ("return", "objective", "violation", "cost", "energy_kwh", "downtime_h"):
            assert np.isfinite(values[key])
        assert values["episodes"] == 1
    # the same policy costs more where power is dearer and demand heavier
    assert scores["node-3"]["cost"] > scores["node-1"]["cost"]
    assert scores["node-3"]["return"] < scores["node-1"]["return"]


def test_exported_policy_loads_and_acts_as_the_sb3_policy(config, first_round, tmp_path):
    path = export_policy(first_round.weights, first_round.norm, config, tmp_path / "global.npz")
    exported = ExportedPolicy.load(path)
    assert exported.meta["normalize_observations"]
    assert exported.meta["scenario"] == "automotive_components"
    np.testing.assert_allclose(exported.obs_mean, first_round.norm.mean)
    sb3 = policy_from_weights(first_round.weights, first_round.norm, config)
    env = make_node_env(load_node_profile("node-1"), horizon_h=8.0)
    try:
        observation, _ = env.reset(seed=1000)
        observations = [observation]
        rng = np.random.default_rng(0)
        for _ in range(90):  # into the staffed hours: machines busy, buffers filling
            observation, *_ = env.step(rng.uniform(-0.2, 0.2, 21).astype(np.float32))
            observations.append(observation)
    finally:
        env.close()
    batch = np.stack(observations)
    expected, _ = sb3.predict(batch, deterministic=True)
    actual, _ = exported.predict(batch)
    np.testing.assert_allclose(actual, expected, atol=1e-5)
