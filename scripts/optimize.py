"""Optimise the operating plan of a production line (NSGA-II by default) and compare the chosen
plan with the heuristics.

Writes into ``--out`` (default ``runs/optimize``): ``pareto.json`` and ``pareto.csv`` (every
feasible non-dominated plan with its decision vector and KPIs), ``pareto_front.png`` (pairwise
C/E/D, feasible vs infeasible), and, unless ``--compare-seeds 0``, ``comparison.json`` and
``comparison.png`` (the chosen plan, ``naive`` and ``condition_based`` on the same held-out seeds).

    python scripts/optimize.py --config configs/optimize.toml
    python scripts/optimize.py --budget 60 --pop-size 12 --horizon-h 8 --compare-seeds 2
    # after a plant change, start from the previous Pareto set (a quick re-optimisation):
    python scripts/optimize.py --warm-start runs/optimize/pareto.json \\
        --plant-change machining-1:wear_rate_factor=2 --budget 12 --pop-size 6 \\
        --horizon-h 2 --sim-seeds 1 --compare-seeds 0 --out runs/reoptimize
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from optimizers.config import ALGORITHMS, ENGINES, GRANULARITIES, PICK_RULES  # noqa: E402


def _plant_change(text: str) -> dict:
    machine, sep, rest = text.partition(":")
    parameter, eq, value = rest.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not (sep and eq and machine and parameter) or number is None:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not MACHINE:PARAMETER=VALUE (e.g. machining-1:wear_rate_factor=2)"
        )
    return {"machine": machine, "parameter": parameter, "value": number}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Multi-objective optimisation of a production line's operating plan "
        "(per-machine speed factors, maintenance wear thresholds, standby timeouts, speed per "
        "tariff price) over the FMU twin: minimise cost, energy and downtime subject to "
        "throughput >= Tmin and peak power <= Rmax. Options override the --config file; "
        "unset options keep the file's value or the default.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--config", type=Path, help="TOML file of OptimizeConfig (e.g. configs/optimize.toml)")
    add("--algorithm", choices=ALGORITHMS, help="optimiser (default nsga2)")
    add("--budget", type=int, help="evaluations (simulated plans) in all (default 400)")
    add("--pop-size", type=int, help="population / batch size, evaluated in parallel (20)")
    add("--seed", type=int, help="seed of the algorithm's own randomness (0)")
    add("--scenario", help="shipped scenario name or scenario TOML (automotive_components)")
    add("--horizon-h", type=float, help="simulated hours per evaluation and seed (24)")
    add("--start-hour", type=float, help="hour of the week evaluations start (6: Monday shift)")
    add("--sim-seeds", type=int, help="simulation seeds averaged per evaluation (2)")
    add("--granularity", choices=GRANULARITIES, help="variables per machine or per station")
    add("--throughput-min", type=float, help="Tmin, good parts/h (default: the scenario's)")
    add("--peak-max", type=float, help="Rmax, kW (default: the scenario's)")
    add(
        "--plant-change",
        type=_plant_change,
        action="append",
        metavar="MACHINE:PARAMETER=VALUE",
        help="a change in the plant, e.g. machining-1:wear_rate_factor=2 (repeatable)",
    )
    add("--engine", choices=ENGINES, help="where evaluations run (processes)")
    add("--workers", type=int, help="worker processes for processes / a local dask cluster (2)")
    add("--dask-address", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786")
    add("--warm-start", help="pareto.json of an earlier run: its plans start the population")
    add("--pick", choices=PICK_RULES, help="how the plan is chosen from the front")
    add(
        "--pick-from",
        metavar="PARETO_JSON",
        help="do not optimise: pick from this pareto.json (use the [problem] it was made with) "
        "and compare the pick with the heuristics",
    )
    add("--weights", type=float, nargs=3, metavar=("W1", "W2", "W3"), help="for --pick weights")
    add("--compare-seeds", type=int, help="held-out seeds for the comparison; 0 skips it (3)")
    add("--compare-horizon-h", type=float, help="hours per comparison episode (a week)")
    add("--out", help="output folder (runs/optimize)")
    add("--quiet", action="store_true", help="no progress bars")
    return parser


def config_from_args(args: argparse.Namespace):
    """The run's :class:`OptimizeConfig`: defaults, then ``--config``, then the options given."""
    from optimizers.config import load_optimize_config

    problem = {
        "scenario": args.scenario,
        "horizon_h": args.horizon_h,
        "start_hour": args.start_hour,
        "seeds": args.sim_seeds,
        "granularity": args.granularity,
        "throughput_min_per_h": args.throughput_min,
        "peak_max_kw": args.peak_max,
        "plant_changes": args.plant_change,
    }
    options = {
        "problem": problem,
        "algorithm": args.algorithm,
        "budget": args.budget,
        "pop_size": args.pop_size,
        "seed": args.seed,
        "engine": args.engine,
        "workers": args.workers,
        "dask_address": args.dask_address,
        "warm_start": args.warm_start,
        "pick": args.pick,
        "weights": args.weights,
        "compare_seeds": args.compare_seeds,
        "compare_horizon_h": args.compare_horizon_h,
        "out_dir": args.out,
    }
    return load_optimize_config(args.config, options)  # None: not given


def main(argv: list[str] | None = None) -> int:
    from envs.config import ConfigError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from optimizers.run import pick_and_compare, run_optimisation

        config = config_from_args(args)
        if args.pick_from:
            pick_and_compare(config, args.pick_from, progress=not args.quiet)
        else:
            run_optimisation(config, progress=not args.quiet)
    except (ConfigError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
