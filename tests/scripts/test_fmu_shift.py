"""The demo script: a short shift end to end, its profile logic and its --help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scripts import fmu_shift as demo

ROOT = Path(__file__).resolve().parents[2]


def test_short_shift_writes_table_csv_and_plot(tmp_path, capsys):
    rows = demo.run(demo.DemoConfig(hours=2.5, step=10.0, out=tmp_path))
    assert [row["model"] for row in rows] == ["CncMill", "Conveyor", "RobotCell"]
    for row in rows:
        assert row["energy_kwh"] > 0 and row["peak_kw"] >= row["mean_kw"] > 0
    assert (tmp_path / "shift_trajectories.png").stat().st_size > 10_000
    csv = np.genfromtxt(tmp_path / "CncMill.csv", delimiter=",", names=True)
    assert csv["time"][-1] == pytest.approx(2.5 * 3600)
    # energy in the table is the integral of the recorded power (held over each step)
    assert rows[0]["energy_kwh"] == pytest.approx(csv["power"][1:].sum() * 10.0 / 3600.0, rel=1e-3)
    printed = capsys.readouterr().out
    assert "energy kWh" in printed and "CncMill" in printed


def test_the_shift_runs_through_the_library_and_matches_fmpy(tmp_path):
    # the script's simulation is a CoSimulation of FmuUnits; FMPy's simulate_fmu with the
    # same inputs held over each step gives the same trajectory
    import fmpy

    import fmus

    config = demo.DemoConfig(hours=0.5, step=10.0, out=tmp_path)
    inputs = demo.shift_inputs(
        config, cycle_time_s=220.0, cutting_time_s=175.0, transport_time_s=66.0
    )
    from tqdm import tqdm

    with tqdm(disable=True) as progress:
        results = demo.simulate(
            {"RobotCell": fmus.path("RobotCell")},
            {"RobotCell": inputs["RobotCell"]},
            10.0,
            progress,
        )
    values = inputs["RobotCell"]
    times = np.repeat(np.arange(len(values["mode"]) + 1) * 10.0, 2)[1:-1]
    signal = np.zeros(
        len(times), dtype=[("time", float)] + [(k, v.dtype) for k, v in values.items()]
    )
    signal["time"] = times
    for key, column in values.items():
        signal[key] = np.repeat(column, 2)
    reference = fmpy.simulate_fmu(
        str(fmus.path("RobotCell")),
        stop_time=len(values["mode"]) * 10.0,
        step_size=10.0,
        output_interval=10.0,
        input=signal,
        output=demo.OUTPUTS["RobotCell"],
    )
    for name in ("time", *demo.OUTPUTS["RobotCell"]):
        np.testing.assert_array_equal(results["RobotCell"][name], reference[name])


def test_modes_come_from_the_library():
    from envs.machines import FMU_MODE, FmuMode, MachineState

    assert tuple(FmuMode) == (demo.OFF, demo.STANDBY, demo.IDLE, demo.WORKING)
    assert FMU_MODE[MachineState.BUSY] is demo.WORKING
    assert not hasattr(demo, "input_signal")  # no second simulation path around FmuUnit


def test_profile_follows_the_shift_plan():
    config = demo.DemoConfig(hours=8.0, step=10.0, parts_per_tool=10)
    inputs = demo.shift_inputs(
        config, cycle_time_s=220.0, cutting_time_s=175.0, transport_time_s=66.0
    )
    t = np.arange(len(inputs["CncMill"]["mode"])) * 10.0
    mill = inputs["CncMill"]["mode"]
    on_lunch = (t >= 4 * 3600) & (t < 4.5 * 3600)
    assert np.all(mill[on_lunch] == demo.STANDBY)
    assert np.all(mill[t < demo.WARM_UP_S] == demo.IDLE)
    assert np.all(mill[t >= 8 * 3600 - 600] == demo.OFF)
    assert not inputs["Conveyor"]["running"][on_lunch].any()
    # one tool change per ten parts: count rising edges of tool_change
    changes = np.flatnonzero(np.diff(inputs["CncMill"]["tool_change"].astype(int)) == 1)
    cutting_starts = np.flatnonzero(np.diff((mill == demo.WORKING).astype(int)) == 1)
    assert len(changes) == (len(cutting_starts) + 1) // 10


def test_bad_options_are_rejected_with_the_allowed_range():
    for argv, message in (
        (["--hours", "0"], "--hours 0.0 must be between 0.1 and 24"),
        (["--step", "120"], "--step 120.0 must be between 0.1 and 60"),
    ):
        result = subprocess.run(
            [sys.executable, "scripts/fmu_shift.py", *argv],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and message in result.stderr


def test_help_explains_every_option():
    result = subprocess.run(
        [sys.executable, "scripts/fmu_shift.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--hours", "--step", "--out", "--parts-per-tool", "--part-mass", "--seed"):
        assert option in result.stdout
