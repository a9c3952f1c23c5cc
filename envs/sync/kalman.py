"""An extended Kalman filter for the twin's continuous states, predicting with FMU snapshots.

State per machine: ``x = (temperature, wear)`` in the plant's measured units (degC; wear as a
fraction of the wear limit), both measured directly (``H = I`` on the components that arrived).

Prediction (one interval):

- the mean ``x⁻ = f(x)`` is the twin's own advance (:meth:`ProductionLine.advance`), so the
  filter adds no model of its own and the discrete events, modes and speeds of the interval
  act exactly as in the twin;
- the covariance ``P⁻ = F P Fᵀ + Q``, with ``F = ∂f/∂x`` by finite differences *through the
  FMU*: :meth:`begin` snapshots every machine's FMU before the advance; :meth:`predict`
  snapshots the advanced FMU, restores the start, replays the interval tick by tick once as is
  and once with each state perturbed (written through :class:`StateEditor`), and restores the
  advanced snapshot. The replay holds the inputs of the interval's start (mode, speed, a tool
  change), so ``F`` is the linearisation along an approximate path while the mean stays exact.
  It captures what matters for the gain: a temperature forgets its past as
  ``exp(−Δt / (R_th C_th))``, wear carries over one to one, a tool change zeroes it.
- ``Q = diag(q_T², q_w²) · Δt``: ``process_std`` is the model error per √s (hidden parameters,
  drift), the knob that sets how far the filter trusts the twin over the sensors.

Correction with measurement ``z`` (NaN = dropped: that row is left out) and
``R = diag(measurement_std²)``: ``K = P⁻Hᵀ(HP⁻Hᵀ + R)⁻¹``, ``x = x⁻ + K(z − Hx⁻)`` written back
to the FMU (clipped into the variables' ranges), ``P = (I − KH)P⁻(I − KH)ᵀ + KRKᵀ`` (Joseph
form, stays symmetric positive definite). Against fixed-gain nudging the filter's gain is
large while the twin is uncertain (after reset, after a tool change) and settles where model
error and sensor noise balance, per machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from envs.fmu.unit import Snapshot
from envs.line import ProductionLine
from envs.machines import Machine
from envs.plant_signals import machine_signals
from envs.sync.state import SYNCED_KINDS, StateEditor

KINDS = SYNCED_KINDS
DEFAULT_PROCESS_STD = {"temperature": 0.05, "wear": 2e-4}
"""Model error per √s: 0.39 K and 0.0015 of the wear limit per minute."""
DEFAULT_MEASUREMENT_STD = {"temperature": 0.2, "wear": 0.005}
"""The emulator's default sensor noise (:class:`envs.plant.NoiseConfig`)."""
DEFAULT_INITIAL_STD = {"temperature": 3.0, "wear": 0.02}
"""How far the twin's state may be from the plant's at the start."""
PERTURBATION = {"temperature": 0.5, "wear": 0.01}
"""Finite-difference steps for the Jacobian (degC, fraction of the wear limit)."""


def _checked(
    name: str, values: Mapping[str, float] | None, default: Mapping[str, float]
) -> np.ndarray:
    merged = {**default, **(values or {})}
    for kind, value in merged.items():
        if kind not in KINDS:
            raise ValueError(f"{name}: unknown signal kind '{kind}'; the states are {KINDS}")
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name}['{kind}'] must be a positive number, not {value!r}")
    return np.array([float(merged[kind]) for kind in KINDS])


class KalmanFilter:
    """Extended Kalman filter on every machine of a twin :class:`ProductionLine`.

    Call :meth:`begin` before the twin advances an interval, :meth:`predict` after it (returns
    the twin's signals, as :meth:`Nudger.predict` does) and :meth:`correct` with the
    measurement taken at the end of the interval. Standard deviations are in the signal units
    (``process_std`` per √s).
    """

    def __init__(
        self,
        line: ProductionLine,
        *,
        process_std: Mapping[str, float] | None = None,
        measurement_std: Mapping[str, float] | None = None,
        initial_std: Mapping[str, float] | None = None,
    ) -> None:
        self.line = line
        self.process_std = _checked("process_std", process_std, DEFAULT_PROCESS_STD)
        self.measurement_std = _checked("measurement_std", measurement_std, DEFAULT_MEASUREMENT_STD)
        initial = _checked("initial_std", initial_std, DEFAULT_INITIAL_STD)
        self._editors = {machine.name: StateEditor(machine.unit) for machine in line.machines}
        self.covariance = {machine.name: np.diag(initial**2) for machine in line.machines}
        self._start: dict[str, Snapshot] | None = None
        self._start_time = 0.0

    # -- the loop ------------------------------------------------------------------
    def begin(self) -> None:
        """Snapshot every machine's FMU: the start of the interval the twin is about to run."""
        self._start = {machine.name: machine.unit.snapshot() for machine in self.line.machines}
        self._start_time = self.line.time_s

    def predict(self) -> dict[str, float]:
        """Propagate the covariances over the interval since :meth:`begin` (once) and return
        the twin's current values of the plant's measured signals."""
        if self._start is not None:
            elapsed = self.line.time_s - self._start_time
            if elapsed > 0:
                for machine in self.line.machines:
                    jacobian = self._jacobian(machine, self._start[machine.name], elapsed)
                    covariance = self.covariance[machine.name]
                    noise = np.diag(self.process_std**2) * elapsed
                    self.covariance[machine.name] = jacobian @ covariance @ jacobian.T + noise
            self._start = None
        values: dict[str, float] = {}
        for machine in self.line.machines:
            values.update(machine_signals(machine))
        return values

    def correct(self, measurement: Mapping[str, float]) -> dict[str, float]:
        """Kalman update from one measurement; returns the innovations ``measured − x⁻``
        (signal units) of the components that had a finite measurement."""
        innovations: dict[str, float] = {}
        for machine in self.line.machines:
            state = self.state(machine)
            rows, values = [], []
            for index, kind in enumerate(KINDS):
                measured = measurement.get(f"{machine.name}.{kind}", math.nan)
                if measured is not None and math.isfinite(measured):
                    rows.append(index)
                    values.append(float(measured))
            if not rows:
                continue
            h = np.eye(len(KINDS))[rows]
            r = np.diag(self.measurement_std[rows] ** 2)
            p = self.covariance[machine.name]
            innovation = np.array(values) - h @ state
            gain = p @ h.T @ np.linalg.inv(h @ p @ h.T + r)
            joseph = np.eye(len(KINDS)) - gain @ h
            self.covariance[machine.name] = joseph @ p @ joseph.T + gain @ r @ gain.T
            self._write(machine, state + gain @ innovation)
            for row, value in zip(rows, innovation, strict=True):
                innovations[f"{machine.name}.{KINDS[row]}"] = float(value)
        return innovations

    def std(self) -> dict[str, float]:
        """The filter's standard deviation per signal (``<machine>.<kind>``), signal units."""
        return {
            f"{name}.{kind}": float(math.sqrt(covariance[index, index]))
            for name, covariance in self.covariance.items()
            for index, kind in enumerate(KINDS)
        }

    # -- states through the FMU ----------------------------------------------------
    @staticmethod
    def state(machine: Machine) -> np.ndarray:
        return np.array([machine.temperature, machine.wear_ratio])

    def _write(self, machine: Machine, state: np.ndarray) -> None:
        eq = machine.equipment
        values = {eq.temperature_output: state[0], eq.wear_output: state[1] * machine.wear_limit}
        self._editors[machine.name].write(values, clip=True)
        machine.pull_outputs()  # the machine re-reads its outputs; energy is unchanged

    def _replay(
        self, machine: Machine, start: Snapshot, elapsed: float, delta: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Restore ``start``, optionally shift the state by ``delta``, run ``elapsed`` seconds
        tick by tick; returns (state reached, the shift actually written)."""
        unit = machine.unit
        unit.restore(start)
        shift = np.zeros(len(KINDS))
        if delta is not None:
            eq = machine.equipment
            before = np.array([unit.get(eq.temperature_output), unit.get(eq.wear_output)])
            target = before + delta * np.array([1.0, machine.wear_limit])
            self._editors[machine.name].write(
                {eq.temperature_output: target[0], eq.wear_output: target[1]}, clip=True
            )
            after = np.array([unit.get(eq.temperature_output), unit.get(eq.wear_output)])
            shift = (after - before) / np.array([1.0, machine.wear_limit])
        tick = self.line.scenario.tick_s
        for _ in range(max(1, round(elapsed / tick))):
            unit.step(tick)
        eq = machine.equipment
        reached = np.array(
            [unit.get(eq.temperature_output), unit.get(eq.wear_output) / machine.wear_limit]
        )
        return reached, shift

    def _jacobian(self, machine: Machine, start: Snapshot, elapsed: float) -> np.ndarray:
        end = machine.unit.snapshot()
        try:
            base, _ = self._replay(machine, start, elapsed, None)
            jacobian = np.eye(len(KINDS))
            for index, kind in enumerate(KINDS):
                delta = np.zeros(len(KINDS))
                # perturb downward near the top of a range, upward otherwise (wear is >= 0)
                delta[index] = PERTURBATION[kind]
                reached, shift = self._replay(machine, start, elapsed, delta)
                if abs(shift[index]) < 0.5 * PERTURBATION[kind]:
                    reached, shift = self._replay(machine, start, elapsed, -delta)
                if abs(shift[index]) > 0:
                    jacobian[:, index] = (reached - base) / shift[index]
        finally:
            machine.unit.restore(end)
        return jacobian
