"""Everything that simulates.

- :mod:`envs.fmu` — ``FmuUnit`` (one instance of any FMI 2.0/3.0 FMU, co-simulation or model
  exchange) and ``FmuWorker`` (the same in a separate process).
- :mod:`envs.cosim` — ``CoSimulation``: several units coupled on an integer tick clock.
- :mod:`envs.fmu_env` — ``FmuEnv``, registered as ``twinfactory/Fmu-v0``.

Importing this package registers every twinfactory env with Gymnasium. Later issues add the
production line, the one KPI module, state synchronisation and the plant emulator here.
"""

from gymnasium.envs.registration import register, registry

from envs.cosim import CoSimulation
from envs.fmu import FmuUnit, FmuWorker
from envs.fmu_env import FmuEnv

__all__ = ["CoSimulation", "FmuEnv", "FmuUnit", "FmuWorker", "register_envs"]


def register_envs() -> None:
    """Register the twinfactory envs (idempotent; importing ``envs`` already does it)."""
    if "twinfactory/Fmu-v0" not in registry:
        register(id="twinfactory/Fmu-v0", entry_point="envs.fmu_env:FmuEnv")


register_envs()
