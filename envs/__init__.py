"""Everything that simulates.

- :mod:`envs.fmu` — ``FmuUnit`` (one instance of any FMI 2.0/3.0 FMU, co-simulation or model
  exchange) and ``FmuWorker`` (the same in a separate process).
- :mod:`envs.cosim` — ``CoSimulation``: several units coupled on an integer tick clock.
- :mod:`envs.fmu_env` — ``FmuEnv``, registered as ``twinfactory/Fmu-v0``.
- :mod:`envs.scenario`, :mod:`envs.line`, :mod:`envs.kpi` — scenarios, the ``ProductionLine``
  and the one KPI module; :mod:`envs.line_env` registers ``twinfactory/ProductionLine-v0`` and
  ``twinfactory/ProductionLine-MO-v0``.

Importing this package registers every twinfactory env with Gymnasium. Later issues add the
state synchronisation and the plant emulator here.
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
    week = 7 * 24 * 12  # one week of 5-minute decisions, the default scenario's horizon
    if "twinfactory/ProductionLine-v0" not in registry:
        register(
            id="twinfactory/ProductionLine-v0",
            entry_point="envs.line_env:ProductionLineEnv",
            max_episode_steps=week,
        )
    if "twinfactory/ProductionLine-MO-v0" not in registry:
        register(
            id="twinfactory/ProductionLine-MO-v0",
            entry_point="envs.line_env:ProductionLineMOEnv",
            max_episode_steps=week,
            disable_env_checker=True,
        )  # a vector reward is not a Gymnasium scalar


register_envs()
