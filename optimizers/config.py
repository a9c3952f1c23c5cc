"""Configuration of optimisation runs and benchmarks: frozen dataclasses loaded from TOML by the
one loader, :mod:`envs.config` (unknown keys, wrong types and out-of-range values are errors that
name the file, the key and the allowed range).

``configs/optimize.toml`` and ``configs/optimize_benchmark.toml`` are the shipped examples; every
field has a default, so a file only needs the keys it changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envs.config import ConfigError, from_mapping, load_toml, setting

ALGORITHMS = (
    "nsga2",
    "nsga3",
    "moead",
    "random",
    "weighted_sum",
    "optuna_nsga2",
    "optuna_tpe",
)
"""Every algorithm name :func:`optimizers.run_algorithm` accepts; ``nsga2`` is the default."""
ENGINES = ("serial", "processes", "dask")
"""Where evaluations run: in this process, in a local process pool, or on a Dask cluster."""
GRANULARITIES = ("machine", "station")
STANDARD_PROBLEMS = ("zdt1", "dtlz2")
BENCHMARK_PROBLEMS = (*STANDARD_PROBLEMS, "factory")
OPTIMISATION_SEEDS_BELOW = 1000
"""Simulation seeds of the optimisation stay below this; held-out comparisons start here (the
same split as PPO training and :mod:`agents.evaluation`)."""


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
        2, low=1, high=OPTIMISATION_SEEDS_BELOW, doc="simulation seeds averaged per evaluation"
    )
    first_seed: int = setting(
        0, low=0, high=OPTIMISATION_SEEDS_BELOW - 1, doc="first simulation seed (common to all)"
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
        if self.first_seed + self.seeds > OPTIMISATION_SEEDS_BELOW:
            raise ValueError(
                f"first_seed + seeds = {self.first_seed + self.seeds} reaches the held-out "
                f"seeds (>= {OPTIMISATION_SEEDS_BELOW}); lower first_seed or seeds"
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
    pick: str = setting("knee", choices=("knee", "weights"), doc="how the plan is chosen")
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


BENCHMARK_FACTORY_DEFAULTS = {"horizon_h": 8.0, "seeds": 1}
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
    checkpoints: int = setting(20, low=2, high=1000, doc="points of the anytime HV curves")
    reference_point: float = setting(
        1.1, low=1.0, high=10.0, doc="HV reference point, per objective, after normalisation"
    )
    engine: str = setting("processes", choices=ENGINES)
    workers: int = setting(2, low=1, high=4096)
    dask_address: str = setting("")
    out_dir: str = setting("runs/benchmark")


def merge(base: dict, overrides: dict) -> dict:
    """``base`` updated with ``overrides``, nested tables merged key by key."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(cls: type, path: str | Path | None, overrides: dict, base: dict | None = None):
    """``cls`` from ``base`` values, then the TOML file at ``path`` (optional), then command-line
    ``overrides``, validated together; errors name the file (or the command line) and the key."""
    data: dict = {}
    source = "command line"
    if path is not None:
        import tomllib

        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such file; pass an existing --config") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from error
        source = f"{path} (with command-line overrides)" if overrides else str(path)
    return from_mapping(cls, merge(merge(base or {}, data), overrides), source=source)


def load_optimize_config(path: str | Path) -> OptimizeConfig:
    """An :class:`OptimizeConfig` from TOML; errors name the file and the key."""
    return load_toml(OptimizeConfig, path)


def load_benchmark_config(path: str | Path) -> BenchmarkConfig:
    """A :class:`BenchmarkConfig` from TOML; errors name the file and the key. Keys missing
    from a ``[factory]`` table keep the benchmark's factory defaults."""
    return build_config(BenchmarkConfig, path, {}, {"factory": dict(BENCHMARK_FACTORY_DEFAULTS)})
