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
_FMU_MODE_NUMBER = {state: int(mode) for state, mode in FMU_MODE.items()}


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
        self._mode_input = unit.scalar_input("mode")
        self._edge_input = unit.scalar_input(eq.reset_wear_input)
        self._index = {name: i for i, name in enumerate(outputs)}
        index = self._index
        self._i_energy, self._i_hazard = index["energy"], index["hazard_rate"]
        self._i_cycle = index["cycle_time"]
        self._i_wear, self._i_temperature = index[eq.wear_output], index[eq.temperature_output]
        self._i_defect = index.get(eq.defect_output or "")
        self._i_vibration = index.get(eq.vibration_output or "")
        self._i_cutting = index.get(eq.cutting_time_output or "")
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
        self._outputs: list[float] = self._io.read_list()
        self._last_energy = self._outputs[self._i_energy]

    # -- FMU exchange -------------------------------------------------------------
    def output(self, name: str) -> float:
        """The FMU output ``name`` as read after the last tick."""
        return self._outputs[self._index[name]]

    @property
    def wear_ratio(self) -> float:
        return self._outputs[self._i_wear] / self.wear_limit

    @property
    def temperature(self) -> float:
        return self._outputs[self._i_temperature]

    @property
    def vibration(self) -> float:
        return 0.0 if self._i_vibration is None else self._outputs[self._i_vibration]

    @property
    def defect_probability(self) -> float:
        return 0.0 if self._i_defect is None else self._outputs[self._i_defect]

    @property
    def hazard_per_h(self) -> float:
        return self._outputs[self._i_hazard]

    @property
    def cycle_time_s(self) -> float:
        return self._outputs[self._i_cycle]

    def fmu_mode(self) -> int:
        """The FMU mode for this tick (a mill cutting a part alternates cut and handling)."""
        state = self.state
        if state is MachineState.BUSY:
            if self._i_cutting is not None:
                outputs = self._outputs
                cutting_share = outputs[self._i_cutting] / outputs[self._i_cycle]
                return 3 if self.progress < cutting_share else 2
            if self.holding:
                return 2
        return _FMU_MODE_NUMBER[state]

    def request_wear_reset(self) -> None:
        """Tool change / gripper service at the start of the next tick."""
        self._reset_edge = True

    def _set_discrete_inputs(self) -> None:
        """The FMU's mode for the coming tick, and the wear-reset edge."""
        mode = self.fmu_mode()
        if mode != self._mode:
            self._mode_input.write_checked(mode)
            self._mode = mode
        if self._edge_high:  # lower the input first, so that the next request is an edge again
            self._edge_input.write_checked(False)
            self._edge_high = False
        elif self._reset_edge:
            self._edge_input.write_checked(True)
            self._edge_high = True
            self._reset_edge = False

    def push_inputs(self, speed_factor: float) -> np.ndarray:
        """Inputs for the coming tick; returns the Real input vector for RealIO."""
        self.speed_factor = speed_factor
        self._set_discrete_inputs()
        return np.array([self.nominal_speed * speed_factor])

    def write_speed(self, speed: np.ndarray) -> None:
        self._io.write_checked(speed)

    def send_inputs(self) -> None:
        """``write_speed(push_inputs(speed_factor))`` for the current ``speed_factor``, without
        the intermediate array (the line's per-tick path)."""
        self._set_discrete_inputs()
        self._io.write_scalar_checked(self.nominal_speed * self.speed_factor)

    def pull_outputs(self) -> float:
        """Read the outputs after a tick; returns the energy of the tick, kWh."""
        outputs = self._outputs = self._io.read_list()
        energy = outputs[self._i_energy]
        delta, self._last_energy = energy - self._last_energy, energy
        return delta
