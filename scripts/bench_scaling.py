"""How the cost of the twin grows with the plant: lines of 7, 30 and 100 machines.

For each machine count (``--machines``; :func:`envs.scaling.scaled_scenario`, the shipped line
grown with its 4 : 2 : 1 station ratio), in a fresh process of its own (so that peak memory is
that line's):

- env steps/s of ``ProductionLineEnv`` under a heuristic policy (``--policy``; the policy's
  own time excluded; timed from Monday 06:00, after ``--skip`` untimed steps), and where a
  step's time goes — FMU calls (C), the FMU layer's Python around them, discrete-event logic,
  and the env's action/observation/KPI work — measured with ``time.perf_counter``
  accumulators around the calls (:mod:`envs.profiling` says how);
- optimiser evaluations/s: ``optimizers.FactoryProblem`` on the serial engine, random plans,
  ``--eval-horizon-h`` hours from Monday 06:00 and one simulation seed each (the first
  evaluation, which builds the line, is not timed);
- resident memory: what building and stepping the env added, and the process's peak.

Prints a table, writes ``scaling.json`` and ``scaling.png`` (µs per machine per step stacked by
part, ms per machine per evaluation) into ``--out``. Timings depend on the machine's load: run
nothing else meanwhile, and compare figures of one run.

    python scripts/bench_scaling.py                                  # 7 30 100 machines
    python scripts/bench_scaling.py --machines 7 --steps 400 --out runs/scaling_default
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from envs.profiling import LineCost  # noqa: E402

HEURISTICS = ("naive", "fixed_interval", "condition_based")


def measure(
    machines: int,
    steps: int,
    skip: int,
    policy_name: str,
    eval_horizon_h: float,
    evaluations: int,
    seed: int,
) -> LineCost:
    """The cost of one line of ``machines`` machines (module docstring), in this process."""
    import gc

    import numpy as np

    from agents import make_heuristic
    from envs.line_env import ProductionLineEnv
    from envs.profiling import peak_rss_mb, profile_steps, rss_mb
    from envs.scaling import scaled_scenario
    from optimizers.config import ProblemConfig
    from optimizers.engines import SerialEngine
    from optimizers.problems import FactoryProblem

    scenario = scaled_scenario(machines)
    gc.collect()
    before = rss_mb()
    env = ProductionLineEnv(scenario)
    try:
        policy = make_heuristic(policy_name, env)
        profile = profile_steps(env, lambda o: policy.predict(o)[0], steps, seed=seed, skip=skip)
        line_rss = rss_mb() - before
    finally:
        env.close()
    problem = FactoryProblem(ProblemConfig(horizon_h=eval_horizon_h, seeds=1), scenario=scenario)
    plans = np.random.default_rng(seed).uniform(
        problem.xl, problem.xu, (evaluations + 1, problem.n_var)
    )
    with SerialEngine() as engine:
        problem.evaluate_batch(plans[:1], engine)  # builds the line: not timed
        started = time.perf_counter()
        problem.evaluate_batch(plans[1:], engine)
        per_s = evaluations / (time.perf_counter() - started)
    return LineCost(profile, per_s, eval_horizon_h, line_rss, peak_rss_mb())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument(
        "--machines", type=int, nargs="+", default=[7, 30, 100], help="line sizes (>= 3 each)"
    )
    parser.add_argument(
        "--steps", type=int, default=200, help="env steps timed bare, then as many profiled"
    )
    parser.add_argument(
        "--skip",
        type=int,
        default=72,
        help="untimed steps after reset (72: to Monday 06:00, when the first shift starts)",
    )
    parser.add_argument("--policy", choices=HEURISTICS, default="condition_based")
    parser.add_argument(
        "--eval-horizon-h", type=float, default=2.0, help="simulated hours per evaluation"
    )
    parser.add_argument("--evaluations", type=int, default=3, help="evaluations timed per line")
    parser.add_argument("--seed", type=int, default=0, help="env seed and plans' seed")
    parser.add_argument("--out", type=Path, default=Path("runs/scaling"), help="output folder")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="measure every line in this process (faster start; peak memory is then cumulative)",
    )
    return parser


def check_arguments(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments (None if nothing)."""
    if any(m < 3 for m in args.machines):
        return "--machines must be whole numbers >= 3 (a line has 3 stations)"
    if not (args.steps >= 1 and args.skip >= 0 and args.steps + args.skip <= 2016):
        return "--steps >= 1 plus --skip >= 0 must fit in one week (2016 5-minute decisions)"
    if not 0.1 <= args.eval_horizon_h <= 168:
        return "--eval-horizon-h must be 0.1..168 hours"
    if args.evaluations < 1:
        return "--evaluations must be at least 1"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = check_arguments(args)
    if problem:
        print(f"bench_scaling: {problem}", file=sys.stderr)
        return 2
    from envs.atomic import write_atomic
    from envs.profiling import format_table, plot_cost_per_machine

    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    costs: list[LineCost] = []
    for machines in args.machines:
        started = time.perf_counter()
        print(f"{machines} machines: measuring ...", flush=True)
        task = (
            machines,
            args.steps,
            args.skip,
            args.policy,
            args.eval_horizon_h,
            args.evaluations,
            args.seed,
        )
        if args.in_process:
            cost = measure(*task)
        else:  # a fresh process per line: its peak memory is that line's
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                cost = pool.submit(measure, *task).result()
        costs.append(cost)
        print(
            f"{machines} machines: {cost.profile.steps_per_s:.1f} steps/s, "
            f"{cost.evaluations_per_s:.2f} evaluations/s ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    print()
    print(format_table(costs))
    payload = {
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "load_average": load,
        "results": [cost.as_dict() for cost in costs],
    }
    write_atomic(args.out / "scaling.json", json.dumps(payload, indent=1))
    plot_cost_per_machine(costs, args.out / "scaling.png")
    print(f"wrote {args.out / 'scaling.json'} and {args.out / 'scaling.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
