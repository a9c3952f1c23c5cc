"""Every registered twinfactory env passes Gymnasium's and SB3's checks, is deterministic under
a seed, and vectorises (sync and async). New envs are picked up from the registry; give them
example arguments in EXAMPLE_KWARGS if they need any."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401 - registers the envs
import fmus

EXAMPLE_KWARGS = {
    "twinfactory/Fmu-v0": lambda: {
        "fmu": str(fmus.path("CncMill")),
        "step_size": 10.0,
        "inputs": ["spindle_speed", "feed_per_tooth"],
        "start_values": {"mode": 3},
    },
    "twinfactory/ProductionLine-v0": lambda: {"horizon_h": 2.0},
    "twinfactory/ProductionLine-MO-v0": lambda: {"horizon_h": 2.0},
}
ENV_IDS = sorted(env_id for env_id in gymnasium.registry if env_id.startswith("twinfactory/"))


class _SummedReward(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Gymnasium's and SB3's checkers need a scalar reward; MO envs are checked on the sum."""

    def __init__(self, env) -> None:
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def step(self, action):
        observation, reward, terminated, truncated, info = self.env.step(action)
        return observation, float(np.sum(reward)), terminated, truncated, info


def is_multi_objective(env_id: str) -> bool:
    return "-MO-" in env_id


def kwargs_for(env_id: str) -> dict:
    return EXAMPLE_KWARGS[env_id]() if env_id in EXAMPLE_KWARGS else {}


def test_the_registry_holds_every_twinfactory_env():
    assert {
        "twinfactory/Fmu-v0",
        "twinfactory/ProductionLine-v0",
        "twinfactory/ProductionLine-MO-v0",
    } <= set(ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_and_sb3_checks_pass(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gymnasium.make(env_id, **kwargs_for(env_id))
    checked = env.unwrapped
    if hasattr(checked, "reward_space"):
        checked = _SummedReward(checked)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # advice such as "normalise the Box"
        check_env(checked, skip_render_check=True)
        sb3_check_env(checked, warn=False)
    env.close()


def rollout(env_id: str, seed: int, steps: int = 50) -> list[np.ndarray]:
    env = gymnasium.make(env_id, **kwargs_for(env_id))
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trajectory = [observation]
    for _ in range(steps):
        observation, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trajectory.append(np.append(observation, reward))
        if terminated or truncated:
            trajectory.append(env.reset()[0])
    env.close()
    return trajectory


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory(env_id):
    first, second = rollout(env_id, seed=3), rollout(env_id, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("env_id", [e for e in ENV_IDS if not is_multi_objective(e)])
def test_vector_envs(env_id, mode):
    # Gymnasium's vector envs store scalar rewards; vectorise MO envs with MO-Gymnasium's own.
    vector = gymnasium.make_vec(env_id, num_envs=2, vectorization_mode=mode, **kwargs_for(env_id))
    observations, _ = vector.reset(seed=1)
    vector.action_space.seed(1)
    for _ in range(5):
        observations, rewards, *_ = vector.step(vector.action_space.sample())
    assert observations.shape == (2, *vector.single_observation_space.shape)
    assert rewards.shape == (2,)
    vector.close()
