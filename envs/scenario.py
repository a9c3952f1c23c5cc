"""Production-line scenarios: stations, demand, shifts, tariff, reliability, costs, objective.

A scenario is a TOML file validated on load by :mod:`envs.config`. The shipped ones live in
``envs/scenarios/``; ``load_scenario("automotive_components")`` loads one by name and
``load_scenario("my_plant.toml")`` loads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envs.config import ConfigError, load_toml, setting

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
EQUIPMENT = ("CncMill", "RobotCell")


@dataclass(frozen=True, kw_only=True)
class StationConfig:
    """One station: identical machines in parallel, an output buffer, a conveyor onwards."""

    name: str = setting(doc="station name, unique in the line")
    equipment: str = setting(choices=EQUIPMENT, doc="shipped FMU that models each machine")
    machines: int = setting(low=1, high=20, doc="parallel machines")
    buffer_capacity: int = setting(low=1, high=10_000, doc="parts the output buffer holds")
    nominal_speed: float = setting(
        low=0.01, high=10_000.0, doc="spindle rpm (CncMill) or speed override (RobotCell)"
    )
    speed_range: tuple[float, ...] = setting(
        (0.7, 1.3), low=0.1, high=2.0, doc="allowed speed factors (min, max) on nominal_speed"
    )
    parameters: dict[str, float] = setting({}, doc="FMU parameter overrides, name = value")
    conveyor_length_m: float = setting(
        0.0, low=0.0, high=500.0, doc="conveyor to the next station, m (0: none)"
    )

    def __post_init__(self) -> None:
        if len(self.speed_range) != 2 or self.speed_range[0] > self.speed_range[1]:
            raise ValueError(
                f"station '{self.name}': speed_range must be [min, max] with min <= max"
            )
        if self.equipment == "RobotCell" and self.nominal_speed * self.speed_range[1] > 1.0:
            raise ValueError(
                f"station '{self.name}': a RobotCell's nominal_speed × max speed "
                "factor must not exceed 1.0 (the full programmed speed)"
            )


@dataclass(frozen=True, kw_only=True)
class DemandConfig:
    """Orders arrive as a Poisson process whose rate follows the hour of day and the weekday."""

    orders_per_hour: float = setting(low=0.0, high=10_000.0, doc="mean order rate, parts/h")
    hourly_profile: tuple[float, ...] = setting(
        low=0.0, high=10.0, doc="24 factors on the rate, hour 0..23"
    )
    weekday_factors: tuple[float, ...] = setting(
        low=0.0, high=10.0, doc="7 factors, Monday..Sunday"
    )
    initial_backlog: int = setting(0, low=0, high=100_000, doc="parts on order at the start")

    def __post_init__(self) -> None:
        if len(self.hourly_profile) != 24:
            raise ValueError(
                f"demand.hourly_profile needs 24 values, got {len(self.hourly_profile)}"
            )
        if len(self.weekday_factors) != 7:
            raise ValueError(
                f"demand.weekday_factors needs 7 values, got {len(self.weekday_factors)}"
            )


@dataclass(frozen=True, kw_only=True)
class ShiftConfig:
    """Staffed hours: machines produce only then."""

    working_days: tuple[int, ...] = setting(low=0, high=6, doc="0 = Monday .. 6 = Sunday")
    start_hour: float = setting(low=0.0, high=24.0)
    end_hour: float = setting(low=0.0, high=24.0)

    def __post_init__(self) -> None:
        if self.start_hour >= self.end_hour:
            raise ValueError("shifts.start_hour must be before shifts.end_hour")


@dataclass(frozen=True, kw_only=True)
class TariffPeriod:
    start_hour: float = setting(low=0.0, high=24.0)
    end_hour: float = setting(low=0.0, high=24.0)
    price: float = setting(low=0.0, high=10.0, doc="EUR/kWh")


@dataclass(frozen=True, kw_only=True)
class TariffConfig:
    """Time-of-use electricity price on working days; weekends at one price."""

    periods: tuple[TariffPeriod, ...] = setting(doc="cover 0..24 h without gaps or overlaps")
    weekend_price: float = setting(low=0.0, high=10.0, doc="EUR/kWh on Saturday and Sunday")

    def __post_init__(self) -> None:
        ordered = sorted(self.periods, key=lambda p: p.start_hour)
        edge = 0.0
        for period in ordered:
            if period.start_hour != edge or period.end_hour <= period.start_hour:
                raise ValueError(
                    "tariff.periods must cover 0..24 h in order without gaps or "
                    f"overlaps (problem at {period.start_hour} h)"
                )
            edge = period.end_hour
        if edge != 24.0:
            raise ValueError("tariff.periods must end at 24 h")

    def price(self, weekday: int, hour: float) -> float:
        """EUR/kWh at ``hour`` (0..24) of ``weekday`` (0 = Monday)."""
        if weekday >= 5:
            return self.weekend_price
        for period in self.periods:
            if period.start_hour <= hour < period.end_hour:
                return period.price
        return self.periods[-1].price


@dataclass(frozen=True, kw_only=True)
class ReliabilityConfig:
    mean_repair_h: float = setting(low=0.01, high=1000.0, doc="mean time to repair, h")
    repair_cv: float = setting(low=0.0, high=5.0, doc="coefficient of variation (lognormal)")
    repair_fixed_cost: float = setting(low=0.0, high=1e6, doc="EUR per repair")
    repair_cost_per_h: float = setting(low=0.0, high=1e6, doc="EUR per repair hour")
    maintenance_h: float = setting(low=0.0, high=100.0, doc="preventive maintenance, h")
    maintenance_cost: float = setting(low=0.0, high=1e6, doc="EUR per preventive maintenance")
    wake_up_s: float = setting(low=0.0, high=3600.0, doc="standby to ready, s")


@dataclass(frozen=True, kw_only=True)
class CostConfig:
    scrap_per_part: float = setting(low=0.0, high=1e6, doc="EUR per scrapped part")
    backlog_per_part_hour: float = setting(low=0.0, high=1e6, doc="EUR per part-hour late")


@dataclass(frozen=True, kw_only=True)
class ObjectiveConfig:
    """Z = w1·C + w2·E + w3·D subject to T >= Tmin and R <= Rmax."""

    w_cost: float = setting(1.0, low=0.0, high=1e6, doc="w1, per EUR")
    w_energy: float = setting(0.0, low=0.0, high=1e6, doc="w2, per kWh")
    w_downtime: float = setting(0.0, low=0.0, high=1e6, doc="w3, per unplanned hour")
    throughput_min_per_h: float = setting(0.0, low=0.0, high=1e6, doc="Tmin, good parts/h")
    peak_max_kw: float = setting(1e6, low=0.0, high=1e7, doc="Rmax, kW")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str = setting()
    description: str = setting("")
    tick_s: float = setting(30.0, low=1.0, high=600.0, doc="discrete-event time step, s")
    decision_interval_s: float = setting(300.0, low=1.0, high=86_400.0, doc="env step, s")
    horizon_h: float = setting(168.0, low=0.1, high=8_760.0, doc="episode length, h")
    contracted_peak_kw: float = setting(low=0.1, high=1e6, doc="contracted peak power, kW")
    stations: tuple[StationConfig, ...] = setting()
    demand: DemandConfig = setting()
    shifts: ShiftConfig = setting()
    tariff: TariffConfig = setting()
    reliability: ReliabilityConfig = setting()
    costs: CostConfig = setting()
    objective: ObjectiveConfig = setting(ObjectiveConfig())

    def __post_init__(self) -> None:
        if not self.stations:
            raise ValueError("a scenario needs at least one [[stations]] entry")
        names = [s.name for s in self.stations]
        if len(set(names)) != len(names):
            raise ValueError(f"station names must be unique: {names}")
        ratio = self.decision_interval_s / self.tick_s
        if abs(ratio - round(ratio)) > 1e-9:
            raise ValueError(
                f"decision_interval_s ({self.decision_interval_s}) must be a whole "
                f"multiple of tick_s ({self.tick_s})"
            )

    @property
    def machine_count(self) -> int:
        """Machines in the line, all stations together."""
        return sum(station.machines for station in self.stations)

    @property
    def machine_names(self) -> list[str]:
        """The one naming of machines, ``<station>-<k>`` with k from 1, in line order (station
        by station): the names the line, the plant, recordings and plans all use."""
        return [name for name, _ in self.machines()]

    @property
    def machine_equipment(self) -> dict[str, str]:
        """Machine name → the shipped equipment model it runs (``CncMill``, ``RobotCell``)."""
        return {name: station.equipment for name, station in self.machines()}

    def machines(self) -> list[tuple[str, StationConfig]]:
        """(machine name, its station) for every machine, in line order."""
        return [(f"{s.name}-{k + 1}", s) for s in self.stations for k in range(s.machines)]


def scenario_names() -> list[str]:
    """Names of the shipped scenarios."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A shipped scenario by name, or a scenario file by path."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        if str(name_or_path) not in scenario_names():
            raise ConfigError(
                f"no shipped scenario '{name_or_path}'; choose one of "
                f"{scenario_names()} or pass the path of a .toml file"
            )
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    scenario = load_toml(Scenario, path)
    _check_fmu_parameters(scenario, path)
    return scenario


def _check_fmu_parameters(scenario: Scenario, path: Path) -> None:
    """Station parameter overrides must name parameters of the station's FMU, in range."""
    from envs.equipment import ParameterError, check_parameter

    for index, station in enumerate(scenario.stations):
        for name, value in station.parameters.items():
            key = f"stations[{index}].parameters.{name}"
            try:
                check_parameter(station.equipment, name, value, key=key)
            except ParameterError as error:
                raise ConfigError(f"{path}: {error}") from None
