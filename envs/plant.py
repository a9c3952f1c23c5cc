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
    speed, standby, maintenance = plant.setpoints()                # what is in force (copies)
    records, events = plant.advance()        # one decision interval of the scenario
    sample = plant.measure()                 # {"time_s": ..., "machining-1.temperature": ...}
    plant.samples                            # every sample taken during the last advance
    plant.true_samples                       # their noise-free values (tests, evaluation)

The config (:class:`PlantConfig` and its parts, :func:`load_plant_config`,
:func:`check_plant_config`) lives in :mod:`envs.plant_config`, the measured signals
(``<machine>.temperature``, ``.wear``, ``.power``, ``.vibration``, ``.state``; names, units) in
:mod:`envs.plant_signals`; both are re-exported here. Machines are named as in
:attr:`envs.scenario.Scenario.machine_names` (``machining-1`` ...).

Randomness: the line's discrete events use :func:`envs.seeding.event_rng` ``(seed)``, exactly
what a twin reset with the same seed uses, so a twin can replay the same order arrivals (a stand-in
for discrete-state synchronisation); sensor noise and dropouts use a separate generator
derived from the same seed. Same config → same samples, bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

from envs.config import ConfigError, config_to_dict, from_mapping
from envs.kpi import IntervalRecord
from envs.line import ProductionLine
from envs.plant_config import (
    DEFAULT_NOISE,
    DRIFT_TARGETS,
    DriftEvent,
    HiddenParameter,
    NoiseConfig,
    PlantConfig,
    check_plant_config,
    load_plant_config,
)
from envs.plant_signals import SIGNAL_KINDS, machine_signals
from envs.scenario import Scenario
from envs.seeding import event_rng

__all__ = [
    "DEFAULT_NOISE",
    "DRIFT_TARGETS",
    "SIGNAL_KINDS",
    "DriftEvent",
    "HiddenParameter",
    "NoiseConfig",
    "Plant",
    "PlantConfig",
    "check_plant_config",
    "load_plant_config",
    "machine_signals",
]

_SENSOR_STREAM = 0x5E45  # mixes into the seed for the sensor generator


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
        self.machine_names = self.nominal_scenario.machine_names
        self._pending: list[DriftEvent] = []
        self.samples: list[dict[str, float]] = []
        self.true_samples: list[dict[str, float]] = []
        self.drift_log: list[tuple[float, DriftEvent]] = []
        self._ready = False

    # -- episode ----------------------------------------------------------------------
    def reset(self) -> dict[str, float]:
        """Restart the plant from its config; returns the first sample (time 0)."""
        config = self.config
        self.line.reset(event_rng(config.seed), start_s=config.start_h * 3600.0)
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

    def setpoints(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The setpoints the next :meth:`advance` uses, one entry per machine in
        ``machine_names`` order: speed factors (float, 1 = nominal), standby permissions (bool)
        and maintenance requests pending (bool, one-shot: cleared by ``advance``). Copies:
        changing them changes nothing; pass them to :meth:`apply` for that."""
        self._require_reset()
        return self._speed.copy(), self._standby.copy(), self._maintenance.copy()

    def inject_drift(self, event: DriftEvent) -> None:
        """Schedule a drift ``event`` at runtime (faults on demand, e.g. the MQTT emulator),
        validated like a ``[[drift]]`` entry of the config: field types, ranges and choices
        (:class:`DriftEvent`) and a machine of this line. It applies at the first sample at or
        after ``time_h`` hours since :meth:`reset` (a time already passed: the next sample) and
        is forgotten by the next :meth:`reset`. Invalid events raise
        :class:`envs.config.ConfigError` naming the field and schedule nothing."""
        self._require_reset()
        if not isinstance(event, DriftEvent):
            raise ConfigError(f"inject_drift: expected a DriftEvent, got {type(event).__name__}")
        checked = from_mapping(DriftEvent, config_to_dict(event), source="inject_drift")
        if checked.machine and checked.machine not in self.machine_names:
            raise ConfigError(
                f"inject_drift: 'machine' = {checked.machine!r} is not a machine; choose one "
                f"of {', '.join(self.machine_names)} or '' for every machine"
            )
        later = [e for e in self._pending if e.time_h > checked.time_h]
        earlier = self._pending[: len(self._pending) - len(later)]
        self._pending = [*earlier, checked, *later]

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

    def fmu_values(self, names: Iterable[str]) -> dict[str, dict[str, float]]:
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

    def __exit__(self, *exc: object) -> None:
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
