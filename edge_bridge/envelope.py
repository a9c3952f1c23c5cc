"""The safety envelope: what a setpoint may be before it reaches a machine.

The setpoint tags (:data:`TAGS`, from the one list :data:`edge_bridge.schema.SETPOINT_TAGS`):
per machine ``speed_factor`` (float, 1 = nominal, engineering unit: factor on the station's
nominal speed), ``standby`` (bool: standby permitted when starved) and ``maintenance`` (bool: a
one-shot maintenance request).

Per tag the envelope states its limits and whether a violation is clamped or rejected:

- ``speed_factor``: bounds ``[low, high]`` (default: the station's ``speed_range``; an envelope
  may narrow it, never widen it) and ``max_step``, the largest change per decision interval
  against the last applied value (e.g. 0.1). Bounds win over the rate limit: a value is first
  rate-limited, then clipped to the bounds, so a machine outside tightened bounds moves back in.
- ``standby`` / ``maintenance``: ``allow_true = false`` forbids setting them (clamp: send
  ``false``).

``mode = "clamp"`` replaces a violating value by the nearest allowed one and records the action;
``mode = "reject"`` rejects the whole command for that machine (it keeps its last applied
setpoints). A value of the wrong type, NaN or ±inf, a missing or an unknown tag is rejected in
either mode. The envelope carries a ``version`` (versioned with the policy) that the audit log
records. TOML layout (``configs/bridge/envelope.toml``)::

    version = "2025-01-envelope-1"
    speed_factor = { max_step = 0.1, mode = "clamp" }     # defaults for every station
    [[stations]]                                          # every station of the plant, once
    name = "machining"
    speed_factor = { low = 0.8, high = 1.2 }
    [[machines]]                                          # optional per-machine overrides
    name = "machining-2"
    speed_factor = { high = 1.1, mode = "reject" }

Machine values override station values, which override the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from edge_bridge.schema import SETPOINT_TAGS
from envs.config import ConfigError, from_mapping, read_toml, setting
from envs.scenario import Scenario

__all__ = [
    "MODES",
    "TAGS",
    "EnvelopeAction",
    "EnvelopeConfig",
    "EnvelopeResult",
    "SafetyEnvelope",
    "SpeedLimits",
    "SwitchLimits",
    "TagLimits",
]

TAGS = tuple(SETPOINT_TAGS)
"""The setpoint tags of every machine, in this order (:data:`edge_bridge.schema.SETPOINT_TAGS`)."""
SWITCH_TAGS = tuple(tag for tag, wire in SETPOINT_TAGS.items() if wire is bool)
"""The boolean tags (``standby``, ``maintenance``)."""
MODES = ("clamp", "reject")


@dataclass(frozen=True, kw_only=True)
class SpeedLimits:
    """Limits of ``speed_factor``; ``None`` = inherit (machine ← station ← defaults)."""

    low: float | None = setting(None, low=0.1, high=2.0, doc="lowest factor")
    high: float | None = setting(None, low=0.1, high=2.0, doc="highest factor")
    max_step: float | None = setting(
        None, low=0.0, high=2.0, doc="largest change per decision interval (factor units)"
    )
    mode: str | None = setting(None, choices=MODES, doc="clamp or reject a violation")


@dataclass(frozen=True, kw_only=True)
class SwitchLimits:
    """Limits of a boolean tag; ``None`` = inherit."""

    allow_true: bool | None = setting(None, doc="false: the tag may not be set")
    mode: str | None = setting(None, choices=MODES, doc="clamp (send false) or reject")


@dataclass(frozen=True, kw_only=True)
class StationEnvelope:
    """One ``[[stations]]`` or ``[[machines]]`` entry."""

    name: str = setting(doc="station name (stations) or machine name (machines)")
    speed_factor: SpeedLimits = setting(SpeedLimits())  # noqa: RUF009 frozen
    standby: SwitchLimits = setting(SwitchLimits())  # noqa: RUF009 frozen
    maintenance: SwitchLimits = setting(SwitchLimits())  # noqa: RUF009 frozen


@dataclass(frozen=True, kw_only=True)
class EnvelopeConfig:
    """The envelope file as written (validated types and ranges; see the module docstring)."""

    version: str = setting(doc="envelope version, recorded with every decision")
    speed_factor: SpeedLimits = setting(SpeedLimits(max_step=0.1, mode="clamp"))  # noqa: RUF009
    standby: SwitchLimits = setting(SwitchLimits(allow_true=True, mode="clamp"))  # noqa: RUF009
    maintenance: SwitchLimits = setting(SwitchLimits(allow_true=True, mode="clamp"))  # noqa: RUF009
    stations: tuple[StationEnvelope, ...] = setting(doc="every station of the plant, once")
    machines: tuple[StationEnvelope, ...] = setting((), doc="per-machine overrides")


@dataclass(frozen=True)
class TagLimits:
    """The resolved limits of one machine (every field set)."""

    speed_low: float
    speed_high: float
    speed_max_step: float | None
    speed_mode: str
    allow_true: dict[str, bool]
    switch_mode: dict[str, str]


class EnvelopeAction(NamedTuple):
    """What the envelope did to one tag: ``action`` is ``"clamp"`` or ``"reject"``."""

    tag: str
    action: str
    reason: str


@dataclass(frozen=True)
class EnvelopeResult:
    """``applied``: the setpoints to send (``None``: rejected, keep the last applied ones);
    ``actions``: every clamp or reject with its reason (empty: passed unchanged)."""

    applied: dict[str, Any] | None
    actions: list[EnvelopeAction]

    @property
    def rejected(self) -> bool:
        return self.applied is None


def _merge(*layers: Any) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for field in dataclasses.fields(layer):
            value = getattr(layer, field.name)
            if value is not None:
                merged[field.name] = value
    return merged


def _is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iuf"
    )


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "b"
    )


class SafetyEnvelope:
    """Per-machine limits resolved against a scenario; :meth:`check` applies them."""

    def __init__(self, config: EnvelopeConfig, scenario: Scenario, *, source: str = "<envelope>"):
        self.config = config
        self.version = config.version
        self.source = source
        self.limits = self._resolve(config, scenario, source)

    @classmethod
    def load(cls, path: str | Path, scenario: Scenario) -> SafetyEnvelope:
        """Read and validate an envelope TOML against ``scenario`` (its stations, machines and
        speed ranges); every error is a :class:`ConfigError` naming the file and key."""
        config = from_mapping(EnvelopeConfig, read_toml(path), source=str(path))
        return cls(config, scenario, source=str(path))

    @property
    def machine_names(self) -> list[str]:
        return list(self.limits)

    @staticmethod
    def _resolve(config: EnvelopeConfig, scenario: Scenario, source: str) -> dict[str, TagLimits]:
        stations = {s.name: s for s in scenario.stations}
        listed = [entry.name for entry in config.stations]
        for index, name in enumerate(listed):
            if name not in stations:
                raise ConfigError(
                    f"{source}: 'stations[{index}].name' = {name!r} is not a station of "
                    f"{scenario.name}; its stations: {', '.join(stations)}"
                )
            if listed.count(name) > 1:
                raise ConfigError(f"{source}: station {name!r} is listed more than once")
        missing = [name for name in stations if name not in listed]
        if missing:
            raise ConfigError(
                f"{source}: stations {', '.join(missing)} of {scenario.name} have no "
                "[[stations]] entry; add one per station (an empty entry uses the station's "
                "speed_range)"
            )
        machine_station = dict(scenario.machines())
        overrides: dict[str, StationEnvelope] = {}
        for index, entry in enumerate(config.machines):
            if entry.name not in machine_station:
                raise ConfigError(
                    f"{source}: 'machines[{index}].name' = {entry.name!r} is not a machine of "
                    f"{scenario.name}; its machines: {', '.join(machine_station)}"
                )
            if entry.name in overrides:
                raise ConfigError(f"{source}: machine {entry.name!r} is listed more than once")
            overrides[entry.name] = entry
        by_station = {entry.name: entry for entry in config.stations}
        limits = {}
        for machine, station in scenario.machines():
            station_entry = by_station[station.name]
            machine_entry = overrides.get(machine, StationEnvelope(name=machine))
            where = (
                f"machines[{list(overrides).index(machine)}]"
                if machine in overrides
                else f"stations[{listed.index(station.name)}]"
            )
            speed = _merge(
                config.speed_factor, station_entry.speed_factor, machine_entry.speed_factor
            )
            low_range, high_range = station.speed_range
            low, high = speed.get("low", low_range), speed.get("high", high_range)
            if not (low_range <= low <= high <= high_range):
                raise ConfigError(
                    f"{source}: '{where}.speed_factor' bounds [{low}, {high}] of {machine} must "
                    f"satisfy {low_range} <= low <= high <= {high_range} (station "
                    f"{station.name}'s speed_range)"
                )
            allow, modes = {}, {}
            for tag in SWITCH_TAGS:
                switch = _merge(
                    getattr(config, tag), getattr(station_entry, tag), getattr(machine_entry, tag)
                )
                allow[tag] = switch.get("allow_true", True)
                modes[tag] = switch.get("mode", "clamp")
            limits[machine] = TagLimits(
                speed_low=low,
                speed_high=high,
                speed_max_step=speed.get("max_step"),
                speed_mode=speed.get("mode", "clamp"),
                allow_true=allow,
                switch_mode=modes,
            )
        return limits

    def check_machines(self, machines: list[str] | tuple[str, ...]) -> None:
        """Raise :class:`ConfigError` unless ``machines`` (e.g. a policy's or the equipment's
        birth list) are exactly the envelope's machines."""
        unknown = [m for m in machines if m not in self.limits]
        absent = [m for m in self.limits if m not in machines]
        if unknown or absent:
            raise ConfigError(
                f"{self.source}: the envelope's machines do not match: not in the envelope "
                f"{unknown or 'none'}, missing from the given list {absent or 'none'}"
            )

    def check(
        self,
        machine: str,
        proposed: Mapping[str, Any],
        last_applied: Mapping[str, Any] | None = None,
    ) -> EnvelopeResult:
        """Check ``proposed`` setpoints of ``machine`` against its limits and the change since
        ``last_applied`` (``None``: no rate limit, e.g. the first command). Returns the setpoints
        to apply (clamped where the tag's mode is clamp) or ``None`` with the reasons."""
        if machine not in self.limits:
            raise KeyError(f"{machine!r} is not a machine of the envelope {self.version}")
        limits = self.limits[machine]
        actions: list[EnvelopeAction] = []
        applied: dict[str, Any] = {}
        for tag in sorted(set(proposed) - set(TAGS)):
            actions.append(EnvelopeAction(tag, "reject", f"unknown tag; tags are {TAGS}"))
        for tag in TAGS:
            if tag not in proposed:
                actions.append(EnvelopeAction(tag, "reject", "missing"))
                continue
            value = proposed[tag]
            if tag == "speed_factor":
                applied[tag] = self._check_speed(limits, value, last_applied, actions)
            else:
                applied[tag] = self._check_switch(limits, tag, value, actions)
        if any(action.action == "reject" for action in actions):
            return EnvelopeResult(None, actions)
        return EnvelopeResult(applied, actions)

    @staticmethod
    def _check_speed(
        limits: TagLimits,
        value: Any,
        last_applied: Mapping[str, Any] | None,
        actions: list[EnvelopeAction],
    ) -> float | None:
        tag, mode = "speed_factor", limits.speed_mode
        if not _is_number(value) or not math.isfinite(float(value)):
            actions.append(EnvelopeAction(tag, "reject", f"{value!r} is not a finite number"))
            return None
        result = float(value)
        last: Any = None if last_applied is None else last_applied.get("speed_factor")
        step = limits.speed_max_step
        known = last is not None and _is_number(last) and math.isfinite(float(last))
        if step is not None and known and abs(result - float(last)) > step + 1e-12:
            previous = float(last)
            reason = f"change {result - previous:+.4g} from {previous:.4g} exceeds ±{step}"
            actions.append(EnvelopeAction(tag, mode, reason))
            result = min(max(result, previous - step), previous + step)
        if not (limits.speed_low <= result <= limits.speed_high):
            reason = f"{result:.4g} outside [{limits.speed_low}, {limits.speed_high}]"
            actions.append(EnvelopeAction(tag, mode, reason))
            result = min(max(result, limits.speed_low), limits.speed_high)
        return result

    @staticmethod
    def _check_switch(
        limits: TagLimits, tag: str, value: Any, actions: list[EnvelopeAction]
    ) -> bool | None:
        if not _is_bool(value):
            actions.append(EnvelopeAction(tag, "reject", f"{value!r} is not true or false"))
            return None
        if bool(value) and not limits.allow_true[tag]:
            actions.append(EnvelopeAction(tag, limits.switch_mode[tag], "not allowed: true"))
            return False
        return bool(value)
