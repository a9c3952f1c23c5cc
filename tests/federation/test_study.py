"""The results study's arithmetic (federation/study_report.py) on synthetic inputs, its report
files, and the error paths of scripts/federation_study.py (nothing trains here)."""

from __future__ import annotations

import json
import math

import pytest

from federation.study import StudyConfig, scaled_profiles
from federation.study_report import (
    held_out_comparison,
    mean_return_per_round,
    rounds_to_target,
    rounds_within_ratio,
    summarise,
    write_report,
)
from scripts import federation_study


def test_rounds_to_95_counts_the_improvement_from_the_initial_policy():
    # R0 = -200, Rc = -100: target -105 (95 % of the +100 improvement), reached in round 3
    reached = rounds_to_target({1: -180.0, 2: -110.0, 3: -104.0, 4: -101.0}, -200.0, -100.0)
    assert reached.target == pytest.approx(-105.0)
    assert reached.round == 3 and reached.defined


def test_rounds_to_95_is_none_when_never_reached_and_undefined_without_improvement():
    assert rounds_to_target({1: -150.0, 2: -120.0}, -200.0, -100.0).round is None
    flat = rounds_to_target({1: -150.0}, -100.0, -120.0)  # central worse than untrained
    assert not flat.defined and flat.round is None


def test_rounds_to_95_rejects_bad_input():
    with pytest.raises(ValueError, match="fraction"):
        rounds_to_target({1: 0.0}, -1.0, 0.0, fraction=1.5)
    with pytest.raises(ValueError, match="finite"):
        rounds_to_target({1: math.nan}, -1.0, 0.0)


def test_the_ratio_reading_compares_z_with_the_central_z_over_095():
    # Zc = 9,500: a round counts once its mean Z <= 10,000
    assert rounds_within_ratio({1: 12_000.0, 2: 10_000.0, 3: 9_000.0}, 9_500.0) == 2
    assert rounds_within_ratio({1: 12_000.0}, 9_500.0) is None
    with pytest.raises(ValueError, match="positive"):
        rounds_within_ratio({1: 1.0}, 0.0)


def test_mean_return_per_round_weights_nodes_equally_and_skips_incomplete_rounds():
    rows = [
        {"round": "1", "node": "a", "return": "-10"},
        {"round": "1", "node": "b", "return": "-20"},
        {"round": "1", "node": "held-out", "return": "-99"},
        {"round": "2", "node": "a", "return": "-5"},  # b missing in round 2
    ]
    assert mean_return_per_round(rows, ["a", "b"]) == {1: -15.0}


def test_held_out_comparison_against_local_only_and_heuristics():
    result = held_out_comparison(
        27_000.0,
        {"node-1": 30_000.0, "node-2": 40_000.0},
        {"naive": 100_000.0, "condition_based": 29_000.0},
    )
    assert result["mean_local_only_z"] == 35_000.0
    assert result["improvement_vs_mean_local"] == pytest.approx(8_000 / 35_000)
    assert result["improvement_vs_each_local"]["node-1"] == pytest.approx(0.1)
    assert result["best_heuristic"] == "condition_based"
    assert result["improvement_vs_best_heuristic"] == pytest.approx(2_000 / 29_000)
    assert result["goal_met"]  # 22.9 % >= 10 %
    assert not held_out_comparison(33_000.0, {"a": 35_000.0}, {"h": 1.0})["goal_met"]


def test_held_out_comparison_rejects_bad_input():
    with pytest.raises(ValueError, match="needs"):
        held_out_comparison(1.0, {}, {"h": 1.0})
    with pytest.raises(ValueError, match="positive"):
        held_out_comparison(-1.0, {"a": 1.0}, {"h": 1.0})


def _node(ret: float, z: float) -> dict[str, float]:
    return {"return": ret, "objective": z}


def test_summary_and_report_from_synthetic_stages(tmp_path):
    config = StudyConfig(rounds=2, nodes=("a", "b"), held_out="h", stages=("baselines",))
    curve = [{"rounds": 2.0, "nodes": {"a": _node(-100, 1e4), "b": _node(-100, 1e4)}}]
    local = {
        n: {
            "curve": [{"rounds": 2.0, "nodes": {n: _node(-150, 1.5e4)}}],
            "final": {n: _node(-150, 1.5e4), "h": _node(-300, 3e4)},
        }
        for n in ("a", "b")
    }
    rows = [
        {"round": str(r), "node": n, "return": str(v), "objective": str(-100 * v)}
        for r, v in ((1, -150.0), (2, -104.0))
        for n in ("a", "b", "h")
    ]
    raw = {
        "seeds": {
            0: {
                "initial": {"mean_return": -200.0},
                "central": {"final": curve[0]["nodes"], "curve": curve},
                "local": local,
                "federation": {
                    "summary": {"round_s": [10.0, 8.0], "simulation_wall_s": 30.0},
                    "peak_rss_mb": 900.0,
                    "mean_return_per_round": {"1": -150.0, "2": -104.0},
                    "rows": rows,
                },
            }
        },
        "heuristics": {"naive": 5e4, "condition_based": 2.5e4},
        "scaling": [
            {
                "engine": "simulation",
                "nodes": 4,
                "round_s": [20.0, 10.0],
                "wall_s": 50.0,
                "peak_rss_mb": 1500.0,
            }
        ],
    }
    results = summarise(config, raw)
    assert results["rounds_to_95_per_seed"] == [2]
    held = results["seeds"]["0"]["held_out"]
    assert held["federated_z"] == 10_400.0 and held["goal_met"]
    write_report(tmp_path, config, results, raw)
    assert json.loads((tmp_path / "results.json").read_text())["rounds_to_95_per_seed"] == [2]
    table = (tmp_path / "results.md").read_text()
    assert "| 0 | -200.000 | -100.000 | -105.000 | -150.000 | -104.000 | 2 | 2 |" in table
    assert (tmp_path / "return.png").stat().st_size > 0


def test_scaled_profiles_reuse_the_training_profiles_under_new_names(tmp_path):
    from federation.profiles import load_node_profile

    names = scaled_profiles(6, tmp_path)
    assert names[:4] == ["node-1", "node-2", "node-3", "node-4"]
    fifth = load_node_profile(names[4])
    first = load_node_profile("node-1")
    assert fifth.name == "node-5" and fifth.stations == first.stations
    assert fifth.demand_factor == first.demand_factor


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rounds", "0"], "rounds"),
        (["--seeds", "1", "1"], "seeds"),
        (["--eval-seeds", "0"], "eval_seeds"),
        (["--n-steps", "100", "--batch-size", "64"], "batch_size"),
        (["--num-cpus", "0"], "--num-cpus"),
        (["--scaling-nodes", "0"], "scaling_nodes"),
    ],
)
def test_script_bad_options_exit_2_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "study"
    assert federation_study.main([*argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_report_only_runs_nothing_and_writes_the_empty_tables(tmp_path, capsys):
    out = tmp_path / "study"
    assert federation_study.main(["--report-only", "--out", str(out)]) == 0
    assert "not run (report only)" in capsys.readouterr().out
    assert json.loads((out / "results.json").read_text())["rounds_to_95_per_seed"] == []
    assert not (out / "central-s0.json").exists()


def test_script_unknown_stage_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        federation_study.main(["--stages", "everything"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
