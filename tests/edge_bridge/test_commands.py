"""The command ledger (idempotency, expiry, retry → escalated, read-back, restart) and the
equipment's dedup window."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_bridge.commands import CommandLedger, DedupWindow, LedgerConfig, idempotency_key
from edge_bridge.store import Store
from envs.config import ConfigError, from_mapping, read_toml

SETPOINTS = {"speed_factor": 1.1, "standby": False, "maintenance": False}


class Clock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time


def make_ledger(clock, **kwargs) -> CommandLedger:
    return CommandLedger(ttl_s=60.0, retry_after_s=5.0, max_attempts=3, now=clock, **kwargs)


def test_create_is_idempotent_per_key():
    clock = Clock()
    ledger = make_ledger(clock)
    command, created = ledger.create("machining-1", 7, "ppo-1", "canary", SETPOINTS)
    assert created and len(command.command_id) == 32
    assert (
        command.idempotency_key
        == "machining-1:7:ppo-1"
        == idempotency_key("machining-1", 7, "ppo-1")
    )
    assert (command.issued_at, command.expires_at, command.status) == (1000.0, 1060.0, "pending")
    again, created = ledger.create("machining-1", 7, "ppo-1", "canary", {"speed_factor": 0.9})
    assert not created and again == command and again.setpoints == SETPOINTS
    other, created = ledger.create("machining-1", 8, "ppo-1", "canary", SETPOINTS)
    assert created and other.command_id != command.command_id
    assert len(ledger.commands()) == 2


def test_ack_with_readback_confirms_or_flags_a_mismatch():
    clock = Clock()
    ledger = make_ledger(clock)
    first, _ = ledger.create("machining-1", 1, "v", "full", SETPOINTS)
    ledger.mark_sent(first.command_id)
    clock.time += 0.5
    done = ledger.record_ack(
        first.command_id, "applied", readback={"speed_factor": 1.1004, "standby": False}
    )
    assert done.status == "confirmed" and done.acked_at == 1000.5 and done.mismatches == {}
    second, _ = ledger.create("machining-1", 2, "v", "full", SETPOINTS)
    bad = ledger.record_ack(
        second.command_id, "applied", readback={"speed_factor": 1.0, "standby": False}
    )
    assert bad.status == "readback_mismatch" and bad.mismatches == {"speed_factor": [1.1, 1.0]}
    third, _ = ledger.create("machining-1", 3, "v", "full", SETPOINTS)
    missing = ledger.record_ack(third.command_id, "duplicate", readback={"speed_factor": 1.1})
    assert missing.status == "readback_mismatch" and "standby" in missing.mismatches
    fourth, _ = ledger.create("machining-1", 4, "v", "full", SETPOINTS)
    assert ledger.record_ack(fourth.command_id, "applied").status == "applied"
    fifth, _ = ledger.create("machining-1", 5, "v", "full", SETPOINTS)
    refused = ledger.record_ack(fifth.command_id, "rejected", reason="out of envelope")
    assert refused.status == "rejected" and refused.ack_reason == "out of envelope"
    # a late second ack changes nothing
    assert ledger.record_ack(first.command_id, "duplicate").status == "confirmed"
    assert ledger.pending() == []


def test_bad_acks_are_refused():
    ledger = make_ledger(Clock())
    command, _ = ledger.create("welding-1", 1, "v", "full", SETPOINTS)
    with pytest.raises(ValueError, match="not one of"):
        ledger.record_ack(command.command_id, "ok")
    with pytest.raises(KeyError, match="not issued"):
        ledger.record_ack("f" * 32, "applied")
    assert ledger.get(command.command_id).status == "pending"


def test_unacked_commands_expire_and_are_never_resent():
    clock = Clock()
    ledger = make_ledger(clock)
    command, _ = ledger.create("machining-2", 1, "v", "canary", SETPOINTS)
    ledger.mark_sent(command.command_id)
    clock.time += 30
    assert [c.command_id for c in ledger.pending()] == [command.command_id]
    clock.time += 30  # = expires_at
    assert ledger.pending() == []
    assert ledger.get(command.command_id).status == "expired"
    with pytest.raises(ValueError, match="expired"):
        ledger.mark_sent(command.command_id)
    # an expired ack from the equipment is recorded as such
    other, _ = ledger.create("machining-2", 2, "v", "canary", SETPOINTS)
    assert ledger.record_ack(other.command_id, "expired").status == "expired"
    # expiry before the first send
    late, _ = ledger.create("machining-2", 3, "v", "canary", SETPOINTS)
    clock.time += 61
    with pytest.raises(ValueError, match="expired"):
        ledger.mark_sent(late.command_id)
    assert ledger.get(late.command_id).status == "expired"


def test_retries_then_escalates():
    clock = Clock()
    ledger = CommandLedger(ttl_s=600.0, retry_after_s=5.0, max_attempts=3, now=clock)
    command, _ = ledger.create("inspection-1", 1, "v", "full", SETPOINTS)
    ledger.mark_sent(command.command_id)
    clock.time += 1
    assert ledger.poll().resend == []  # not due yet
    for attempt in (2, 3):
        clock.time += 5
        poll = ledger.poll()
        assert [c.command_id for c in poll.resend] == [command.command_id]
        assert ledger.mark_sent(command.command_id).attempts == attempt
    clock.time += 5
    poll = ledger.poll()
    assert poll.resend == [] and [c.command_id for c in poll.escalated] == [command.command_id]
    escalated = ledger.get(command.command_id)
    assert escalated.status == "escalated" and "after 3 sends" in escalated.ack_reason
    assert ledger.pending() == []
    with pytest.raises(ValueError, match="escalated"):
        ledger.mark_sent(command.command_id)
    # a late ack is still recorded
    assert ledger.record_ack(command.command_id, "applied").status == "applied"
    with pytest.raises(ValueError):
        CommandLedger(max_attempts=0)


def test_ledger_resumes_from_the_store(tmp_path):
    clock = Clock()
    with Store(tmp_path / "bridge.sqlite") as store:
        ledger = make_ledger(clock, store=store)
        pending, _ = ledger.create("machining-1", 4, "v", "canary", SETPOINTS)
        ledger.mark_sent(pending.command_id)
        acked, _ = ledger.create("machining-2", 4, "v", "canary", SETPOINTS)
        ledger.record_ack(
            acked.command_id, "applied", readback={"speed_factor": 1.1, "standby": False}
        )
    with Store(tmp_path / "bridge.sqlite") as store:
        resumed = make_ledger(clock, store=store)
        (again,) = resumed.pending()
        assert again == ledger.get(pending.command_id) and again.attempts == 1
        assert resumed.get(acked.command_id).status == "confirmed"
        same, created = resumed.create("machining-1", 4, "v", "canary", SETPOINTS)
        assert not created and same.command_id == pending.command_id


def test_dedup_window_answers_duplicates_bounded_and_persistent(tmp_path):
    window = DedupWindow(capacity=2)
    assert window.remember("a" * 32, "m:1:v")
    assert not window.remember("a" * 32, "m:1:v")
    assert window.seen("b" * 32, "m:1:v") and window.seen("a" * 32, "x")  # key or id
    window.remember("b" * 32, "m:2:v")
    window.remember("c" * 32, "m:3:v")
    assert len(window) == 2 and not window.seen("a" * 32, "m:1:v")  # oldest forgotten
    path = tmp_path / "dedup.sqlite"
    durable = DedupWindow(capacity=2, path=path)
    for index in range(3):
        durable.remember(f"{index:032x}", f"m:{index}:v")
    durable.close()
    reopened = DedupWindow(capacity=2, path=path)
    assert len(reopened) == 2
    assert reopened.seen(f"{2:032x}", "") and not reopened.seen(f"{0:032x}", "m:0:v")
    assert not reopened.remember(f"{1:032x}", "m:1:v")
    reopened.close()
    with pytest.raises(ValueError):
        DedupWindow(capacity=0)


def test_ledger_config_from_the_example_bridge_toml():
    root = Path(__file__).resolve().parents[2]
    table = read_toml(root / "configs/bridge/bridge.toml")["commands"]
    config = from_mapping(LedgerConfig, table, source="bridge.toml [commands]")
    ledger = CommandLedger.from_config(config, now=Clock())
    assert (ledger.ttl_s, ledger.max_attempts) == (60.0, 3)
    assert ledger.tolerances == {"speed_factor": 0.001, "standby": 0.0}
    with pytest.raises(ConfigError, match="max_attempts"):
        from_mapping(LedgerConfig, {"max_attempts": 0}, source="bridge.toml [commands]")
