"""The operating plan: what one decision vector means, and how a plan drives the line.

Encoding (``granularity = "machine"``; with ``"station"`` one value per station is shared by
its machines). For the shipped scenario (7 machines, 3 tariff prices) x has 24 entries:

=============================  ==========================  =====  ==================================
variable                       bounds                      unit   meaning
=============================  ==========================  =====  ==================================
``speed:<machine>``            the station's speed_range   1      speed factor on nominal speed
``wear_threshold:<machine>``   [0.3, 1.0]                  1      preventive maintenance as soon as
                                                                  wear / wear limit reaches this
``standby_min:<machine>``      [0, 120]                    min    standby (off outside shifts)
                                                                  after this long without work;
                                                                  120 (the bound) means never
``tariff_speed:<price>``       [0.8, 1.2]                  1      multiplier on every machine's
                                                                  speed while the price is <price>
                                                                  EUR/kWh (one per distinct price
                                                                  of the time-of-use tariff)
=============================  ==========================  =====  ==================================

Decisions are taken at every decision interval (5 simulated minutes in the shipped scenario) from
the line's state: speed = speed factor × tariff multiplier, clipped to the station's speed range
(the plan asks for that clipping); maintenance when the wear ratio has reached the threshold;
standby permitted when the machine has been seen without work (idle, standby or off) at
consecutive decision points for at least the timeout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from envs.machines import MachineState
from envs.scenario import Scenario
from optimizers.config import GRANULARITIES

if TYPE_CHECKING:
    from envs.line import ProductionLine

WEAR_THRESHOLD_BOUNDS = (0.3, 1.0)
STANDBY_TIMEOUT_BOUNDS_MIN = (0.0, 120.0)
TARIFF_SPEED_BOUNDS = (0.8, 1.2)

_WITHOUT_WORK = (MachineState.IDLE, MachineState.STANDBY, MachineState.OFF)


class PlanBoundsError(ValueError):
    """A decision vector does not fit the encoding (length, NaN, or outside its bounds)."""


@dataclass(frozen=True)
class Variable:
    """One entry of the decision vector."""

    name: str
    low: float
    high: float
    unit: str
    description: str


@dataclass(frozen=True)
class OperatingPlan:
    """A decoded decision vector, one value per machine (in line order) or tariff price."""

    speed: np.ndarray
    """Speed factor per machine (1 = nominal)."""
    wear_threshold: np.ndarray
    """Maintenance threshold on wear / wear limit per machine."""
    standby_timeout_min: np.ndarray
    """Minutes without work before standby is allowed, per machine (inf: never)."""
    tariff_prices: tuple[float, ...]
    """The distinct tariff prices, EUR/kWh, ascending."""
    tariff_speed: np.ndarray
    """Speed multiplier per tariff price."""


def tariff_prices(scenario: Scenario) -> tuple[float, ...]:
    """Distinct prices of the time-of-use tariff (weekdays and weekend), EUR/kWh, ascending."""
    tariff = scenario.tariff
    return tuple(sorted({p.price for p in tariff.periods} | {tariff.weekend_price}))


class PlanEncoding:
    """Names, bounds and decoding of the decision vector for one scenario (module docstring)."""

    def __init__(self, scenario: Scenario, granularity: str = "machine") -> None:
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"unknown granularity '{granularity}'; choose one of {list(GRANULARITIES)}"
            )
        self.scenario = scenario
        self.granularity = granularity
        self.machine_names = scenario.machine_names
        stations = [station for _, station in scenario.machines()]
        self.speed_ranges = np.array([s.speed_range for s in stations], dtype=float)
        if granularity == "machine":
            self.group_names = list(self.machine_names)
            self.group_of = np.arange(len(self.machine_names))
            group_ranges = [tuple(r) for r in self.speed_ranges]
        else:
            self.group_names = [s.name for s in scenario.stations]
            self.group_of = np.array(
                [i for i, s in enumerate(scenario.stations) for _ in range(s.machines)]
            )
            group_ranges = [tuple(s.speed_range) for s in scenario.stations]
        self.prices = tariff_prices(scenario)
        variables = []
        for name, (low, high) in zip(self.group_names, group_ranges, strict=True):
            variables.append(
                Variable(f"speed:{name}", low, high, "1", "speed factor on nominal speed")
            )
        for name in self.group_names:
            variables.append(
                Variable(
                    f"wear_threshold:{name}",
                    *WEAR_THRESHOLD_BOUNDS,
                    "1",
                    "maintenance when wear / wear limit reaches this",
                )
            )
        for name in self.group_names:
            variables.append(
                Variable(
                    f"standby_min:{name}",
                    *STANDBY_TIMEOUT_BOUNDS_MIN,
                    "min",
                    "standby after this long without work (upper bound: never)",
                )
            )
        for price in self.prices:
            variables.append(
                Variable(
                    f"tariff_speed:{price:.3f}",
                    *TARIFF_SPEED_BOUNDS,
                    "1",
                    f"speed multiplier while electricity costs {price:.3f} EUR/kWh",
                )
            )
        self.variables = tuple(variables)
        self.names = [v.name for v in self.variables]
        self.xl = np.array([v.low for v in self.variables])
        self.xu = np.array([v.high for v in self.variables])
        self.n_groups = len(self.group_names)

    @property
    def n_var(self) -> int:
        """Entries of the decision vector."""
        return len(self.variables)

    def check(self, x: Sequence[float] | np.ndarray) -> np.ndarray:
        """``x`` as a float array, or :class:`PlanBoundsError` naming the offending entries."""
        values = np.asarray(x, dtype=float)
        if values.shape != (self.n_var,):
            raise PlanBoundsError(
                f"a decision vector has {self.n_var} entries ({', '.join(self.names[:3])}, ...), "
                f"not shape {values.shape}; build it with PlanEncoding.names"
            )
        if not np.isfinite(values).all():
            bad = [n for n, v in zip(self.names, values, strict=True) if not np.isfinite(v)]
            raise PlanBoundsError(f"decision vector has non-finite values for {bad}")
        tolerance = 1e-9 * np.maximum(1.0, np.abs(self.xu - self.xl))
        outside = (values < self.xl - tolerance) | (values > self.xu + tolerance)
        if outside.any():
            details = "; ".join(
                f"{self.names[i]} = {values[i]:g} not in [{self.xl[i]:g}, {self.xu[i]:g}]"
                for i in np.flatnonzero(outside)
            )
            raise PlanBoundsError(
                f"decision vector outside its bounds: {details}; clip it to "
                "PlanEncoding.xl/xu or fix the source of the vector"
            )
        return np.clip(values, self.xl, self.xu)

    def decode(self, x: Sequence[float] | np.ndarray) -> OperatingPlan:
        """The plan of a (checked) decision vector."""
        values = self.check(x)
        g = self.n_groups
        speed, threshold, timeout = (values[i * g : (i + 1) * g][self.group_of] for i in range(3))
        timeout = np.where(timeout >= STANDBY_TIMEOUT_BOUNDS_MIN[1], np.inf, timeout)
        return OperatingPlan(
            speed=speed,
            wear_threshold=threshold,
            standby_timeout_min=timeout,
            tariff_prices=self.prices,
            tariff_speed=values[3 * g :].copy(),
        )

    def vector(
        self,
        *,
        speed: float = 1.0,
        wear_threshold: float = 0.85,
        standby_min: float = 0.0,
        tariff_speed: float = 1.0,
    ) -> np.ndarray:
        """A uniform decision vector (the same value for every machine / price); the default
        is the ``condition_based`` heuristic's plan without its power guard."""
        g = self.n_groups
        values = np.concatenate(
            [
                np.full(g, speed),
                np.full(g, wear_threshold),
                np.full(g, standby_min),
                np.full(len(self.prices), tariff_speed),
            ]
        )
        return self.check(values)

    def as_dict(self, x: Sequence[float] | np.ndarray) -> dict[str, float]:
        """``name -> value`` of a decision vector (the inverse of :meth:`from_dict`)."""
        return {n: float(v) for n, v in zip(self.names, np.asarray(x, dtype=float), strict=True)}

    def from_dict(self, values: dict[str, float], source: str = "plan") -> np.ndarray:
        """A decision vector from ``name -> value``; every name of this encoding is needed."""
        missing = [n for n in self.names if n not in values]
        if missing:
            raise PlanBoundsError(
                f"{source}: missing decision variables {missing[:4]} (it was written for another "
                "scenario or granularity); re-run the optimisation with the same [problem]"
            )
        return self.check([values[n] for n in self.names])


class PlanController:
    """Turns a plan into the per-interval decisions of :meth:`ProductionLine.advance`."""

    def __init__(self, plan: OperatingPlan, scenario: Scenario) -> None:
        self.plan = plan
        self.scenario = scenario
        self.interval_min = scenario.decision_interval_s / 60.0
        self.speed_ranges = np.array(
            [station.speed_range for _, station in scenario.machines()], dtype=float
        )
        self.reset()

    def reset(self) -> None:
        """Forget the idle timers (call at the start of every episode)."""
        self.without_work_min = np.zeros(len(self.plan.speed))
        self._started = False

    def _tariff_multiplier(self, weekday: int, hour: float) -> float:
        price = self.scenario.tariff.price(weekday, hour)
        level = int(np.argmin(np.abs(np.asarray(self.plan.tariff_prices) - price)))
        return float(self.plan.tariff_speed[level])

    def decide(self, line: ProductionLine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(speed factors, maintenance requests, standby permissions) for the next interval of
        ``line`` (an :class:`envs.line.ProductionLine`), from its current state."""
        machines = line.machines
        if self._started:
            idle = np.array([m.state in _WITHOUT_WORK for m in machines])
            self.without_work_min = np.where(idle, self.without_work_min + self.interval_min, 0.0)
        self._started = True
        weekday, hour, _ = line.calendar()
        speed = np.clip(
            self.plan.speed * self._tariff_multiplier(weekday, hour),
            self.speed_ranges[:, 0],
            self.speed_ranges[:, 1],
        )
        wear = np.array([m.wear_ratio for m in machines])
        maintenance = wear >= self.plan.wear_threshold
        standby = self.without_work_min >= self.plan.standby_timeout_min
        return speed, maintenance, standby
