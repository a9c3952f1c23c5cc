"""``ProductionLine``: FMU physics coupled with the discrete logic of a make-to-order line.

Each machine is an equipment FMU (``CncMill`` or ``RobotCell``), each transfer a ``Conveyor``
FMU, all stepped together by a :class:`envs.cosim.CoSimulation` every ``tick_s``. Python keeps
the discrete state, on the same tick:

- orders arrive as a Poisson process (rate from the demand profile by hour and weekday);
  the first station releases a raw part only while open orders exceed the work in progress;
- a machine takes a part from its input buffer, works for the FMU's ``cycle_time`` at its
  speed, then scraps it with the FMU's ``defect_probability`` (mills) or passes it on: onto
  the conveyor (spaced 1 m apart; full conveyor blocks the machine) or into the next buffer
  (full buffer blocks the conveyor); the last station delivers good parts against orders;
- machines fail with probability 1 − exp(−hazard·Δt) from the FMU's ``hazard_rate``; a failed
  machine waits one tick, then is repaired for a lognormal time; the part in it is scrapped;
  a repair or a preventive maintenance renews the tool/gripper (wear back to its initial value);
- only staffed hours start new parts; a machine allowed to stand by goes to standby when
  starved and off outside staffed hours, and needs ``wake_up_s`` (three times that from off)
  in the idle state before it can work again.

Each decision interval returns an :class:`envs.kpi.IntervalRecord`; the KPI module does the
accounting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import fmus
from envs.conveyors import Conveyor
from envs.cosim import CoSimulation
from envs.fmu import FmuUnit
from envs.interval import IntervalSums
from envs.kpi import IntervalRecord
from envs.machines import Machine, MachineState
from envs.scenario import Scenario

BUSY = MachineState.BUSY
DOWN_STATES = (MachineState.FAILED, MachineState.REPAIR)
OUT_OF_SERVICE = (MachineState.FAILED, MachineState.REPAIR, MachineState.MAINTENANCE)


@dataclass(frozen=True)
class Randomization:
    """Per-episode ranges (uniform) for machine parameters, drawn with the episode's generator.
    The federation gives every edge node its own ranges."""

    wear_rate_factor: tuple[float, float] | None = None
    """Multiplier on each machine's wear rate (1 = nominal)."""
    initial_wear: tuple[float, float] | None = None
    """Each machine's wear at the start, as a fraction of its wear limit (its 'age')."""
    ambient_temperature: tuple[float, float] | None = None
    """Shop-floor temperature for the whole episode, degC."""

    def __post_init__(self) -> None:
        for name in ("wear_rate_factor", "initial_wear", "ambient_temperature"):
            bounds = getattr(self, name)
            if bounds is not None and not (len(bounds) == 2 and bounds[0] <= bounds[1]):
                raise ValueError(f"Randomization.{name} must be (low, high) with low <= high")


class ProductionLine:
    """The hybrid line of one scenario. Call :meth:`reset` before the first :meth:`advance`."""

    def __init__(self, scenario: Scenario, *, randomization: Randomization | None = None) -> None:
        self.scenario = scenario
        self.randomization = randomization or Randomization()
        self.tick_s = scenario.tick_s
        self.ticks_per_decision = round(scenario.decision_interval_s / scenario.tick_s)
        units: dict[str, FmuUnit] = {}
        self.machines: list[Machine] = []
        self.station_of: list[int] = []
        self.conveyors: list[Conveyor | None] = []
        try:
            names = iter(scenario.machine_names)
            for index, station in enumerate(scenario.stations):
                for _ in range(station.machines):
                    name = next(names)
                    unit = FmuUnit(
                        fmus.path(station.equipment), name=name, start_values=station.parameters
                    )
                    units[name] = unit
                    self.machines.append(
                        Machine(
                            name,
                            station.equipment,
                            unit,
                            station.nominal_speed,
                            (station.speed_range[0], station.speed_range[1]),
                        )
                    )
                    self.station_of.append(index)
                if station.conveyor_length_m > 0 and index < len(scenario.stations) - 1:
                    conveyor = Conveyor.after(station)
                    units[conveyor.unit.name] = conveyor.unit
                    self.conveyors.append(conveyor)
                else:
                    self.conveyors.append(None)
            self.system = CoSimulation(units, tick=str(scenario.tick_s))
        except BaseException:
            for unit in units.values():
                unit.close()
            raise
        self._bottleneck = self._find_bottleneck()
        self._tick_text = str(scenario.tick_s)  # the co-simulation's step, as it reads it
        self._tick_h = scenario.tick_s / 3600.0
        self._at_bottleneck = [station == self._bottleneck for station in self.station_of]
        self._last_station = len(scenario.stations) - 1
        self.rng = np.random.default_rng(0)
        self.start_s = 0.0
        self._forced: dict[int, bool] = {}  # machine index -> True: fail, False: back in service

    def _find_bottleneck(self) -> int:
        capacity: dict[int, float] = {}
        for machine, station in zip(self.machines, self.station_of, strict=True):
            capacity[station] = capacity.get(station, 0.0) + 3600.0 / machine.ideal_cycle_s
        return min(capacity, key=lambda station: capacity[station])

    # -- episode ------------------------------------------------------------------
    def reset(self, rng: np.random.Generator, *, start_s: float = 0.0) -> dict[str, float]:
        """Start a new episode ``start_s`` seconds into the week (default 0: Monday 00:00);
        returns the randomised values drawn. The start only moves the calendar (shifts, demand
        profile, tariff); machines start fresh either way."""
        if not (math.isfinite(start_s) and start_s >= 0):
            raise ValueError(f"start_s must be a finite number of seconds >= 0, not {start_s}")
        self.rng = rng
        self.start_s = float(start_s)
        drawn: dict[str, float] = {}
        bounds = self.randomization
        ambient = None
        if bounds.ambient_temperature is not None:
            ambient = float(rng.uniform(*bounds.ambient_temperature))
            drawn["ambient_temperature"] = ambient
        for machine in self.machines:
            values: dict[str, float] = {}
            eq = machine.equipment
            if bounds.initial_wear is not None:
                fraction = float(rng.uniform(*bounds.initial_wear))
                values[eq.initial_wear_parameter] = fraction * machine.wear_limit
            if bounds.wear_rate_factor is not None:
                values[eq.wear_rate_parameter] = float(rng.uniform(*bounds.wear_rate_factor))
            if ambient is not None:
                values["ambient_temperature"] = ambient
            machine.unit.reset(values)
            machine.reset_state()
            drawn.update({f"{machine.name}.{k}": v for k, v in values.items()})
        for conveyor in self.conveyors:
            if conveyor is not None:
                conveyor.reset()
        self.system.restart_clock()
        self.buffers = [0] * len(self.scenario.stations)
        self.open_orders = self.scenario.demand.initial_backlog
        self._forced = {}  # machine index -> True: fail, False: back in service
        self.work_in_progress = 0
        self.delivered = 0
        self.scrapped = 0
        self.released = 0
        self.last_power_kw = 0.0
        return drawn

    @property
    def time_s(self) -> float:
        """Seconds since Monday 00:00 of the episode's first week."""
        return self.start_s + self.system.ticks * self.tick_s

    def calendar(self, time_s: float | None = None) -> tuple[int, float, bool]:
        """(weekday 0 = Monday, hour of day, staffed?) at ``time_s`` (default: now)."""
        t = self.time_s if time_s is None else time_s
        weekday = int(t // 86_400) % 7
        hour = (t % 86_400) / 3600.0
        shifts = self.scenario.shifts
        staffed = weekday in shifts.working_days and shifts.start_hour <= hour < shifts.end_hour
        return weekday, hour, staffed

    # -- one decision interval --------------------------------------------------------
    def advance(
        self, speed_factors: np.ndarray, maintenance: np.ndarray, standby: np.ndarray
    ) -> tuple[IntervalRecord, dict[str, int]]:
        """Run one decision interval under the given per-machine decisions (a shorter one if an
        FMU asks to stop; see :attr:`stopped_by`).

        ``speed_factors`` are multipliers on each machine's nominal speed (within its station's
        speed range); ``maintenance`` requests a preventive maintenance as soon as the machine
        is free; ``standby`` allows standby/off when starved.
        """
        if self.system.terminated:
            raise RuntimeError(
                f"unit '{self.stopped_by}' asked to stop the simulation; reset() the line "
                "before advancing it again"
            )
        for k, machine in enumerate(self.machines):
            low, high = machine.speed_range
            # np.clip's arithmetic (minimum(maximum(x, low), high)) without its per-call cost
            machine.speed_factor = float(min(max(speed_factors[k], low), high))
            machine.standby_permitted = bool(standby[k])
            if maintenance[k] and machine.state not in OUT_OF_SERVICE:
                machine.maintenance_pending = True
        interval = IntervalSums()
        start_price = self.scenario.tariff.price(*self.calendar()[:2])
        ticks = 0
        while ticks < self.ticks_per_decision and not self.system.terminated:
            self._tick(interval)
            ticks += 1
        hours = ticks * self.tick_s / 3600.0
        self.last_power_kw = interval.energy / hours
        record = interval.record(hours, ticks, fallback_price=start_price)
        return record, {"failures": interval.failures, "maintenances": interval.maintenances}

    @property
    def stopped_by(self) -> str | None:
        """The unit (machine or conveyor) whose FMU asked to stop the simulation, or ``None``.
        The interval it asked in ends after that tick (a shorter :class:`IntervalRecord`); the
        line cannot advance again until :meth:`reset`. The shipped FMUs never ask; a third-party
        equipment FMU may (FMI 2 discard + terminated, FMI 3 ``terminateSimulation``)."""
        return self.system.terminated_by

    # -- discrete-state synchronisation ---------------------------------------------------
    def request_failure(self, k: int) -> None:
        """Machine ``k`` fails at the start of the next tick, as a drawn failure would (a part
        in it is scrapped; the repair then takes a drawn time): for a twin whose plant reported
        a failure the twin did not draw. Ignored if the machine is out of service by then."""
        self._check_machine(k)
        self._forced[k] = True

    def request_return_to_service(self, k: int) -> None:
        """Machine ``k``'s repair ends at the start of the next tick (idle, tool or gripper
        renewed): for a twin whose plant reports the machine running while the twin has it
        down. Ignored unless the machine is failed or in repair by then."""
        self._check_machine(k)
        self._forced[k] = False

    def _check_machine(self, k: int) -> None:
        if not (isinstance(k, int | np.integer) and 0 <= k < len(self.machines)):
            raise IndexError(f"machine index {k!r} is not in 0..{len(self.machines) - 1}")

    def _apply_forced(self, interval: IntervalSums) -> None:
        for k, fail in self._forced.items():
            machine = self.machines[k]
            if fail and machine.state not in OUT_OF_SERVICE:
                self._fail(machine, interval)
            elif not fail and machine.state in DOWN_STATES:
                self._return_to_service(machine)
        self._forced.clear()

    def _fail(self, machine: Machine, interval: IntervalSums) -> None:
        if machine.state is MachineState.BUSY:
            self._scrap(machine, interval)  # the part in the machine is lost
        machine.state = MachineState.FAILED
        machine.timer_s = 0.0
        interval.failures += 1

    @staticmethod
    def _return_to_service(machine: Machine) -> None:
        machine.state = MachineState.IDLE
        machine.timer_s = 0.0
        machine.request_wear_reset()
        machine.hours_since_maintenance = 0.0

    # -- one tick ---------------------------------------------------------------------
    def _tick(self, interval: IntervalSums) -> None:
        if self._forced:
            self._apply_forced(interval)
        dt = self.tick_s
        now = self.time_s
        weekday, hour, staffed = self.calendar(now)
        demand = self.scenario.demand
        rate = (
            demand.orders_per_hour
            * demand.hourly_profile[int(hour)]
            * demand.weekday_factors[weekday]
        )
        self.open_orders += int(self.rng.poisson(rate * dt / 3600.0))
        self._deliver_conveyors(now)
        machines = self.machines
        for k in reversed(range(len(machines))):  # downstream first: room moves upstream
            self._machine_tick(k, now, staffed, interval)
        for machine in machines:
            machine.send_inputs()
        for conveyor in self.conveyors:
            if conveyor is not None:
                conveyor.push_inputs()
        price = self.scenario.tariff.price(weekday, hour)
        self.system.step(self._tick_text)
        for k, machine in enumerate(machines):
            energy = machine.pull_outputs()
            interval.energy += energy
            interval.energy_cost += price * energy
            if machine.fmu_mode() != 3:  # not cutting / not cycling: non-productive energy
                interval.idle_energy += energy
            self._account_machine(k, machine, staffed, interval)
        for conveyor in self.conveyors:
            if conveyor is not None:
                energy = conveyor.pull_energy()
                interval.energy += energy
                interval.energy_cost += price * energy
                if not conveyor.transit:
                    interval.idle_energy += energy
        interval.backlog_ticks += self.open_orders

    def _account_machine(
        self, k: int, machine: Machine, staffed: bool, interval: IntervalSums
    ) -> None:
        hours = self._tick_h
        state = machine.state
        if state is MachineState.FAILED or state is MachineState.REPAIR:
            interval.downtime_h += hours
        elif state is MachineState.MAINTENANCE:
            interval.maintenance_h += hours
        elif state is MachineState.BUSY:  # operating hours since the last maintenance
            machine.hours_since_maintenance += hours
        if staffed:
            interval.planned_h += hours
            if self._at_bottleneck[k] and state not in OUT_OF_SERVICE:
                interval.ideal_parts += self.tick_s / machine.ideal_cycle_s
        if state is MachineState.STANDBY or state is MachineState.IDLE or state is BUSY:
            probability = 1.0 - math.exp(-machine.hazard_per_h * hours)
            if self.rng.random() < probability:
                self._fail(machine, interval)

    def _scrap(self, machine: Machine, interval: IntervalSums) -> None:
        interval.scrap += 1
        self.scrapped += 1
        self.work_in_progress -= 1
        machine.holding = False
        machine.progress = 0.0

    def _deliver_conveyors(self, now: float) -> None:
        for index, conveyor in enumerate(self.conveyors):
            if conveyor is None:
                continue
            room = self.scenario.stations[index + 1].buffer_capacity - self.buffers[index + 1]
            self.buffers[index + 1] += conveyor.unload(now, room)

    def _has_input(self, station: int) -> bool:
        if station == 0:
            return self.open_orders > self.work_in_progress
        return self.buffers[station] > 0

    def _take_input(self, station: int) -> None:
        if station == 0:
            self.work_in_progress += 1
            self.released += 1
        else:
            self.buffers[station] -= 1

    def _pass_downstream(self, station: int, now: float, interval: IntervalSums) -> bool:
        if station == self._last_station:
            interval.good += 1
            self.delivered += 1
            self.work_in_progress -= 1
            self.open_orders -= 1
            return True
        conveyor = self.conveyors[station]
        if conveyor is not None:
            return conveyor.load(now)
        if self.buffers[station + 1] >= self.scenario.stations[station + 1].buffer_capacity:
            return False
        self.buffers[station + 1] += 1
        return True

    def _machine_tick(self, k: int, now: float, staffed: bool, interval: IntervalSums) -> None:
        machine, station = self.machines[k], self.station_of[k]
        reliability = self.scenario.reliability
        dt = self.tick_s
        state = machine.state
        if state is MachineState.FAILED:  # the technician arrives; the repair starts
            machine.state = MachineState.REPAIR
            machine.timer_s = self._repair_time_s()
            interval.repair_cost += (
                reliability.repair_fixed_cost
                + reliability.repair_cost_per_h * machine.timer_s / 3600.0
            )
            return
        if state in (MachineState.REPAIR, MachineState.MAINTENANCE):
            machine.timer_s -= dt
            if machine.timer_s <= 0:
                self._return_to_service(machine)
            return
        if state is MachineState.BUSY:
            if not machine.holding:
                machine.progress += dt / machine.cycle_time_s
                if machine.progress >= 1.0:
                    if station == self._bottleneck:
                        interval.made_parts += 1
                    if self.rng.random() < machine.defect_probability:
                        self._scrap(machine, interval)
                        machine.state = MachineState.IDLE
                        return
                    machine.holding = True
            if machine.holding and self._pass_downstream(station, now, interval):
                machine.holding = False
                machine.progress = 0.0
                machine.state = MachineState.IDLE
            return
        # IDLE, STANDBY or OFF
        if machine.maintenance_pending:
            machine.maintenance_pending = False
            machine.state = MachineState.MAINTENANCE
            machine.timer_s = reliability.maintenance_h * 3600.0
            interval.maintenance_cost += reliability.maintenance_cost
            interval.maintenances += 1
            return
        work = staffed and self._has_input(station)
        if state in (MachineState.STANDBY, MachineState.OFF):
            if work or not machine.standby_permitted:
                factor = 3.0 if state is MachineState.OFF else 1.0
                machine.state = MachineState.IDLE  # warming up at ready power
                machine.timer_s = reliability.wake_up_s * factor
            elif not staffed and state is MachineState.STANDBY:
                machine.state = MachineState.OFF
            return
        if machine.timer_s > 0:  # still warming up
            machine.timer_s -= dt
            return
        if work:
            self._take_input(station)
            machine.state = MachineState.BUSY
            machine.progress = 0.0
        elif machine.standby_permitted:
            machine.state = MachineState.STANDBY if staffed else MachineState.OFF

    def _repair_time_s(self) -> float:
        reliability = self.scenario.reliability
        mean, cv = reliability.mean_repair_h, reliability.repair_cv
        if cv == 0:
            return mean * 3600.0
        sigma2 = math.log1p(cv * cv)
        hours = self.rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2))
        return float(hours * 3600.0)

    def close(self) -> None:
        self.system.close()
