"""The federation's results study: federated PPO vs central and local-only training, the
held-out node, wall time and memory (simulation vs deployment, 4/8/16 nodes), the cost of DP.

    python scripts/federation_study.py                          # the reduced study (defaults)
    python scripts/federation_study.py --seeds 0 1 2 --rounds 15 --local-steps 2048 \\
        --horizon-h 168 --eval-seeds 3 --out runs/federation_study_full
    python scripts/federation_study.py --stages baselines federation   # part of it
    python scripts/federation_study.py --report-only    # the tables from what has run so far

Each stage writes ``<out>/<stage>.json``; a stage whose file exists is not run again, so an
interrupted study continues where it stopped (delete a stage's file to rerun it, or pick a new
``--out`` when changing settings: the settings are not compared). At the end ``results.json``,
``results.md`` (the tables) and ``return.png`` are written; see :mod:`federation.study` for
what each stage does and how the 95 % target is defined. The federations run on Flower's
simulation engine: the ``simulation`` extra (``pip install -e ".[simulation]"``) is needed.

Exit status: 0 done; 2 bad option; 1 a stage failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from federation.study import StudyConfig, run_study  # noqa: E402

STAGES = ("baselines", "federation", "dp", "scaling")


def build_parser() -> argparse.ArgumentParser:
    defaults = StudyConfig()
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("--out", default="runs/federation_study", help="output folder")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(defaults.seeds), help="federation seeds"
    )
    parser.add_argument("--rounds", type=int, default=defaults.rounds, help="federation rounds")
    parser.add_argument(
        "--local-steps",
        type=int,
        default=defaults.local_steps,
        help="PPO env steps per node per round (central: the same per node in all)",
    )
    parser.add_argument(
        "--n-steps", type=int, default=defaults.n_steps, help="PPO rollout length per env"
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="minibatch")
    parser.add_argument(
        "--horizon-h", type=float, default=defaults.horizon_h, help="episode length, hours"
    )
    parser.add_argument(
        "--eval-seeds", type=int, default=defaults.eval_seeds, help="held-out seeds from 1000"
    )
    parser.add_argument(
        "--curve-every",
        type=int,
        default=defaults.curve_every,
        help="evaluate central and local-only every this many rounds' worth of steps",
    )
    parser.add_argument(
        "--stages",
        nargs="+",
        choices=STAGES,
        default=list(STAGES),
        help="which parts to run (default all)",
    )
    parser.add_argument("--dp-rounds", type=int, default=defaults.dp_rounds, help="DP rounds")
    parser.add_argument(
        "--dp-noise-multiplier",
        type=float,
        default=defaults.dp_noise_multiplier,
        help="DP noise multiplier z",
    )
    parser.add_argument(
        "--dp-clipping-norm",
        type=float,
        default=defaults.dp_clipping_norm,
        help="DP clipping norm C (L2 of an update)",
    )
    parser.add_argument(
        "--scaling-nodes",
        type=int,
        nargs="*",
        default=list(defaults.scaling_nodes),
        help="node counts simulated (beyond 4: copies of node-1..4 under new names)",
    )
    parser.add_argument(
        "--deployment-nodes",
        type=int,
        nargs="*",
        default=list(defaults.deployment_nodes),
        help="node counts run as a local deployment (SuperLink + SuperNodes)",
    )
    parser.add_argument(
        "--scaling-local-steps",
        type=int,
        default=defaults.scaling_local_steps,
        help="local steps per round in the scaling runs",
    )
    parser.add_argument(
        "--num-cpus", type=int, help="CPUs Ray may use (default all): ClientApps at a time"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: write results.json/.md/.png from the stages saved in --out so far",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.num_cpus is not None and args.num_cpus < 1:
        print(f"error: --num-cpus must be >= 1, got {args.num_cpus}", file=sys.stderr)
        return 2
    try:
        config = StudyConfig(
            rounds=args.rounds,
            local_steps=args.local_steps,
            n_steps=args.n_steps,
            batch_size=args.batch_size,
            horizon_h=args.horizon_h,
            eval_seeds=args.eval_seeds,
            seeds=tuple(args.seeds),
            curve_every=args.curve_every,
            dp_rounds=args.dp_rounds,
            dp_noise_multiplier=args.dp_noise_multiplier,
            dp_clipping_norm=args.dp_clipping_norm,
            scaling_nodes=tuple(args.scaling_nodes),
            deployment_nodes=tuple(args.deployment_nodes),
            scaling_local_steps=args.scaling_local_steps,
            num_cpus=args.num_cpus,
            stages=tuple(args.stages),
            report_only=args.report_only,
        )
        config.local_config(config.seeds[0])  # PPO settings checked before anything runs
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if {"federation", "dp", "scaling"} & set(config.stages) and not config.report_only:
        from federation.simulation import SIMULATION_INSTALL, ray_available

        if not ray_available():
            print(
                f"error: the federation stages need Flower's simulation engine: "
                f"{SIMULATION_INSTALL} (or run --stages baselines)",
                file=sys.stderr,
            )
            return 2
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:7.0f} s] {text}", flush=True)

    try:
        results = run_study(config, args.out, say)
    except (RuntimeError, OSError) as error:
        print(f"error: a stage failed: {error}", file=sys.stderr)
        return 1
    out = Path(args.out)
    print((out / "results.md").read_text(encoding="utf-8"))
    print(json.dumps({"rounds_to_95_per_seed": results["rounds_to_95_per_seed"]}))
    print(f"results in {out}/results.json, results.md, return.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
