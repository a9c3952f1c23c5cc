"""Policies for the twinfactory envs. Issue 5 adds PPO training, evaluation and tuning here.

- :mod:`agents.heuristics` — ``naive``, ``fixed_interval`` and ``condition_based`` baselines
  with SB3's ``predict`` signature.
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
