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
from agents.comparison import best_baseline, format_paired, paired_comparisons
from agents.statistics import Estimate
from envs.kpi import Kpis
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
        objective.w_cost * kpis["cost"]
        + objective.w_energy * kpis["energy_kwh"]
        + objective.w_downtime * kpis["downtime_h"]
    )
    totals = Kpis.from_dict(kpis)
    assert result.value("oee") == pytest.approx(totals.oee)
    g = totals.constraints(objective.throughput_min_per_h, objective.peak_max_kw)
    assert result.constraints == pytest.approx(g)
    assert result.violation == pytest.approx(sum(max(0.0, x) for x in g))
    steps = env.unwrapped.horizon_steps
    assert result.trajectory["speed"].shape == (steps, 7)
    assert result.trajectory["time_h"][-1] == pytest.approx(8.0)
    again = evaluation.run_episode(env, policy, seed=1000, label=label)
    assert again.kpis == kpis and again.trajectory == {}


def result(label, cost, energy, seed=0, downtime=1.0):
    kpis = {
        "cost": cost,
        "energy_kwh": energy,
        "downtime_h": downtime,
        "throughput_per_h": 10.0,
        "peak_kw": 40.0,
        "oee": 0.6,
    }
    return evaluation.EpisodeResult(label, seed, kpis, objective=cost, violation=0.0)


def test_summary_and_relative_change_on_hand_made_results():
    results = {
        "naive": [result("naive", c, 100.0) for c in (100.0, 110.0, 120.0, 130.0)],
        "better": [result("better", c, 72.0) for c in (50.0, 60.0, 70.0, 80.0)],
    }
    summary = evaluation.summarise(results, "mean")
    assert summary["naive"]["cost"].value == 115.0
    changes = evaluation.relative_changes(summary)
    assert changes["better"]["cost"] == pytest.approx(65.0 / 115.0 - 1.0)
    assert changes["better"]["energy"] == pytest.approx(-0.28)
    assert changes["better"]["oee"] == 0.0
    assert "energy -28 %" in evaluation.format_changes(changes)
    assert "peak power +0 %" in evaluation.format_changes(changes)
    table = evaluation.format_table(summary, "mean")
    assert "mean [95 % t CI]" in table and "better" in table and "OEE" in table
    assert isinstance(summary["better"]["downtime_h"], Estimate)


def test_a_zero_baseline_gives_no_relative_change():
    results = {
        "naive": [result("naive", 100.0, 50.0, downtime=0.0)],
        "other": [result("other", 90.0, 50.0, downtime=2.0)],
    }
    changes = evaluation.relative_changes(evaluation.summarise(results, "mean"))
    assert np.isnan(changes["other"]["downtime"])  # envs.kpi.relative_change: NaN, not inf
    assert changes["other"]["cost"] == pytest.approx(-0.1)
    assert "downtime n/a" in evaluation.format_changes(changes)


def test_paired_comparison_by_hand():
    seeds = (1000, 1001, 1002, 1003)

    def runs(label, costs):
        return [result(label, c, 1.0, s) for c, s in zip(costs, seeds, strict=True)]

    naive = runs("naive", (100, 120, 90, 110))
    condition = runs("condition_based", (60, 70, 65, 80))
    ppo = runs("ppo", (50, 75, 55, 70))
    results = {"naive": naive, "condition_based": condition, "ppo": ppo}
    assert best_baseline(results) == "condition_based"
    paired = paired_comparisons(results)
    assert set(paired) == {"naive", "ppo"}
    ppo_vs = paired["ppo"]
    differences = np.array([-10.0, 5.0, -10.0, -10.0])
    assert ppo_vs.differences == tuple(differences) and ppo_vs.seeds == seeds
    assert ppo_vs.mean == pytest.approx(-6.25) and ppo_vs.wins == 3 and ppo_vs.count == 4
    half = 3.182446305284263 * differences.std(ddof=1) / 2.0  # t(0.975, 3) · s / √4
    assert (ppo_vs.low, ppo_vs.high) == pytest.approx((-6.25 - half, -6.25 + half))
    assert ppo_vs.half_width == pytest.approx(half)
    printed = format_paired(paired)
    assert "paired against condition_based on the same 4 seeds" in printed
    assert "better in 3 of 4 episodes" in printed
    assert paired_comparisons(results, "naive")["ppo"].wins == 4
    with pytest.raises(ValueError, match="same seeds"):
        paired_comparisons({**results, "ppo": ppo[:3]})
    with pytest.raises(ValueError, match="no heuristic"):
        best_baseline({"ppo": ppo})
    with pytest.raises(ValueError, match="was not evaluated"):
        paired_comparisons(results, "clever")


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
    assert "OEE" in printed and "paired against " in printed
    payload = json.loads((tmp_path / "eval.json").read_text())
    assert payload["config"]["seeds"] == [1000, 1001]
    reference = best_baseline(
        {
            label: [
                evaluation.EpisodeResult(label, e["seed"], e, e["objective"], e["violation"])
                for e in episodes
            ]
            for label, episodes in payload["episodes"].items()
        }
    )
    assert f"paired against {reference} on the same 2 seeds" in printed
    assert set(payload["paired"]) == {"naive", "fixed_interval", "condition_based"} - {reference}
    for label, paired in payload["paired"].items():
        by_seed = {e["seed"]: e["objective"] for e in payload["episodes"][reference]}
        assert paired["differences"] == pytest.approx(
            [e["objective"] - by_seed[e["seed"]] for e in payload["episodes"][label]]
        )
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
        "--reference",
        "--config",
    ):
        assert option in helped.stdout
    wrong = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--env", "twinfactory/Nope-v0", "--seeds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "cannot make env 'twinfactory/Nope-v0'" in wrong.stderr
    training_seed = subprocess.run(
        [sys.executable, "scripts/evaluate.py", "--first-seed", "5", "--seeds", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert training_seed.returncode == 2 and "'first_seed' = 5 is outside" in training_seed.stderr


def test_evaluate_options_override_the_config_file(tmp_path):
    file = tmp_path / "evaluate.toml"
    file.write_text('seeds = 4\nstatistic = "mean"\npolicies = ["naive"]\n')
    config = evaluate_script.parse_args(["--config", str(file), "--seeds", "2"])
    assert (config.seeds, config.statistic, config.policies) == (2, "mean", ("naive",))
    assert evaluate_script.parse_args([]).first_seed == 1000
