"""The evaluation harness and scripts/evaluate.py on short horizons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401 - registers the envs
from agents import evaluation
from agents.statistics import Estimate
from scripts import evaluate as evaluate_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def env():
    environment = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=8.0)
    yield environment
    environment.close()


def test_episode_result_matches_the_env_kpis(env):
    label, policy = evaluation.load_policy("naive", env)
    result = evaluation.run_episode(env, policy, seed=1000, label=label, record=True)
    objective = env.unwrapped.scenario.objective
    kpis = result.kpis
    assert result.objective == pytest.approx(
        kpis["cost"]
        + objective.w_energy * kpis["energy_kwh"]
        + objective.w_downtime * kpis["downtime_h"]
    )
    steps = env.unwrapped.horizon_steps
    assert result.trajectory["speed"].shape == (steps, 7)
    assert result.trajectory["time_h"][-1] == pytest.approx(8.0)
    again = evaluation.run_episode(env, policy, seed=1000, label=label)
    assert again.kpis == kpis and again.trajectory == {}


def test_summary_and_relative_change_on_hand_made_results():
    def result(label, cost, energy):
        kpis = {
            "cost": cost,
            "energy_kwh": energy,
            "downtime_h": 1.0,
            "throughput_per_h": 10.0,
            "peak_kw": 40.0,
        }
        return evaluation.EpisodeResult(label, 0, kpis, objective=cost, violation=0.0)

    results = {
        "naive": [result("naive", c, 100.0) for c in (100.0, 110.0, 120.0, 130.0)],
        "better": [result("better", c, 72.0) for c in (50.0, 60.0, 70.0, 80.0)],
    }
    summary = evaluation.summarise(results, "mean")
    assert summary["naive"]["cost"].value == 115.0
    changes = evaluation.relative_changes(summary)
    assert changes["better"]["cost"] == pytest.approx(65.0 / 115.0 - 1.0)
    assert changes["better"]["energy"] == pytest.approx(-0.28)
    assert "energy -28 %" in evaluation.format_changes(changes)
    table = evaluation.format_table(summary, "mean")
    assert "mean [95 % t CI]" in table and "better" in table
    assert isinstance(summary["better"]["downtime_h"], Estimate)


def test_load_policy_errors(env, tmp_path):
    with pytest.raises(ValueError, match="neither a heuristic"):
        evaluation.load_policy("clever", env)
    broken = tmp_path / "model.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot be loaded as a stable-baselines3 PPO model"):
        evaluation.load_policy(str(broken), env)


def test_a_model_for_other_spaces_is_refused(env, tmp_path):
    from stable_baselines3 import PPO

    other = gymnasium.make(
        "twinfactory/Fmu-v0",
        fmu=str(__import__("fmus").path("Conveyor")),
        step_size=1.0,
        inputs=["belt_speed"],
    )
    model = PPO("MlpPolicy", other, n_steps=64, batch_size=32, device="cpu")
    model.save(tmp_path / "conveyor.zip")
    other.close()
    with pytest.raises(ValueError, match="does not match the env's"):
        evaluation.load_policy(str(tmp_path / "conveyor.zip"), env)


def test_evaluate_script_writes_json_and_plots(tmp_path, capsys):
    code = evaluate_script.main(
        [
            "--horizon-h",
            "2",
            "--seeds",
            "2",
            "--json",
            str(tmp_path / "eval.json"),
            "--plots",
            str(tmp_path),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "IQM [95 % bootstrap CI]" in printed and "change against naive" in printed
    payload = json.loads((tmp_path / "eval.json").read_text())
    assert payload["config"]["seeds"] == [1000, 1001]
    assert set(payload["episodes"]) == {"naive", "fixed_interval", "condition_based"}
    for name in ("kpis.png", "trajectories.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert np.isfinite(payload["summary"]["naive"]["cost"]["value"])


def test_evaluate_script_help_and_bad_input():
    helped = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in (
        "--env",
        "--scenario",
        "--horizon-h",
        "--policies",
        "--seeds",
        "--first-seed",
        "--statistic",
        "--json",
        "--plots",
    ):
        assert option in helped.stdout
    wrong = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--env", "twinfactory/Nope-v0", "--seeds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "cannot make env 'twinfactory/Nope-v0'" in wrong.stderr
