"""Discrete-state synchronisation: the twin's machines follow the plant's reported up/down state.

Continuous states are pulled toward measurements (:mod:`envs.sync.nudging`,
:mod:`envs.sync.kalman`); the discrete ones cannot be blended, only adopted. The plant reports
each machine's :class:`envs.machines.MachineState` code (``<machine>.state``). What decides a
twin's physics most is whether a machine is down: a failed mill cools and stops wearing, the
line behind it starves. So, per machine:

- the plant reports it failed or in repair and the twin has it in service → the twin's machine
  fails at its next tick (:meth:`ProductionLine.request_failure`; the part in it is scrapped and
  the twin draws its own repair time, the real one being unknown);
- the plant reports it in service and the twin has it failed or in repair → the twin's repair
  ends at its next tick (:meth:`ProductionLine.request_return_to_service`).

What is *not* adopted: busy vs idle vs standby. Those follow from the flow of parts (order
arrivals, buffer levels), which the plant does not report; forcing them would create or destroy
parts in the twin. They are counted as mismatches, the evidence that the twin's flow has parted
from the plant's. A missing or NaN state (no report) leaves the machine alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from envs.line import DOWN_STATES, OUT_OF_SERVICE, ProductionLine
from envs.machines import MachineState


@dataclass(frozen=True)
class StateCorrection:
    """What one :meth:`DiscreteStateSync.correct` call found and did."""

    mismatched: tuple[str, ...]
    """Machines whose reported state differed from the twin's (any state)."""
    failed: tuple[str, ...]
    """Machines the twin was told to fail."""
    restored: tuple[str, ...]
    """Machines whose repair the twin was told to end."""


class DiscreteStateSync:
    """Makes a twin :class:`ProductionLine` adopt the plant's reported machine failures and
    repairs (see the module docstring)."""

    def __init__(self, line: ProductionLine) -> None:
        self.line = line

    def mismatched(self, measurement: Mapping[str, float]) -> tuple[str, ...]:
        """Machines whose reported state differs from the twin's (nothing is changed)."""
        return tuple(
            self.line.machines[k].name
            for k, state in self._reported(measurement).items()
            if state is not self.line.machines[k].state
        )

    def correct(self, measurement: Mapping[str, float]) -> StateCorrection:
        """Compare the reported states with the twin's and request the corrections, which the
        twin applies at the start of its next advance. Raises ``ValueError`` (and requests
        nothing) on a state code that is not a :class:`MachineState`."""
        reported = self._reported(measurement)
        mismatched, failed, restored = [], [], []
        for k, state in reported.items():
            machine = self.line.machines[k]
            if state is machine.state:
                continue
            mismatched.append(machine.name)
            if state in DOWN_STATES and machine.state not in OUT_OF_SERVICE:
                self.line.request_failure(k)
                failed.append(machine.name)
            elif state not in OUT_OF_SERVICE and machine.state in DOWN_STATES:
                self.line.request_return_to_service(k)
                restored.append(machine.name)
        return StateCorrection(tuple(mismatched), tuple(failed), tuple(restored))

    def _reported(self, measurement: Mapping[str, float]) -> dict[int, MachineState]:
        reported: dict[int, MachineState] = {}
        for k, machine in enumerate(self.line.machines):
            code = measurement.get(f"{machine.name}.state")
            if code is None or not math.isfinite(code):
                continue
            if code != int(code) or int(code) not in MachineState._value2member_map_:
                raise ValueError(
                    f"{machine.name}.state = {code!r} is not a machine state code; expected one "
                    f"of {', '.join(f'{s.value} ({s.name})' for s in MachineState)}"
                )
            reported[k] = MachineState(int(code))
        return reported
