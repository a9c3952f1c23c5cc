"""scripts/audit.py: table output, CSV export, events, summary, and its errors (exit 2)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_bridge.audit import AuditLog, AuditRecord
from edge_bridge.store import Store
from scripts import audit as audit_cli

ROOT = Path(__file__).resolve().parents[2]
SETPOINTS = {"speed_factor": 1.0, "standby": False, "maintenance": False}


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "bridge.sqlite"
    with Store(path) as store:
        log = AuditLog(store)
        for index, (machine, stage, reason) in enumerate(
            [
                ("machining-1", "shadow", "incumbent: shadow"),
                ("machining-2", "canary", "candidate"),
                ("machining-2", "canary", "fallback: stale telemetry"),
            ]
        ):
            log.record(
                AuditRecord(
                    300.0 * (index + 1),
                    index + 1,
                    machine,
                    stage,
                    "incumbent",
                    SETPOINTS,
                    SETPOINTS,
                    SETPOINTS,
                    trust=0.75,
                    reason=reason,
                    command_id=f"{index:032x}",
                )
            )
        log.update_ack(f"{0:032x}", "confirmed")
        log.event("rollback", "trust 0.3 < 0.5 on machining-2", time_s=900.0, machine="machining-2")
    return path


def test_show_filters_and_prints_a_table(db, capsys):
    assert audit_cli.main(["show", "--db", str(db), "--machine", "machining-2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["time_s", "decision_index", "machine", "stage"]
    assert len(lines) == 3 and all("machining-2" in line for line in lines[1:])
    assert audit_cli.main(["show", "--db", str(db), "--reason", "stale", "--since", "600"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert audit_cli.main(["show", "--db", str(db), "--stage", "full"]) == 0
    assert capsys.readouterr().out.strip() == "no rows match"


def test_export_csv_events_and_summary(db, tmp_path, capsys):
    out = tmp_path / "audit.csv"
    assert audit_cli.main(["export", "--db", str(db), "--csv", str(out), "--limit", "2"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 2 and rows[0]["ack_status"] == "confirmed"
    assert json.loads(rows[0]["applied"]) == SETPOINTS
    capsys.readouterr()
    assert audit_cli.main(["export", "--db", str(db), "--csv", "-"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
    assert audit_cli.main(["events", "--db", str(db), "--kind", "rollback"]) == 0
    assert "trust 0.3 < 0.5 on machining-2" in capsys.readouterr().out
    assert audit_cli.main(["summary", "--db", str(db)]) == 0
    text = capsys.readouterr().out
    assert "canary" in text and "confirmed" in text and "rollback" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "--since", "noon"], "not a number of seconds"),
        (["show", "--limit", "0"], "must be at least 1"),
        (["show", "--stage", "beta"], "invalid choice"),
        (["show", "--since", "900", "--until", "300"], "after until"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_malformed_filters_exit_2_with_a_message(db, capsys, argv, message):
    try:
        code = audit_cli.main([*argv, "--db", str(db)])
    except SystemExit as exit_:  # argparse refuses the option itself
        code = exit_.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_missing_store_is_a_clear_error(tmp_path, capsys):
    assert audit_cli.main(["summary", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no such store file" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_help_explains_every_option():
    result = subprocess.run(
        [sys.executable, "scripts/audit.py", "show", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--db", "--machine", "--stage", "--reason", "--since", "--until", "--limit"):
        assert option in result.stdout
    bad = subprocess.run(
        [sys.executable, "scripts/audit.py", "show", "--until", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a number of seconds" in bad.stderr
