"""twinfactory/Fmu-v0: spaces from the model description, fidelity to FMPy, episodes, bad input."""

from __future__ import annotations

import re
import zipfile

import fmpy
import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import envs  # noqa: F401 - registers the envs

MILL_INPUTS = ["spindle_speed", "feed_per_tooth"]


def make(fmu, **kwargs):
    return gymnasium.make("twinfactory/Fmu-v0", fmu=fmu, **kwargs)


def edited_copy(fmu: str, folder, edit) -> str:
    """An extracted copy of ``fmu`` whose modelDescription.xml went through ``edit``."""
    with zipfile.ZipFile(fmu) as archive:
        archive.extractall(folder)
    description = folder / "modelDescription.xml"
    description.write_text(edit(description.read_text()))
    return str(folder)


def test_default_spaces_come_from_the_model_description(fmu_files):
    env = make(fmu_files["CncMill"], step_size=10.0)
    unwrapped = env.unwrapped
    assert unwrapped.input_names == [
        "mode",
        "spindle_speed",
        "feed_per_tooth",
        "ambient_temperature",
        "tool_change",
    ]
    assert isinstance(env.action_space, spaces.Dict)
    assert env.action_space["mode"] == spaces.Discrete(4)
    assert env.action_space["tool_change"] == spaces.Discrete(2)
    assert env.action_space["spindle_speed"].low[0] == 100.0
    outputs = [
        v.name
        for v in fmpy.read_model_description(fmu_files["CncMill"]).modelVariables
        if v.causality == "output"
    ]
    assert unwrapped.output_names == outputs
    assert env.observation_space.shape == (len(outputs),)
    assert env.observation_space.low[outputs.index("defect_probability")] == 0.0
    env.close()


def test_inputs_as_names_or_bounds(fmu_files):
    env = make(
        fmu_files["CncMill"],
        step_size=10.0,
        inputs={"spindle_speed": (800.0, 1600.0)},
        outputs=["power"],
    )
    assert env.action_space == spaces.Box(800.0, 1600.0, (1,), np.float64)
    env.close()
    with pytest.raises(ValueError, match="must lie inside its range"):
        make(fmu_files["CncMill"], step_size=10.0, inputs={"spindle_speed": (0.0, 1600.0)})
    discrete = make(fmu_files["CncMill"], step_size=10.0, inputs=["mode", "tool_change"])
    assert discrete.action_space == spaces.MultiDiscrete([4, 2])
    discrete.close()


def test_unbounded_input_is_an_error_not_an_infinite_box(fmu_files, tmp_path):
    def unbound(text: str) -> str:
        start = text.index('name="load_mass"')
        end = text.index("</ScalarVariable>", start)
        block = re.sub(r' (min|max)="[^"]*"', "", text[start:end])
        return text[:start] + block + text[end:]

    path = edited_copy(fmu_files["Conveyor"], tmp_path / "conveyor", unbound)
    with pytest.raises(ValueError, match=r"'load_mass' has no finite min/max.*inputs=\{'load_m"):
        make(path, step_size=1.0)
    env = make(path, step_size=1.0, inputs={"load_mass": (0.0, 500.0)})
    assert env.action_space.high[0] == 500.0
    env.close()


def test_fmu_without_inputs_steps_with_an_empty_action(fmu_files, tmp_path):
    def no_inputs(text: str) -> str:
        tunable = 'causality="parameter" variability="tunable"'
        for variability in ("continuous", "discrete"):
            text = text.replace(f'causality="input" variability="{variability}"', tunable)
        return text

    env = make(edited_copy(fmu_files["Conveyor"], tmp_path / "c", no_inputs), step_size=1.0)
    assert env.action_space.shape == (0,)
    env.reset(seed=0)
    observation, *_, info = env.step(np.zeros(0))
    assert info["time"] == 1.0 and observation.shape == env.observation_space.shape
    env.close()


def simulate_env(env, action, steps: int) -> np.ndarray:
    env.reset(seed=0)
    return np.array([env.step(action)[0] for _ in range(steps)])


def test_episode_matches_fmpy_simulate_fmu_on_a_shipped_fmu(fmu_files):
    outputs = ["power", "spindle_temperature", "tool_wear", "energy"]
    env = make(
        fmu_files["CncMill"],
        step_size=10.0,
        inputs=MILL_INPUTS,
        outputs=outputs,
        start_values={"mode": 3},
    )
    observed = simulate_env(env, np.array([1500.0, 0.2]), 60)
    env.close()
    reference = fmpy.simulate_fmu(
        fmu_files["CncMill"],
        stop_time=600.0,
        step_size=10.0,
        output_interval=10.0,
        start_values={"mode": 3, "spindle_speed": 1500.0, "feed_per_tooth": 0.2},
        output=outputs,
    )
    expected = np.column_stack([reference[name][1:] for name in outputs])
    np.testing.assert_allclose(observed, expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("variant", "fmi_type", "options", "tolerance"),
    [
        ("Decay3", "CoSimulation", {}, 1e-12),
        ("Decay3", "ModelExchange", {"solver": "euler", "solver_step": 0.1}, 1e-12),
        ("Decay2ME", "ModelExchange", {"solver": "euler", "solver_step": 0.1}, 1e-12),
        ("Decay2ME", "ModelExchange", {"solver": "cvode"}, 1e-4),
    ],
)
def test_episode_matches_fmpy_on_fmi3_and_model_exchange_fmus(
    test_fmus, variant, fmi_type, options, tolerance
):
    interface = "co_simulation" if fmi_type == "CoSimulation" else "model_exchange"
    env = make(
        test_fmus[variant],
        step_size=0.1,
        inputs=["u"],
        outputs=["y"],
        interface=interface,
        **options,
    )
    observed = simulate_env(env, np.array([0.3]), 100)[:, 0]
    env.close()
    signal = np.array([(0.0, 0.3), (10.0, 0.3)], dtype=[("time", float), ("u", float)])
    reference = fmpy.simulate_fmu(
        test_fmus[variant],
        fmi_type=fmi_type,
        stop_time=10.0,
        output_interval=0.1,
        step_size=0.1,
        input=signal,
        solver="Euler" if options.get("solver") == "euler" else "CVode",
        output=["y"],
    )
    np.testing.assert_allclose(observed, reference["y"][1:], rtol=0, atol=tolerance)


def test_time_is_exact_after_many_small_steps(test_fmus):
    env = make(test_fmus["Decay2CS"], step_size=0.1, inputs=["u"])
    env.reset(seed=0)
    for _ in range(100):
        *_, info = env.step(np.array([0.0]))
    assert info["time"] == 10.0  # fmugym reads 10.82 s here
    env.close()


def test_seeded_parameter_randomisation(test_fmus):
    draw = {"k": (0.2, 0.9), "x0": lambda rng: float(rng.choice([-1.0, 2.0]))}
    env = make(test_fmus["Decay2CS"], step_size=0.5, inputs=["u"], randomize=draw)
    trajectories, parameters = [], []
    for seed in (7, 7, 8):
        _, info = env.reset(seed=seed)
        parameters.append(info["parameters"])
        trajectories.append([env.step(np.array([0.0]))[0][0] for _ in range(10)])
    assert parameters[0] == parameters[1] != parameters[2]
    assert trajectories[0] == trajectories[1] != trajectories[2]
    assert 0.2 <= parameters[0]["k"] <= 0.9 and parameters[0]["x0"] in (-1.0, 2.0)
    assert env.unwrapped.unit.get("k") == parameters[2]["k"]
    env.close()
    with pytest.raises(ValueError, match="low <= high"):
        make(test_fmus["Decay2CS"], step_size=0.5, randomize={"k": (0.9, 0.2)})


def test_horizon_reward_and_start_value_options(test_fmus):
    env = make(
        test_fmus["Decay2CS"],
        step_size=0.5,
        inputs=["u"],
        horizon=2.0,
        reward=lambda observation, action, info: -abs(observation[0] - action[0]),
    )
    env.reset(seed=0, options={"start_values": {"u": 0.4}})
    assert env.unwrapped.unit.get("u") == 0.4
    truncations = []
    for _ in range(4):
        observation, reward, terminated, truncated, _info = env.step(np.array([1.0]))
        assert reward == pytest.approx(-abs(observation[0] - 1.0))
        truncations.append(truncated)
    assert truncations == [False, False, False, True] and not terminated
    env.close()


def test_bad_actions_change_nothing(fmu_files):
    env = make(fmu_files["CncMill"], step_size=10.0, inputs=MILL_INPUTS, start_values={"mode": 3})
    env.reset(seed=0)
    _observation, *_ = env.step(np.array([1300.0, 0.15]))
    unit = env.unwrapped.unit
    for action, message in (
        ([np.nan, 0.15], "'spindle_speed' is not finite"),
        ([1300.0, 5.0], "outside"),
        ([1300.0], "has 1 values"),
    ):
        with pytest.raises(ValueError, match=message):
            env.step(np.array(action))
        assert unit.time == 10.0 and unit.get("feed_per_tooth") == 0.15
    env.close()
    clipping = make(fmu_files["CncMill"], step_size=10.0, inputs=MILL_INPUTS, clip_actions=True)
    clipping.reset(seed=0)
    clipping.step(np.array([9999.0, 0.15]))
    assert clipping.unwrapped.unit.get("spindle_speed") == 2600.0
    clipping.close()


def test_bad_construction_arguments(fmu_files):
    for kwargs, message in (
        ({"step_size": 0.0}, "step_size must be a positive"),
        ({"step_size": 1.0, "inputs": ["power"]}, "causality output"),
        ({"step_size": 1.0, "outputs": ["nope"]}, "no variable 'nope'"),
        ({"step_size": 10.0, "horizon": 1.0}, "at least one step"),
    ):
        with pytest.raises((ValueError, KeyError), match=message):
            make(fmu_files["CncMill"], **kwargs)
    with pytest.raises(Exception, match="no such file"):
        make("missing.fmu", step_size=1.0)


def test_isolated_env_runs_in_a_worker(test_fmus):
    env = make(test_fmus["Decay2CS"], step_size=0.5, inputs=["u"], isolated=True)
    env.reset(seed=0)
    observation, *_ = env.step(np.array([0.0]))
    assert observation[0] == pytest.approx(np.exp(-0.25))
    env.close()


@pytest.mark.parametrize("variant", ["Decay2Stop", "Decay3Stop"])
@pytest.mark.parametrize("isolated", [False, True])
def test_an_fmu_that_asks_to_stop_terminates_the_episode(test_fmus, variant, isolated):
    from envs.fmu import FmuStoppedError

    env = make(test_fmus[variant], step_size=0.3, inputs=["u"], isolated=isolated)
    env.reset(seed=0)
    ends = [env.step(np.array([0.0]))[2:] for _ in range(7)]
    assert [terminated for terminated, _truncated, _info in ends] == [False] * 6 + [True]
    info = ends[-1][2]
    assert info["time"] == 2.0 and info["stop_request"].unit == variant  # not 2.1
    with pytest.raises(FmuStoppedError, match="episode has ended.*reset"):
        env.step(np.array([0.0]))
    observation, info = env.reset()
    assert info["time"] == 0.0 and observation[0] == 1.0
    assert not env.step(np.array([0.0]))[2]
    env.close()


def test_a_discard_without_a_stop_request_is_an_error_not_an_episode_end(test_fmus):
    from envs.fmu import FmuDiscardError

    env = make(test_fmus["Decay2Discard"], step_size=0.5, inputs=["u"])
    env.reset(seed=0)
    for _ in range(4):
        assert not env.step(np.array([0.0]))[2]
    with pytest.raises(FmuDiscardError, match="not terminated.*no solution past fail_time"):
        env.step(np.array([0.0]))
    env.close()


def test_fmi3_array_inputs_and_outputs_are_boxes_of_their_shape(test_fmus):
    env = make(test_fmus["Decay3Array"], step_size=1.0, outputs=["y"])
    assert env.action_space == spaces.Box(-10.0, 10.0, (3,), np.float64)
    assert env.observation_space.shape == (3,)
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(observation, [1.0, 2.0, 3.0])
    target = np.array([0.5, -1.0, 2.0])
    observation, *_ = env.step(target)
    np.testing.assert_allclose(observation, target + ([1, 2, 3] - target) * np.exp(-0.5))
    with pytest.raises(ValueError, match=r"'u\[1\]' is outside"):
        env.step(np.array([0.0, 20.0, 0.0]))
    env.close()
    mixed = make(
        test_fmus["Decay3Array"],
        step_size=1.0,
        inputs=["u", "k"],
        start_values={"n": 4},
    )
    assert mixed.action_space == spaces.Dict(
        {
            "u": spaces.Box(-10.0, 10.0, (4,), np.float64),
            "k": spaces.Box(0.0, 100.0, (1,), np.float64),
        }
    )
    assert mixed.observation_space == spaces.Dict(
        {
            "y": spaces.Box(-np.inf, np.inf, (4,), np.float64),
            "stats": spaces.Box(-np.inf, np.inf, (2,), np.float64),
        }
    )
    observation, _ = mixed.reset(seed=0)
    np.testing.assert_array_equal(observation["stats"], [2.5, 4.0])
    observation, *_ = mixed.step({"u": np.zeros(4), "k": np.array([1.0])})
    np.testing.assert_allclose(observation["y"], np.arange(1, 5) * np.exp(-1.0))
    mixed.close()


def test_help_on_the_env_says_what_the_module_says():
    from envs.fmu_env import FmuEnv

    text = FmuEnv.__doc__ or ""
    for heading in (
        "## Action Space",
        "## Observation Space",
        "## Rewards",
        "## Starting State",
        "## Episode End",
        "## Version History",
    ):
        assert heading in text
    assert "terminateSimulation" in text and "Dimension" in text and "horizon" in text
