"""The FMU layer: load any FMI 2.0 / 3.0 FMU once, step it fast, reset it cheaply.

- :class:`FmuUnit` — one instance (co-simulation, or model exchange integrated by a solver).
- :class:`FmuWorker` — the same interface with the FMU in a separate process, so that a
  crashing third-party FMU cannot take the caller down.
"""

from envs.fmu.errors import (
    FmuCallError,
    FmuError,
    FmuLoadError,
    FmuStateError,
    FmuVariableError,
    FmuWorkerError,
)
from envs.fmu.unit import Capabilities, FmuUnit, RealIO, Snapshot
from envs.fmu.variables import Variable
from envs.fmu.worker import FmuWorker, WorkerRealIO, WorkerSnapshot

__all__ = [
    "Capabilities",
    "FmuCallError",
    "FmuError",
    "FmuLoadError",
    "FmuStateError",
    "FmuUnit",
    "FmuVariableError",
    "FmuWorker",
    "FmuWorkerError",
    "RealIO",
    "Snapshot",
    "Variable",
    "WorkerRealIO",
    "WorkerSnapshot",
]
