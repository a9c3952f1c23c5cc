"""Policies for the twinfactory envs: heuristics, PPO training, evaluation, export.

- :mod:`agents.heuristics` — ``naive``, ``fixed_interval`` and ``condition_based`` baselines
  with SB3's ``predict`` signature.
- :mod:`agents.training` — :func:`train` a PPO run from a :class:`TrainConfig`
  (:mod:`agents.config`) with checkpoints and resume (:mod:`agents.run_folder`), envs from
  :mod:`agents.env_factory`, callbacks from :mod:`agents.callbacks`; :class:`TrainingDiverged`
  when parameters or losses stop being finite.
- :mod:`agents.evaluation` — heuristics, saved PPO models and exported policies over held-out
  seeds: KPI tables, change against ``naive``, plots; :mod:`agents.comparison` — paired
  differences against a reference; :mod:`agents.report` — the whole report of
  ``scripts/evaluate.py``; :mod:`agents.statistics` — IQM, bootstrap and t intervals.
- :mod:`agents.tuning` — optuna over PPO hyper-parameters.
- :mod:`agents.exported` — a trained actor as a numpy-only file for the edge bridge.

Names are imported from their submodule on first use, so ``import agents`` and
``agents.exported`` load without torch or Gymnasium.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.comparison import PairedComparison, paired_comparisons
    from agents.config import TrainConfig
    from agents.evaluation import EpisodeResult, evaluate, load_policy, run_episode, summarise
    from agents.exported import ExportedPolicy, ExportedPolicyError, export
    from agents.heuristics import (
        HEURISTICS,
        ConditionBasedPolicy,
        FixedIntervalPolicy,
        NaivePolicy,
        make_heuristic,
    )
    from agents.report import EvaluateConfig, evaluation_report
    from agents.statistics import Estimate, estimate
    from agents.training import TrainingDiverged, train
    from agents.tuned_rule import RuleSettings, TunedRulePolicy, load_rule, tune_rule
    from agents.tuning import TuneConfig, tune

_SOURCES = {
    "agents.comparison": ("PairedComparison", "paired_comparisons"),
    "agents.config": ("TrainConfig",),
    "agents.evaluation": ("EpisodeResult", "evaluate", "load_policy", "run_episode", "summarise"),
    "agents.exported": ("ExportedPolicy", "ExportedPolicyError", "export"),
    "agents.heuristics": (
        "HEURISTICS",
        "ConditionBasedPolicy",
        "FixedIntervalPolicy",
        "NaivePolicy",
        "make_heuristic",
    ),
    "agents.report": ("EvaluateConfig", "evaluation_report"),
    "agents.statistics": ("Estimate", "estimate"),
    "agents.training": ("TrainingDiverged", "train"),
    "agents.tuned_rule": ("RuleSettings", "TunedRulePolicy", "load_rule", "tune_rule"),
    "agents.tuning": ("TuneConfig", "tune"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "HEURISTICS",
    "ConditionBasedPolicy",
    "EpisodeResult",
    "Estimate",
    "EvaluateConfig",
    "ExportedPolicy",
    "ExportedPolicyError",
    "FixedIntervalPolicy",
    "NaivePolicy",
    "PairedComparison",
    "RuleSettings",
    "TrainConfig",
    "TrainingDiverged",
    "TuneConfig",
    "TunedRulePolicy",
    "estimate",
    "evaluate",
    "evaluation_report",
    "export",
    "load_policy",
    "load_rule",
    "make_heuristic",
    "paired_comparisons",
    "run_episode",
    "summarise",
    "train",
    "tune",
    "tune_rule",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'agents' has no attribute '{name}'")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
