"""Benchmark the optimisers at equal evaluation budgets over several seeds.

Problems: ZDT1 and DTLZ2 (known fronts: a sanity check of the harness, with IGD) and the
factory ladder: ``small_line`` (4 machines), ``factory`` (the ``[factory]`` scenario, by default
the 7-machine line) and ``large_line`` (32 machines). Quality is the hypervolume of each run's
archive after one fixed normalisation per problem; the reference point is the same for every
algorithm. Writes into ``--out`` (default ``runs/benchmark``): ``table.md`` (median and IQR of HV
and IGD, ratio to random search; the goal tests against random search, Holm-corrected across
problems and algorithms), ``results.json`` (every run's HV, the normalisation, the anytime
medians, the Wilcoxon tests, the goal tests, the held-out comparison of the chosen plans) and
``anytime_<problem>.png``. Runs are cached under ``--out/cache``: a re-run computes only what is
missing (``--force`` recomputes).

    python scripts/benchmark_optimizers.py --config configs/optimize_benchmark.toml
    python scripts/benchmark_optimizers.py --problems zdt1 dtlz2 --standard-budget 1000
    python scripts/benchmark_optimizers.py --problems factory --algorithms nsga2 random weighted_sum
    python scripts/benchmark_optimizers.py --config configs/optimize_ladder.toml --compare-seeds 2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from optimizers.config import (  # noqa: E402
    ALGORITHMS,
    BENCHMARK_PROBLEMS,
    ENGINES,
    GRANULARITIES,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Benchmark multi-objective optimisers at equal evaluation budgets: "
        "hypervolume of the archive with a fixed normalisation and reference point, anytime HV "
        "curves, median/IQR table, pairwise Wilcoxon rank-sum tests; ZDT1 and DTLZ2 check the "
        "harness (IGD against the true front), then the factory problem. Options override the "
        "--config file; cached runs are reused.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add(
        "--config", type=Path, help="TOML file of BenchmarkConfig (configs/optimize_benchmark.toml)"
    )
    add("--problems", nargs="+", choices=BENCHMARK_PROBLEMS, help="problems (all five)")
    add("--algorithms", nargs="+", choices=ALGORITHMS, help="algorithms (all seven)")
    add("--seeds", type=int, help="independent runs per algorithm and problem (5)")
    add("--standard-budget", type=int, help="evaluations per run on zdt1/dtlz2 (2000)")
    add("--standard-pop-size", type=int, help="population on zdt1/dtlz2 (40)")
    add("--factory-budget", type=int, help="evaluations per run on the factory (200)")
    add("--factory-pop-size", type=int, help="population on the factory (10)")
    add("--factory-horizon-h", type=float, help="simulated hours per factory evaluation (8)")
    add("--factory-sim-seeds", type=int, help="simulation seeds per factory evaluation (1)")
    add("--factory-granularity", choices=GRANULARITIES, help="factory encoding (machine)")
    add(
        "--seed-heuristics",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="start every algorithm (random search too) from the heuristics' plans on the "
        "factory problems (off)",
    )
    add(
        "--compare-seeds",
        type=int,
        help="held-out weeks for the best algorithm's chosen plan against the heuristics (0)",
    )
    add("--compare-horizon-h", type=float, help="hours per held-out episode (a week)")
    add("--checkpoints", type=int, help="points on the anytime HV curves (20)")
    add("--reference-point", type=float, help="HV reference point after normalisation (1.1)")
    add("--engine", choices=ENGINES, help="where factory evaluations run (processes)")
    add("--workers", type=int, help="worker processes (2)")
    add("--dask-address", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    add("--out", help="output folder with the run cache (runs/benchmark)")
    add("--force", action="store_true", help="recompute cached runs")
    add("--quiet", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace):
    """The :class:`BenchmarkConfig`: defaults, then ``--config``, then the options given."""
    from optimizers.config import load_benchmark_config

    options = {
        "problems": args.problems,
        "algorithms": args.algorithms,
        "seeds": args.seeds,
        "standard_budget": args.standard_budget,
        "standard_pop_size": args.standard_pop_size,
        "factory_budget": args.factory_budget,
        "factory_pop_size": args.factory_pop_size,
        "factory": {
            "horizon_h": args.factory_horizon_h,
            "seeds": args.factory_sim_seeds,
            "granularity": args.factory_granularity,
        },
        "seed_heuristics": args.seed_heuristics,
        "compare_seeds": args.compare_seeds,
        "compare_horizon_h": args.compare_horizon_h,
        "checkpoints": args.checkpoints,
        "reference_point": args.reference_point,
        "engine": args.engine,
        "workers": args.workers,
        "dask_address": args.dask_address,
        "out_dir": args.out,
    }
    return load_benchmark_config(args.config, options)  # None: not given


def main(argv: list[str] | None = None) -> int:
    from envs.config import ConfigError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from optimizers.benchmark import run_benchmark

        config = config_from_args(args)
        run_benchmark(config, force=args.force, progress=not args.quiet)
    except (ConfigError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
