"""Policies for the twinfactory envs and their evaluation (PPO training and tuning come next).

- :mod:`agents.heuristics` — ``naive``, ``fixed_interval`` and ``condition_based`` baselines
  with SB3's ``predict`` signature.
- :mod:`agents.evaluation` — heuristics and saved PPO models over held-out seeds: KPI tables,
  change against ``naive``, plots; :mod:`agents.statistics` — IQM, bootstrap and t intervals.
"""

from agents.heuristics import (
    HEURISTICS,
    ConditionBasedPolicy,
    FixedIntervalPolicy,
    NaivePolicy,
    make_heuristic,
)

__all__ = [
    "HEURISTICS",
    "ConditionBasedPolicy",
    "FixedIntervalPolicy",
    "NaivePolicy",
    "make_heuristic",
]
