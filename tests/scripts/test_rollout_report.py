"""scripts/rollout_report.py on a tiny horizon: a drift run and both fault runs through a real
broker write report.json and the timeline PNG; bad options exit 2 and write nothing."""

from __future__ import annotations

import json

from scripts import rollout_report


def test_a_tiny_report_writes_its_json_and_png(tmp_path, capsys):
    out = tmp_path / "report"
    argv = ["--hours", "1", "--drift-h", "0.5", "--seeds", "11", "--scenarios", "wear"]
    argv += ["--fault-hours", "0.5", "--restart-at", "2", "--offline-at", "3"]
    argv += ["--offline-intervals", "1", "--out", str(out), "--quiet"]
    assert rollout_report.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert (out / "timeline-wear-seed11.png").stat().st_size > 10_000
    (run,) = report["drift_runs"]
    assert run["seed"] == 11 and run["intervals"] == 12 and run["false_rollbacks"] == 0
    assert run["drift"]["machine"] == "machining-1"  # the first canary cohort's machine
    assert len(run["timeline"]["z_candidate"]) == len(run["timeline"]["stage"]) == 12
    faults = {f["fault"]: f for f in report["fault_runs"]}
    assert set(faults) == {"restart", "offline"}
    for fault in faults.values():
        assert fault["applied_twice"] == 0 and fault["lost"] == 0
        assert fault["applied"] > 0 and fault["issued"] >= fault["applied"]
    assert "(b) faults" in capsys.readouterr().out


def test_bad_options_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "report"
    assert rollout_report.main(["--drift-machine", "machining-9", "--out", str(out)]) == 2
    assert "machining-9" in capsys.readouterr().err
    try:
        rollout_report.main(["--hours", "2", "--drift-h", "3", "--out", str(out)])
    except SystemExit as done:
        assert done.code == 2
    assert not (out / "report.json").exists()
