"""Benchmark the edge bridge: telemetry-to-command latency and throughput through Mosquitto.

For each machine count N (``--machines``, default 100 200 500): its own Mosquitto on loopback,
the real ``BridgeService`` on automotive_components scaled to N machines, and synthetic
equipment in a separate process sampling every machine at ``--rate`` Hz for ``--seconds``; each
sample is one scenario tick (30 s of plant time, a decision every 10 samples) or, with
``--realtime``, 1/rate s of plant time (plant time = wall time, a decision every 300 s, the
feed decimated to the twin's 60 s points). Measured: telemetry-to-command latency per command
and per decision, ingest lag, telemetry and commands lost or duplicated, where a decision's
time goes, the machine's load. The work is :mod:`edge_bridge.bench`.

Prints progress lines and a table per N (the 20 ms p99 goal is marked), writes
``bench.json`` and ``latency.png`` (latency distribution per N) into ``--out``.

    python scripts/bench_bridge.py                                  # 100 200 500, 300 s each
    python scripts/bench_bridge.py --machines 100 --seconds 300 --rate 10
    python scripts/bench_bridge.py --machines 100 --seconds 600 --realtime
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_bridge.bench import (  # noqa: E402
    BenchOptions,
    check_arguments,
    format_table,
    run_benchmark,
    write_outputs,
    write_plant_files,
)

__all__ = ["build_parser", "main", "write_plant_files"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument("--machines", type=int, nargs="+", default=[100, 200, 500])
    parser.add_argument("--seconds", type=float, default=300.0, help="wall seconds per N")
    parser.add_argument("--rate", type=float, default=10.0, help="samples per machine per s")
    parser.add_argument("--candidate", default="", help="a candidate policy (paired comparison)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench_bridge"))
    parser.add_argument("--profile", action="store_true", help="cProfile the decisions")
    parser.add_argument("--progress-s", type=float, default=10.0, help="seconds between lines")
    parser.add_argument("--settle-s", type=float, default=30.0, help="wait for the last commands")
    parser.add_argument(
        "--realtime", action="store_true", help="plant time = wall time (a decision per 300 s)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = BenchOptions(
        seconds=args.seconds,
        rate_hz=args.rate,
        candidate=args.candidate,
        profile=args.profile,
        progress_s=args.progress_s,
        settle_s=args.settle_s,
        realtime=args.realtime,
    )
    try:
        check_arguments(args.machines, options)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    results = run_benchmark(args.machines, options, args.out)
    print(format_table(results))
    write_outputs(results, args.out, vars(args) | {"out": str(args.out)})
    print(f"wrote {args.out / 'bench.json'} and {args.out / 'latency.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
