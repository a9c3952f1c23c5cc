"""scripts/optimize.py and scripts/benchmark_optimizers.py end to end on tiny settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import benchmark_optimizers  # noqa: E402
import optimize  # noqa: E402

TINY = ["--horizon-h", "1", "--sim-seeds", "1", "--engine", "serial", "--quiet"]


@pytest.mark.parametrize("module", [optimize, benchmark_optimizers])
def test_help_explains_every_option(module):
    parser = module.build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    result = subprocess.run(
        [sys.executable, str(Path(module.__file__)), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--config" in result.stdout


def test_optimize_writes_front_plot_and_comparison_then_warm_starts(tmp_path, capsys):
    out = tmp_path / "first"
    code = optimize.main(
        [
            *TINY,
            "--budget",
            "8",
            "--pop-size",
            "4",
            "--throughput-min",
            "20",
            "--compare-seeds",
            "1",
            "--compare-horizon-h",
            "0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["evaluations"] == 8 and pareto["failures"] == 0
    assert pareto["points"] and pareto["chosen"] is not None
    assert set(pareto["points"][0]["F"]) == {"cost", "energy_kwh", "downtime_h"}
    header = (out / "pareto.csv").read_text().splitlines()[0]
    assert "speed:machining-1" in header and "cost" in header
    assert (out / "pareto_front.png").stat().st_size > 0
    comparison = json.loads((out / "comparison.json").read_text())
    assert set(comparison["summary"]) == {"plan", "naive", "condition_based"}
    assert comparison["seeds"] == [1000]
    printed = capsys.readouterr().out
    assert "evaluations/s" in printed and "change against naive" in printed

    again = tmp_path / "again"
    code = optimize.main(
        [
            *TINY,
            "--budget",
            "4",
            "--pop-size",
            "4",
            "--compare-seeds",
            "0",
            "--warm-start",
            str(out / "pareto.json"),
            "--out",
            str(again),
            "--plant-change",
            "machining-1:wear_rate_factor=2",
        ]
    )
    assert code == 0
    warm = json.loads((again / "pareto.json").read_text())
    assert warm["problem"]["plant_changes"][0]["value"] == 2.0
    assert "warm start from" in capsys.readouterr().out

    picked = tmp_path / "picked"
    code = optimize.main(
        [
            *TINY,
            "--pick-from",
            str(out / "pareto.json"),
            "--pick",
            "weights",
            "--compare-seeds",
            "1",
            "--compare-horizon-h",
            "0.5",
            "--out",
            str(picked),
        ]
    )
    assert code == 0
    assert "picked #" in capsys.readouterr().out
    assert set(json.loads((picked / "comparison.json").read_text())["summary"]) == {
        "plan",
        "naive",
        "condition_based",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget", "3", "--pop-size", "4"], "raise the budget to at least 4"),
        (["--warm-start", "missing.json"], "no such file"),
        (["--plant-change", "machining-9:wear_rate_factor=2"], "the machines are"),
        (["--horizon-h", "-2"], "'problem.horizon_h' = -2.0 is outside"),
        (["--pick-from", "missing.json"], "missing.json: no such file; pass the pareto.json"),
        (["--config", "missing.toml"], "missing.toml: no such file"),
    ],
)
def test_optimize_bad_input_fails_up_front(argv, message, capsys, tmp_path):
    assert optimize.main([*argv, "--out", str(tmp_path), "--engine", "serial"]) == 2
    assert message in capsys.readouterr().err


def test_optimize_rejects_a_malformed_plant_change(capsys):
    with pytest.raises(SystemExit):
        optimize.main(["--plant-change", "machining-1-wear=2"])
    assert "MACHINE:PARAMETER=VALUE" in capsys.readouterr().err


def test_benchmark_script_runs_and_rejects_impossible_budgets(tmp_path, capsys):
    argv = [
        "--problems",
        "zdt1",
        "--algorithms",
        "nsga2",
        "random",
        "--seeds",
        "2",
        "--standard-budget",
        "40",
        "--standard-pop-size",
        "10",
        "--quiet",
        "--out",
        str(tmp_path),
    ]
    assert benchmark_optimizers.main(argv) == 0
    assert (tmp_path / "table.md").exists() and (tmp_path / "anytime_zdt1.png").exists()
    assert (
        benchmark_optimizers.main([*argv[:-2], "--standard-budget", "5", "--out", str(tmp_path)])
        == 2
    )
    assert "impossible for nsga2" in capsys.readouterr().err
