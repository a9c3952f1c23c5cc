"""scripts/evaluate.py with every kind of baseline: heuristics, a tuned rule, an optimiser plan
(``pareto.json#i``) and a learned model, on the same seeds; the error paths of each spec."""

from __future__ import annotations

import json

import gymnasium
import pytest

import envs  # noqa: F401 - registers the envs
from agents.report import load_report_policy
from agents.tuned_rule import RuleSettings, TunedRulePolicy, save_rule
from envs.scenario import load_scenario
from optimizers.compare import PlanPolicy
from optimizers.plan import PlanEncoding
from optimizers.simulate import CONSTRAINTS, OBJECTIVES
from scripts import evaluate as evaluate_script


def write_front(path, *, scenario="automotive_components", granularity="machine", plans=2):
    """A pareto.json of ``plans`` uniform plans, cheapest first, as optimize writes it."""
    encoding = PlanEncoding(load_scenario("automotive_components"), granularity)
    points = []
    for k in range(plans):
        vector = encoding.vector(speed=1.0 - 0.1 * k, wear_threshold=0.7 + 0.1 * k)
        points.append(
            {
                "evaluation": k,
                "x": encoding.as_dict(vector),
                "F": dict(
                    zip(OBJECTIVES, (100.0 + 10 * k, 50.0 - 5 * k, 1.0 - 0.1 * k), strict=True)
                ),
                "G": dict.fromkeys(CONSTRAINTS, -1.0),
                "kpis": {},
            }
        )
    problem = {"scenario": scenario, "granularity": granularity}
    path.write_text(json.dumps({"problem": problem, "chosen": 0, "points": points}))
    return path


@pytest.fixture(scope="module")
def env():
    environment = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=1.0)
    yield environment
    environment.close()


def test_every_policy_spec_loads_as_a_baseline_or_a_learned_policy(tmp_path, env):
    front = write_front(tmp_path / "pareto.json", plans=3)
    for spec, label in (
        (f"{front}#2", "plan#2"),
        (f"{front}#weights", "plan#2"),  # smallest w·F with the weights 1, 0.05, 200
        (str(front), "plan#1"),  # the knee of this front
    ):
        loaded, policy, baseline = load_report_policy(spec, env)
        assert (loaded, baseline) == (label, True) and isinstance(policy, PlanPolicy)
    station = write_front(tmp_path / "station.json", granularity="station")
    assert load_report_policy(f"{station}#0", env)[0] == "plan#0"
    rule = save_rule(RuleSettings(speed={"machining": 0.9}), tmp_path / "my_rule.toml")
    label, policy, baseline = load_report_policy(str(rule), env)
    assert (label, baseline) == ("my_rule", True) and isinstance(policy, TunedRulePolicy)
    assert load_report_policy("fixed_interval", env)[2] is True


def test_a_plan_spec_that_cannot_drive_this_plant_is_refused(tmp_path, env):
    front = write_front(tmp_path / "pareto.json")
    cases = [
        (str(tmp_path / "missing.json"), "no such file"),
        (f"{front}#2", "whole number below 2"),
        (f"{front}#-1", "whole number below 2"),
        (f"{front}#best", "'knee' or 'weights'"),
        (f"{write_front(tmp_path / 'other.json', scenario='other_plant')}#0", "'other_plant'"),
        ("condition_based#1", "selects a plan of a pareto.json only"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    cases.append((str(broken), "not valid JSON"))
    renamed = tmp_path / "renamed.json"
    renamed.write_text(front.read_text().replace("machining-1", "milling-1"))
    cases.append((str(renamed), "missing decision variables"))
    for spec, message in cases:
        with pytest.raises(ValueError) as error:
            load_report_policy(spec, env)
        assert message in str(error.value), spec


def test_evaluate_pairs_everything_against_the_best_baseline(tmp_path, capsys):
    from stable_baselines3 import PPO

    front = write_front(tmp_path / "pareto.json")
    rule = save_rule(RuleSettings(wear_threshold={"CncMill": 0.5}), tmp_path / "rule.toml")
    environment = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=0.5)
    PPO("MlpPolicy", environment, n_steps=64, batch_size=32, device="cpu").save(
        tmp_path / "ppo" / "model.zip"
    )
    environment.close()
    code = evaluate_script.main(
        [
            "--horizon-h",
            "0.5",
            "--seeds",
            "2",
            "--statistic",
            "mean",
            "--policies",
            "naive",
            "condition_based",
            str(rule),
            f"{front}#1",
            str(tmp_path / "ppo" / "model.zip"),
            "--json",
            str(tmp_path / "eval.json"),
            "--breakdown",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    payload = json.loads((tmp_path / "eval.json").read_text())
    assert payload["baselines"] == ["naive", "condition_based", "rule", "plan#1"]
    means = {
        label: sum(e["objective"] for e in runs) / len(runs)
        for label, runs in payload["episodes"].items()
        if label in payload["baselines"]
    }
    reference = min(means, key=means.get)
    assert payload["reference"] == reference
    assert f"paired against {reference} on the same 2 seeds" in printed
    assert set(payload["paired"]) == {"naive", "condition_based", "rule", "plan#1", "model"} - {
        reference
    }
    assert f"learned policies against {reference}" in printed
    assert "goal met" in printed or "goal missed" in printed
    breakdown = printed.split("Z by part, mean per episode:\n")[1].splitlines()
    assert breakdown[0].split() == [
        "policy",
        "energy",
        "EUR",
        "maint.",
        "EUR",
        "repair",
        "EUR",
        "scrap",
        "EUR",
        "backlog",
        "EUR",
        "w2·E",
        "w3·D",
        "Z",
    ]
    row = dict(zip(payload["episodes"], breakdown[1:], strict=False))["rule"].split()
    parts = [float(cell.replace(",", "")) for cell in row[1:]]
    assert sum(parts[:-1]) == pytest.approx(parts[-1], abs=len(parts))  # rounded to whole EUR


def test_evaluate_reports_a_bad_spec_and_duplicate_labels(tmp_path, capsys):
    first = save_rule(RuleSettings(), tmp_path / "a" / "rule.toml")
    second = save_rule(RuleSettings(), tmp_path / "b" / "rule.toml")
    common = ["--horizon-h", "0.5", "--seeds", "1", "--policies"]
    assert evaluate_script.main([*common, str(first), str(second)]) == 2
    assert "two policies are labelled 'rule'" in capsys.readouterr().err
    assert evaluate_script.main([*common, f"{tmp_path / 'none.json'}#3"]) == 2
    assert "no such file" in capsys.readouterr().err
