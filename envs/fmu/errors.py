"""Exceptions of the FMU layer, and the record of an FMU's request to stop. Each message says
what went wrong and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StopRequest:
    """An FMU asked to end the simulation (FMI 2: ``fmi2DoStep`` returned ``fmi2Discard`` and
    ``fmi2GetBooleanStatus(fmi2Terminated)`` is true; FMI 3: ``fmi3DoStep`` set
    ``terminateSimulation``; model exchange: the event update or ``completedIntegratorStep``
    set ``terminateSimulation``). Not an error: the run ends there, as in FMPy's
    ``simulate_fmu``."""

    unit: str
    """Name of the unit whose FMU asked."""
    time: float
    """Simulation time the FMU reached, in seconds."""
    function: str
    """The FMI function that carried the request."""
    messages: tuple[str, ...] = field(default=())
    """What the FMU logged during that call."""

    def describe(self) -> str:
        logged = "; ".join(self.messages) if self.messages else "the FMU logged nothing"
        return (
            f"unit '{self.unit}' asked to stop at t = {self.time:g} s ({self.function}: {logged})"
        )

    def refusal(self) -> str:
        """The message of the error raised by a step after the stop."""
        return (
            f"{self.describe()}; it cannot step further. Call reset() to start a new run, or "
            "restore() a snapshot taken before the stop."
        )


class FmuError(RuntimeError):
    """Base class of every FMU-layer error."""


class FmuLoadError(FmuError):
    """The FMU cannot be opened: not an FMU, no binary for this platform, a library that fails
    to load, or an interface this layer does not support."""


class FmuCallError(FmuError):
    """An FMU function returned fmiError or fmiFatal (or fmiDiscard where that is an error).

    ``function`` is the FMI function, ``status`` its status name and ``messages`` what the FMU
    logged during the call.
    """

    def __init__(
        self, unit: str, function: str, status: str, messages: list[str], detail: str = ""
    ) -> None:
        self.unit = unit
        self.function = function
        self.status = status
        self.messages = list(messages)
        self.detail = detail
        logged = "; ".join(messages) if messages else "the FMU logged nothing"
        what = f"{unit}: {function} returned {status}"
        super().__init__(f"{what}{f' ({detail})' if detail else ''}: {logged}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across the worker-process pipe
        return (
            type(self),
            (self.unit, self.function, self.status, self.messages, self.detail),
        )


class FmuDiscardError(FmuCallError):
    """A step returned fmiDiscard without the FMU asking to stop: the FMU could not complete
    the step (a solver failure, an input outside what it can handle). An FMU that asks to stop
    (FMI 2: discard with ``fmi2Terminated``; FMI 3: ``terminateSimulation``) is not an error:
    the unit records a :class:`envs.fmu.StopRequest` instead."""


class FmuStateError(FmuError):
    """A snapshot cannot be taken or restored: the FMU does not support FMU states, or the
    snapshot belongs to another unit or to an instance that no longer exists."""


class FmuStoppedError(FmuError):
    """The unit (or co-simulation) was stopped because an FMU asked to end the simulation;
    it cannot step further until ``reset()`` (or ``restore()`` of an earlier snapshot)."""


class FmuVariableError(FmuError, KeyError, ValueError):
    """An unknown variable name, or a value that the variable cannot take."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class FmuWorkerError(FmuError):
    """The worker process of an isolated unit died (the FMU crashed it) or stopped answering."""
