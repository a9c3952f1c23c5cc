"""A machine of the production line: one equipment FMU plus its discrete state.

The FMU carries the physics (power, temperature, wear, hazard, cycle time, defects); this
module carries what the FMU does not know: the machine's state, the part in progress and the
timers of repairs, maintenance and wake-ups. :class:`Equipment` maps the two shipped models
onto one interface.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from envs.fmu import FmuUnit


class MachineState(IntEnum):
    OFF = 0
    STANDBY = 1
    IDLE = 2
    BUSY = 3
    FAILED = 4
    REPAIR = 5
    MAINTENANCE = 6


class FmuMode(IntEnum):
    """The ``mode`` input of both shipped equipment models (see their READMEs)."""

    OFF = 0
    STANDBY = 1
    IDLE = 2
    WORKING = 3


FMU_MODE = {
    MachineState.OFF: FmuMode.OFF,
    MachineState.STANDBY: FmuMode.STANDBY,
    MachineState.IDLE: FmuMode.IDLE,
    MachineState.BUSY: FmuMode.WORKING,
    MachineState.FAILED: FmuMode.OFF,
    MachineState.REPAIR: FmuMode.OFF,
    MachineState.MAINTENANCE: FmuMode.OFF,
}
"""FMU operating mode per machine state: a machine that is failed, in repair or in maintenance
is powered down."""


@dataclass(frozen=True)
class Equipment:
    """How the line talks to one kind of FMU."""

    speed_input: str
    wear_output: str
    wear_limit: str | None  # parameter that normalises wear, None when wear is already 0..1
    temperature_output: str
    reset_wear_input: str
    wear_rate_parameter: str
    initial_wear_parameter: str
    defect_output: str | None
    vibration_output: str | None
    cutting_time_output: str | None


EQUIPMENT = {
    "CncMill": Equipment(
        "spindle_speed",
        "tool_wear",
        "wear_limit",
        "spindle_temperature",
        "tool_change",
        "wear_rate_factor",
        "initial_tool_wear",
        "defect_probability",
        "vibration_rms",
        "cutting_time",
    ),
    "RobotCell": Equipment(
        "speed_override",
        "wear",
        None,
        "joint_temperature",
        "gripper_service",
        "wear_rate_factor",
        "initial_wear",
        None,
        None,
        None,
    ),
}


class Machine:
    """One machine: its FMU unit, state, part in progress and timers."""

    def __init__(
        self,
        name: str,
        equipment_name: str,
        unit: FmuUnit,
        nominal_speed: float,
        speed_range: tuple[float, float],
    ) -> None:
        self.name = name
        self.kind = equipment_name
        self.equipment = EQUIPMENT[equipment_name]
        self.unit = unit
        self.nominal_speed = nominal_speed
        self.speed_range = speed_range
        eq = self.equipment
        outputs = [
            "power",
            "energy",
            eq.temperature_output,
            eq.wear_output,
            "hazard_rate",
            "cycle_time",
        ]
        for optional in (eq.defect_output, eq.vibration_output, eq.cutting_time_output):
            if optional:
                outputs.append(optional)
        self._io = unit.real_io([eq.speed_input], outputs)
        self._index = {name: i for i, name in enumerate(outputs)}
        self.wear_limit = unit.get(eq.wear_limit) if eq.wear_limit else 1.0
        self.ideal_cycle_s = unit.get("cycle_time")
        self.reset_state()

    def reset_state(self) -> None:
        self.state = MachineState.IDLE
        self.timer_s = 0.0
        self.progress = 0.0
        self.holding = False  # a finished part waiting for room downstream
        self.maintenance_pending = False
        self.standby_permitted = False
        self.hours_since_maintenance = 0.0
        self.speed_factor = 1.0
        self._mode: int | None = None
        self._reset_edge = False
        self._edge_high = False
        self._outputs = self._io.read()
        self._last_energy = self.output("energy")

    # -- FMU exchange -------------------------------------------------------------
    def output(self, name: str) -> float:
        return float(self._outputs[self._index[name]])

    @property
    def wear_ratio(self) -> float:
        return self.output(self.equipment.wear_output) / self.wear_limit

    @property
    def temperature(self) -> float:
        return self.output(self.equipment.temperature_output)

    @property
    def vibration(self) -> float:
        name = self.equipment.vibration_output
        return self.output(name) if name else 0.0

    @property
    def defect_probability(self) -> float:
        name = self.equipment.defect_output
        return self.output(name) if name else 0.0

    @property
    def hazard_per_h(self) -> float:
        return self.output("hazard_rate")

    @property
    def cycle_time_s(self) -> float:
        return self.output("cycle_time")

    def fmu_mode(self) -> int:
        """The FMU mode for this tick (a mill cutting a part alternates cut and handling)."""
        if self.state is MachineState.BUSY and self.equipment.cutting_time_output:
            cutting_share = self.output(self.equipment.cutting_time_output) / self.cycle_time_s
            return 3 if self.progress < cutting_share else 2
        if self.state is MachineState.BUSY and self.holding:
            return 2
        return int(FMU_MODE[self.state])

    def request_wear_reset(self) -> None:
        """Tool change / gripper service at the start of the next tick."""
        self._reset_edge = True

    def push_inputs(self, speed_factor: float) -> np.ndarray:
        """Inputs for the coming tick; returns the Real input vector for RealIO."""
        self.speed_factor = speed_factor
        mode = self.fmu_mode()
        if mode != self._mode:
            self.unit.set("mode", mode)
            self._mode = mode
        edge_name = self.equipment.reset_wear_input
        if self._edge_high:  # lower the input first, so that the next request is an edge again
            self.unit.set(edge_name, False)
            self._edge_high = False
        elif self._reset_edge:
            self.unit.set(edge_name, True)
            self._edge_high = True
            self._reset_edge = False
        return np.array([self.nominal_speed * speed_factor])

    def write_speed(self, speed: np.ndarray) -> None:
        self._io.write_checked(speed)

    def pull_outputs(self) -> float:
        """Read the outputs after a tick; returns the energy of the tick, kWh."""
        self._outputs = self._io.read()
        energy = self.output("energy")
        delta, self._last_energy = energy - self._last_energy, energy
        return delta
