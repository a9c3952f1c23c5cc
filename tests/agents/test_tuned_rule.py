"""The tuned rule: defaults equal condition_based, its settings file, its timers and tuning."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401 - registers the envs
from agents.heuristics import make_heuristic
from agents.report import load_report_policy
from agents.tuned_rule import (
    RuleSettings,
    TunedRulePolicy,
    TuneRuleConfig,
    load_rule,
    save_rule,
    tune_rule,
)
from envs.config import ConfigError, from_mapping
from scripts import tune_rule as tune_rule_script


@pytest.fixture(scope="module")
def env():
    environment = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=4.0)
    yield environment
    environment.close()


def test_the_defaults_are_condition_based_action_for_action(env):
    default, tuned = make_heuristic("condition_based", env), TunedRulePolicy(env)
    for seed in (3, 4):  # two episodes: the timers start again at the second reset
        observation, _ = env.reset(seed=seed)
        steps = 0
        while True:
            expected, _ = default.predict(observation)
            action, _ = tuned.predict(observation)
            np.testing.assert_array_equal(action, expected)
            observation, _, terminated, truncated, _ = env.step(expected)
            steps += 1
            if terminated or truncated:
                break
        assert steps == env.unwrapped.horizon_steps
    batch = np.stack([observation, observation])
    np.testing.assert_array_equal(tuned.predict(batch)[0], default.predict(batch)[0])


def test_standby_waits_for_the_timeout_and_restarts_each_episode(env):
    settings = RuleSettings(standby_timeout_min={"CncMill": 30.0, "RobotCell": 0.0})
    policy = TunedRulePolicy(env, settings)
    mills = np.array(env.unwrapped.machine_kinds) == "CncMill"
    for _ in range(2):
        observation, _ = env.reset(seed=1)  # Monday night: nobody works, every machine waits
        permitted = []
        for _ in range(9):
            action, _ = policy.predict(observation)
            permitted.append(action.reshape(-1, 3)[:, 2] > 0)
            observation, *_ = env.step(action)
        permitted = np.array(permitted)
        assert permitted[:, ~mills].all()
        assert not permitted[:6, mills].any() and permitted[6:, mills].all()  # 6 x 5 min = 30


def test_speeds_tariff_and_power_settings_shape_the_speed_action(env):
    settings = RuleSettings(
        speed={"machining": 0.8},
        tariff_speed_high=0.9,
        tariff_speed_low=1.1,
        power_margin=0.5,
        peak_slowdown=0.75,
    )
    policy = TunedRulePolicy(env, settings)
    line_env = env.unwrapped
    observation, _ = env.reset(seed=0)
    observation = observation.astype(np.float64)
    observation[-1] = 0.0  # far from the power limit
    for price, multiplier in ((0.26, 0.9), (0.12, 1.1), (0.19, 1.0)):
        observation[-2] = price / 0.3
        speed = policy.act(observation).reshape(-1, 3)[:, 0]
        assert speed[0] == pytest.approx(line_env.speed_action(0.8 * multiplier, 0))
        assert speed[-1] == pytest.approx(line_env.speed_action(multiplier, 6))
    observation[-1] = 0.6  # reached the margin: everything slows down
    speed = policy.act(observation).reshape(-1, 3)[:, 0]
    assert speed[-1] == pytest.approx(line_env.speed_action(0.75, 6))


def test_the_settings_file_round_trips_with_its_header(tmp_path, env):
    settings = RuleSettings(
        scenario="automotive_components",
        speed={"machining": 0.9, "welding": 1.1},
        wear_threshold={"CncMill": 0.6},
        standby_timeout_min={"RobotCell": 15.0},
        power_margin=0.95,
    )
    path = save_rule(settings, tmp_path / "rule.toml", ["made by: a test", "seeds [0, 1]"])
    text = path.read_text()
    assert text.startswith("# made by: a test\n# seeds [0, 1]\n")
    assert load_rule(path) == settings
    label, policy, baseline = load_report_policy(str(path), env)
    assert (label, baseline) == ("rule", True) and isinstance(policy, TunedRulePolicy)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("power_margin = 3.0\n", "'power_margin' = 3.0 is outside the allowed range [0.3, 2.0]"),
        ("[wear_threshold]\nCncMill = 1.5\n", "'wear_threshold.CncMill' = 1.5 is outside"),
        ("[standby_timeout_min]\nRobotCell = -1\n", "allowed range [0.0, 10080.0]"),
        ("speed_factor = 1.0\n", "unknown key 'speed_factor'"),
        ("[speed]\nmachining = 'fast'\n", "'speed.machining' must be a number"),
        ("power_margin = \n", "not valid TOML"),
    ],
)
def test_a_malformed_settings_file_names_file_key_and_range(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="bad.toml") as error:
        load_rule(path)
    assert message in str(error.value)


def test_settings_for_another_plant_are_refused(tmp_path, env):
    with pytest.raises(ConfigError, match="no such file"):
        load_rule(tmp_path / "missing.toml")
    with pytest.raises(ValueError, match="missing.toml: no such file"):
        load_report_policy(str(tmp_path / "missing.toml"), env)
    cases = [
        ({"scenario": "small_plant"}, "for scenario 'small_plant'"),
        ({"speed": {"milling": 1.0}}, "'speed.milling' names no station"),
        ({"speed": {"welding": 1.4}}, "outside the station's speed_range [0.5, 1.25]"),
        ({"wear_threshold": {"Lathe": 0.5}}, "'wear_threshold.Lathe' names no equipment kind"),
    ]
    for table, message in cases:
        with pytest.raises(ValueError, match="my.toml") as error:
            TunedRulePolicy(env, from_mapping(RuleSettings, table), source="my.toml")
        assert message in str(error.value)


def test_tuning_writes_the_best_rule_and_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    out = tmp_path / "tuned.toml"
    config = TuneRuleConfig(horizon_h=0.25, trials=2, seeds=1, storage=storage, out=str(out))
    seen: list[int] = []
    outcome = tune_rule(config, header=["made by: test"], on_trial=lambda n, z, b: seen.append(n))
    assert seen == [0, 1] and outcome["trials"] == 2
    assert outcome["best"] <= outcome["default"]
    header = out.read_text().splitlines()[:3]
    assert header[0] == "# made by: test"
    assert "training seeds [0]" in header[1] and "2 optuna TPE trials" in header[1]
    assert load_rule(out).scenario == "automotive_components"
    again = tune_rule(TuneRuleConfig(**{**vars(config), "trials": 3}), on_trial=None)
    assert again["trials"] == 3  # one more trial, not three
    with pytest.raises(ValueError, match="was tuned on seeds"):
        tune_rule(TuneRuleConfig(**{**vars(config), "first_seed": 5, "trials": 4}))


def test_tuning_refuses_evaluation_seeds_and_bad_options(capsys):
    with pytest.raises(ValueError, match="reaches the held-out seeds"):
        TuneRuleConfig(first_seed=999, seeds=2)
    with pytest.raises(SystemExit):
        tune_rule_script.parse_args(["--first-seed", "1000"])
    assert "'first_seed' = 1000 is outside" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tune_rule_script.parse_args(["--first-seed", "998", "--seeds", "5"])
    assert "reaches the held-out seeds" in capsys.readouterr().err
