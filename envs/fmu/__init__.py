"""The FMU layer: load any FMI 2.0 / 3.0 FMU once, step it fast, reset it cheaply.

- :class:`FmuUnit` — one instance (co-simulation, or model exchange integrated by a solver).
- :class:`FmuWorker` — the same interface with the FMU in a separate process, so that a
  crashing third-party FMU cannot take the caller down.
- :class:`RealIO` — a pre-bound vector exchange for tight loops (``envs.fmu.fast_io``).
- :class:`StopRequest` — an FMU asked to end the simulation (not an error).
"""

from envs.fmu.capabilities import Capabilities
from envs.fmu.errors import (
    FmuCallError,
    FmuDiscardError,
    FmuError,
    FmuLoadError,
    FmuStateError,
    FmuStoppedError,
    FmuVariableError,
    FmuWorkerError,
    StopRequest,
)
from envs.fmu.fast_io import RealIO
from envs.fmu.states import Snapshot
from envs.fmu.unit import FmuUnit
from envs.fmu.variables import Dimension, Variable
from envs.fmu.worker import FmuWorker, WorkerRealIO, WorkerSnapshot

__all__ = [
    "Capabilities",
    "Dimension",
    "FmuCallError",
    "FmuDiscardError",
    "FmuError",
    "FmuLoadError",
    "FmuStateError",
    "FmuStoppedError",
    "FmuUnit",
    "FmuVariableError",
    "FmuWorker",
    "FmuWorkerError",
    "RealIO",
    "Snapshot",
    "StopRequest",
    "Variable",
    "WorkerRealIO",
    "WorkerSnapshot",
]
