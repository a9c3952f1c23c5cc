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


# Fmu-v0 on the test-fixture FMUs with the FMI behaviours third-party FMUs have and the
# shipped ones do not: a request to stop (FMI 2 and FMI 3) and FMI 3 array variables.
FIXTURE_CASES = {
    "fmi2-stop": ("Decay2Stop", {"step_size": 0.3, "inputs": ["u"]}),
    "fmi3-stop": ("Decay3Stop", {"step_size": 0.3, "inputs": ["u"]}),
    "fmi3-array": ("Decay3Array", {"step_size": 0.5, "outputs": ["y"]}),
    "fmi3-array-dict": ("Decay3Array", {"step_size": 0.5, "inputs": ["u", "k"]}),
}


def make_fixture_env(test_fmus, case: str):
    variant, kwargs = FIXTURE_CASES[case]
    return gymnasium.make("twinfactory/Fmu-v0", fmu=test_fmus[variant], **kwargs)


@pytest.mark.parametrize("case", sorted(FIXTURE_CASES))
def test_fmu_env_on_fixture_fmus_passes_the_checks(test_fmus, case):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = make_fixture_env(test_fmus, case)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)
    env.close()


def fixture_rollout(test_fmus, case: str, seed: int, steps: int = 20) -> list:
    env = make_fixture_env(test_fmus, case)
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trajectory, ends = [observation], []
    for _ in range(steps):
        observation, _reward, terminated, truncated, _ = env.step(env.action_space.sample())
        trajectory.append(observation)
        ends.append(terminated)
        if terminated or truncated:
            trajectory.append(env.reset()[0])
    env.close()
    return [gymnasium.spaces.flatten(env.observation_space, o) for o in trajectory], ends


@pytest.mark.parametrize("case", sorted(FIXTURE_CASES))
def test_fmu_env_on_fixture_fmus_is_deterministic_and_ends_where_the_fmu_stops(test_fmus, case):
    (first, ends), (second, _) = (fixture_rollout(test_fmus, case, 3) for _ in range(2))
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    if case.endswith("stop"):  # stop_time 2 s: the 7th step of 0.3 s of every episode
        assert [i for i, terminated in enumerate(ends) if terminated] == [6, 13]
    else:
        assert not any(ends)
