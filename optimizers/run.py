"""One optimisation run as ``scripts/optimize.py`` makes it: optimise the operating plan, save
and plot the Pareto set, pick a plan and compare it with the heuristics on held-out seeds; or
pick from the ``pareto.json`` of an earlier run and compare, without optimising again.

Writes into ``config.out_dir``, atomically (:mod:`envs.atomic`): ``pareto.json``,
``pareto.csv``, ``pareto_front.png`` and, unless ``compare_seeds = 0``, ``comparison.json`` and
``comparison.png``. What it reports goes through ``echo`` (``print`` by default).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic import atomic_path, write_atomic
from envs.seeding import HELD_OUT_SEEDS_FROM, held_out_seeds
from optimizers.config import OptimizeConfig
from optimizers.problems import FactoryProblem

__all__ = ["compare_plan", "describe_plan", "pick_and_compare", "run_optimisation"]

Echo = Callable[[str], object]


def _horizon_note(problem: FactoryProblem) -> str:
    spec = problem.spec
    hours = spec.horizon_steps * problem.scenario.decision_interval_s / 3600.0
    return f"totals over {hours:g} h from hour {spec.start_s / 3600:g} of the week"


def describe_plan(problem: FactoryProblem, x: np.ndarray, f: np.ndarray, g: np.ndarray) -> str:
    """The chosen plan in words: its F and G, then its variables by kind (speed, wear
    threshold, standby timeout, tariff speed), one line each."""
    names = problem.obj_names + problem.constr_names
    values = [*f, *g]
    pairs = ", ".join(f"{n} {v:,.2f}" for n, v in zip(names, values, strict=True))
    lines = [f"chosen plan ({_horizon_note(problem)}): {pairs}"]
    by_kind: dict[str, list[str]] = {}
    for name, value in problem.encoding.as_dict(x).items():
        kind, _, target = name.partition(":")
        by_kind.setdefault(kind, []).append(f"{target} {value:.3g}")
    for kind, entries in by_kind.items():
        lines.append(f"  {kind:<15} " + ", ".join(entries))
    return "\n".join(lines)


def compare_plan(
    problem: FactoryProblem,
    config: OptimizeConfig,
    x: np.ndarray,
    out_dir: Path,
    *,
    progress: bool = True,
    echo: Echo = print,
) -> dict[str, Any]:
    """Compare the plan ``x`` with the heuristics on ``config.compare_seeds`` held-out seeds;
    prints the table and changes, writes ``comparison.json`` and ``comparison.png``; returns
    the report (:func:`optimizers.compare.comparison_report`)."""
    from agents.evaluation import plot_kpis
    from optimizers.compare import compare_plan_shown, comparison_report

    seeds = held_out_seeds(config.compare_seeds)
    horizon = config.compare_horizon_h or problem.scenario.horizon_h
    outcome = compare_plan_shown(
        problem.scenario,
        problem.encoding.decode(x),
        seeds,
        horizon,
        title=f"comparison over {len(seeds)} held-out seeds (from {HELD_OUT_SEEDS_FROM}), "
        f"{horizon:g} h each, Monday 00:00",
        progress=progress,
        echo=echo,
    )
    with atomic_path(out_dir / "comparison.png") as temporary:
        plot_kpis(outcome["summary"], temporary)
    report = comparison_report(outcome, seeds, horizon)
    write_atomic(out_dir / "comparison.json", json.dumps(report, indent=2))
    return report


def pick_and_compare(
    config: OptimizeConfig, path: str | Path, *, progress: bool = True, echo: Echo = print
) -> dict[str, Any]:
    """Pick a plan from the ``pareto.json`` at ``path`` (an earlier run with the same
    ``[problem]``) by ``config.pick`` and compare it with the heuristics, without optimising
    again; returns a summary."""
    from optimizers.pareto import load_pareto, pick_plan

    problem = FactoryProblem(config.problem)
    front = load_pareto(path, problem)
    index = pick_plan(front, config.pick, config.weights or problem.default_weights)
    if index is None:  # load_pareto refuses an empty front already
        raise ValueError(f"{path}: no plan to pick from")
    echo(f"{len(front)} plans in {path}; picked #{index} by {config.pick}")
    echo(describe_plan(problem, front.X[index], front.F[index], front.G[index]))
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"pareto": str(path), "pick": config.pick, "chosen": index}
    if config.compare_seeds > 0:
        summary["comparison"] = compare_plan(
            problem, config, front.X[index], out_dir, progress=progress, echo=echo
        )
    return summary


def run_optimisation(
    config: OptimizeConfig, *, progress: bool = True, echo: Echo = print
) -> dict[str, Any]:
    """Optimise, save, plot, pick and compare (module docstring); returns a summary."""
    from optimizers.algorithms import check_request, run_algorithm
    from optimizers.engines import make_engine
    from optimizers.pareto import ParetoFront, load_pareto_vectors, pick_plan, save_pareto
    from optimizers.pareto import run_summary as pareto_summary
    from optimizers.plots import plot_pareto
    from optimizers.simulate import evaluate_plan

    problem = FactoryProblem(config.problem)
    check_request(config.algorithm, problem, config.budget, config.pop_size)
    initial = load_pareto_vectors(config.warm_start, problem) if config.warm_start else None
    out_dir = Path(config.out_dir)
    spec = problem.spec
    echo(
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
    echo(
        f"workers ready in {ready:.2f} s (not counted); optimisation {result.seconds:.2f} s: "
        f"{len(archive)} evaluations, {result.evaluations_per_s:.2f} evaluations/s, "
        f"{int(archive.feasible().sum())} feasible, {archive.failures} failed simulations"
    )
    for reason, count in archive.reasons.items():
        echo(f"  failed x{count}: {reason}")
    front = ParetoFront.of_run(result, problem)
    position = pick_plan(front, config.pick, config.weights or problem.default_weights)
    chosen = None if position is None else int(front.evaluations[position])
    json_path, csv_path = save_pareto(out_dir, result, problem, chosen=position, pick=config.pick)
    hours = spec.horizon_steps * problem.scenario.decision_interval_s / 3600.0
    title = f"{config.algorithm}, {len(archive)} evaluations, {hours:g} h horizon per evaluation"
    plot = plot_pareto(
        archive, problem.obj_names, out_dir / "pareto_front.png", chosen=chosen, title=title
    )
    echo(f"Pareto set: {len(front)} plans -> {json_path}, {csv_path}, {plot}")
    summary = {**pareto_summary(result, problem), "ready_seconds": ready, "chosen": position}
    if position is None:
        echo("no feasible plan found: raise the budget or relax Tmin/Rmax; nothing to compare")
        return summary
    echo(describe_plan(problem, front.X[position], front.F[position], front.G[position]))
    if config.compare_seeds > 0:
        if config.problem.plant_changes:
            echo("note: the comparison runs on the scenario as written (without plant changes)")
        summary["comparison"] = compare_plan(
            problem, config, front.X[position], out_dir, progress=progress, echo=echo
        )
    return summary
