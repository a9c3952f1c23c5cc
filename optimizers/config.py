"""Configuration of optimisation runs and benchmarks: frozen dataclasses loaded from TOML by the
one loader, :mod:`envs.config` (unknown keys, wrong types and out-of-range values are errors that
name the file, the key and the allowed range).

``configs/optimize.toml`` and ``configs/optimize_benchmark.toml`` are the shipped examples; every
field has a default, so a file only needs the keys it changes. Scripts put their command-line
options over a file with :func:`load_optimize_config` / :func:`load_benchmark_config`, which go
through :func:`envs.config.load_config` (defaults → TOML file → command line).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.config import load_config, setting
from envs.seeding import HELD_OUT_SEEDS_FROM
from optimizers.registry import ALGORITHMS

__all__ = [
    "ALGORITHMS",
    "BENCHMARK_FACTORY_DEFAULTS",
    "BENCHMARK_PROBLEMS",
    "ENGINES",
    "FACTORY_PROBLEMS",
    "GRANULARITIES",
    "LADDER_SCENARIOS",
    "PICK_RULES",
    "STANDARD_PROBLEMS",
    "BenchmarkConfig",
    "OptimizeConfig",
    "PlantChange",
    "ProblemConfig",
    "load_benchmark_config",
    "load_optimize_config",
]

ENGINES = ("serial", "processes", "dask")
"""Where evaluations run: in this process, in a local process pool, or on a Dask cluster."""
GRANULARITIES = ("machine", "station")
STANDARD_PROBLEMS = ("zdt1", "dtlz2")
LADDER_SCENARIOS = ("small_line", "large_line")
"""Factory problems of the benchmark's ladder besides ``factory`` (the ``[factory]`` table's
scenario, by default the 7-machine line): the shipped scenario of that name with the rest of
the ``[factory]`` table."""
FACTORY_PROBLEMS = ("small_line", "factory", "large_line")
BENCHMARK_PROBLEMS = (*STANDARD_PROBLEMS, *FACTORY_PROBLEMS)
PICK_RULES = ("knee", "weights")
"""How a plan is picked from a front (:func:`optimizers.pareto.pick_plan`)."""


@dataclass(frozen=True, kw_only=True)
class PlantChange:
    """A change in the plant since the scenario was written, e.g. one mill's tool wearing twice
    as fast: applied to that machine's FMU at every reset of an evaluation."""

    machine: str = setting(doc="machine name '<station>-<k>', e.g. 'machining-1'")
    parameter: str = setting(doc="FMU parameter of that machine, e.g. 'wear_rate_factor'")
    value: float = setting(doc="new value, in the parameter's unit (see the FMU's README)")


@dataclass(frozen=True, kw_only=True)
class ProblemConfig:
    """The factory problem: which plant, and how one candidate plan is simulated."""

    scenario: str = setting("automotive_components", doc="shipped scenario name or TOML path")
    horizon_h: float = setting(
        24.0, low=0.1, high=8_760.0, doc="simulated hours per evaluation and seed"
    )
    start_hour: float = setting(
        6.0,
        low=0.0,
        high=167.0,
        doc="hour of the week each evaluation starts at (0 = Monday 00:00; 6 = first shift)",
    )
    seeds: int = setting(
        2, low=1, high=HELD_OUT_SEEDS_FROM, doc="simulation seeds averaged per evaluation"
    )
    first_seed: int = setting(
        0, low=0, high=HELD_OUT_SEEDS_FROM - 1, doc="first simulation seed (common to all)"
    )
    granularity: str = setting(
        "machine",
        choices=GRANULARITIES,
        doc="one speed/threshold/timeout per machine, or one per station",
    )
    throughput_min_per_h: float | None = setting(
        None, low=0.0, high=1e6, doc="Tmin, good parts/h (default: the scenario's)"
    )
    peak_max_kw: float | None = setting(
        None, low=0.0, high=1e7, doc="Rmax, kW (default: the scenario's)"
    )
    plant_changes: tuple[PlantChange, ...] = setting((), doc="[[problem.plant_changes]] tables")

    def __post_init__(self) -> None:
        if self.first_seed + self.seeds > HELD_OUT_SEEDS_FROM:
            raise ValueError(
                f"first_seed + seeds = {self.first_seed + self.seeds} reaches the held-out "
                f"seeds (>= {HELD_OUT_SEEDS_FROM}); lower first_seed or seeds"
            )


@dataclass(frozen=True, kw_only=True)
class OptimizeConfig:
    """One optimisation run (``scripts/optimize.py``)."""

    problem: ProblemConfig = setting(ProblemConfig(), doc="the [problem] table")
    algorithm: str = setting("nsga2", choices=ALGORITHMS)
    budget: int = setting(400, low=1, high=10_000_000, doc="evaluations (simulated plans)")
    seed: int = setting(0, low=0, high=2**31 - 1, doc="seed of the algorithm's own randomness")
    pop_size: int = setting(
        20, low=2, high=100_000, doc="population / batch size (evaluated in parallel)"
    )
    engine: str = setting("processes", choices=ENGINES)
    workers: int = setting(2, low=1, high=4096, doc="worker processes (processes, local dask)")
    dask_address: str = setting(
        "", doc="Dask scheduler, e.g. tcp://10.0.0.5:8786 (empty: a local cluster)"
    )
    out_dir: str = setting("runs/optimize", doc="folder for the Pareto set, plots, comparison")
    pick: str = setting("knee", choices=PICK_RULES, doc="how the plan is chosen")
    weights: tuple[float, ...] = setting(
        (), low=0.0, high=1e6, doc="w1, w2, w3 for pick = 'weights' (default: the scenario's)"
    )
    warm_start: str = setting("", doc="pareto.json of an earlier run to start from")
    compare_seeds: int = setting(
        3, low=0, high=1000, doc="held-out seeds for the comparison with heuristics (0: skip)"
    )
    compare_horizon_h: float | None = setting(
        None, low=0.1, high=8_760.0, doc="hours per comparison episode (default: the scenario's)"
    )

    def __post_init__(self) -> None:
        if self.weights and len(self.weights) != 3:
            raise ValueError(f"weights needs 3 values (w1, w2, w3), not {len(self.weights)}")


BENCHMARK_FACTORY_DEFAULTS: dict[str, Any] = {"horizon_h": 8.0, "seeds": 1}
"""The benchmark's factory problem is cheaper than an optimisation run's (many runs)."""


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """The optimiser benchmark (``scripts/benchmark_optimizers.py``)."""

    problems: tuple[str, ...] = setting(BENCHMARK_PROBLEMS, choices=BENCHMARK_PROBLEMS)
    algorithms: tuple[str, ...] = setting(ALGORITHMS, choices=ALGORITHMS)
    seeds: int = setting(5, low=1, high=1000, doc="independent runs per algorithm and problem")
    standard_budget: int = setting(
        2000, low=1, high=10_000_000, doc="evaluations per run on zdt1 and dtlz2"
    )
    standard_pop_size: int = setting(40, low=2, high=100_000)
    factory_budget: int = setting(
        200, low=1, high=10_000_000, doc="evaluations per run on the factory problem"
    )
    factory_pop_size: int = setting(10, low=2, high=100_000)
    factory: ProblemConfig = setting(
        ProblemConfig(**BENCHMARK_FACTORY_DEFAULTS),
        doc="the [factory] problem table (horizon_h 8, seeds 1 unless given)",
    )
    problem_budgets: dict[str, float] = setting(
        {},
        doc="budget per factory problem where it differs from factory_budget, e.g. "
        "{ large_line = 100 } (whole numbers)",
    )
    seed_heuristics: bool = setting(
        False,
        doc="start every algorithm on the factory problems from the heuristics' plans "
        "(optimizers.heuristic_plans; random search evaluates them first too)",
    )
    goal_ratio: float = setting(
        1.2, low=0.0, high=100.0, doc="HV median ratio to random search the goal test asks for"
    )
    compare_seeds: int = setting(
        0,
        low=0,
        high=1000,
        doc="held-out weeks on which the best algorithm's chosen plan meets the heuristics, "
        "per factory problem (0: skip)",
    )
    compare_horizon_h: float | None = setting(
        None, low=0.1, high=8_760.0, doc="hours per comparison episode (default: a week)"
    )
    checkpoints: int = setting(20, low=2, high=1000, doc="points of the anytime HV curves")
    reference_point: float = setting(
        1.1, low=1.0, high=10.0, doc="HV reference point, per objective, after normalisation"
    )
    engine: str = setting("processes", choices=ENGINES)
    workers: int = setting(2, low=1, high=4096)
    dask_address: str = setting("")
    out_dir: str = setting("runs/benchmark")

    def __post_init__(self) -> None:
        for name, budget in self.problem_budgets.items():
            if name not in FACTORY_PROBLEMS:
                raise ValueError(
                    f"problem_budgets names '{name}'; the factory problems are "
                    f"{list(FACTORY_PROBLEMS)} (zdt1/dtlz2 take standard_budget)"
                )
            if budget != int(budget) or budget < 1:
                raise ValueError(f"problem_budgets.{name} = {budget:g}: give a whole number >= 1")

    def budget_for(self, problem: str) -> int:
        """Evaluations per run on ``problem``."""
        if problem in STANDARD_PROBLEMS:
            return self.standard_budget
        return int(self.problem_budgets.get(problem, self.factory_budget))


def load_optimize_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> OptimizeConfig:
    """An :class:`OptimizeConfig`: defaults, then the TOML file at ``path`` (optional), then
    ``overrides`` (command-line options); errors name the file or the command line, and the
    key."""
    return load_config(OptimizeConfig, path, overrides)


def load_benchmark_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> BenchmarkConfig:
    """A :class:`BenchmarkConfig` like :func:`load_optimize_config`; keys missing from a
    ``[factory]`` table keep the benchmark's factory defaults."""
    base = {"factory": dict(BENCHMARK_FACTORY_DEFAULTS)}
    return load_config(BenchmarkConfig, path, overrides, base)
