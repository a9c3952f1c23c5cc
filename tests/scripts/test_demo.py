"""The main job (make demo): a tiny training + evaluation run end to end, and its --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts import demo

ROOT = Path(__file__).resolve().parents[2]


def test_tiny_demo_trains_evaluates_and_plots(tmp_path, capsys):
    assert (
        demo.main(
            ["--timesteps", "2048", "--seeds", "1", "--horizon-h", "2", "--out", str(tmp_path)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "change against naive" in printed and "ppo" in printed
    assert "OEE" in printed and "paired against " in printed
    payload = json.loads((tmp_path / "evaluation.json").read_text())
    assert set(payload["episodes"]) == {
        "naive",
        "fixed_interval",
        "condition_based",
        "tuned_rule",
        "ppo",
    }
    assert "learned policies against" in printed  # the goal line against the best baseline
    assert "ppo" in payload["paired"] and payload["config"]["seeds"] == [1000]
    assert (tmp_path / "kpis.png").is_file() and (tmp_path / "ppo" / "model.zip").is_file()


def test_demo_help_and_bad_options():
    helped = subprocess.run(
        [sys.executable, "scripts/demo.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--timesteps", "--seeds", "--horizon-h", "--seed", "--out"):
        assert option in helped.stdout
    bad = subprocess.run(
        [sys.executable, "scripts/demo.py", "--timesteps", "10"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "--timesteps must be >= 2048" in bad.stderr
    training_seed = subprocess.run(
        [sys.executable, "scripts/demo.py", "--seed", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert training_seed.returncode == 2 and "'seed' = 1000 is outside" in training_seed.stderr
