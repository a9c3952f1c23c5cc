"""The gray-scale gate's configuration (``configs/bridge/gate.toml``) and its cohorts.

:class:`GateConfig` holds the rollout's parameters: the stage length ``min_intervals``, the
trust threshold, the KPI tolerances for promotion and rollback, operator approval, the shift
windows (:class:`ShiftWindow`) and the canary cohorts in rollout order (:class:`CohortConfig`).
:func:`assign_cohorts` turns the cohorts into machine → cohort for a plant's machines: explicit
names and/or a ``share`` of the machines picked by a hash of ``rollout_id:machine``, so a
machine's cohort never changes for a rollout id; a cohort naming neither takes every machine not
in an earlier cohort. The state machine that uses them is :mod:`edge_bridge.gate`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from envs.config import ConfigError, load_toml, setting

__all__ = [
    "CohortConfig",
    "GateConfig",
    "ShiftWindow",
    "assign_cohorts",
    "load_gate_config",
]


@dataclass(frozen=True, kw_only=True)
class ShiftWindow:
    """A daily time window; ``end_hour`` before ``start_hour`` wraps over midnight."""

    name: str = setting(doc="window name, e.g. early")
    start_hour: float = setting(low=0.0, high=24.0, doc="hour of day it starts")
    end_hour: float = setting(low=0.0, high=24.0, doc="hour of day it ends (exclusive)")

    def contains(self, hour: float) -> bool:
        if self.start_hour <= self.end_hour:
            return self.start_hour <= hour < self.end_hour
        return hour >= self.start_hour or hour < self.end_hour


@dataclass(frozen=True, kw_only=True)
class CohortConfig:
    """One canary cohort (see the module docstring)."""

    name: str = setting(doc="cohort name, unique")
    machines: tuple[str, ...] = setting((), doc="machines named explicitly")
    share: float = setting(0.0, low=0.0, high=1.0, doc="share of machines picked by hash")
    shift: str = setting("", doc="name of a [[shifts]] window; '' = all day")


_DEFAULT_SHIFTS = (
    ShiftWindow(name="early", start_hour=6.0, end_hour=14.0),
    ShiftWindow(name="late", start_hour=14.0, end_hour=22.0),
    ShiftWindow(name="night", start_hour=22.0, end_hour=6.0),
)


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    """The gate's parameters (``configs/bridge/gate.toml``)."""

    rollout_id: str = setting(doc="names this rollout; seeds the hash-based cohorts")
    min_intervals: int = setting(12, low=1, high=100_000, doc="N decision intervals per stage")
    trust_threshold: float = setting(0.5, low=0.0, high=1.0, doc="trust needed, 0..1")
    kpi_tolerance: float = setting(
        0.02, low=0.0, high=10.0, doc="promotion: candidate Z at most this fraction worse"
    )
    rollback_kpi_tolerance: float = setting(
        0.05, low=0.0, high=10.0, doc="rollback: candidate Z more than this fraction worse"
    )
    kpi_min_intervals: int = setting(
        48, low=1, high=100_000, doc="intervals of paired KPIs before they are judged (4 h)"
    )
    kpi_window_intervals: int = setting(
        288, low=1, high=1_000_000, doc="the KPI comparison's window, intervals (a day)"
    )
    kpi_block_intervals: int = setting(
        12, low=1, high=10_000, doc="intervals per block of the KPI bounds (1 h)"
    )
    require_approval: bool = setting(False, doc="an operator approves each promotion")
    start_h: float = setting(
        6.0, low=0.0, high=168.0, doc="hours into the week at plant time_s = 0 (plant start_h)"
    )
    shifts: tuple[ShiftWindow, ...] = setting(_DEFAULT_SHIFTS)
    cohorts: tuple[CohortConfig, ...] = setting(doc="canary cohorts, in rollout order")

    def __post_init__(self) -> None:
        shift_names = [s.name for s in self.shifts]
        if len(set(shift_names)) != len(shift_names):
            raise ValueError(f"shift names must be unique: {shift_names}")
        if not self.cohorts:
            raise ValueError("at least one [[cohorts]] entry is needed")
        names = [c.name for c in self.cohorts]
        if len(set(names)) != len(names):
            raise ValueError(f"cohort names must be unique: {names}")
        for index, cohort in enumerate(self.cohorts):
            if cohort.shift and cohort.shift not in shift_names:
                raise ValueError(
                    f"cohorts[{index}].shift = {cohort.shift!r} is not a shift; shifts: "
                    f"{shift_names}"
                )
        if sum(c.share for c in self.cohorts) > 1.0 + 1e-9:
            raise ValueError("the cohorts' shares add up to more than 1")
        if self.kpi_window_intervals < self.kpi_min_intervals:
            raise ValueError("kpi_window_intervals must be >= kpi_min_intervals")
        if self.rollback_kpi_tolerance < self.kpi_tolerance:
            raise ValueError("rollback_kpi_tolerance must be >= kpi_tolerance")


def load_gate_config(path: str | Path) -> GateConfig:
    """Read and validate a gate TOML; errors name the file and the key."""
    return load_toml(GateConfig, path)


def _hash_unit(rollout_id: str, machine: str) -> float:
    digest = hashlib.sha256(f"{rollout_id}:{machine}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_cohorts(config: GateConfig, machines: Sequence[str]) -> dict[str, int]:
    """Machine → index of its cohort in ``config.cohorts`` (machines of no cohort are left
    out). Named machines first, then each ``share`` by a hash of ``rollout_id:machine`` (so a
    machine's cohort never changes for a rollout id), then a cohort naming neither takes every
    machine still without one. ``ConfigError`` for a name that is not one of ``machines``, a
    machine in two cohorts, or a cohort left without machines."""
    cohort_of: dict[str, int] = {}
    for index, cohort in enumerate(config.cohorts):
        for machine in cohort.machines:
            if machine not in machines:
                raise ConfigError(
                    f"gate config: cohorts[{index}] ({cohort.name}) names {machine!r}, not "
                    f"a machine of the plant; machines: {', '.join(machines)}"
                )
            if machine in cohort_of:
                raise ConfigError(f"gate config: {machine!r} is in two cohorts")
            cohort_of[machine] = index
    edges, total = [], 0.0
    for index, cohort in enumerate(config.cohorts):
        total += cohort.share
        edges.append((total, index))
    for machine in machines:
        if machine in cohort_of:
            continue
        unit = _hash_unit(config.rollout_id, machine)
        for edge, index in edges:
            if config.cohorts[index].share > 0 and unit < edge:
                cohort_of[machine] = index
                break
    for index, cohort in enumerate(config.cohorts):
        if not cohort.machines and cohort.share == 0:
            for machine in machines:
                cohort_of.setdefault(machine, index)
    for index, cohort in enumerate(config.cohorts):
        if index not in cohort_of.values():
            raise ConfigError(
                f"gate config: cohort {cohort.name!r} has no machines (share too small for "
                f"{len(machines)} machines, or all taken by earlier cohorts)"
            )
    return cohort_of
