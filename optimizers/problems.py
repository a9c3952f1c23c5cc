"""Problems every algorithm can run on, and the budgeted evaluator that feeds the archive.

- :class:`FactoryProblem` — the operating plan of a production-line scenario
  (:mod:`optimizers.plan`), evaluated by simulation (:mod:`optimizers.simulate`):
  minimise ``F = (C, E, D)`` subject to ``G = (Tmin − T, R − Rmax) ≤ 0``.
- :class:`StandardProblem` — ZDT1 and DTLZ2 from pymoo, with known Pareto fronts, to check the
  benchmark harness.

:class:`Evaluator` is the one gate through which algorithms evaluate: it checks bounds, enforces
the evaluation budget (rows beyond it are not evaluated and come back as failed values, so the
algorithm stops), runs the batch on an engine, logs and counts failures, and records every
evaluation in an :class:`~optimizers.archive.Archive`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import numpy as np

from envs.equipment import ParameterError, check_parameter
from envs.kpi import CONSTRAINT_VIOLATION_PENALTY
from envs.scenario import Scenario, load_scenario
from optimizers.archive import Archive
from optimizers.config import (
    BENCHMARK_PROBLEMS,
    LADDER_SCENARIOS,
    STANDARD_PROBLEMS,
    PlantChange,
    ProblemConfig,
)
from optimizers.engines import Engine, OnResult
from optimizers.plan import PlanBoundsError, PlanEncoding
from optimizers.simulate import (
    CONSTRAINTS,
    FAILED_VALUE,
    OBJECTIVES,
    Evaluation,
    SimulationSpec,
    evaluate_plan,
)

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when the meaning of an evaluation changes (benchmark caches)


class BaseProblem:
    """What algorithms see: bounds, sizes, names, and a batch evaluation on an engine."""

    name: str
    n_var: int
    n_obj: int
    n_constr: int
    xl: np.ndarray
    xu: np.ndarray
    var_names: list[str]
    obj_names: tuple[str, ...]
    constr_names: tuple[str, ...] = ()
    default_weights: tuple[float, ...]
    """Weights of the weighted-sum scalarisation (and of ``pick = 'weights'``)."""
    violation_penalty: float = CONSTRAINT_VIOLATION_PENALTY
    """Added to the weighted sum (and, for MOEA/D, to every objective) per unit of constraint
    violation (:data:`envs.kpi.CONSTRAINT_VIOLATION_PENALTY`)."""

    def check(self, X: np.ndarray) -> np.ndarray:
        """``X`` as a 2-D float array inside the bounds, or :class:`PlanBoundsError` naming the
        first entry outside them."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_var:
            raise PlanBoundsError(
                f"{self.name}: vectors need {self.n_var} entries, not {X.shape[1]}"
            )
        tolerance = 1e-9 * np.maximum(1.0, self.xu - self.xl)
        bad = ~np.isfinite(X) | (self.xl - tolerance > X) | (self.xu + tolerance < X)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise PlanBoundsError(
                f"{self.name}: {self.var_names[col]} = {X[row, col]:g} is outside "
                f"[{self.xl[col]:g}, {self.xu[col]:g}]; keep candidates inside the bounds"
            )
        return np.clip(X, self.xl, self.xu)

    def evaluate_batch(
        self, X: np.ndarray, engine: Engine | None, on_result: OnResult = None
    ) -> list[Evaluation]:
        """One :class:`Evaluation` per row of ``X``, in order, computed on ``engine``."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """Stable digest of everything that changes an evaluation (benchmark cache key)."""
        raise NotImplementedError


class StandardProblem(BaseProblem):
    """A pymoo test problem (``zdt1``: 30 variables, 2 objectives; ``dtlz2``: 12 variables,
    3 objectives), evaluated in-process (microseconds each)."""

    def __init__(self, name: str) -> None:
        from pymoo.problems import get_problem

        if name not in STANDARD_PROBLEMS:
            raise ValueError(
                f"unknown standard problem '{name}'; choose one of {STANDARD_PROBLEMS}"
            )
        self.name = name
        self.pymoo = get_problem(name) if name == "zdt1" else get_problem(name, n_var=12, n_obj=3)
        self.n_var, self.n_obj, self.n_constr = self.pymoo.n_var, self.pymoo.n_obj, 0
        self.xl, self.xu = np.asarray(self.pymoo.xl, float), np.asarray(self.pymoo.xu, float)
        self.var_names = [f"x{i}" for i in range(self.n_var)]
        self.obj_names = tuple(f"f{i + 1}" for i in range(self.n_obj))
        self.default_weights = (1.0 / self.n_obj,) * self.n_obj

    def true_front(self, points: int = 1000) -> np.ndarray:
        """The known Pareto front (``points`` of it for ZDT1)."""
        if self.name == "zdt1":
            return self.pymoo.pareto_front(n_pareto_points=points)
        return self.pymoo.pareto_front()

    def evaluate_batch(
        self, X: np.ndarray, engine: Engine | None = None, on_result: OnResult = None
    ) -> list[Evaluation]:
        """Evaluated in this process (``engine`` is not needed)."""
        F = self.pymoo.evaluate(np.atleast_2d(X), return_values_of=["F"])
        results = [Evaluation(F=f, G=np.zeros(0)) for f in F]
        if on_result is not None:
            for result in results:
                on_result(result)
        return results

    def fingerprint(self) -> str:
        return f"{self.name}-n{self.n_var}-m{self.n_obj}-v{CACHE_VERSION}"


def _check_plant_changes(scenario: Scenario, changes: tuple[PlantChange, ...]) -> None:
    """Each change names a machine of the scenario and a parameter of its equipment, in range
    (:func:`envs.equipment.check_parameter`); otherwise a ValueError saying which."""
    equipment = scenario.machine_equipment
    for change in changes:
        if change.machine not in equipment:
            raise ValueError(
                f"plant change names machine '{change.machine}'; the machines are "
                f"{sorted(equipment)}"
            )
        try:
            check_parameter(
                equipment[change.machine],
                change.parameter,
                change.value,
                key=f"{change.machine}.{change.parameter}",
            )
        except ParameterError as error:
            raise ValueError(f"plant change: {error}") from None


class FactoryProblem(BaseProblem):
    """The operating plan of a production line: ``F = (C, E, D)``, ``G = (Tmin − T, R − Rmax)``.

    Objective totals are over ``config.horizon_h`` hours from ``config.start_hour`` (hour of the
    week), averaged over ``config.seeds`` simulation seeds; see :mod:`optimizers.simulate`.
    """

    name = "factory"

    def __init__(
        self, config: ProblemConfig | None = None, *, scenario: Scenario | None = None
    ) -> None:
        self.config = config = config or ProblemConfig()
        self.scenario = scenario if scenario is not None else load_scenario(config.scenario)
        self.encoding = PlanEncoding(self.scenario, config.granularity)
        interval_s = self.scenario.decision_interval_s
        steps = round(config.horizon_h * 3600.0 / interval_s)
        if steps < 1:
            raise ValueError(
                f"horizon_h = {config.horizon_h} is shorter than one decision interval "
                f"({interval_s:g} s); raise horizon_h"
            )
        start_s = round(config.start_hour * 3600.0 / interval_s) * interval_s
        _check_plant_changes(self.scenario, config.plant_changes)
        objective = self.scenario.objective
        self.spec = SimulationSpec(
            scenario=self.scenario,
            granularity=config.granularity,
            horizon_steps=steps,
            start_s=float(start_s),
            seeds=tuple(range(config.first_seed, config.first_seed + config.seeds)),
            throughput_min_per_h=objective.throughput_min_per_h
            if config.throughput_min_per_h is None
            else config.throughput_min_per_h,
            peak_max_kw=objective.peak_max_kw if config.peak_max_kw is None else config.peak_max_kw,
            plant_changes=tuple(config.plant_changes),
        )
        self.n_var, self.n_obj, self.n_constr = self.encoding.n_var, 3, 2
        self.xl, self.xu = self.encoding.xl, self.encoding.xu
        self.var_names = list(self.encoding.names)
        self.obj_names = OBJECTIVES
        self.constr_names = CONSTRAINTS
        self.default_weights = (objective.w_cost, objective.w_energy, objective.w_downtime)

    def evaluate_batch(
        self, X: np.ndarray, engine: Engine | None, on_result: OnResult = None
    ) -> list[Evaluation]:
        """Simulated on ``engine`` (:func:`optimizers.simulate.evaluate_plan` per row)."""
        if engine is None:
            raise ValueError("the factory problem is simulated on an engine; pass one")
        tasks = [(self.spec, np.asarray(x, dtype=float)) for x in np.atleast_2d(X)]
        return engine.map(evaluate_plan, tasks, on_result)

    def fingerprint(self) -> str:
        payload = {
            "scenario": repr(self.scenario),
            "config": asdict(self.config),
            "spec": repr({k: v for k, v in vars(self.spec).items() if k != "scenario"}),
            "names": self.var_names,
            "version": CACHE_VERSION,
        }
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode())
        return f"factory-{digest.hexdigest()[:12]}"


def make_problem(name: str, factory: ProblemConfig | None = None) -> BaseProblem:
    """``zdt1``, ``dtlz2``, ``factory`` (with its :class:`ProblemConfig`), or a rung of the
    benchmark's ladder (``small_line``, ``large_line``: that shipped scenario with the rest of
    ``factory``); a factory problem's ``name`` is the one asked for."""
    if name in STANDARD_PROBLEMS:
        return StandardProblem(name)
    if name not in BENCHMARK_PROBLEMS:
        raise ValueError(f"unknown problem '{name}'; choose one of {list(BENCHMARK_PROBLEMS)}")
    config = factory or ProblemConfig()
    if name in LADDER_SCENARIOS:
        config = replace(config, scenario=name)
    problem = FactoryProblem(config)
    problem.name = name
    return problem


class Evaluator:
    """Budgeted, archived, failure-counting evaluation of batches on an engine.

    ``__call__(X) -> (F, G)``: at most ``budget`` evaluations are made in all; rows beyond it get
    :data:`FAILED_VALUE` without simulation and are not archived.
    """

    def __init__(
        self,
        problem: BaseProblem,
        engine: Engine,
        budget: int,
        *,
        on_evaluation: Callable[[int], None] | None = None,
        keep_x: bool = True,
    ) -> None:
        self.problem = problem
        self.engine = engine
        self.budget = budget
        self.archive = Archive(problem.n_var, problem.n_obj, problem.n_constr, keep_x=keep_x)
        self.on_evaluation = on_evaluation
        self.wall_seconds = 0.0

    @property
    def remaining(self) -> int:
        """Evaluations left in the budget."""
        return self.budget - len(self.archive)

    @property
    def exhausted(self) -> bool:
        """Whether the budget is spent."""
        return self.remaining <= 0

    def _tick(self, _result: Any) -> None:
        if self.on_evaluation is not None:
            self.on_evaluation(1)

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(F, G)`` of the rows of ``X``; rows beyond the budget get :data:`FAILED_VALUE`."""
        X = self.problem.check(X)
        n = min(len(X), max(0, self.remaining))
        F = np.full((len(X), self.problem.n_obj), FAILED_VALUE)
        G = np.full((len(X), self.problem.n_constr), FAILED_VALUE)
        if n == 0:
            return F, G
        started = time.perf_counter()
        tick = self._tick if self.on_evaluation is not None else None
        results = self.problem.evaluate_batch(X[:n], self.engine, tick)
        self.wall_seconds += time.perf_counter() - started
        for i, (x, result) in enumerate(zip(X[:n], results, strict=True)):
            if not result.ok:
                log.warning(
                    "candidate %d infeasible: simulation failed: %s",
                    len(self.archive),
                    result.reason,
                )
            self.archive.add(
                x, result.F, result.G, result.ok, result.reason, result.kpis, result.seconds
            )
            F[i] = result.F
            if self.problem.n_constr:
                G[i] = result.G
        return F, G
