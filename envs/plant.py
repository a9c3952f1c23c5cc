"""A plant emulator: a production line with hidden parameters, noisy sensors and drift.

The emulator stands in for real equipment. It is a :class:`envs.line.ProductionLine` whose FMU
parameters differ from the twin's nominal scenario (per-station fixed parameters such as
``thermal_resistance``, per-machine ``wear_rate_factor``, the shop-floor temperature), whose
sensors add seeded Gaussian noise and drop samples (NaN), which samples at its own rate, and in
which scheduled drift events change a hidden parameter at a given time (a bearing starts
degrading: one machine's wear rate doubles; the ambient temperature steps).

Interface (the edge bridge will put it on MQTT)::

    plant = Plant(load_plant_config("configs/plant_example.toml"))
    plant.reset()
    plant.apply(speed_factors=..., maintenance=..., standby=...)  # optional, sticky
    records, events = plant.advance()        # one decision interval of the scenario
    sample = plant.measure()                 # {"time_s": ..., "machining-1.temperature": ...}
    plant.samples                            # every sample taken during the last advance
    plant.true_samples                       # their noise-free values (tests, evaluation)

Measured signals, per machine ``<name>`` (the line's machine names, e.g. ``machining-1``):

=========================== ====== ============================================
``<name>.temperature``      degC   spindle (CncMill) / joint (RobotCell)
``<name>.wear``             1      tool / gripper wear as a fraction of its limit
``<name>.power``            kW     electrical power at the sample instant
``<name>.vibration``        mm/s   RMS housing vibration (CncMill only)
``<name>.state``            1      :class:`envs.machines.MachineState` code, noise-free
=========================== ====== ============================================

Randomness: the line's discrete events use ``numpy.random.default_rng(seed)``, exactly what a
twin reset with the same seed uses, so a twin can replay the same order arrivals (a stand-in
for discrete-state synchronisation); sensor noise and dropouts use a separate generator
derived from the same seed. Same config → same samples, bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from envs.config import ConfigError, load_toml, setting
from envs.kpi import IntervalRecord
from envs.line import ProductionLine
from envs.machines import Machine
from envs.scenario import Scenario, load_scenario

SIGNAL_KINDS = ("temperature", "wear", "power", "vibration")
DRIFT_TARGETS = ("wear_rate_factor", "ambient_temperature")
_SENSOR_STREAM = 0x5E45  # mixes into the seed for the sensor generator


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
    import fmus
    from fmus._codegen import read_model_info

    scenario = load_scenario(config.scenario)
    ratio = scenario.decision_interval_s / config.sample_interval_s
    ticks = config.sample_interval_s / scenario.tick_s
    if abs(ratio - round(ratio)) > 1e-9 or abs(ticks - round(ticks)) > 1e-9:
        raise ConfigError(
            f"{source}: 'sample_interval_s' = {config.sample_interval_s} must be a whole multiple "
            f"of the scenario's tick_s ({scenario.tick_s} s) and divide its decision interval "
            f"({scenario.decision_interval_s} s)"
        )
    names = [
        f"{station.name}-{k + 1}" for station in scenario.stations for k in range(station.machines)
    ]
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
        info = read_model_info(fmus.model_dir(equipment) / "modelDescription.xml")
        parameters = {v.name: v for v in info.variables if v.causality == "parameter"}
        if hidden.name not in parameters:
            raise ConfigError(
                f"{source}: '{key}.name' = {hidden.name!r} is not a parameter of {equipment}; "
                f"its parameters are {', '.join(sorted(parameters))}"
            )
        variable = parameters[hidden.name]
        if not variable.min <= hidden.value <= variable.max:
            raise ConfigError(
                f"{source}: '{key}.value' = {hidden.value} is outside the allowed range "
                f"[{variable.min}, {variable.max}] {variable.unit} of {hidden.name}".rstrip()
            )
    for index, event in enumerate(config.drift):
        if event.machine and event.machine not in names:
            raise ConfigError(
                f"{source}: 'drift[{index}].machine' = {event.machine!r} is not a machine; "
                f"choose one of {', '.join(names)} or '' for every machine"
            )
    return scenario


def machine_signals(machine: Machine) -> dict[str, float]:
    """Noise-free values of one machine's measured signals (names and units as in the module
    docstring, without ``state``); the twin's predictions use the same function."""
    name = machine.name
    values = {
        f"{name}.temperature": machine.temperature,
        f"{name}.wear": machine.wear_ratio,
        f"{name}.power": machine.output("power"),
    }
    if machine.equipment.vibration_output:
        values[f"{name}.vibration"] = machine.vibration
    return values


def _plant_scenario(nominal: Scenario, config: PlantConfig) -> Scenario:
    stations = []
    for station in nominal.stations:
        overrides = {h.name: h.value for h in config.hidden if h.station == station.name}
        parameters = {**station.parameters, **overrides}
        stations.append(dataclasses.replace(station, parameters=parameters))
    return dataclasses.replace(
        nominal, stations=tuple(stations), decision_interval_s=config.sample_interval_s
    )


class Plant:
    """The emulated plant of one :class:`PlantConfig`. Call :meth:`reset` first."""

    def __init__(self, config: PlantConfig) -> None:
        self.config = config
        self.nominal_scenario = check_plant_config(config)
        self.scenario = _plant_scenario(self.nominal_scenario, config)
        self.decision_interval_s = self.nominal_scenario.decision_interval_s
        self.samples_per_decision = round(self.decision_interval_s / config.sample_interval_s)
        self.line = ProductionLine(self.scenario)
        self.machine_names = [machine.name for machine in self.line.machines]
        self._pending: list[DriftEvent] = []
        self.samples: list[dict[str, float]] = []
        self.true_samples: list[dict[str, float]] = []
        self.drift_log: list[tuple[float, DriftEvent]] = []
        self._ready = False

    # -- episode ----------------------------------------------------------------------
    def reset(self) -> dict[str, float]:
        """Restart the plant from its config; returns the first sample (time 0)."""
        config = self.config
        self.line.reset(np.random.default_rng(config.seed), start_s=config.start_h * 3600.0)
        self.sensor_rng = np.random.default_rng([config.seed, _SENSOR_STREAM])
        count = len(self.line.machines)
        self._speed = np.ones(count)
        self._standby = np.zeros(count, dtype=bool)
        self._maintenance = np.zeros(count, dtype=bool)
        factors = config.wear_rate_factors or (1.0,) * count
        for machine, factor in zip(self.line.machines, factors, strict=True):
            machine.unit.set(
                {
                    machine.equipment.wear_rate_parameter: factor,
                    "ambient_temperature": config.ambient_temperature,
                }
            )
            machine.pull_outputs()  # refresh the machine's view of the FMU outputs
        self._pending = sorted(config.drift, key=lambda event: event.time_h)
        self.drift_log = []
        self._ready = True
        self.samples, self.true_samples = [], []
        self._sample()
        return dict(self.samples[-1])

    @property
    def elapsed_s(self) -> float:
        """Seconds since :meth:`reset`."""
        return self.line.time_s - self.config.start_h * 3600.0

    def apply(
        self,
        *,
        speed_factors: np.ndarray | None = None,
        maintenance: np.ndarray | None = None,
        standby: np.ndarray | None = None,
    ) -> None:
        """Setpoints for the next :meth:`advance` (as in ``ProductionLine.advance``): speed
        factors and standby permissions stay until changed; a maintenance request is used once.
        Invalid input raises ``ValueError`` and changes nothing."""
        self._require_reset()
        count = len(self.line.machines)
        checked = {}
        for name, value, kind in (
            ("speed_factors", speed_factors, float),
            ("maintenance", maintenance, bool),
            ("standby", standby, bool),
        ):
            if value is None:
                continue
            array = np.asarray(value, dtype=kind)
            if array.shape != (count,):
                raise ValueError(f"{name} needs one value per machine ({count}), got {array.shape}")
            checked[name] = array
        if "speed_factors" in checked:
            for machine, factor in zip(self.line.machines, checked["speed_factors"], strict=True):
                low, high = machine.speed_range
                if not (math.isfinite(factor) and low <= factor <= high):
                    raise ValueError(
                        f"speed factor {factor} of {machine.name} is outside its range "
                        f"[{low}, {high}]; clip it before applying"
                    )
            self._speed = checked["speed_factors"].copy()
        if "maintenance" in checked:
            self._maintenance = checked["maintenance"].copy()
        if "standby" in checked:
            self._standby = checked["standby"].copy()

    def advance(self) -> tuple[list[IntervalRecord], dict[str, int]]:
        """Run one decision interval of the scenario, sampling every ``sample_interval_s``.
        Returns the line's interval records (one per sample interval; feed them to
        :class:`envs.kpi.KpiLedger`) and the summed failure/maintenance counts."""
        self._require_reset()
        records: list[IntervalRecord] = []
        events = {"failures": 0, "maintenances": 0}
        self.samples, self.true_samples = [], []
        for index in range(self.samples_per_decision):
            self._apply_due_drift()
            maintenance = self._maintenance if index == 0 else np.zeros_like(self._maintenance)
            record, counts = self.line.advance(self._speed, maintenance, self._standby)
            records.append(record)
            for key, value in counts.items():
                events[key] += value
            self._sample()
        self._maintenance = np.zeros_like(self._maintenance)
        return records, events

    def measure(self) -> dict[str, float]:
        """The latest sample: ``time_s`` (since reset) and every measured signal; NaN marks a
        dropped sample."""
        self._require_reset()
        return dict(self.samples[-1])

    # -- ground truth (for tests and evaluation; a real plant has none) ----------------
    def truth(self) -> dict[str, float]:
        """Noise-free values of the measured signals now."""
        self._require_reset()
        values: dict[str, float] = {}
        for machine in self.line.machines:
            values.update(machine_signals(machine))
        return values

    def hidden_parameters(self) -> dict[str, float]:
        """Current hidden values: ``<machine>.wear_rate_factor`` and
        ``<machine>.ambient_temperature`` (read back from the FMUs)."""
        self._require_reset()
        values = {}
        for machine in self.line.machines:
            name = machine.equipment.wear_rate_parameter
            values[f"{machine.name}.wear_rate_factor"] = float(machine.unit.get(name))
            values[f"{machine.name}.ambient_temperature"] = float(
                machine.unit.get("ambient_temperature")
            )
        return values

    def fmu_values(self, names) -> dict[str, dict[str, float]]:
        """The plant's current values of the FMU variables ``names`` per machine (a variable
        a machine's FMU lacks is left out): what a calibration should find."""
        from envs.fmu.errors import FmuVariableError

        self._require_reset()
        values: dict[str, dict[str, float]] = {}
        for machine in self.line.machines:
            for name in names:
                try:
                    values.setdefault(machine.name, {})[name] = float(machine.unit.get(name))
                except FmuVariableError:
                    continue
        return values

    def close(self) -> None:
        self.line.close()

    def __enter__(self) -> Plant:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------
    def _require_reset(self) -> None:
        if not self._ready:
            raise RuntimeError("call Plant.reset() before using the plant")

    def _apply_due_drift(self) -> None:
        now = self.elapsed_s
        while self._pending and self._pending[0].time_h * 3600.0 <= now + 1e-9:
            event = self._pending.pop(0)
            for machine in self.line.machines:
                if event.machine and machine.name != event.machine:
                    continue
                name = (
                    machine.equipment.wear_rate_parameter
                    if event.target == "wear_rate_factor"
                    else "ambient_temperature"
                )
                old = float(machine.unit.get(name))
                new = {"multiply": old * event.value, "add": old + event.value}.get(
                    event.operation, event.value
                )
                variable = machine.unit.variable(name)
                low = -math.inf if variable.min is None else variable.min
                high = math.inf if variable.max is None else variable.max
                machine.unit.set(name, float(min(max(new, low), high)))
            self.drift_log.append((now, event))

    def _sample(self) -> None:
        """Take one sample into ``samples`` and its noise-free twin into ``true_samples``."""
        noise = self.config.noise
        rng = self.sensor_rng
        sample: dict[str, float] = {"time_s": self.elapsed_s}
        truth: dict[str, float] = {"time_s": self.elapsed_s}
        for machine in self.line.machines:
            signals = machine_signals(machine)
            truth.update(signals)
            for key, value in signals.items():
                std = getattr(noise, key.rsplit(".", 1)[1])
                noisy = value + float(rng.normal(0.0, std)) if std > 0 else value
                dropped = rng.random() < self.config.dropout_probability
                sample[key] = math.nan if dropped else noisy
            sample[f"{machine.name}.state"] = float(int(machine.state))
        self.samples.append(sample)
        self.true_samples.append(truth)
