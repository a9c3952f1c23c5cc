"""The bridge's one SQLite file: audit rows, events, the command ledger and the gate's state.

WAL journal (readers such as ``scripts/audit.py`` never block the bridge) with
``synchronous = FULL``: a write is on disk when its statement returns, so a power cut loses no
committed decision. A write is its own transaction unless the caller groups writes with
:meth:`Store.transaction` (the bridge writes one per decision and one per batch of messages:
one disk flush instead of five per machine). The schema is versioned with
``PRAGMA user_version`` (:data:`SCHEMA_VERSION`); opening a file written by a newer schema is
refused with :class:`StoreError` rather than guessed at, an older one is migrated in place.

Tables (JSON columns hold setpoint dicts, lists and gate state):

- ``audit``: one row per decision per machine (see :mod:`edge_bridge.audit`).
- ``events``: gate events, operator actions, rejected messages, with their reason.
- ``commands``: the command ledger (:mod:`edge_bridge.commands`), one row per command.
- ``gate_state``: the gate's state as JSON per rollout id.

The connection may be used from several threads (paho's network thread and the loop); a lock
serialises statements.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_VERSION", "Store", "StoreError"]

SCHEMA_VERSION = 2

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_s REAL NOT NULL,
        wall_time REAL NOT NULL,
        decision_index INTEGER NOT NULL,
        machine TEXT NOT NULL,
        stage TEXT NOT NULL,
        assignment TEXT NOT NULL,
        incumbent TEXT,
        candidate TEXT,
        applied TEXT,
        envelope_actions TEXT NOT NULL DEFAULT '[]',
        trust REAL,
        drift TEXT NOT NULL DEFAULT '[]',
        reason TEXT NOT NULL DEFAULT '',
        command_id TEXT,
        ack_status TEXT,
        readback TEXT,
        operator TEXT
    );
    CREATE INDEX audit_machine ON audit (machine, time_s);
    CREATE INDEX audit_command ON audit (command_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time_s REAL,
        wall_time REAL NOT NULL,
        decision_index INTEGER,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        operator TEXT,
        machine TEXT,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE commands (
        command_id TEXT PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        machine TEXT NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE TABLE gate_state (
        rollout_id TEXT PRIMARY KEY,
        wall_time REAL NOT NULL,
        state TEXT NOT NULL
    );
    """,
    # 2: each audit row names the policy whose setpoints it sent and the envelope that
    # checked them (the envelope is versioned with the policy)
    2: """
    ALTER TABLE audit ADD COLUMN policy_version TEXT;
    ALTER TABLE audit ADD COLUMN envelope_version TEXT
    """,
}


class StoreError(RuntimeError):
    """The store file cannot be used as it is; the message says why and what to do."""


class Store:
    """An open bridge store. ``Store(path)`` creates or migrates the file; ``readonly=True``
    opens an existing one for reading (the audit CLI) and never creates it."""

    def __init__(self, path: str | Path, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._depth = 0
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no such store file (the bridge creates it)")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        try:
            self._connection = sqlite3.connect(
                uri, uri=True, check_same_thread=False, isolation_level=None, timeout=10.0
            )
            self._connection.row_factory = sqlite3.Row
            version = self._connection.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: not a bridge store ({error})") from error
        if version > SCHEMA_VERSION:
            self._connection.close()
            raise StoreError(
                f"{self.path}: schema version {version} was written by a newer twinfactory "
                f"(this one knows up to {SCHEMA_VERSION}); upgrade twinfactory to read it"
            )
        if readonly:
            if version < SCHEMA_VERSION:
                self._connection.close()
                raise StoreError(
                    f"{self.path}: schema version {version} is older than {SCHEMA_VERSION}; "
                    "open it once with the bridge to migrate it"
                )
            return
        mode = self._connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: the file system refuses WAL mode (got {mode!r})")
        self._connection.execute("PRAGMA synchronous=FULL")
        self._migrate(version)

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._lock:
                self._connection.execute("BEGIN IMMEDIATE")
                try:
                    for statement in _MIGRATIONS[target].split(";"):
                        if statement.strip():
                            self._connection.execute(statement)
                    self._connection.execute(f"PRAGMA user_version = {target}")
                    self._connection.execute("COMMIT")
                except BaseException:
                    self._connection.execute("ROLLBACK")
                    raise

    # -- plumbing ----------------------------------------------------------------------
    def pragma(self, name: str) -> Any:
        """The value of ``PRAGMA name`` (e.g. ``journal_mode``, ``synchronous``)."""
        with self._lock:
            return self._connection.execute(f"PRAGMA {name}").fetchone()[0]

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> int:
        """Run one write statement — in its own durable transaction, or in the open
        :meth:`transaction` of this thread; returns the last row id."""
        with self._lock:
            cursor = self._connection.execute(sql, parameters)
            return int(cursor.lastrowid or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one durable transaction (one disk flush instead of one per
        statement): committed when the block ends, rolled back if it raises. Nested blocks
        join the outer one; other threads wait until it ends."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._connection.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            else:
                self._connection.execute("COMMIT")
            finally:
                self._depth = 0

    def select(self, sql: str, parameters: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Rows of a query as dicts."""
        with self._lock:
            return [dict(row) for row in self._connection.execute(sql, parameters)]

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------
    def save_command(self, row: dict[str, Any]) -> None:
        """Insert or replace one ledger row (``command_id``, ``idempotency_key``, ``machine``,
        ``status`` and the rest as JSON in ``data``)."""
        self.execute(
            "INSERT INTO commands (command_id, idempotency_key, machine, status, data) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(command_id) DO UPDATE SET "
            "status = excluded.status, data = excluded.data",
            (
                row["command_id"],
                row["idempotency_key"],
                row["machine"],
                row["status"],
                json.dumps(row),
            ),
        )

    def load_commands(self, statuses: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every ledger row (or those with one of ``statuses``), oldest first."""
        if statuses is None:
            rows = self.select("SELECT data FROM commands ORDER BY rowid")
        else:
            wanted = list(statuses)
            marks = ", ".join("?" * len(wanted))
            rows = self.select(
                f"SELECT data FROM commands WHERE status IN ({marks}) ORDER BY rowid", wanted
            )
        return [json.loads(row["data"]) for row in rows]

    # -- gate state --------------------------------------------------------------------
    def save_gate_state(self, rollout_id: str, state: dict[str, Any], wall_time: float) -> None:
        """Replace the saved state of ``rollout_id``."""
        self.execute(
            "INSERT INTO gate_state (rollout_id, wall_time, state) VALUES (?, ?, ?) "
            "ON CONFLICT(rollout_id) DO UPDATE SET wall_time = excluded.wall_time, "
            "state = excluded.state",
            (rollout_id, wall_time, json.dumps(state)),
        )

    def load_gate_state(self, rollout_id: str) -> dict[str, Any] | None:
        """The saved state of ``rollout_id``, or ``None``."""
        rows = self.select("SELECT state FROM gate_state WHERE rollout_id = ?", (rollout_id,))
        return json.loads(rows[0]["state"]) if rows else None
