"""Optimisers over the production-line twin.

- :mod:`optimizers.plan` — the decision vector (an operating plan: per-machine speed factors,
  maintenance wear thresholds, standby timeouts, a speed multiplier per tariff price) and the
  controller that applies a plan to the line.
- :mod:`optimizers.simulate`, :mod:`optimizers.problems` — ``FactoryProblem``: simulate a plan
  over a horizon and seeds (common random numbers) → ``F = (C, E, D)``, ``G = (Tmin − T,
  R − Rmax)``; ZDT1/DTLZ2 for harness checks; the budgeted, archived ``Evaluator``.
- :mod:`optimizers.engines` — serial, local process pool, Dask cluster.
- :mod:`optimizers.algorithms` — ``run_algorithm(name, problem, budget=, seed=)`` for NSGA-II
  (default), NSGA-III, MOEA/D, random search, the SciPy weighted sum, optuna NSGA-II and TPE;
  :mod:`optimizers.registry` — the one list of those names; :mod:`optimizers.population` —
  population helpers and the penalised objective (the leaf every algorithm module uses).
- :mod:`optimizers.pareto` — the Pareto set on disk (``pareto.json``, ``pareto.csv``) and back
  (``load_pareto``), picking a plan (``pick_plan``); :mod:`optimizers.run` — one optimisation
  run as ``scripts/optimize.py`` makes it.
- :mod:`optimizers.benchmark` — equal budgets, seeds, HV/IGD, anytime curves, Wilcoxon tests,
  cached runs; :mod:`optimizers.compare` — a chosen plan against the heuristics.

Submodules load on first use: ``import optimizers`` imports neither pymoo nor the FMU layer.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ALGORITHMS": "optimizers.registry",
    "REGISTRY": "optimizers.registry",
    "load_optimize_config": "optimizers.config",
    "load_benchmark_config": "optimizers.config",
    "BenchmarkConfig": "optimizers.config",
    "OptimizeConfig": "optimizers.config",
    "PlantChange": "optimizers.config",
    "ProblemConfig": "optimizers.config",
    "OperatingPlan": "optimizers.plan",
    "PlanBoundsError": "optimizers.plan",
    "PlanEncoding": "optimizers.plan",
    "Evaluation": "optimizers.simulate",
    "evaluate_plan": "optimizers.simulate",
    "Evaluator": "optimizers.problems",
    "FactoryProblem": "optimizers.problems",
    "StandardProblem": "optimizers.problems",
    "make_problem": "optimizers.problems",
    "make_engine": "optimizers.engines",
    "RunResult": "optimizers.algorithms",
    "run_algorithm": "optimizers.algorithms",
    "pymoo_problem": "optimizers.algorithms",
    "ParetoFront": "optimizers.pareto",
    "load_pareto": "optimizers.pareto",
    "pick_plan": "optimizers.pareto",
    "save_pareto": "optimizers.pareto",
    "run_optimisation": "optimizers.run",
    "pick_and_compare": "optimizers.run",
    "run_benchmark": "optimizers.benchmark",
    "compare_with_heuristics": "optimizers.compare",
    "hypervolume": "optimizers.indicators",
    "knee_point": "optimizers.indicators",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'optimizers' has no attribute '{name}'")
