"""What makes the emulated plant (:class:`envs.plant.Plant`) differ from the twin's nominal
scenario: hidden FMU parameters, sensor noise and dropouts, its sampling, scheduled drift.

    config = load_plant_config("configs/plant_example.toml")   # validated, scenario included

:func:`load_plant_config` validates the TOML with :mod:`envs.config` (types, ranges, choices)
and then :func:`check_plant_config` checks what depends on the scenario (the sample interval
against its tick and decision interval, one wear-rate factor per machine, hidden parameters
that the station's equipment has and values in their allowed range, drift machines of the line).
Every error is a :class:`envs.config.ConfigError` naming the file, the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envs.config import ConfigError, load_toml, setting
from envs.equipment import ParameterError, check_parameter, equipment_parameters
from envs.scenario import Scenario, load_scenario

__all__ = [
    "DEFAULT_NOISE",
    "DRIFT_TARGETS",
    "DriftEvent",
    "HiddenParameter",
    "NoiseConfig",
    "PlantConfig",
    "check_plant_config",
    "load_plant_config",
]

DRIFT_TARGETS = ("wear_rate_factor", "ambient_temperature")


@dataclass(frozen=True, kw_only=True)
class HiddenParameter:
    """An FMU parameter of every machine of one station that the plant has and the twin lacks."""

    station: str = setting(doc="station name in the scenario")
    name: str = setting(doc="FMU parameter of the station's equipment, e.g. thermal_resistance")
    value: float = setting(doc="value in the parameter's unit (see fmus/<model>/README.md)")


@dataclass(frozen=True, kw_only=True)
class DriftEvent:
    """A scheduled change of a hidden parameter, applied at the first sample at or after
    ``time_h``."""

    time_h: float = setting(low=0.0, high=8760.0, doc="hours after reset")
    target: str = setting(choices=DRIFT_TARGETS, doc="what changes")
    machine: str = setting("", doc="machine name, e.g. 'machining-2'; '' = every machine")
    operation: str = setting("multiply", choices=("multiply", "add", "set"))
    value: float = setting(doc="factor, increment or new value in the target's unit")


@dataclass(frozen=True, kw_only=True)
class NoiseConfig:
    """Standard deviation of the additive Gaussian sensor noise per signal kind."""

    temperature: float = setting(0.2, low=0.0, high=50.0, doc="K")
    wear: float = setting(0.005, low=0.0, high=1.0, doc="fraction of the wear limit")
    power: float = setting(0.1, low=0.0, high=100.0, doc="kW")
    vibration: float = setting(0.02, low=0.0, high=50.0, doc="mm/s")


DEFAULT_NOISE = NoiseConfig()


@dataclass(frozen=True, kw_only=True)
class PlantConfig:
    """Everything that makes the emulated plant differ from the twin's nominal scenario."""

    scenario: str = setting("automotive_components", doc="shipped scenario name or .toml path")
    seed: int = setting(0, low=0, high=2**63 - 1, doc="seeds the line and the sensors")
    start_h: float = setting(6.0, low=0.0, high=167.0, doc="hours into the week at reset")
    sample_interval_s: float = setting(
        60.0, low=1.0, high=86_400.0, doc="s; a multiple of tick_s dividing the decision interval"
    )
    dropout_probability: float = setting(
        0.0, low=0.0, high=1.0, doc="chance that one signal's sample is lost (NaN)"
    )
    noise: NoiseConfig = setting(DEFAULT_NOISE, doc="sensor noise std")  # noqa: RUF009 frozen
    ambient_temperature: float = setting(20.0, low=-20.0, high=50.0, doc="degC at reset")
    wear_rate_factors: tuple[float, ...] = setting(
        (), low=0.0, high=10.0, doc="one per machine in line order; empty = all nominal (1)"
    )
    hidden: tuple[HiddenParameter, ...] = setting((), doc="fixed-parameter overrides")
    drift: tuple[DriftEvent, ...] = setting((), doc="scheduled drift events")


def load_plant_config(path: str | Path) -> PlantConfig:
    """Read and fully validate a plant config (including against its scenario)."""
    config = load_toml(PlantConfig, path)
    check_plant_config(config, source=str(path))
    return config


def check_plant_config(config: PlantConfig, *, source: str = "<plant config>") -> Scenario:
    """Check the parts of ``config`` that depend on its scenario; returns the twin's (nominal)
    scenario. Raises :class:`ConfigError` naming the key and the fix."""
    scenario = load_scenario(config.scenario)
    ratio = scenario.decision_interval_s / config.sample_interval_s
    ticks = config.sample_interval_s / scenario.tick_s
    if abs(ratio - round(ratio)) > 1e-9 or abs(ticks - round(ticks)) > 1e-9:
        raise ConfigError(
            f"{source}: 'sample_interval_s' = {config.sample_interval_s} must be a whole multiple "
            f"of the scenario's tick_s ({scenario.tick_s} s) and divide its decision interval "
            f"({scenario.decision_interval_s} s)"
        )
    names = scenario.machine_names
    if config.wear_rate_factors and len(config.wear_rate_factors) != len(names):
        raise ConfigError(
            f"{source}: 'wear_rate_factors' needs one value per machine ({len(names)}: "
            f"{', '.join(names)}), got {len(config.wear_rate_factors)}; or leave it empty"
        )
    stations = {station.name: station for station in scenario.stations}
    for index, hidden in enumerate(config.hidden):
        key = f"hidden[{index}]"
        if hidden.station not in stations:
            raise ConfigError(
                f"{source}: '{key}.station' = {hidden.station!r} is not a station of "
                f"{scenario.name}; choose one of {sorted(stations)}"
            )
        equipment = stations[hidden.station].equipment
        parameters = equipment_parameters(equipment)
        if hidden.name not in parameters:
            raise ConfigError(
                f"{source}: '{key}.name' = {hidden.name!r} is not a parameter of {equipment}; "
                f"its parameters are {', '.join(sorted(parameters))}"
            )
        try:
            check_parameter(equipment, hidden.name, hidden.value, key=f"{key}.value")
        except ParameterError as error:
            raise ConfigError(f"{source}: {error} ({hidden.name} of {equipment})") from error
    for index, event in enumerate(config.drift):
        if event.machine and event.machine not in names:
            raise ConfigError(
                f"{source}: 'drift[{index}].machine' = {event.machine!r} is not a machine; "
                f"choose one of {', '.join(names)} or '' for every machine"
            )
    return scenario
