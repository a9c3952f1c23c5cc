"""Nudging: pull the twin's continuous states toward measurements each interval.

The rule is the synchronisation step of the FECO pseudocode (shared literature 000):
``S ← S + β · (measured − S)``, applied per signal to the twin's FMU states. β = 0 leaves the
twin free-running, β = 1 replaces its state by the (noisy) measurement; values in between
trade tracking against noise. Nudged states: ``temperature`` (the FMU's spindle or joint
temperature, degC) and ``wear`` (tool or gripper wear, measured as a fraction of the wear
limit and written back in the FMU's own unit). They are FMU outputs, so they are written
through the FMU's serialised state (:class:`envs.sync.state.StateEditor`, where the reasons
are documented). A missing or NaN measurement (a sensor dropout) leaves that state alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from envs.line import ProductionLine
from envs.plant_signals import machine_signals
from envs.sync.state import SYNCED_KINDS, StateEditor

NUDGEABLE = SYNCED_KINDS


class Nudger:
    """Applies the nudging rule to every machine of a twin :class:`ProductionLine`.

    ``beta`` is one gain in [0, 1] for every nudged signal kind, or a mapping kind → gain
    (kinds not named are not nudged).
    """

    def __init__(self, line: ProductionLine, beta: float | Mapping[str, float] = 0.5) -> None:
        gains = {kind: beta for kind in NUDGEABLE} if not isinstance(beta, Mapping) else beta
        for kind, gain in gains.items():
            if kind not in NUDGEABLE:
                raise ValueError(f"cannot nudge '{kind}'; nudgeable signals are {NUDGEABLE}")
            if not (isinstance(gain, int | float) and 0.0 <= gain <= 1.0):
                raise ValueError(f"beta for '{kind}' must be a number in [0, 1], not {gain!r}")
        self.line = line
        self.beta = {kind: float(gain) for kind, gain in gains.items()}
        self._editors = {machine.name: StateEditor(machine.unit) for machine in line.machines}

    def begin(self) -> None:
        """Start of an interval: nothing to remember (the gain is fixed); here so that a
        :class:`Nudger` and a :class:`envs.sync.kalman.KalmanFilter` are interchangeable."""

    def predict(self) -> dict[str, float]:
        """The twin's current (noise-free) values of the plant's measured signals."""
        values: dict[str, float] = {}
        for machine in self.line.machines:
            values.update(machine_signals(machine))
        return values

    def correct(self, measurement: Mapping[str, float]) -> dict[str, float]:
        """Same as :meth:`nudge` (the synchroniser interface shared with the Kalman filter)."""
        return self.nudge(measurement)

    def nudge(self, measurement: Mapping[str, float]) -> dict[str, float]:
        """Apply one nudge; returns the innovations ``measured − S`` (signal units) of the
        signals that had a measurement."""
        innovations: dict[str, float] = {}
        for machine in self.line.machines:
            eq = machine.equipment
            writes: dict[str, float] = {}
            for kind, gain in self.beta.items():
                key = f"{machine.name}.{kind}"
                measured = measurement.get(key, math.nan)
                if measured is None or not math.isfinite(measured):
                    continue
                if kind == "temperature":
                    state, variable, unit_scale = machine.temperature, eq.temperature_output, 1.0
                else:
                    state, variable = machine.wear_ratio, eq.wear_output
                    unit_scale = machine.wear_limit
                innovation = float(measured) - state
                innovations[key] = innovation
                if gain > 0.0:
                    writes[variable] = (state + gain * innovation) * unit_scale
            if writes:
                self._editors[machine.name].write(writes, clip=True)
                machine.pull_outputs()  # the machine re-reads outputs; energy is unchanged
        return innovations
