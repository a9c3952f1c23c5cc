"""Integrate a model-exchange FMU so that it steps like a co-simulation unit.

Between two communication points the inputs are held constant. The solver is FMPy's
CVode (variable step, BDF, with root finding for state events) or forward Euler with
a fixed internal step. Time events, state events and step events are handled by
event iteration, after which the solver restarts from the new state.
"""

from __future__ import annotations

import math
from typing import Any

from envs.fmu.errors import FmuCallError

SOLVERS = ("cvode", "euler")


class TerminationRequested(Exception):
    """The model asked to end the simulation at ``time`` (seconds) through ``function``."""

    def __init__(self, time: float, function: str) -> None:
        super().__init__(f"the model requested termination at t = {time:g} s ({function})")
        self.time = time
        self.function = function


class _HeldInputs:
    """FMPy's solvers re-apply input signals during root finding; ours are held constant."""

    def apply(self, *args: Any, **kwargs: Any) -> None:
        pass


class ModelExchangeStepper:
    """Advances an initialised model-exchange FMPy instance from one communication point to
    the next. Call :meth:`start` after initialisation (or after restoring a state)."""

    def __init__(
        self,
        fmu: Any,
        model_description: Any,
        *,
        solver: str,
        solver_step: float | None,
        relative_tolerance: float,
    ) -> None:
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
        self.fmu = fmu
        self.description = model_description
        self.fmi3 = model_description.fmiVersion.startswith("3")
        self.solver_name = solver
        default_step = getattr(model_description.defaultExperiment, "stepSize", None)
        self.solver_step = float(solver_step or default_step or 1e-3)
        if not self.solver_step > 0 or math.isinf(self.solver_step):
            raise ValueError(f"solver_step must be a positive number of seconds, not {solver_step}")
        self.relative_tolerance = relative_tolerance
        self.next_event_time: float | None = None
        self._solver: Any = None
        self._restart = True
        self._in_event_mode = False

    # -- events ------------------------------------------------------------
    def _event_iteration(self, time: float | None) -> None:
        """Event iteration; ``time`` is None during initialisation, where a request to
        terminate is an error (there is no run to end yet)."""
        update = self.fmu.updateDiscreteStates if self.fmi3 else self.fmu.newDiscreteStates
        needed, terminate = True, False
        while needed and not terminate:
            needed, terminate, _, _, defined, next_time = update()
        if terminate:
            function = "fmi3UpdateDiscreteStates" if self.fmi3 else "fmi2NewDiscreteStates"
            if time is not None:
                raise TerminationRequested(time, function)
            raise FmuCallError(
                self.description.modelName,
                function,
                "terminate",
                ["the model requested termination during initialisation"],
            )
        self.next_event_time = next_time if defined else None

    def enter_event_mode(self) -> None:
        """Enter event mode (e.g. before setting discrete inputs)."""
        if not self._in_event_mode:
            self.fmu.enterEventMode()
            self._in_event_mode = True
        self._restart = True

    def start(self, time: float) -> None:
        """Finish initialisation (or a restore): event iteration, continuous-time mode, solver."""
        self._event_iteration(None)
        self.fmu.enterContinuousTimeMode()
        self._in_event_mode = False
        self._make_solver(time)

    def inputs_changed(self) -> None:
        """Continuous inputs were set: the solver restarts at the next step."""
        self._restart = True

    def _make_solver(self, time: float) -> None:
        md = self.description
        arguments = {
            "nx": md.numberOfContinuousStates,
            "nz": md.numberOfEventIndicators,
            "get_x": self.fmu.getContinuousStates,
            "set_x": self.fmu.setContinuousStates,
            "get_dx": self.fmu.getContinuousStateDerivatives
            if self.fmi3
            else self.fmu.getDerivatives,
            "get_z": self.fmu.getEventIndicators,
            "input": _HeldInputs(),
        }
        if self.solver_name == "euler":
            from fmpy.simulation import ForwardEuler

            self._solver = ForwardEuler(**arguments)
        else:
            from fmpy.sundials import CVodeSolver

            self._solver = CVodeSolver(
                get_nominals=self.fmu.getNominalsOfContinuousStates,
                set_time=self.fmu.setTime,
                startTime=time,
                maxStep=self.solver_step,
                relativeTolerance=self.relative_tolerance,
                **arguments,
            )
        self._restart = False

    def _handle_event(self, time: float) -> None:
        self.fmu.enterEventMode()
        self._event_iteration(time)
        self.fmu.enterContinuousTimeMode()
        self._make_solver(time)

    # -- stepping ----------------------------------------------------------
    def step(self, time: float, end: float) -> None:
        """Integrate from ``time`` to ``end`` with the inputs held. Raises
        :class:`TerminationRequested` where the model asks to stop."""
        if self._in_event_mode:
            self._event_iteration(time)
            self.fmu.enterContinuousTimeMode()
            self._in_event_mode = False
            self._restart = True
        if self._restart or self._solver is None:
            self._make_solver(time)
        needs_step_call = self.description.modelExchange.needsCompletedIntegratorStep
        while time < end and not math.isclose(time, end, rel_tol=1e-12, abs_tol=1e-12):
            target = end
            if self.solver_name == "euler":
                target = min(end, time + self.solver_step)
            next_event = self.next_event_time
            time_event = next_event is not None and next_event <= target
            if next_event is not None and time_event:
                target = max(next_event, time)
            state_event, _, reached = self._solver.step(time, target)
            time = reached if state_event else target
            self.fmu.setTime(time)
            step_event = False
            if needs_step_call:
                step_event, terminate = self.fmu.completedIntegratorStep()
                if terminate:
                    raise TerminationRequested(time, "completedIntegratorStep")
            if state_event or step_event or time_event:
                self._handle_event(time)
        self.fmu.setTime(end)
