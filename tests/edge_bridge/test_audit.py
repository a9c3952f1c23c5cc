"""The store and the audit log: WAL and durable writes, rows surviving a reopen, query
filters, summary, schema versions."""

from __future__ import annotations

import sqlite3

import pytest

from edge_bridge.audit import AuditLog, AuditRecord
from edge_bridge.store import SCHEMA_VERSION, Store, StoreError

INCUMBENT = {"speed_factor": 1.0, "standby": False, "maintenance": False}
CANDIDATE = {"speed_factor": 1.1, "standby": True, "maintenance": False}


def fill(log: AuditLog) -> None:
    rows = [
        AuditRecord(
            300.0,
            1,
            "machining-1",
            "shadow",
            "incumbent",
            INCUMBENT,
            CANDIDATE,
            INCUMBENT,
            trust=0.8,
            reason="incumbent: shadow",
            command_id="a" * 32,
        ),
        AuditRecord(
            300.0,
            1,
            "machining-2",
            "shadow",
            "incumbent",
            INCUMBENT,
            CANDIDATE,
            INCUMBENT,
            trust=0.7,
            reason="incumbent: shadow",
            command_id="b" * 32,
        ),
        AuditRecord(
            600.0,
            2,
            "machining-1",
            "canary",
            "candidate",
            INCUMBENT,
            CANDIDATE,
            {**CANDIDATE, "speed_factor": 1.05},
            envelope_actions=[["speed_factor", "clamp", "change +0.1 exceeds ±0.05"]],
            trust=0.9,
            drift=["wear"],
            reason="candidate",
            command_id="c" * 32,
        ),
        AuditRecord(
            600.0,
            2,
            "machining-2",
            "canary",
            "fallback",
            INCUMBENT,
            CANDIDATE,
            None,
            trust=None,
            reason="fallback: stale telemetry",
            operator=None,
        ),
    ]
    for row in rows:
        log.record(row)


def test_store_is_wal_with_full_sync_and_versioned(tmp_path):
    with Store(tmp_path / "bridge.sqlite") as store:
        assert store.pragma("journal_mode") == "wal"
        assert store.pragma("synchronous") == 2  # FULL
        assert store.pragma("user_version") == SCHEMA_VERSION
    with Store(tmp_path / "bridge.sqlite", readonly=True) as store:
        assert store.pragma("journal_mode") == "wal"


def test_rows_survive_reopen_and_acks_fill_in(tmp_path):
    path = tmp_path / "bridge.sqlite"
    with Store(path) as store:
        log = AuditLog(store)
        fill(log)
        assert log.update_ack("c" * 32, "confirmed", {"speed_factor": 1.05, "standby": True}) == 1
        assert log.update_ack("f" * 32, "confirmed") == 0
        log.event(
            "rollback",
            "drift on machining-1 (wear)",
            time_s=600.0,
            decision_index=2,
            machine="machining-1",
            detail={"from": "canary[0]"},
        )
        log.event("operator", "approve", operator="alice")
    with Store(path) as store:
        log = AuditLog(store)
        rows = log.query()
        assert len(rows) == 4 and rows[0].wall_time > 0 and rows[0].id == 1
        canary = rows[2]
        assert canary.applied == {"speed_factor": 1.05, "standby": True, "maintenance": False}
        assert canary.envelope_actions[0][1] == "clamp" and canary.drift == ["wear"]
        assert canary.ack_status == "confirmed" and canary.readback["speed_factor"] == 1.05
        assert rows[3].applied is None and rows[3].trust is None
        events = log.events()
        assert [e.kind for e in events] == ["rollback", "operator"]
        assert events[0].detail == {"from": "canary[0]"} and events[1].operator == "alice"
        assert [e.kind for e in log.events(kind="operator")] == ["operator"]


def test_query_filters(tmp_path):
    with Store(tmp_path / "bridge.sqlite") as store:
        log = AuditLog(store)
        fill(log)
        assert [r.stage for r in log.query(machine="machining-1")] == ["shadow", "canary"]
        assert {r.machine for r in log.query(stage="canary")} == {"machining-1", "machining-2"}
        assert [r.assignment for r in log.query(reason="STALE")] == ["fallback"]
        assert len(log.query(since=600.0)) == 2 and len(log.query(until=300.0)) == 2
        assert len(log.query(since=301.0, until=599.0)) == 0
        assert len(log.query(limit=3)) == 3
        assert log.query(machine="press-1") == []
        with pytest.raises(ValueError, match="after until"):
            log.query(since=700.0, until=600.0)
        with pytest.raises(ValueError, match="limit"):
            log.query(limit=0)
        with pytest.raises(ValueError, match="since"):
            log.query(since="yesterday")  # type: ignore[arg-type]


def test_summary_counts(tmp_path):
    with Store(tmp_path / "bridge.sqlite") as store:
        log = AuditLog(store)
        fill(log)
        log.update_ack("a" * 32, "confirmed")
        log.event("rejected_message", "garbled JSON on telemetry")
        summary = log.summary()
        assert summary["stage"] == {"canary": 2, "shadow": 2}
        assert summary["assignment"]["incumbent"] == 2
        assert summary["reason"]["incumbent: shadow"] == 2
        assert summary["ack_status"] == {"none": 3, "confirmed": 1}
        assert summary["events"] == {"rejected_message": 1}


def test_newer_schema_and_foreign_files_are_refused(tmp_path):
    path = tmp_path / "bridge.sqlite"
    Store(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match="newer twinfactory"):
        Store(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="not a bridge store"):
        Store(junk)
    with pytest.raises(StoreError, match="no such store file"):
        Store(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()
    old = tmp_path / "old.sqlite"
    sqlite3.connect(old).close()
    with pytest.raises(StoreError, match="older"):
        Store(old, readonly=True)
    with Store(old) as store:  # the bridge migrates an older (here: empty) file
        assert store.pragma("user_version") == SCHEMA_VERSION


def test_a_transaction_commits_its_writes_together_or_none_of_them(tmp_path):
    path = tmp_path / "bridge.sqlite"
    with Store(path) as store:
        log = AuditLog(store)
        with store.transaction():
            log.event("promotion", "one")
            with store.transaction():  # nested: joins the outer one
                log.event("promotion", "two")
        with pytest.raises(RuntimeError), store.transaction():
            log.event("rollback", "never committed")
            raise RuntimeError("power cut")
    with Store(path, readonly=True) as store:
        assert [e.reason for e in AuditLog(store).events()] == ["one", "two"]
