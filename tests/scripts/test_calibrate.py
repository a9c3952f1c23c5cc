"""The calibration script: a short emulator run end to end, the same fit from the saved
recording, its --help and clean exits (code 2, no traceback) on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import calibrate

ROOT = Path(__file__).resolve().parents[2]
PLANT = str(ROOT / "configs" / "plant_example.toml")
FIT = ["--fit", "machining:thermal_resistance", "--fit", "machining:thermal_capacity"]
FIT += ["--fit", "machining:specific_cutting_energy", "--fit", "*:ambient_temperature"]


@pytest.fixture(scope="module")
def emulator_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrate")
    argv = ["--plant", PLANT, "--hours", "0.25", *FIT, "--quiet"]
    argv += ["--out", str(out), "--save-recording", str(out / "window.parquet")]
    assert calibrate.main(argv) == 0
    return out


def test_emulator_run_writes_json_and_plots_with_the_true_values(emulator_run):
    payload = json.loads((emulator_run / "calibration.json").read_text())
    assert payload["recording"]["samples"] == 15 and payload["source"]["hours"] == 0.25
    rows = {row["parameter"]: row for row in payload["parameters"]}
    # plant_example.toml hides R_th = 0.021 K/W (nominal 0.018), C_th = 30000 J/K (27000), a
    # cutting energy of 2.2 J/mm3 (2.0) and a shop floor at 23 degC (20); 15 noisy samples pin
    # them down to a few percent
    expected = {
        "machining.thermal_resistance": (0.018, 0.021),
        "machining.thermal_capacity": (27000.0, 30000.0),
        "machining.specific_cutting_energy": (2.0, 2.2),
        "*.ambient_temperature": (20.0, 23.0),
    }
    assert list(rows) == list(expected)
    for key, (nominal, true) in expected.items():
        row = rows[key]
        assert row["nominal"] == nominal and row["true"] == pytest.approx(true)
        assert row["fitted"] == pytest.approx(true, rel=0.05), key
        assert abs(row["error_percent"]) < 5 and 0 < row["std_error"] < 0.05 * true
        assert abs(row["fitted"] - true) < 4 * row["std_error"], key  # honest uncertainty
        assert row["flags"] == [] and row["true_note"] == ""
    fit = payload["fit"]
    assert fit["success"] and fit["evaluations"] > 3
    assert fit["residual_rms"]["calibrated"] < 0.5 * fit["residual_rms"]["nominal"]
    nrmse = payload["nrmse"]  # the one NRMSE (RMSE / span) against the measurements, per kind
    assert nrmse["calibrated"]["temperature"] < 0.2 * nrmse["nominal"]["temperature"]
    assert nrmse["calibrated"]["wear"] <= nrmse["nominal"]["wear"]
    before, after = payload["signal_rmse"]["nominal"], payload["signal_rmse"]["calibrated"]
    assert before.keys() == after.keys() and len(before) == 14  # 7 temperatures, 7 wears
    for machine in ("machining-1", "welding-1", "inspection-1"):  # degC, noise std 0.2 K
        assert after[f"{machine}.temperature"] < 0.3 < 0.5 < before[f"{machine}.temperature"]
    for name in ("temperature.png", "wear.png"):
        assert (emulator_run / name).stat().st_size > 20_000


def test_saved_recording_gives_the_same_fit_without_truth(emulator_run, tmp_path, capsys):
    argv = ["--data", str(emulator_run / "window.parquet"), *FIT, "--quiet"]
    argv += ["--out", str(tmp_path), "--plot-machine", "machining-2"]
    assert calibrate.main(argv) == 0
    printed = capsys.readouterr().out
    assert "machining.thermal_resistance" in printed and "true" not in printed
    again = json.loads((tmp_path / "calibration.json").read_text())
    first = json.loads((emulator_run / "calibration.json").read_text())
    for a, b in zip(first["parameters"], again["parameters"], strict=True):
        assert a["fitted"] == pytest.approx(b["fitted"], rel=1e-9) and "true" not in b
    assert again["source"] == {"data": str(emulator_run / "window.parquet")}


def test_state_replay_fits_the_saved_recording_without_its_seed(emulator_run, tmp_path):
    argv = ["--data", str(emulator_run / "window.parquet"), *FIT, "--replay", "states"]
    assert calibrate.main([*argv, "--quiet", "--out", str(tmp_path)]) == 0
    payload = json.loads((tmp_path / "calibration.json").read_text())
    assert payload["fit"]["replay"] == "states"
    rows = {row["parameter"]: row["fitted"] for row in payload["parameters"]}
    # 15 one-minute samples, state changes placed mid-interval: within 5 % of the truth
    assert rows["machining.thermal_resistance"] == pytest.approx(0.021, rel=0.05)
    assert rows["machining.specific_cutting_energy"] == pytest.approx(2.2, rel=0.05)
    assert rows["*.ambient_temperature"] == pytest.approx(23.0, rel=0.05)


def test_warm_start_from_a_previous_fit_needs_fewer_simulations(emulator_run, tmp_path):
    previous = emulator_run / "calibration.json"
    argv = ["--data", str(emulator_run / "window.parquet"), *FIT, "--quiet"]
    assert calibrate.main([*argv, "--out", str(tmp_path), "--warm-start", str(previous)]) == 0
    warm = json.loads((tmp_path / "calibration.json").read_text())
    cold = json.loads(previous.read_text())
    assert warm["fit"]["warm_start"] == str(previous)
    assert warm["fit"]["evaluations"] < cold["fit"]["evaluations"]
    for a, b in zip(cold["parameters"], warm["parameters"], strict=True):
        assert b["fitted"] == pytest.approx(a["fitted"], rel=1e-3)
    assert calibrate.main([*argv, "--out", str(tmp_path), "--warm-start", str(ROOT)]) == 2
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"parameters": [{"parameter": "x.y", "fitted": 1.0}]}))
    assert calibrate.main([*argv, "--out", str(tmp_path), "--warm-start", str(other)]) == 2


def test_bad_input_exits_2_with_a_clear_message(emulator_run, tmp_path, capsys):
    bad = tmp_path / "plant.csv"
    bad.write_text("time_s,machining-1.temperature\n60,21.0\n")
    cases = [
        (["--data", str(bad)], "plant.csv, line 1: the metadata line is missing"),
        (["--data", str(tmp_path / "plant.xlsx")], "unsupported file type '.xlsx'"),
        (["--data", str(emulator_run / "window.parquet"), "--fit", "paint:x"], "'paint' is "),
        (
            ["--plant", PLANT, "--fit", "welding:spindle_speed"],
            "RobotCell (welding) has no parameter or input 'spindle_speed'",
        ),
        (["--plant", PLANT, "--hours", "0.1"], "--hours 0.1 is not a whole number"),
        (["--plant", str(tmp_path / "none.toml")], "none.toml"),
        (["--plant", PLANT, "--save-recording", "x.txt"], "written as .csv or .parquet files"),
        (["--plant", PLANT, "--max-evaluations", "0"], "'max_evaluations' = 0 is outside"),
        (["--plant", PLANT, "--hours", "200"], "'hours' = 200.0 is outside the allowed range"),
    ]
    for argv, message in cases:
        assert calibrate.main([*argv, "--quiet", "--out", str(tmp_path)]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err, (argv, err)
    with pytest.raises(SystemExit) as exit_info:
        calibrate.main(["--data", str(bad), "--hours", "1"])
    assert exit_info.value.code == 2
    assert "--hours and --excite apply to --plant" in capsys.readouterr().err


def test_help_explains_every_option_and_a_bad_file_gives_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/calibrate.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    options = ("--plant", "--data", "--hours", "--excite", "--save-recording", "--fit")
    options += ("--max-evaluations", "--replay", "--warm-start", "--out", "--plot-machine")
    for option in options:
        assert option in result.stdout
    assert result.stdout.count("help") >= 1 and "TARGET:NAME" in result.stdout
    bad = tmp_path / "plant.parquet"
    bad.write_text("not parquet")
    result = subprocess.run(
        [sys.executable, "scripts/calibrate.py", "--data", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "not a readable Parquet file" in result.stderr
