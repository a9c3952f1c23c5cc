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
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from optimizers.config import ALGORITHMS, ENGINES, GRANULARITIES  # noqa: E402


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
    add("--pick", choices=("knee", "weights"), help="how the plan is chosen from the front")
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
    from optimizers.config import OptimizeConfig, build_config

    problem = {
        key: value
        for key, value in {
            "scenario": args.scenario,
            "horizon_h": args.horizon_h,
            "start_hour": args.start_hour,
            "seeds": args.sim_seeds,
            "granularity": args.granularity,
            "throughput_min_per_h": args.throughput_min,
            "peak_max_kw": args.peak_max,
            "plant_changes": args.plant_change,
        }.items()
        if value is not None
    }
    overrides = {
        key: value
        for key, value in {
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
        }.items()
        if value is not None
    }
    if problem:
        overrides["problem"] = problem
    return build_config(OptimizeConfig, args.config, overrides)


def choose(problem, result, config) -> int | None:
    """Archive index of the chosen plan (knee or weights) among the feasible front."""
    from optimizers.indicators import knee_point, weighted_choice

    front = result.archive.front_indices()
    if front.size == 0:
        return None
    F = result.archive.F[front]
    if config.pick == "knee":
        return int(front[knee_point(F)])
    return int(front[weighted_choice(F, config.weights or problem.default_weights)])


def print_plan(problem, x, f, g) -> None:
    names = problem.obj_names + problem.constr_names
    values = [*f, *g]
    pairs = ", ".join(f"{n} {v:,.2f}" for n, v in zip(names, values, strict=True))
    print(f"chosen plan ({config_pick_note(problem)}): {pairs}")
    by_kind: dict[str, list[str]] = {}
    for name, value in problem.encoding.as_dict(x).items():
        kind, _, target = name.partition(":")
        by_kind.setdefault(kind, []).append(f"{target} {value:.3g}")
    for kind, entries in by_kind.items():
        print(f"  {kind:<15} " + ", ".join(entries))


def config_pick_note(problem) -> str:
    spec = problem.spec
    hours = spec.horizon_steps * problem.scenario.decision_interval_s / 3600.0
    return f"totals over {hours:g} h from hour {spec.start_s / 3600:g} of the week"


def compare(problem, config, plan_x, out_dir: Path, progress: bool) -> dict:
    from tqdm import tqdm

    from agents.evaluation import format_changes, format_table, plot_kpis
    from optimizers.compare import compare_with_heuristics
    from optimizers.config import OPTIMISATION_SEEDS_BELOW

    seeds = range(OPTIMISATION_SEEDS_BELOW, OPTIMISATION_SEEDS_BELOW + config.compare_seeds)
    horizon = config.compare_horizon_h or problem.scenario.horizon_h
    steps = round(horizon * 3600 / problem.scenario.decision_interval_s) * 3 * len(seeds)
    with tqdm(total=steps, desc="comparing", unit="step", disable=not progress) as bar:
        outcome = compare_with_heuristics(
            problem.scenario,
            problem.encoding.decode(plan_x),
            seeds,
            horizon_h=horizon,
            on_step=lambda: bar.update(1),
        )
    print(
        f"comparison over {len(seeds)} held-out seeds (from 1000), {horizon:g} h each, Monday 00:00"
    )
    print(format_table(outcome["summary"], "mean"))
    for baseline, changes in outcome["changes"].items():
        print(format_changes({"plan": changes}, baseline))
    plot_kpis(outcome["summary"], out_dir / "comparison.png")
    payload = {
        "seeds": list(seeds),
        "horizon_h": horizon,
        "summary": {
            label: {key: vars(value) for key, value in values.items()}
            for label, values in outcome["summary"].items()
        },
        "change_of_plan_against": outcome["changes"],
        "episodes": {
            label: [{"seed": r.seed, "objective": r.objective, **r.kpis} for r in runs]
            for label, runs in outcome["results"].items()
        },
    }
    (out_dir / "comparison.json").write_text(json.dumps(payload, indent=2))
    return payload


def pick_from(config, path: str, *, progress: bool = True) -> dict:
    """Choose a plan from the ``pareto.json`` of an earlier run (``--pick``, ``--weights``) and
    compare it with the heuristics, without optimising again."""
    import numpy as np

    from optimizers.indicators import knee_point, weighted_choice
    from optimizers.pareto import load_pareto_vectors
    from optimizers.problems import FactoryProblem

    problem = FactoryProblem(config.problem)
    X = load_pareto_vectors(path, problem)
    points = json.loads(Path(path).read_text(encoding="utf-8"))["points"]
    F = np.array([[p["F"][n] for n in problem.obj_names] for p in points])
    G = np.array([[p["G"][n] for n in problem.constr_names] for p in points])
    if config.pick == "knee":
        index = knee_point(F)
    else:
        index = weighted_choice(F, config.weights or problem.default_weights)
    print(f"{len(points)} plans in {path}; picked #{index} by {config.pick}")
    print_plan(problem, X[index], F[index], G[index])
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"pareto": str(path), "pick": config.pick, "chosen": index}
    if config.compare_seeds > 0:
        summary["comparison"] = compare(problem, config, X[index], out_dir, progress)
    return summary


def run(config, *, progress: bool = True) -> dict:
    """Optimise, save, plot, pick and compare; returns a summary dict."""
    from optimizers.algorithms import check_request, run_algorithm
    from optimizers.engines import make_engine
    from optimizers.pareto import front_order, load_pareto_vectors, run_summary, save_pareto
    from optimizers.plots import plot_pareto
    from optimizers.problems import FactoryProblem
    from optimizers.simulate import evaluate_plan

    problem = FactoryProblem(config.problem)
    check_request(config.algorithm, problem, config.budget, config.pop_size)
    initial = load_pareto_vectors(config.warm_start, problem) if config.warm_start else None
    out_dir = Path(config.out_dir)
    spec = problem.spec
    print(
        f"{config.algorithm} on {problem.scenario.name}: {problem.n_var} variables, budget "
        f"{config.budget}, {spec.horizon_steps} intervals x {len(spec.seeds)} seeds per evaluation"
        f", engine {config.engine}"
        + (f", warm start from {len(initial)} plans" if initial is not None else "")
    )
    started = time.perf_counter()
    with make_engine(config.engine, config.workers, config.dask_address) as engine:
        warm = dataclasses.replace(spec, horizon_steps=1, seeds=(0,), plant_changes=())
        engine.map(evaluate_plan, [(warm, problem.encoding.vector())] * (2 * engine.workers))
        ready = time.perf_counter() - started
        result = run_algorithm(
            config.algorithm,
            problem,
            budget=config.budget,
            seed=config.seed,
            pop_size=config.pop_size,
            engine=engine,
            initial=initial,
            progress="optimising" if progress else False,
        )
    archive = result.archive
    print(
        f"workers ready in {ready:.2f} s (not counted); optimisation {result.seconds:.2f} s: "
        f"{len(archive)} evaluations, {result.evaluations_per_s:.2f} evaluations/s, "
        f"{int(archive.feasible().sum())} feasible, {archive.failures} failed simulations"
    )
    for reason, count in archive.reasons.items():
        print(f"  failed x{count}: {reason}")
    chosen = choose(problem, result, config)
    front = front_order(result)
    position = int(list(front).index(chosen)) if chosen is not None else None
    json_path, csv_path = save_pareto(out_dir, result, problem, chosen=position, pick=config.pick)
    hours = spec.horizon_steps * problem.scenario.decision_interval_s / 3600.0
    title = f"{config.algorithm}, {len(archive)} evaluations, {hours:g} h horizon per evaluation"
    plot = plot_pareto(
        archive, problem.obj_names, out_dir / "pareto_front.png", chosen=chosen, title=title
    )
    print(f"Pareto set: {len(front)} plans -> {json_path}, {csv_path}, {plot}")
    summary = {**run_summary(result, problem), "ready_seconds": ready, "chosen": position}
    if chosen is None:
        print("no feasible plan found: raise the budget or relax Tmin/Rmax; nothing to compare")
        return summary
    print_plan(problem, archive.X[chosen], archive.F[chosen], archive.G[chosen])
    if config.compare_seeds > 0:
        if config.problem.plant_changes:
            print("note: the comparison runs on the scenario as written (without plant changes)")
        summary["comparison"] = compare(problem, config, archive.X[chosen], out_dir, progress)
    return summary


def main(argv: list[str] | None = None) -> int:
    from envs.config import ConfigError

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        if args.pick_from:
            pick_from(config, args.pick_from, progress=not args.quiet)
        else:
            run(config, progress=not args.quiet)
    except (ConfigError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
