"""``CoSimulation``: several FMU units coupled output → input, on an integer tick clock.

    line = CoSimulation({"mill": FmuUnit(mill_fmu), "belt": FmuUnit(belt_fmu)},
                        connections=[("mill.power", "belt.load_mass")], tick=0.001)
    line.step(1.0)       # every unit advances 1 s
    line.step(0.1)       # the communication step may change between steps
    line.time            # exactly ticks * tick: 1.1, with no float drift

Time is an integer number of ticks; a step that is not a whole number of ticks is an
error. Coupling is Jacobi: at each communication point every connection copies its
source output to its target input, then every unit steps in the order given, so the
result does not depend on that order.

When a unit's FMU asks to end the simulation during a step (see :class:`envs.fmu.StopRequest`),
the step still completes for every other unit, the co-simulation stops cleanly and says which
unit asked: ``terminated_by`` names it and ``stop_request`` holds its details. Stepping a
stopped co-simulation raises :class:`envs.fmu.FmuStoppedError`; ``reset()`` (or ``restore()``
of a snapshot taken before the stop) continues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

from envs.fmu.errors import FmuStoppedError, FmuVariableError, StopRequest
from envs.fmu.variables import Value, Variable


class Unit(Protocol):
    """What a co-simulation needs of a unit: :class:`envs.fmu.FmuUnit` or
    :class:`envs.fmu.FmuWorker`."""

    time: float
    variables: dict[str, Variable]
    stop_request: StopRequest | None

    def variable(self, name: str) -> Variable: ...

    def get(self, name: str) -> Any: ...

    def set(self, name_or_values: str | Mapping[str, Value], value: Value | None = None) -> None:
        """Set variables by name."""

    def step(self, dt: float, *, time: float | None = None) -> float: ...

    def snapshot(self) -> Any: ...

    def restore(self, snapshot: Any) -> None:
        """Return to a snapshot."""

    def reset(self, start_values: Mapping[str, Value] | None = None) -> str: ...

    def close(self) -> None:
        """Free the unit."""


def _exact(seconds: float | str | Fraction) -> Fraction:
    """The decimal a user meant: 0.1 -> 1/10 (not the binary float 0.1000000000000000055...)."""
    return seconds if isinstance(seconds, Fraction) else Fraction(str(seconds))


@dataclass(frozen=True)
class Connection:
    """``source_unit.source`` (an output) feeds ``target_unit.target`` (an input)."""

    source_unit: str
    source: str
    target_unit: str
    target: str


@dataclass(frozen=True)
class SystemSnapshot:
    """The clock and a snapshot of every unit."""

    ticks: int
    units: dict[str, Any]
    stop_request: StopRequest | None = None
    terminated_by: str | None = None


class CoSimulation:
    """Units (name → FmuUnit or FmuWorker) and connections ("unit.output", "unit.input")."""

    def __init__(
        self,
        units: Mapping[str, Unit],
        connections: Sequence[tuple[str, str]] = (),
        *,
        tick: float | str = "0.001",
    ) -> None:
        if not units:
            raise ValueError("a co-simulation needs at least one unit")
        self.units = dict(units)
        self.tick = _exact(tick)
        if self.tick <= 0:
            raise ValueError(f"tick must be positive, not {tick}")
        starts = {float(unit.time) for unit in self.units.values()}
        if len(starts) != 1:
            raise ValueError(f"all units must start at the same time, not {sorted(starts)}")
        self.start_time = _exact(starts.pop())
        # time(n) = start + n·tick = (a·q + n·p·b) / (b·q) for start = a/b, tick = p/q: an int
        # true division, correctly rounded like float(Fraction), without building Fractions
        a, b = self.start_time.numerator, self.start_time.denominator
        p, q = self.tick.numerator, self.tick.denominator
        self._clock = (a * q, p * b, b * q)
        self._ticks_of: dict[float | str, int] = {}
        self.ticks = 0
        self.connections = [self._connection(source, target) for source, target in connections]
        targets = [(c.target_unit, c.target) for c in self.connections]
        duplicates = {f"{u}.{v}" for u, v in targets if targets.count((u, v)) > 1}
        if duplicates:
            raise ValueError(f"inputs connected more than once: {sorted(duplicates)}")
        self._connected = set(targets)
        self.stop_request: StopRequest | None = None
        """Details of the stop request that stopped the co-simulation."""
        self.terminated_by: str | None = None
        """Name (key in ``units``) of the unit whose FMU asked to stop, None while running."""
        self._propagate()

    def _split(self, path: str) -> tuple[str, str]:
        unit, _, variable = path.partition(".")
        if unit not in self.units or not variable:
            raise FmuVariableError(
                f"'{path}' must be 'unit.variable' with unit one of {sorted(self.units)}"
            )
        self.units[unit].variable(variable)  # raises a clear error for unknown names
        return unit, variable

    def _connection(self, source: str, target: str) -> Connection:
        source_unit, output = self._split(source)
        target_unit, input_ = self._split(target)
        produced = self.units[source_unit].variables[output]
        consumed = self.units[target_unit].variables[input_]
        if produced.causality != "output":
            raise ValueError(
                f"connection source '{source}' has causality {produced.causality}; "
                "it must be an output"
            )
        if consumed.causality != "input":
            raise ValueError(
                f"connection target '{target}' has causality {consumed.causality}; "
                "it must be an input"
            )
        if produced.shape != consumed.shape:
            raise ValueError(
                f"cannot connect '{source}' of shape {produced.shape} to '{target}' of shape "
                f"{consumed.shape}"
            )
        if produced.kind != consumed.kind:
            raise ValueError(
                f"cannot connect {produced.kind} '{source}' to {consumed.kind} '{target}'"
            )
        return Connection(source_unit, output, target_unit, input_)

    # -- time -------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulation time in seconds: exactly start + ticks * tick, rounded once."""
        return self._time_at(self.ticks)

    def _time_at(self, ticks: int) -> float:
        offset, per_tick, denominator = self._clock
        return (offset + ticks * per_tick) / denominator

    def ticks_of(self, dt: float | str) -> int:
        """``dt`` seconds as a whole number of ticks, or a ValueError that says why not."""
        ticks = _exact(dt) / self.tick
        if ticks.denominator != 1 or ticks <= 0:
            raise ValueError(
                f"step {dt} s is not a positive whole number of clock ticks of "
                f"{float(self.tick)} s; choose a multiple or a finer tick"
            )
        return int(ticks)

    # -- stepping ---------------------------------------------------------------
    def _propagate(self) -> None:
        if not self.connections:
            return
        values = {
            (c.source_unit, c.source): self.units[c.source_unit].get(c.source)
            for c in self.connections
        }
        by_target: dict[str, dict[str, Value]] = {}
        for c in self.connections:
            by_target.setdefault(c.target_unit, {})[c.target] = values[(c.source_unit, c.source)]
        for unit, inputs in by_target.items():
            if self.units[unit].stop_request is None:  # a stopped FMU takes no more inputs
                self.units[unit].set(inputs)

    @property
    def terminated(self) -> bool:
        """Whether a unit's FMU asked to stop (see :attr:`terminated_by`)."""
        return self.stop_request is not None

    def step(self, dt: float | str) -> float:
        """Advance every unit by ``dt`` seconds; returns the new time.

        If a unit's FMU asks to stop during the step, the other units still complete it and
        the co-simulation stops: :attr:`terminated_by` names the unit (the first in order
        when several ask), :attr:`stop_request` says when and why."""
        if self.stop_request is not None:
            raise FmuStoppedError(
                f"the co-simulation was stopped by unit '{self.terminated_by}' at "
                f"t = {self.stop_request.time:g} s: {self.stop_request.describe()}. Call reset() "
                "to start again, or restore() a snapshot taken before the stop."
            )
        ticks = self._ticks_of.get(dt) if isinstance(dt, str | float) else None
        if ticks is None:
            ticks = self.ticks_of(dt)
            if isinstance(dt, str | float):
                self._ticks_of[dt] = ticks
        start = self._time_at(self.ticks)
        end_ticks = self.ticks + ticks
        seconds = self._time_at(end_ticks) - start
        for unit in self.units.values():
            unit.step(seconds, time=start)
        self.ticks = end_ticks
        stopped = [(n, u.stop_request) for n, u in self.units.items() if u.stop_request]
        if stopped:
            self.terminated_by, self.stop_request = stopped[0]
        self._propagate()
        return self.time

    # -- values -------------------------------------------------------------------
    def set(self, path: str, value: Value) -> None:
        """Set an input or parameter, ``"unit.variable"``; connected inputs are refused."""
        unit, variable = self._split(path)
        if (unit, variable) in self._connected:
            raise FmuVariableError(f"'{path}' is driven by a connection and cannot be set")
        self.units[unit].set(variable, value)

    def get(self, path: str) -> Any:
        """Value of ``"unit.variable"``."""
        unit, variable = self._split(path)
        return self.units[unit].get(variable)

    # -- states -------------------------------------------------------------------
    def snapshot(self) -> SystemSnapshot:
        """Snapshot of every unit and the clock (every unit must support FMU states)."""
        units = {name: u.snapshot() for name, u in self.units.items()}
        return SystemSnapshot(self.ticks, units, self.stop_request, self.terminated_by)

    def restore(self, snapshot: SystemSnapshot) -> None:
        """Every unit and the clock back to a snapshot (a stop after it is undone)."""
        for name, unit in self.units.items():
            unit.restore(snapshot.units[name])
        self.ticks = snapshot.ticks
        self.stop_request, self.terminated_by = snapshot.stop_request, snapshot.terminated_by

    def restart_clock(self) -> None:
        """The clock to zero and any stop request cleared, for a caller that has reset every
        unit itself (with its own start values per unit, as the production line does)."""
        self.ticks = 0
        self.stop_request, self.terminated_by = None, None

    def reset(self) -> None:
        """Every unit back to its initial state; the clock to zero."""
        for unit in self.units.values():
            unit.reset()
        self.ticks = 0
        self.stop_request, self.terminated_by = None, None
        self._propagate()

    def close(self) -> None:
        """Close every unit."""
        for unit in self.units.values():
            unit.close()
