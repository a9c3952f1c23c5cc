"""The console's reads of the bridge's SQLite store (opened read-only: the bridge is its only
writer; WAL lets the console read while the bridge writes).

- :func:`gate_view`: the saved gate state (stage, pending approval, excluded cohorts, machines
  in fallback or local control, ``kpi_series``: the gate's KPI window of candidate vs
  incumbent objective Z per interval).
- :func:`last_commands`: per machine the newest audit row: the last command and its ack.
- :func:`timeline`: the gate's events (promotions, rollbacks, approvals, overrides, operator
  actions and refusals, node birth/death), newest first.
- :func:`audit_rows` / :func:`audit_csv`: the audit log filtered by machine, stage, reason
  and plant time (:meth:`edge_bridge.audit.AuditLog.query`'s checks apply).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_bridge.audit import AuditLog, AuditRecord, rows_to_csv
from edge_bridge.store import Store, StoreError

__all__ = [
    "TIMELINE_KINDS",
    "StoreReader",
    "audit_csv",
    "audit_rows",
    "gate_view",
    "last_commands",
    "timeline",
]

TIMELINE_KINDS = (
    "promotion",
    "rollback",
    "approval_requested",
    "approval_withdrawn",
    "approval_rejected",
    "override",
    "operator",
    "operator_refused",
    "node_birth",
    "node_death",
)
"""Event kinds shown on the rollout view's timeline."""


class StoreReader:
    """Opens the store read-only on first use and again after a failure (the bridge creates
    the file when it first starts, so the console may start before it)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store: Store | None = None

    def store(self) -> Store:
        """The open store; StoreError when the file is missing or unreadable."""
        if self._store is None:
            self._store = Store(self.path, readonly=True)
        return self._store

    def reset(self) -> None:
        """Close the store so the next read opens it afresh."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def read(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        """``query(store, ...)``; a database error closes the store and is raised as
        StoreError."""
        try:
            return query(self.store(), *args, **kwargs)
        except StoreError:
            self.reset()
            raise
        except Exception as error:  # sqlite3 errors: a locked or half-written file
            if type(error).__module__ != "sqlite3":
                raise
            self.reset()
            raise StoreError(f"{self.path}: {error}") from error


def gate_view(store: Store) -> dict[str, Any] | None:
    """The most recently saved gate state with its ``rollout_id`` and ``saved_at`` (unix s),
    or None before the bridge saved one."""
    rows = store.select(
        "SELECT rollout_id, wall_time, state FROM gate_state ORDER BY wall_time DESC LIMIT 1"
    )
    if not rows:
        return None
    state = json.loads(rows[0]["state"])
    state["saved_at"] = rows[0]["wall_time"]
    pairs = state.get("kpi_window") or []  # [candidate Z, incumbent Z] per interval
    state["kpi_series"] = [
        {"candidate_z": entry[0], "incumbent_z": entry[1]}
        for entry in pairs
        if isinstance(entry, list) and len(entry) >= 2
    ]
    return state


def last_commands(store: Store) -> dict[str, dict[str, Any]]:
    """Machine → its newest audit row's decision, assignment, applied setpoints, command id,
    ack status and reason."""
    rows = store.select(
        "SELECT machine, decision_index, time_s, wall_time, stage, assignment, applied, "
        "command_id, ack_status, reason FROM audit WHERE id IN "
        "(SELECT MAX(id) FROM audit GROUP BY machine)"
    )
    result = {}
    for row in rows:
        row["applied"] = json.loads(row["applied"]) if row["applied"] else None
        result[row["machine"]] = row
    return result


def timeline(store: Store, limit: int = 200) -> list[dict[str, Any]]:
    """The newest ``limit`` gate-related events (:data:`TIMELINE_KINDS`), newest first."""
    marks = ", ".join("?" * len(TIMELINE_KINDS))
    rows = store.select(
        f"SELECT id, time_s, wall_time, decision_index, kind, reason, operator, machine, detail "
        f"FROM events WHERE kind IN ({marks}) ORDER BY id DESC LIMIT ?",
        (*TIMELINE_KINDS, int(limit)),
    )
    for row in rows:
        row["detail"] = json.loads(row["detail"] or "{}")
    return rows


def audit_rows(store: Store, **filters: Any) -> list[AuditRecord]:
    """Audit rows matching ``filters`` (machine, stage, reason, since, until, limit), in time
    order; ValueError for a bad filter."""
    return AuditLog(store).query(**filters)


def audit_csv(rows: list[AuditRecord]) -> str:
    """The rows as CSV, the layout of ``scripts/audit.py export`` (:func:`rows_to_csv`)."""
    return rows_to_csv(rows)
