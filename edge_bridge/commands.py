"""Command lifecycle: the bridge's :class:`CommandLedger` and the equipment's :class:`DedupWindow`.

A command carries ``command_id`` (uuid4 hex), ``idempotency_key`` =
``f"{machine}:{decision_index}:{policy_version}"``, ``issued_at`` and ``expires_at`` (unix
seconds from the injected clock; ``expires_at = issued_at + ttl_s``). Statuses:

=====================  ==============================================================
``pending``            created or sent, no acknowledgement yet (re-sent after a reconnect)
``applied``            equipment applied it, no read-back to confirm it
``confirmed``          applied (or duplicate) and the read-back matches within tolerance
``readback_mismatch``  acknowledged but a read-back tag is off by more than its tolerance
``duplicate``          equipment had already applied it (its dedup window), no read-back
``expired``            the equipment said so, or it passed ``expires_at`` unacknowledged:
                       never re-sent
``rejected``           the equipment refused it (reason recorded)
``escalated``          ``max_attempts`` sends without an acknowledgement: an operator must
                       look; never re-sent
=====================  ==============================================================

Only ``pending`` commands are ever (re-)sent, always with the same id and key, so the
equipment's dedup window answers ``duplicate`` instead of applying twice. With a
:class:`edge_bridge.store.Store` every change is written through, and a new ledger on the same
store resumes the pending commands after a bridge restart.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from edge_bridge import schema
from edge_bridge.store import Store
from envs.config import setting

__all__ = [
    "ACK_STATUSES",
    "FINAL_STATUSES",
    "READBACK_TOLERANCE",
    "CommandLedger",
    "DedupWindow",
    "LedgerConfig",
    "LedgerPoll",
    "TrackedCommand",
    "idempotency_key",
]

ACK_STATUSES = ("applied", "duplicate", "expired", "rejected")
"""What the equipment may answer (the ack payload's ``status``)."""
FINAL_STATUSES = ("confirmed", "readback_mismatch", "expired", "rejected", "escalated")
READBACK_TOLERANCE: dict[str, float] = {"speed_factor": 1e-3, "standby": 0.0}
"""Tags compared on read-back and their tolerance (engineering units; booleans exact).
``maintenance`` is a one-shot request, not a holding value, so it is not read back."""


@dataclass(frozen=True, kw_only=True)
class LedgerConfig:
    """The ledger's settings (the ``[commands]`` table of ``configs/bridge/bridge.toml``)."""

    ttl_s: float = setting(60.0, low=0.1, high=86_400.0, doc="command lifetime, s")
    retry_after_s: float = setting(5.0, low=0.01, high=3_600.0, doc="re-send after, s")
    max_attempts: int = setting(3, low=1, high=100, doc="sends before escalation")
    readback_tolerance: dict[str, float] = setting(  # noqa: RUF009 (a field)
        dict(READBACK_TOLERANCE), doc="tag = tolerance in the tag's unit"
    )


def idempotency_key(machine: str, decision_index: int, policy_version: str) -> str:
    """The one spelling of a command's idempotency key."""
    return f"{machine}:{decision_index}:{policy_version}"


@dataclass(frozen=True)
class TrackedCommand:
    """One command to one machine and what became of it (times: unix seconds); the wire
    message is :meth:`message` (:class:`edge_bridge.schema.Command`)."""

    command_id: str
    idempotency_key: str
    machine: str
    decision_index: int
    policy_version: str
    stage: str
    setpoints: dict[str, Any]
    issued_at: float
    expires_at: float
    status: str = "pending"
    attempts: int = 0
    last_sent_at: float | None = None
    ack_status: str | None = None
    ack_reason: str = ""
    acked_at: float | None = None
    readback: dict[str, Any] | None = None
    mismatches: dict[str, Any] = field(default_factory=dict)

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    def message(self) -> schema.Command:
        """The command as it goes on the wire (validated)."""
        return schema.Command(
            command_id=self.command_id,
            idempotency_key=self.idempotency_key,
            decision_index=self.decision_index,
            machine=self.machine,
            policy_version=self.policy_version,
            stage=self.stage,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            setpoints=self.setpoints,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> TrackedCommand:
        return cls(**row)


@dataclass(frozen=True)
class LedgerPoll:
    """What :meth:`CommandLedger.poll` found: commands to re-send now, newly expired and newly
    escalated ones."""

    resend: list[TrackedCommand]
    expired: list[TrackedCommand]
    escalated: list[TrackedCommand]


class CommandLedger:
    """Creates commands, records acknowledgements and read-backs, and says what to re-send.

    ``ttl_s``: lifetime of a command (s); ``retry_after_s``: an unacknowledged command is due
    again this long after its last send; ``max_attempts``: sends before it is escalated;
    ``tolerances``: read-back tolerance per tag; ``now``: the clock (unix s).
    """

    def __init__(
        self,
        *,
        ttl_s: float = 60.0,
        retry_after_s: float = 5.0,
        max_attempts: int = 3,
        tolerances: Mapping[str, float] | None = None,
        now: Callable[[], float] = time.time,
        store: Store | None = None,
    ) -> None:
        if not (ttl_s > 0 and retry_after_s > 0 and max_attempts >= 1):
            raise ValueError("ttl_s and retry_after_s must be > 0 and max_attempts >= 1")
        self.ttl_s, self.retry_after_s, self.max_attempts = ttl_s, retry_after_s, max_attempts
        self.tolerances = dict(READBACK_TOLERANCE if tolerances is None else tolerances)
        self.now = now
        self.store = store
        self._by_id: dict[str, TrackedCommand] = {}
        self._by_key: dict[str, str] = {}
        self._open: dict[str, None] = {}  # ids of pending commands, in creation order
        if store is not None:
            for row in store.load_commands():
                command = TrackedCommand.from_row(row)
                self._by_id[command.command_id] = command
                self._by_key[command.idempotency_key] = command.command_id
                if command.status == "pending":
                    self._open[command.command_id] = None

    @classmethod
    def from_config(
        cls,
        config: LedgerConfig,
        *,
        now: Callable[[], float] = time.time,
        store: Store | None = None,
    ) -> CommandLedger:
        return cls(
            ttl_s=config.ttl_s,
            retry_after_s=config.retry_after_s,
            max_attempts=config.max_attempts,
            tolerances=config.readback_tolerance,
            now=now,
            store=store,
        )

    # -- bookkeeping -------------------------------------------------------------------
    def _save(self, command: TrackedCommand) -> TrackedCommand:
        self._by_id[command.command_id] = command
        self._by_key[command.idempotency_key] = command.command_id
        if command.status == "pending":
            self._open[command.command_id] = None
        else:
            self._open.pop(command.command_id, None)
        if self.store is not None:
            self.store.save_command(command.to_row())
        return command

    def get(self, command_id: str) -> TrackedCommand:
        """The command with this id; ``KeyError`` naming it if the ledger never issued it."""
        try:
            return self._by_id[command_id]
        except KeyError:
            raise KeyError(f"command {command_id!r} was not issued by this ledger") from None

    def by_key(self, key: str) -> TrackedCommand | None:
        command_id = self._by_key.get(key)
        return None if command_id is None else self._by_id[command_id]

    def commands(self) -> list[TrackedCommand]:
        """Every command, oldest first."""
        return list(self._by_id.values())

    # -- lifecycle ---------------------------------------------------------------------
    def create(
        self,
        machine: str,
        decision_index: int,
        policy_version: str,
        stage: str,
        setpoints: Mapping[str, Any],
    ) -> tuple[TrackedCommand, bool]:
        """A new pending command, or the existing one if its idempotency key was used already
        (nothing new is created). Returns ``(command, created)``."""
        key = idempotency_key(machine, decision_index, policy_version)
        existing = self.by_key(key)
        if existing is not None:
            return existing, False
        issued = self.now()
        command = TrackedCommand(
            command_id=schema.new_command_id(),
            idempotency_key=key,
            machine=machine,
            decision_index=int(decision_index),
            policy_version=policy_version,
            stage=stage,
            setpoints=dict(setpoints),
            issued_at=issued,
            expires_at=issued + self.ttl_s,
        )
        return self._save(command), True

    def mark_sent(self, command_id: str) -> TrackedCommand:
        """Count one send of a pending command (first send or a retry). Refuses a command
        that is no longer pending (expired, escalated, acknowledged): it must not go out."""
        command = self.get(command_id)
        if command.status != "pending":
            raise ValueError(f"command {command_id} is {command.status}; it is not sent again")
        if self.now() >= command.expires_at:
            self._save(replace(command, status="expired", ack_reason="expired before sending"))
            raise ValueError(f"command {command_id} expired at {command.expires_at}; not sent")
        return self._save(replace(command, attempts=command.attempts + 1, last_sent_at=self.now()))

    def record_ack(
        self,
        command_id: str,
        status: str,
        reason: str = "",
        readback: Mapping[str, Any] | None = None,
    ) -> TrackedCommand:
        """Record the equipment's acknowledgement (``status`` one of :data:`ACK_STATUSES`) and
        its read-back; ``applied``/``duplicate`` with a read-back become ``confirmed`` or
        ``readback_mismatch``. An acknowledgement for a command already settled changes
        nothing (a late duplicate ack)."""
        if status not in ACK_STATUSES:
            raise ValueError(f"ack status {status!r} is not one of {ACK_STATUSES}")
        command = self.get(command_id)
        if command.status not in ("pending", "escalated"):
            return command
        final = status
        mismatches: dict[str, Any] = {}
        if status in ("applied", "duplicate") and readback is not None:
            mismatches = self.readback_mismatches(command.setpoints, readback)
            final = "readback_mismatch" if mismatches else "confirmed"
        return self._save(
            replace(
                command,
                status=final,
                ack_status=status,
                ack_reason=reason,
                acked_at=self.now(),
                readback=None if readback is None else dict(readback),
                mismatches=mismatches,
            )
        )

    def readback_mismatches(
        self, setpoints: Mapping[str, Any], readback: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Tag → (sent, read back) for every compared tag off by more than its tolerance (a
        tag missing from the read-back, or not a number, is a mismatch)."""
        mismatches: dict[str, Any] = {}
        for tag, tolerance in self.tolerances.items():
            if tag not in setpoints:
                continue
            sent, got = setpoints[tag], readback.get(tag)
            try:
                ok = abs(float(got) - float(sent)) <= tolerance  # type: ignore[arg-type]
                ok = ok and math.isfinite(float(got))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                ok = False
            if not ok:
                mismatches[tag] = [sent, got]
        return mismatches

    def pending(self) -> list[TrackedCommand]:
        """Unacknowledged, unexpired, not escalated commands (the ones to re-send after a
        reconnect, same id and key); expires the overdue ones first."""
        self._expire_overdue()
        return [self._by_id[i] for i in self._open]

    def _expire_overdue(self) -> list[TrackedCommand]:
        now = self.now()
        expired = []
        for command in [self._by_id[i] for i in self._open]:
            if command.status == "pending" and now >= command.expires_at:
                reason = "no acknowledgement before expires_at"
                expired.append(self._save(replace(command, status="expired", ack_reason=reason)))
        return expired

    def poll(self) -> LedgerPoll:
        """Expire overdue commands, escalate those sent ``max_attempts`` times without an
        answer for ``retry_after_s``, and list the pending ones due for a re-send."""
        expired = self._expire_overdue()
        now = self.now()
        resend, escalated = [], []
        for command in [self._by_id[i] for i in self._open]:
            if command.status != "pending" or command.last_sent_at is None:
                continue
            if now - command.last_sent_at < self.retry_after_s:
                continue
            if command.attempts >= self.max_attempts:
                reason = f"no acknowledgement after {command.attempts} sends"
                escalated.append(
                    self._save(replace(command, status="escalated", ack_reason=reason))
                )
            else:
                resend.append(command)
        return LedgerPoll(resend=resend, expired=expired, escalated=escalated)


class DedupWindow:
    """The equipment side: the idempotency keys and command ids it has applied, so a replayed
    command is answered ``duplicate`` instead of applied twice.

    Bounded to ``capacity`` entries (oldest forgotten first: size it above the commands that
    can be in flight during one ``ttl_s``, since an older command is refused as expired
    anyway). With ``path`` the window lives in a small SQLite file and survives an equipment
    restart.
    """

    def __init__(self, capacity: int = 10_000, path: str | Path | None = None) -> None:
        if capacity < 1:
            raise ValueError("DedupWindow capacity must be >= 1")
        self.capacity = capacity
        self._entries: OrderedDict[str, str] = OrderedDict()  # key -> command id
        self._ids: set[str] = set()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS seen (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
                "idempotency_key TEXT UNIQUE NOT NULL, command_id TEXT NOT NULL)"
            )
            for key, command_id in self._db.execute(
                "SELECT idempotency_key, command_id FROM seen ORDER BY seq"
            ):
                self._entries[key] = command_id
                self._ids.add(command_id)
            self._trim()

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, command_id: str, key: str) -> bool:
        """Whether a command with this id or this idempotency key was remembered."""
        return key in self._entries or command_id in self._ids

    def remember(self, command_id: str, key: str) -> bool:
        """Remember an applied command; returns ``True`` if it was new, ``False`` if it is a
        duplicate (then nothing changes)."""
        if self.seen(command_id, key):
            return False
        self._entries[key] = command_id
        self._ids.add(command_id)
        if self._db is not None:
            self._db.execute(
                "INSERT INTO seen (idempotency_key, command_id) VALUES (?, ?)", (key, command_id)
            )
        self._trim()
        return True

    def _trim(self) -> None:
        while len(self._entries) > self.capacity:
            key, command_id = self._entries.popitem(last=False)
            self._ids.discard(command_id)
            if self._db is not None:
                self._db.execute("DELETE FROM seen WHERE idempotency_key = ?", (key,))

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
