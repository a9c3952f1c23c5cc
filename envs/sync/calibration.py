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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from envs.line import ProductionLine
from envs.machines import Machine
from envs.plant_signals import machine_signals
from envs.scenario import Scenario
from envs.seeding import event_rng
from envs.sync.metrics import FIT_SCALES, residual_rms, scale_of
from envs.sync.recording import Recording
from envs.sync.replay import StateReplay

__all__ = [
    "REPLAYS",
    "WEAR_BOUNDS",
    "CalibrationResult",
    "Calibrator",
    "FitParameter",
    "default_fit_parameters",
]


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


REPLAYS = ("events", "states")


class Calibrator:
    """Fits :class:`FitParameter` values of a twin scenario to a :class:`Recording`.

    ``scales`` normalise each signal kind's (or signal's) residuals (signal unit); kinds
    without a scale are not fitted against (default: :data:`envs.sync.metrics.FIT_SCALES`).
    ``replay`` says how the twin re-lives the window's discrete events: ``"events"`` replays
    the recording's discrete-event seed (an emulated plant's; exact), ``"states"`` makes the
    machines follow the recorded states (:class:`envs.sync.replay.StateReplay`; for real data,
    whose events no seed reproduces).
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
        self.scales = dict(scales or FIT_SCALES)
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

    def _machines(self, parameter: FitParameter) -> Iterator[Machine]:
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

    def prepare(self, recording: Recording, values: ArrayLike) -> ProductionLine:
        """The calibrator's twin, reset to the recording's start (its seed and calendar time)
        with the parameters set to ``values``; ready to advance one sample interval at a time.
        It is reused by the next :meth:`simulate` or :meth:`prepare`."""
        twin = self._build(recording)
        twin.reset(event_rng(recording.seed), start_s=recording.start_s)
        per_machine: dict[str, dict[str, float]] = {}
        for p, value in zip(self.parameters, np.asarray(values, dtype=float), strict=True):
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

    def simulate(self, recording: Recording, values: ArrayLike) -> list[dict[str, float]]:
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

    def residuals(self, recording: Recording, values: ArrayLike) -> np.ndarray:
        """Normalised residuals (predicted − measured) / scale over the window."""
        predictions = self.simulate(recording, values)
        out = []
        for predicted, measured in zip(predictions, recording.samples, strict=True):
            for name in sorted(predicted):
                scale = scale_of(name, self.scales)
                value = measured.get(name, math.nan)
                if scale is not None and math.isfinite(value):
                    out.append((predicted[name] - value) / scale)
        return np.asarray(out)

    def residual_rms(self, recording: Recording, values: ArrayLike) -> float:
        """RMS of :meth:`residuals`: the fit's objective, as :attr:`CalibrationResult.rmse`."""
        return residual_rms(self.residuals(recording, values))

    def nominal(self, recording: Recording) -> np.ndarray:
        """The twin's current values of the parameters (the default warm start)."""
        twin = self._build(recording)
        twin.reset(event_rng(recording.seed), start_s=recording.start_s)
        return np.array([float(next(self._machines(p)).unit.get(p.name)) for p in self.parameters])

    def fit(
        self,
        recording: Recording,
        *,
        x0: ArrayLike | None = None,
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
            rmse=residual_rms(solution.fun),
            evaluations=self.evaluations,
            success=bool(solution.success),
        )

    def close(self) -> None:
        """Close the twin line (its FMUs); a later call builds a new one."""
        if self.twin is not None:
            self.twin.close()
            self.twin = None


WEAR_BOUNDS = (0.2, 5.0)
"""Default search range of ``wear_rate_factor`` (the model allows 0..10)."""


def default_fit_parameters(scenario: Scenario) -> list[FitParameter]:
    """Thermal resistance of every station, thermal capacity and specific cutting energy (the
    cutting-power coefficient) of CncMill stations, one shop-floor temperature for every
    machine, and each machine's wear-rate factor."""
    parameters = []
    for station in scenario.stations:
        parameters.append(FitParameter(station.name, "thermal_resistance"))
        if station.equipment == "CncMill":
            parameters.append(FitParameter(station.name, "thermal_capacity"))
            parameters.append(FitParameter(station.name, "specific_cutting_energy"))
    parameters.append(FitParameter("", "ambient_temperature"))
    parameters += [FitParameter(m, "wear_rate_factor", WEAR_BOUNDS) for m in scenario.machine_names]
    return parameters
