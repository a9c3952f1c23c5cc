"""The plant emulator's settings and results (:mod:`edge_bridge.equipment` re-exports them):
:class:`EmulatorConfig` (site, node, lock-step, faults by interval), the faults
:class:`DropFault` and :class:`OfflineFault`, :class:`CommandCounters` (commands answered by
ack status) and :class:`StepResult` (what one ``PlantEmulator.step`` did). Invalid values raise
ValueError naming the field."""

from __future__ import annotations

from dataclasses import dataclass

from edge_bridge.schema import LineKpi, Telemetry
from edge_bridge.topics import check_name
from envs.kpi import IntervalRecord

__all__ = [
    "CommandCounters",
    "DropFault",
    "EmulatorConfig",
    "OfflineFault",
    "StepResult",
    "check_at_least",
]


def check_at_least(name: str, value: float, low: float) -> None:
    """ValueError naming ``name`` unless ``value >= low`` (NaN fails too)."""
    if not value >= low:
        raise ValueError(f"{name} = {value!r} must be >= {low}")


@dataclass(frozen=True)
class DropFault:
    """No telemetry from ``machine`` for ``count`` intervals from decision interval ``start``."""

    machine: str
    start: int
    count: int

    def __post_init__(self) -> None:
        check_at_least("DropFault.start", self.start, 0)
        check_at_least("DropFault.count", self.count, 1)


@dataclass(frozen=True)
class OfflineFault:
    """The gateway drops its connection at the start of interval ``start`` for ``count``
    intervals (``go_offline``)."""

    start: int
    count: int

    def __post_init__(self) -> None:
        check_at_least("OfflineFault.start", self.start, 0)
        check_at_least("OfflineFault.count", self.count, 1)


@dataclass(frozen=True)
class EmulatorConfig:
    """How the emulator behaves on the broker. ``lockstep``: ``step`` waits up to
    ``command_timeout_s`` wall seconds for the last interval's commands. ``ack_delay_s``: wall
    seconds every ack is held back (a slow device). ``buffer_offline``: samples taken while
    offline are sent after the reconnect (else lost, as on most gateways). ``drops``,
    ``offline``: faults scheduled by interval. ``bd_seq``: the first birth/death sequence."""

    site: str = "plant-a"
    node: str = "gw-1"
    lockstep: bool = True
    command_timeout_s: float = 10.0
    ack_delay_s: float = 0.0
    buffer_offline: bool = False
    connect_timeout_s: float = 10.0
    drops: tuple[DropFault, ...] = ()
    offline: tuple[OfflineFault, ...] = ()
    bd_seq: int = 0

    def __post_init__(self) -> None:
        check_name(self.site, "site")
        check_name(self.node, "node")
        check_at_least("command_timeout_s", self.command_timeout_s, 0.0)
        check_at_least("ack_delay_s", self.ack_delay_s, 0.0)
        check_at_least("connect_timeout_s", self.connect_timeout_s, 0.1)
        check_at_least("bd_seq", self.bd_seq, 0)


@dataclass
class CommandCounters:
    """Commands answered so far, by ack status, and machines that had no command for an
    interval in lock-step (``missing``, summed over intervals)."""

    applied: int = 0
    duplicate: int = 0
    expired: int = 0
    rejected: int = 0
    missing: int = 0


@dataclass(frozen=True)
class StepResult:
    """What one ``step`` did: decision ``interval`` index, plant ``time_s`` at its end, the
    ``telemetry`` and ``kpi`` published live (empty / None while offline), the plant's
    ``records`` and ``events``, commands ``applied`` before it, the ``missing`` machines (no
    command for the previous interval in lock-step), ``online`` and the step's ``wall_s``."""

    interval: int
    time_s: float
    telemetry: tuple[Telemetry, ...]
    kpi: LineKpi | None
    records: tuple[IntervalRecord, ...]
    events: dict[str, int]
    applied: int
    missing: tuple[str, ...]
    online: bool
    wall_s: float
