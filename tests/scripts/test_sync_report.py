"""The synchronisation report on a short plant run: calibration, next-hour prediction, drift."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from envs.sync import SyncBenchmark
from scripts import sync_report

ROOT = Path(__file__).resolve().parents[2]

PLANT = """
seed = 5
sample_interval_s = 60.0
dropout_probability = 0.02
ambient_temperature = 24.0
wear_rate_factors = [1.2, 0.9, 1.0, 1.1, 1.0, 1.0, 1.0]

[[hidden]]
station = "machining"
name = "thermal_resistance"
value = 0.021

[[drift]]
time_h = 0.75
target = "ambient_temperature"
operation = "add"
value = 8.0
"""


def test_short_report_calibrates_predicts_and_flags_the_drift(tmp_path, capsys):
    plant = tmp_path / "plant.toml"
    plant.write_text(PLANT)
    config = sync_report.ReportConfig(
        plant=str(plant),
        seeds=1,
        out=str(tmp_path / "out"),
        benchmark=SyncBenchmark(window_h=0.5, horizon_h=0.25),
    )
    report = sync_report.run(config, progress=False)
    summary = report["summary"]
    errors = summary["calibration_error_pct"]
    assert errors["machining.thermal_resistance"] < 5.0
    assert errors["*.ambient_temperature"] < 5.0
    assert errors["machining.thermal_capacity"] < 5.0  # not hidden: stays near nominal
    by_states = summary["calibration_error_pct_state_replay"]  # no event seed used
    assert by_states["machining.thermal_resistance"] < 5.0
    assert by_states["*.ambient_temperature"] < 5.0
    prediction = summary["next_hour"]
    free = prediction["unsynchronised (nominal, free-running)"]["temperature"]["nrmse_mean"]
    synced = prediction["calibration + kalman"]["temperature"]["nrmse_mean"]
    assert synced < 0.1 * free
    (drift,) = summary["drift"]
    assert drift["flag"][0] is not None and drift["flag"][0] <= 3
    assert drift["trust"][0] is not None and drift["trust"][0] <= 3
    assert drift["false_alarms"] == [0]
    for name in ("next_hour.png", "tracking.png"):
        assert (tmp_path / "out" / name).stat().st_size > 20_000
    saved = json.loads((tmp_path / "out" / "report.json").read_text())
    assert saved["summary"]["drift"][0]["flag"] == drift["flag"]
    assert saved["config"]["benchmark"]["window_h"] == 0.5 and saved["config"]["seeds"] == 1
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert "Next-hour prediction" in capsys.readouterr().out


def test_help_and_bad_options():
    result = subprocess.run(
        [sys.executable, "scripts/sync_report.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0
    options = ("--plant", "--window-h", "--horizon-h", "--seeds", "--sync", "--twin-seed")
    for option in (*options, "--sample-interval-s", "--tracking", "--ph-threshold", "--out"):
        assert option in result.stdout
    assert "--machine" in result.stdout
    assert sync_report.main(["--beta", "2", "--quiet"]) == 2
    assert sync_report.main(["--plant", str(ROOT / "nothing.toml"), "--quiet"]) == 2
    assert sync_report.main(["--sample-interval-s", "45", "--quiet"]) == 2


def test_options_go_through_the_one_loader(capsys):
    argv = ["--window-h", "0.5", "--seeds", "2", "--machine", "welding-1", "--quiet"]
    config, progress = sync_report.parse_args([*argv, "--sync", "nudging"])
    assert config.benchmark == SyncBenchmark(window_h=0.5, sync="nudging")
    assert config.seeds == 2 and config.machines == ("welding-1",) and not progress
    assert config.plant == sync_report.ReportConfig().plant  # not given: the default
    cases = [
        (["--window-h", "9"], "command line: 'benchmark.window_h' = 9.0 is outside"),
        (["--seeds", "0"], "'seeds' = 0 is outside the allowed range [1, 20]"),
        (["--machine", "paint-1"], "--machine paint-1: not a machine of automotive_components"),
    ]
    for argv, message in cases:
        assert sync_report.main([*argv, "--quiet"]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)
