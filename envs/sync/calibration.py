"""Parameter calibration: fit hidden FMU parameters to a window of plant data by least squares
over twin re-simulations.

The twin replays the recorded window sample by sample under the recorded setpoints, from the
same start time and with the plant's discrete-event seed (the stand-in for discrete-state
synchronisation, see :mod:`envs.plant`), with candidate parameter values; the residuals are
``(predicted − measured) / scale`` for every finite measurement of the calibrated signal kinds.
:func:`scipy.optimize.least_squares` (trust-region reflective, bounds from the model
description, optionally narrowed) minimises them, warm-started from the twin's nominal values
or from ``x0`` (e.g. the previous window's fit). Uncertainty: the standard error of each
parameter from the Gauss-Newton covariance ``s² (JᵀJ)⁻¹`` with ``s² = Σr² / (m − p)`` at the
optimum (valid for small, roughly Gaussian residuals; an unidentifiable parameter gets an
infinite standard error rather than a made-up one).

Fixed parameters (e.g. ``thermal_resistance``) are applied by re-initialising the machine's
FMU (``FmuUnit.reset`` with start values, an ``fmiReset``), tunable ones and inputs (e.g.
``wear_rate_factor``, ``ambient_temperature``) by setting them after the reset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from envs.line import ProductionLine
from envs.plant import Plant, machine_signals
from envs.scenario import Scenario
from envs.sync.replay import StateReplay


@dataclass(frozen=True)
class Recording:
    """A window of plant data: one measurement per sample interval and the setpoints in force
    during that interval (maintenance requests only where one started)."""

    start_s: float
    """Calendar time of ``time_s = 0``, s into the week: the start of the first sample
    interval (the first sample is taken at ``time_s = sample_interval_s``)."""
    seed: int
    """The plant line's discrete-event seed (see :mod:`envs.plant`)."""
    sample_interval_s: float
    samples: tuple[dict[str, float], ...]
    """Measurements at the end of each sample interval (``time_s`` and signals; NaN = lost)."""
    setpoints: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]
    """(speed factors, maintenance, standby) per sample interval."""
    scenario: str = "automotive_components"
    """The twin's scenario: a shipped scenario name or the path of a scenario TOML."""


Setpoints = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(speed factors, maintenance requests, standby permissions), one value per machine."""


def record(
    plant: Plant,
    intervals: int,
    schedule: Callable[[int], Setpoints] | None = None,
    *,
    on_interval: Callable[[], None] | None = None,
) -> Recording:
    """Reset ``plant`` and record ``intervals`` decision intervals under nominal setpoints
    (speed 1, no maintenance, no standby), or under ``schedule(k)`` for decision interval
    ``k`` (e.g. varied speed factors that excite the machines' dynamics). ``on_interval`` is
    called after each decision interval (progress bars)."""
    plant.reset()
    count = len(plant.machine_names)
    speed, off = np.ones(count), np.zeros(count, dtype=bool)
    samples, setpoints = [], []
    for k in range(intervals):
        if schedule is not None:
            speed, maintenance, standby = (np.asarray(a) for a in schedule(k))
            speed = speed.astype(float)
            maintenance, standby = maintenance.astype(bool), standby.astype(bool)
        else:
            maintenance = standby = off
        plant.apply(speed_factors=speed, maintenance=maintenance, standby=standby)
        plant.advance()
        # a maintenance request acts at the start of the decision interval only
        setpoints.append((speed, maintenance, standby))
        setpoints += [(speed, np.zeros(count, dtype=bool), standby)] * (len(plant.samples) - 1)
        samples += plant.samples
        if on_interval is not None:
            on_interval()
    return Recording(
        start_s=plant.config.start_h * 3600.0,
        seed=plant.config.seed,
        sample_interval_s=plant.config.sample_interval_s,
        samples=tuple(samples),
        setpoints=tuple(setpoints),
        scenario=plant.config.scenario,
    )


@dataclass(frozen=True)
class FitParameter:
    """One calibrated value: FMU variable ``name`` of ``target`` (a machine name, a station
    name for all its machines, or '' for every machine)."""

    target: str
    name: str
    bounds: tuple[float, float] | None = None
    """Search bounds in the variable's unit; None: the model description's [min, max]."""

    @property
    def key(self) -> str:
        """``target.name`` with ``*`` for every machine: how results name the parameter."""
        return f"{self.target or '*'}.{self.name}"


@dataclass(frozen=True)
class CalibrationResult:
    values: dict[str, float]
    """Fitted value per parameter (``target.name``), in the variable's unit."""
    std_errors: dict[str, float]
    """Standard error per parameter, same unit (inf where not identifiable)."""
    initial: dict[str, float]
    """Warm-start values."""
    rmse: float
    """RMS of the normalised residuals at the optimum."""
    evaluations: int
    """Twin re-simulations of the window."""
    success: bool


DEFAULT_SCALES = {"temperature": 1.0, "wear": 0.01, "power": 0.5}
"""Residual scales per signal kind (signal units): about 5× the emulator's sensor noise, so
every kind weighs in; power is sampled at an instant, so cutting/handling swings make it
noisier than its 0.1 kW sensor noise."""


REPLAYS = ("events", "states")


class Calibrator:
    """Fits :class:`FitParameter` values of a twin scenario to a :class:`Recording`.

    ``scales`` normalise each signal kind's residuals (signal unit); kinds without a scale are
    not fitted against (default: :data:`DEFAULT_SCALES`). ``replay`` says how the twin re-lives
    the window's discrete events: ``"events"`` replays the recording's discrete-event seed (an
    emulated plant's; exact), ``"states"`` makes the machines follow the recorded states
    (:class:`envs.sync.replay.StateReplay`; for real data, whose events no seed reproduces).
    """

    def __init__(
        self,
        scenario: Scenario,
        parameters: Sequence[FitParameter],
        *,
        scales: Mapping[str, float] | None = None,
        replay: str = "events",
    ) -> None:
        if not parameters:
            raise ValueError("give at least one FitParameter to calibrate")
        if replay not in REPLAYS:
            raise ValueError(f"replay must be one of {REPLAYS}, not {replay!r}")
        self.replay = replay
        self.scales = dict(scales or DEFAULT_SCALES)
        self.parameters = tuple(parameters)
        self.scenario = scenario
        self.twin: ProductionLine | None = None
        self.evaluations = 0

    def _build(self, recording: Recording) -> ProductionLine:
        if self.twin is None:
            scenario = dataclasses.replace(
                self.scenario, decision_interval_s=recording.sample_interval_s
            )
            self.twin = ProductionLine(scenario)
            names = {m.name for m in self.twin.machines}
            stations = {s.name for s in scenario.stations}
            for p in self.parameters:
                if p.target and p.target not in names | stations:
                    raise ValueError(
                        f"FitParameter target {p.target!r} is neither a machine "
                        f"({sorted(names)}) nor a station ({sorted(stations)}); '' = every machine"
                    )
                for machine in self._machines(p):
                    machine.unit.variable(p.name)  # unknown names raise with suggestions
        return self.twin

    def _machines(self, parameter: FitParameter):
        assert self.twin is not None
        for machine, station in zip(self.twin.machines, self.twin.station_of, strict=True):
            station_name = self.twin.scenario.stations[station].name
            if parameter.target in ("", machine.name, station_name):
                yield machine

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Search bounds (low, high) per parameter: the model description's [min, max],
        narrowed by each :class:`FitParameter`'s own bounds. Needs the twin (call after
        :meth:`nominal`, :meth:`simulate` or :meth:`fit`)."""
        low, high = [], []
        for p in self.parameters:
            variable = next(self._machines(p)).unit.variable(p.name)
            lo = -math.inf if variable.min is None else variable.min
            hi = math.inf if variable.max is None else variable.max
            if p.bounds is not None:
                lo, hi = max(lo, p.bounds[0]), min(hi, p.bounds[1])
            low.append(lo)
            high.append(hi)
        return np.array(low), np.array(high)

    def prepare(self, recording: Recording, values: Sequence[float]) -> ProductionLine:
        """The calibrator's twin, reset to the recording's start (its seed and calendar time)
        with the parameters set to ``values``; ready to advance one sample interval at a time.
        It is reused by the next :meth:`simulate` or :meth:`prepare`."""
        twin = self._build(recording)
        twin.reset(np.random.default_rng(recording.seed), start_s=recording.start_s)
        per_machine: dict[str, dict[str, float]] = {}
        for p, value in zip(self.parameters, values, strict=True):
            for machine in self._machines(p):
                per_machine.setdefault(machine.name, {})[p.name] = float(value)
        for machine in twin.machines:
            assigned = per_machine.get(machine.name)
            if not assigned:
                continue
            fixed = {
                n: v
                for n, v in assigned.items()
                if machine.unit.variable(n).causality == "parameter"
                and machine.unit.variable(n).variability != "tunable"
            }
            if fixed:
                machine.unit.reset(fixed)
                machine.reset_state()
            rest = {n: v for n, v in assigned.items() if n not in fixed}
            if rest:
                machine.unit.set(rest)
            machine.pull_outputs()
        return twin

    def simulate(self, recording: Recording, values: Sequence[float]) -> list[dict[str, float]]:
        """Replay the window with the given parameter values; the twin's signals per sample."""
        twin = self.prepare(recording, values)
        self.evaluations += 1
        states = StateReplay(twin, recording) if self.replay == "states" else None
        predictions = []
        for index, (speed, maintenance, standby) in enumerate(recording.setpoints):
            if states is not None:
                states.advance(index)
            else:
                twin.advance(speed, maintenance, standby)
            values_now: dict[str, float] = {}
            for machine in twin.machines:
                values_now.update(machine_signals(machine))
            predictions.append(values_now)
        return predictions

    def residuals(self, recording: Recording, values: Sequence[float]) -> np.ndarray:
        """Normalised residuals (predicted − measured) / scale over the window."""
        predictions = self.simulate(recording, values)
        out = []
        for predicted, measured in zip(predictions, recording.samples, strict=True):
            for name in sorted(predicted):
                scale = self.scales.get(name.rsplit(".", 1)[-1])
                value = measured.get(name, math.nan)
                if scale is not None and math.isfinite(value):
                    out.append((predicted[name] - value) / scale)
        return np.asarray(out)

    def nominal(self, recording: Recording) -> np.ndarray:
        """The twin's current values of the parameters (the default warm start)."""
        twin = self._build(recording)
        twin.reset(np.random.default_rng(recording.seed), start_s=recording.start_s)
        return np.array([float(next(self._machines(p)).unit.get(p.name)) for p in self.parameters])

    def fit(
        self,
        recording: Recording,
        *,
        x0: Sequence[float] | None = None,
        max_evaluations: int = 200,
        on_evaluation: Callable[[], None] | None = None,
    ) -> CalibrationResult:
        """Least-squares fit of the parameters to ``recording``. ``max_evaluations`` bounds the
        optimiser's iterations (finite-difference Jacobians add one re-simulation per parameter
        each); ``on_evaluation`` is called after every re-simulation (progress bars)."""
        from scipy.optimize import least_squares

        if len(recording.samples) != len(recording.setpoints) or not recording.samples:
            raise ValueError("a Recording needs one setpoint triple per sample, and samples")
        nominal = self.nominal(recording)  # builds the twin
        start = nominal if x0 is None else np.asarray(x0, dtype=float)
        low, high = self.bounds()
        if start.shape != low.shape:
            raise ValueError(f"x0 needs {len(low)} values, one per FitParameter")
        start = np.clip(start, low, high)
        self.evaluations = 0

        def residuals(x: np.ndarray) -> np.ndarray:
            out = self.residuals(recording, x)
            if on_evaluation is not None:
                on_evaluation()
            return out

        solution = least_squares(
            residuals,
            start,
            bounds=(low, high),
            x_scale=np.maximum(np.abs(start), 1e-9),
            diff_step=1e-3,
            max_nfev=max_evaluations,
        )
        m, p = solution.fun.size, solution.x.size
        s2 = 2.0 * solution.cost / max(m - p, 1)
        try:
            covariance = np.linalg.inv(solution.jac.T @ solution.jac) * s2
            errors = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
        except np.linalg.LinAlgError:
            errors = np.full(p, math.inf)
        keys = [q.key for q in self.parameters]
        return CalibrationResult(
            values=dict(zip(keys, map(float, solution.x), strict=True)),
            std_errors=dict(zip(keys, map(float, errors), strict=True)),
            initial=dict(zip(keys, map(float, start), strict=True)),
            rmse=float(np.sqrt(np.mean(solution.fun**2))),
            evaluations=self.evaluations,
            success=bool(solution.success),
        )

    def close(self) -> None:
        if self.twin is not None:
            self.twin.close()
            self.twin = None


WEAR_BOUNDS = (0.2, 5.0)
"""Default search range of ``wear_rate_factor`` (the model allows 0..10)."""


def default_fit_parameters(scenario: Scenario) -> list[FitParameter]:
    """Thermal resistance of every station, thermal capacity and specific cutting energy (the
    cutting-power coefficient) of CncMill stations, one shop-floor temperature for every
    machine, and each machine's wear-rate factor."""
    from envs.sync.recording import machine_names

    parameters = []
    for station in scenario.stations:
        parameters.append(FitParameter(station.name, "thermal_resistance"))
        if station.equipment == "CncMill":
            parameters.append(FitParameter(station.name, "thermal_capacity"))
            parameters.append(FitParameter(station.name, "specific_cutting_energy"))
    parameters.append(FitParameter("", "ambient_temperature"))
    parameters += [
        FitParameter(m, "wear_rate_factor", WEAR_BOUNDS) for m in machine_names(scenario)
    ]
    return parameters


def true_value(
    parameter: FitParameter, truth: Mapping, scenario: Scenario
) -> tuple[float | None, str]:
    """The plant's value of a fitted parameter, averaged over its target's machines (None when
    unknown), and a note on spread or drift. ``truth`` holds ``start`` and ``end``:
    :meth:`envs.plant.Plant.fmu_values` at the start and the end of the recorded window."""
    from envs.sync.recording import machine_names

    machines = [
        m for m in machine_names(scenario) if parameter.target in ("", m, m.rsplit("-", 1)[0])
    ]
    start = [truth["start"].get(m, {}).get(parameter.name) for m in machines]
    end = [truth["end"].get(m, {}).get(parameter.name) for m in machines]
    if not start or any(v is None for v in start + end):
        return None, ""
    notes = []
    if max(start) - min(start) > 1e-12 * max(1.0, abs(max(start))):
        notes.append(f"differs across machines ({min(start):.4g}..{max(start):.4g}), mean")
    if any(abs(a - b) > 1e-12 * max(1.0, abs(a)) for a, b in zip(start, end, strict=True)):
        notes.append(f"drifted to {sum(end) / len(end):.4g} in the window")
    return sum(start) / len(start), "; ".join(notes)
