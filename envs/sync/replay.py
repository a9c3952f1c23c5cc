"""Replaying a recording's machine states: the twin's machines follow what the plant reported
instead of the twin's own discrete events.

Calibration normally replays the plant's discrete-event seed (:mod:`envs.plant`), which only an
emulated plant has. For data from a real plant the twin cannot draw the same order arrivals and
failures; what it has is each machine's reported state (``<machine>.state``, one per sample).
:class:`StateReplay` drives every machine's FMU from those reports: off, standby, idle or
working, powered down while failed, in repair or in maintenance, a tool or gripper renewed when
a repair or maintenance ends. Within a sample interval the first half of the ticks keeps the
state reported at its start, the second half the state reported at its end (a change is placed
mid-interval, at most half an interval off).

A CncMill that is busy alternates cutting and handling inside each part cycle, a phase no state
code reports. Its measured power does: cutting draws far more than handling (≈ 11 vs 5 kW for the
shipped mill). Per mill, the replay splits the busy samples' measured power at the midpoint of
its 10th and 90th percentiles and takes a sample above it as cutting; where the power is lost
(NaN) or shows no two levels, the phase runs on from the part's progress as in the line.

The part flow (buffers, conveyors, deliveries) is not replayed: only what drives the machines'
physics, and the operating hours since the last maintenance that the line's observation and
its maintenance rules read. Use it for re-simulating a recorded window
(:class:`envs.sync.Calibrator` with ``replay="states"``), not for predicting beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from envs.line import OUT_OF_SERVICE, ProductionLine
from envs.machines import Machine, MachineState
from envs.sync.recording import Recording

_HANDLING_PROGRESS = 0.999  # a progress past any cutting share: the mill's FMU mode is handling


class StateReplay:
    """Advances a twin :class:`ProductionLine` through a recording's reported machine states,
    one sample interval per :meth:`advance`. The twin must be reset to the recording's start."""

    def __init__(self, line: ProductionLine, recording: Recording) -> None:
        missing = [
            f"{machine.name}.state"
            for machine in line.machines
            if any(
                not math.isfinite(s.get(f"{machine.name}.state", math.nan))
                for s in recording.samples
            )
        ]
        if missing:
            raise ValueError(
                f"replaying states needs every machine's state in every sample; missing or NaN: "
                f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''} (record the "
                "<machine>.state columns, or replay the event seed instead)"
            )
        ticks = recording.sample_interval_s / line.tick_s
        if abs(ticks - round(ticks)) > 1e-9 or round(ticks) < 1:
            raise ValueError(
                f"the sample interval {recording.sample_interval_s} s is not a whole number of "
                f"the scenario's {line.tick_s} s ticks"
            )
        self.line = line
        self.recording = recording
        self.ticks = round(ticks)
        self.thresholds = {
            machine.name: _cutting_threshold(machine, recording) for machine in line.machines
        }

    def advance(self, index: int) -> None:
        """Run the sample interval that ends at ``recording.samples[index]`` under its
        setpoints (call with index 0, 1, 2, ... in order)."""
        samples = self.recording.samples
        before = samples[index - 1] if index > 0 else samples[index]
        self.step(before, samples[index], self.recording.setpoints[index][0])

    def step(
        self,
        before: Mapping[str, float],
        after: Mapping[str, float],
        speed_factors: ArrayLike,
    ) -> None:
        """Run one sample interval live: ``before`` and ``after`` are the samples at its start
        and end (both need every machine's ``state``), ``speed_factors`` the setpoints in
        force. Raises ``ValueError`` (nothing advanced) on a missing or invalid state."""
        for sample in (before, after):
            for machine in self.line.machines:
                code = sample.get(f"{machine.name}.state", math.nan)
                if not (
                    isinstance(code, int | float)
                    and math.isfinite(code)
                    and int(code) in MachineState._value2member_map_
                    and code == int(code)
                ):
                    raise ValueError(
                        f"{machine.name}.state = {code!r}: replaying states needs a valid "
                        "state code of every machine in every sample"
                    )
        speeds = np.asarray(speed_factors, dtype=float)
        for tick in range(self.ticks):
            source = before if tick < self.ticks // 2 else after
            for k, machine in enumerate(self.line.machines):
                self._follow(machine, source, float(speeds[k]))
            self.line.system.step(str(self.line.tick_s))
            for machine in self.line.machines:
                machine.pull_outputs()

    def _follow(self, machine: Machine, sample: Mapping[str, float], speed: float) -> None:
        state = MachineState(int(sample[f"{machine.name}.state"]))
        if machine.state in OUT_OF_SERVICE and state not in OUT_OF_SERVICE:
            machine.request_wear_reset()  # back from repair or maintenance: tool renewed
            machine.hours_since_maintenance = 0.0  # as the line's own return to service
        if state is MachineState.BUSY and machine.state is not MachineState.BUSY:
            machine.progress = 0.0
        machine.state = state
        machine.holding = False
        if state is MachineState.BUSY:
            machine.hours_since_maintenance += self.line.tick_s / 3600.0  # operating hours
            machine.progress = (machine.progress + self.line.tick_s / machine.cycle_time_s) % 1.0
            threshold = self.thresholds[machine.name]
            power = sample.get(f"{machine.name}.power", math.nan)
            if threshold is not None and math.isfinite(power):
                machine.progress = 0.0 if power > threshold else _HANDLING_PROGRESS
        machine.write_speed(machine.push_inputs(speed))


def _cutting_threshold(machine: Machine, recording: Recording) -> float | None:
    """The power (kW) above which a busy mill's sample counts as cutting; None for machines
    without a cutting phase or recordings that do not show two power levels."""
    if not machine.equipment.cutting_time_output:
        return None
    busy = int(MachineState.BUSY)
    powers = np.array(
        [
            s.get(f"{machine.name}.power", math.nan)
            for s in recording.samples
            if s.get(f"{machine.name}.state") == busy
        ],
        dtype=float,
    )
    powers = powers[np.isfinite(powers)]
    if powers.size < 4:
        return None
    low, high = np.percentile(powers, [10, 90])
    return float((low + high) / 2.0) if high - low > 1.0 else None
