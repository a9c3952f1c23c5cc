"""The conveyors of a production line: a ``Conveyor`` FMU per transfer between two stations,
and the parts riding on it (Python keeps the parts; the FMU draws the belt's power for their
mass). :class:`envs.line.ProductionLine` owns one :class:`Conveyor` per station that has a
``conveyor_length_m``."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import fmus
from envs.fmu import FmuUnit, RealIO
from envs.scenario import StationConfig

PART_MASS_KG = 12.0  # an engine bracket or suspension arm in its tote (NF: typical value)
PART_SPACING_M = 1.0  # parts on a conveyor travel at least this far apart

__all__ = ["PART_MASS_KG", "PART_SPACING_M", "Conveyor"]


@dataclass
class Conveyor:
    """One belt: its FMU unit, how many parts fit on it, and the parts in transit."""

    unit: FmuUnit
    capacity: int
    transit: deque[float] = field(default_factory=deque)
    """Arrival times (s) of the parts on the belt, oldest first."""
    last_energy: float = 0.0
    """The FMU's energy meter at the end of the last tick, kWh."""
    running: bool | None = None
    """What the FMU was last told (``None``: not yet, after a reset)."""
    transport_time_s: float = 0.0

    def __post_init__(self) -> None:
        self.io: RealIO = self.unit.real_io(["load_mass"], ["energy"])
        self._running_input = self.unit.scalar_input("running")

    @classmethod
    def after(cls, station: StationConfig) -> Conveyor:
        """The conveyor that carries ``station``'s output to the next station."""
        unit = FmuUnit(
            fmus.path("Conveyor"),
            name=f"{station.name}-conveyor",
            start_values={"length": station.conveyor_length_m, "running": False, "load_mass": 0.0},
        )
        return cls(unit, max(1, int(station.conveyor_length_m / PART_SPACING_M)))

    def reset(self) -> None:
        """Empty belt, FMU back to its initial state."""
        self.unit.reset()
        self.transit.clear()
        self.last_energy = float(self.unit.get("energy"))
        self.running = None
        self.transport_time_s = float(self.unit.get("transport_time"))

    @property
    def fill(self) -> float:
        """Parts on the belt / parts that fit."""
        return len(self.transit) / self.capacity

    def push_inputs(self) -> None:
        """Before a tick: run the belt while it carries parts, with their mass."""
        running = bool(self.transit)
        if running != self.running:
            self._running_input.write_checked(running)
            self.running = running
        self.io.write_scalar_checked(len(self.transit) * PART_MASS_KG)

    def pull_energy(self) -> float:
        """After a tick: the energy the belt drew in it, kWh."""
        total = self.io.read_list()[0]
        energy, self.last_energy = total - self.last_energy, total
        return energy

    def load(self, now: float) -> bool:
        """Put a part on the belt at ``now`` (s); ``False`` if the belt is full."""
        if len(self.transit) >= self.capacity:
            return False
        self.transit.append(now + self.transport_time_s)
        return True

    def unload(self, now: float, room: int) -> int:
        """Take off up to ``room`` parts that have arrived by ``now``; returns how many."""
        taken = 0
        while taken < room and self.transit and self.transit[0] <= now:
            self.transit.popleft()
            taken += 1
        return taken
