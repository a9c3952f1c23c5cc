"""The audit log: one row per decision per machine, and the events around them.

A row says, for one machine at one decision: plant time (``time_s``, s since the plant's
start) and wall time (unix s), ``decision_index``, the gate ``stage`` and the machine's
``assignment`` (candidate | incumbent | fallback | local), the incumbent's and the candidate's
proposed setpoints, what was ``applied`` (``None``: nothing sent), the envelope's actions,
the trust score and drift flags, the ``reason`` for what was applied, the ``command_id``,
its ``ack_status`` (filled in by :meth:`AuditLog.update_ack` when the acknowledgement and
read-back arrive) and the ``operator`` if one was involved. Events: gate promotions and
rollbacks, operator actions (with the operator's name), rejected messages with their reason.

Rows live in the ``audit`` and ``events`` tables of an :class:`edge_bridge.store.Store`
(SQLite, WAL, synchronous=FULL): a row is durable when :meth:`AuditLog.record` returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from edge_bridge.store import Store

__all__ = ["AuditLog", "AuditRecord", "EventRecord", "rows_to_csv"]

_JSON_COLUMNS = ("incumbent", "candidate", "applied", "envelope_actions", "drift", "readback")


@dataclass(frozen=True)
class AuditRecord:
    """One decision for one machine (see the module docstring)."""

    time_s: float
    decision_index: int
    machine: str
    stage: str
    assignment: str
    incumbent: dict[str, Any] | None = None
    candidate: dict[str, Any] | None = None
    applied: dict[str, Any] | None = None
    envelope_actions: list[Any] = field(default_factory=list)
    trust: float | None = None
    drift: list[str] = field(default_factory=list)
    reason: str = ""
    command_id: str | None = None
    ack_status: str | None = None
    readback: dict[str, Any] | None = None
    operator: str | None = None
    wall_time: float = 0.0
    policy_version: str | None = None
    """The policy whose setpoints the row sent (incumbent's or candidate's version)."""
    envelope_version: str | None = None
    """The safety envelope that checked them."""
    id: int | None = None


@dataclass(frozen=True)
class EventRecord:
    """A gate event, operator action or rejected message (``detail``: extra JSON data)."""

    kind: str
    reason: str = ""
    time_s: float | None = None
    decision_index: int | None = None
    operator: str | None = None
    machine: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    id: int | None = None


def _number(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ValueError(f"audit filter {name} must be a number of seconds, not {value!r}")
    return float(value)


class AuditLog:
    """Writes and queries audit rows and events in a :class:`Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, row: AuditRecord) -> int:
        """Write one decision row (wall time now if not given); returns its id."""
        values = asdict(row)
        values.pop("id")
        if not values["wall_time"]:
            values["wall_time"] = time.time()
        for column in _JSON_COLUMNS:
            values[column] = None if values[column] is None else json.dumps(values[column])
        columns = ", ".join(values)
        marks = ", ".join("?" * len(values))
        return self.store.execute(
            f"INSERT INTO audit ({columns}) VALUES ({marks})", list(values.values())
        )

    def update_ack(
        self, command_id: str, ack_status: str, readback: Mapping[str, Any] | None = None
    ) -> int:
        """Fill in the acknowledgement (the ledger's final status) and read-back of the row
        that sent ``command_id``; returns the number of rows updated (0: unknown id)."""
        before = self.store.select(
            "SELECT COUNT(*) AS n FROM audit WHERE command_id = ?", (command_id,)
        )[0]["n"]
        self.store.execute(
            "UPDATE audit SET ack_status = ?, readback = ? WHERE command_id = ?",
            (ack_status, None if readback is None else json.dumps(dict(readback)), command_id),
        )
        return int(before)

    def event(
        self,
        kind: str,
        reason: str = "",
        *,
        time_s: float | None = None,
        decision_index: int | None = None,
        operator: str | None = None,
        machine: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Write one event (``kind`` e.g. promotion, rollback, operator, rejected_message)."""
        return self.store.execute(
            "INSERT INTO events (time_s, wall_time, decision_index, kind, reason, operator, "
            "machine, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                time_s,
                time.time(),
                decision_index,
                kind,
                reason,
                operator,
                machine,
                json.dumps(dict(detail or {})),
            ),
        )

    @staticmethod
    def _where(
        filters: dict[str, Any], since: float | None, until: float | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        values: list[Any] = []
        for column, value in filters.items():
            if value is None:
                continue
            if column == "reason":
                clauses.append("reason LIKE ?")
                values.append(f"%{value}%")
            else:
                clauses.append(f"{column} = ?")
                values.append(value)
        since, until = _number("since", since), _number("until", until)
        if since is not None and until is not None and since > until:
            raise ValueError(f"audit filter since ({since}) is after until ({until})")
        if since is not None:
            clauses.append("time_s >= ?")
            values.append(since)
        if until is not None:
            clauses.append("time_s <= ?")
            values.append(until)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values

    @staticmethod
    def _limit(limit: int | None) -> str:
        if limit is None:
            return ""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"audit filter limit must be a whole number >= 1, not {limit!r}")
        return f" LIMIT {limit}"

    def query(
        self,
        *,
        machine: str | None = None,
        stage: str | None = None,
        reason: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditRecord]:
        """Rows in time order; ``reason`` matches a part of the reason (case-insensitive),
        ``since``/``until`` bound plant time (s, inclusive), ``limit`` keeps the first rows."""
        where, values = self._where(
            {"machine": machine, "stage": stage, "reason": reason}, since, until
        )
        rows = self.store.select(
            f"SELECT * FROM audit{where} ORDER BY time_s, id{self._limit(limit)}", values
        )
        names = {f.name for f in fields(AuditRecord)}
        records = []
        for row in rows:
            for column in _JSON_COLUMNS:
                if row[column] is not None:
                    row[column] = json.loads(row[column])
            row["envelope_actions"] = row["envelope_actions"] or []
            row["drift"] = row["drift"] or []
            records.append(AuditRecord(**{k: v for k, v in row.items() if k in names}))
        return records

    def events(
        self,
        *,
        kind: str | None = None,
        machine: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[EventRecord]:
        """Events in the order written (filters as in :meth:`query`)."""
        where, values = self._where({"kind": kind, "machine": machine}, since, until)
        rows = self.store.select(
            f"SELECT * FROM events{where} ORDER BY id{self._limit(limit)}", values
        )
        for row in rows:
            row["detail"] = json.loads(row["detail"])
        return [EventRecord(**row) for row in rows]

    def summary(self) -> dict[str, dict[str, int]]:
        """Row counts per stage, per assignment, per reason and per ack status (``none``: not
        acknowledged / nothing sent), and event counts per kind."""
        result: dict[str, dict[str, int]] = {}
        for column in ("stage", "assignment", "reason", "ack_status"):
            rows = self.store.select(
                f"SELECT COALESCE({column}, 'none') AS value, COUNT(*) AS n FROM audit "
                f"GROUP BY value ORDER BY n DESC, value"
            )
            result[column] = {row["value"]: row["n"] for row in rows}
        rows = self.store.select(
            "SELECT kind AS value, COUNT(*) AS n FROM events GROUP BY kind ORDER BY n DESC, kind"
        )
        result["events"] = {row["value"]: row["n"] for row in rows}
        return result


def rows_to_csv(rows: list[AuditRecord]) -> str:
    """Audit rows as CSV: a header of the :class:`AuditRecord` fields, dicts and lists as JSON
    (the one CSV layout: ``scripts/audit.py export`` and the console's download)."""
    import csv
    import io

    buffer = io.StringIO()
    names = [f.name for f in fields(AuditRecord)]
    writer = csv.writer(buffer)
    writer.writerow(names)
    for row in rows:
        values = asdict(row)
        writer.writerow(
            [
                json.dumps(values[n]) if isinstance(values[n], dict | list) else values[n]
                for n in names
            ]
        )
    return buffer.getvalue()
