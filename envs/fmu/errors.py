"""Exceptions of the FMU layer. Each message says what went wrong and how to fix it."""

from __future__ import annotations


class FmuError(RuntimeError):
    """Base class of every FMU-layer error."""


class FmuLoadError(FmuError):
    """The FMU cannot be opened: not an FMU, no binary for this platform, a library that fails
    to load, or an interface this layer does not support."""


class FmuCallError(FmuError):
    """An FMU function returned fmiError or fmiFatal.

    ``function`` is the FMI function, ``status`` its status name and ``messages`` what the FMU
    logged during the call.
    """

    def __init__(self, unit: str, function: str, status: str, messages: list[str]) -> None:
        self.unit = unit
        self.function = function
        self.status = status
        self.messages = list(messages)
        logged = "; ".join(messages) if messages else "the FMU logged nothing"
        super().__init__(f"{unit}: {function} returned {status}: {logged}")

    def __reduce__(self):  # picklable across the worker-process pipe
        return (type(self), (self.unit, self.function, self.status, self.messages))


class FmuStateError(FmuError):
    """Snapshots are not available for this FMU (it does not support getting FMU states)."""


class FmuVariableError(FmuError, KeyError, ValueError):
    """An unknown variable name, or a value that the variable cannot take."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class FmuWorkerError(FmuError):
    """The worker process of an isolated unit died (the FMU crashed it) or stopped answering."""
