"""optuna multi-objective studies as optimisers (``optuna_nsga2``, ``optuna_tpe``).

An in-memory study with one ``minimize`` direction per objective. Constraints use optuna's
current API (5.0): each G_j (feasible when ≤ 0) is recorded with
``trial.set_constraint(name, value)`` before ``tell``, and the NSGA-II and TPE samplers read them
from the trial. With optuna 4.x, which lacks ``set_constraint``, the samplers get the deprecated
``constraints_func`` that reads the same values from ``user_attrs``. Trials are asked in
batches of ``pop_size`` (ask-and-tell), so a batch is evaluated in parallel on the engine; TPE
uses its constant liar for the pending trials of a batch. Warm-start rows are enqueued first.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from optimizers.population import BudgetedEvaluator, SearchSpace, spread

SAMPLERS = ("nsga2", "tpe")


def _constraints(trial: Any) -> list[float]:
    return list(trial.user_attrs["constraints"])


def has_set_constraint() -> bool:
    """Whether this optuna records constraints with ``Trial.set_constraint`` (optuna >= 5)."""
    import optuna

    return hasattr(optuna.trial.Trial, "set_constraint")


def make_sampler(name: str, seed: int, pop_size: int, constrained: bool) -> Any:
    """The optuna sampler ``name`` (``nsga2`` or ``tpe``), seeded, reading the constraints the
    way this optuna records them."""
    import optuna

    constraints = _constraints if constrained and not has_set_constraint() else None
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(
            population_size=pop_size, seed=seed, constraints_func=constraints
        )
    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed,
            n_startup_trials=min(pop_size, 10),
            multivariate=True,
            constant_liar=True,
            constraints_func=constraints,
        )
    raise ValueError(f"unknown optuna sampler '{name}'; choose one of {list(SAMPLERS)}")


def run_optuna(
    problem: SearchSpace,
    evaluator: BudgetedEvaluator,
    seed: int,
    pop_size: int,
    initial: np.ndarray | None,
    sampler: str,
) -> Any:
    """Ask, evaluate and tell in batches until the evaluator's budget is spent; returns the
    study."""
    import optuna
    from optuna.distributions import BaseDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            directions=["minimize"] * problem.n_obj,
            sampler=make_sampler(sampler, seed, pop_size, problem.n_constr > 0),
        )
        names = problem.var_names
        distributions: dict[str, BaseDistribution] = {
            name: FloatDistribution(float(low), float(high))
            for name, low, high in zip(names, problem.xl, problem.xu, strict=True)
        }
        if initial is not None:
            for row in spread(initial, evaluator.remaining):
                study.enqueue_trial(dict(zip(names, map(float, row), strict=True)))
        while not evaluator.exhausted:
            trials = [study.ask(distributions) for _ in range(min(pop_size, evaluator.remaining))]
            X = np.array([[trial.params[name] for name in names] for trial in trials])
            F, G = evaluator(X)
            current_api = has_set_constraint()
            for trial, f, g in zip(trials, F, G, strict=True):
                if current_api:
                    for name, value in zip(problem.constr_names, g, strict=True):
                        trial.set_constraint(name, float(value))
                else:
                    trial.set_user_attr("constraints", [float(v) for v in g])
                study.tell(trial, [float(v) for v in f])
    return study
