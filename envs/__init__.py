"""Everything that simulates.

- :mod:`envs.fmu` — ``FmuUnit`` (one instance of any FMI 2.0/3.0 FMU, co-simulation or model
  exchange) and ``FmuWorker`` (the same in a separate process).
- :mod:`envs.cosim` — ``CoSimulation``: several units coupled on an integer tick clock.
- :mod:`envs.fmu_env` — ``FmuEnv``, registered as ``twinfactory/Fmu-v0``.
- :mod:`envs.scenario`, :mod:`envs.line`, :mod:`envs.kpi` — scenarios, the ``ProductionLine``
  and the one KPI module; :mod:`envs.line_env` registers ``twinfactory/ProductionLine-v0`` and
  ``twinfactory/ProductionLine-MO-v0``.
- :mod:`envs.plant` — the plant emulator; :mod:`envs.sync` — twin synchronisation.
- Shared definitions: :mod:`envs.config` (the one config loader), :mod:`envs.atomic` (the one
  atomic write), :mod:`envs.seeding` (held-out seeds), :mod:`envs.equipment` (what each shipped
  model declares).

Importing this package registers every twinfactory env with Gymnasium (cheap: entry points are
strings). The names below load their module on first use, so ``import envs`` stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gymnasium.envs.registration import register, registry

_EXPORTS = {
    "CoSimulation": "envs.cosim",
    "FmuUnit": "envs.fmu",
    "FmuWorker": "envs.fmu",
    "FmuEnv": "envs.fmu_env",
    "ProductionLine": "envs.line",
    "Randomization": "envs.line",
    "ProductionLineEnv": "envs.line_env",
    "ProductionLineMOEnv": "envs.line_env",
    "Scenario": "envs.scenario",
    "load_scenario": "envs.scenario",
    "scenario_names": "envs.scenario",
    "Kpis": "envs.kpi",
    "KpiLedger": "envs.kpi",
    "IntervalRecord": "envs.kpi",
    "CostRates": "envs.kpi",
    "Plant": "envs.plant",
    "PlantConfig": "envs.plant",
    "load_plant_config": "envs.plant",
    "ConfigError": "envs.config",
    "load_config": "envs.config",
    "load_toml": "envs.config",
    "write_atomic": "envs.atomic",
    "HELD_OUT_SEEDS_FROM": "envs.seeding",
    "event_rng": "envs.seeding",
}

__all__ = sorted([*_EXPORTS, "register_envs"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'envs' has no attribute '{name}'")


def register_envs() -> None:
    """Register the twinfactory envs (idempotent; importing ``envs`` already does it)."""
    if "twinfactory/Fmu-v0" not in registry:
        register(id="twinfactory/Fmu-v0", entry_point="envs.fmu_env:FmuEnv")
    # No max_episode_steps: the line envs truncate at their own horizon (horizon_h of the
    # scenario or argument, in decision intervals), the one time limit for any scenario.
    if "twinfactory/ProductionLine-v0" not in registry:
        register(id="twinfactory/ProductionLine-v0", entry_point="envs.line_env:ProductionLineEnv")
    if "twinfactory/ProductionLine-MO-v0" not in registry:
        register(
            id="twinfactory/ProductionLine-MO-v0",
            entry_point="envs.line_env:ProductionLineMOEnv",
            disable_env_checker=True,
        )  # a vector reward is not a Gymnasium scalar


register_envs()
