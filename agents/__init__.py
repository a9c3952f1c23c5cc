"""Policies for the twinfactory envs: heuristics, PPO training, evaluation, export.

- :mod:`agents.heuristics` — ``naive``, ``fixed_interval`` and ``condition_based`` baselines
  with SB3's ``predict`` signature.
- :mod:`agents.training` — PPO runs from a TOML config, with checkpoints and resume.
- :mod:`agents.evaluation` — heuristics, saved PPO models and exported policies over held-out
  seeds: KPI tables, change against ``naive``, plots; :mod:`agents.statistics` — IQM, bootstrap
  and t intervals.
- :mod:`agents.exported` — a trained actor as a numpy-only file for the edge bridge.

Submodules are imported on first use, so ``agents.exported`` loads without torch or Gymnasium.
"""

from importlib import import_module

__all__ = [
    "HEURISTICS",
    "ConditionBasedPolicy",
    "FixedIntervalPolicy",
    "NaivePolicy",
    "make_heuristic",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("agents.heuristics"), name)
    raise AttributeError(f"module 'agents' has no attribute '{name}'")
