"""How well the twin follows a plant: calibration errors, next-hour prediction with and without
synchronisation, the hybrid model, and how fast trust and drift detection react.

Runs the synchronisation benchmark (:mod:`envs.sync.benchmark`, where the procedure and the error
definitions are documented) on the plant emulator for ``--seeds`` plant seeds, prints the tables
(means over seeds, :mod:`envs.sync.summary`) and writes ``report.json``, ``next_hour.png`` (twin
vs plant over the window and the predicted hour, for ``--machine``) and ``tracking.png`` (trust
and Page-Hinkley flags around each drift) in ``--out``, each atomically.

    python scripts/sync_report.py                          # configs/plant_example.toml, 3 seeds
    python scripts/sync_report.py --seeds 1 --out runs/sync --sync nudging --beta 0.8
    python scripts/sync_report.py --twin-seed 999 --tracking states --sample-interval-s 30
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from envs.config import setting  # noqa: E402
from envs.sync.benchmark import SYNCHRONISERS, TRACKINGS, SyncBenchmark  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class ReportConfig:
    """The report's settings; :func:`parse_args` builds it with :func:`envs.config.load_config`
    (the command-line options over these defaults)."""

    plant: str = setting(str(REPO / "configs" / "plant_example.toml"), doc="plant config TOML")
    seeds: int = setting(3, low=1, high=20, doc="plant seeds: the config's and the next ones")
    sample_interval_s: float | None = setting(
        None, low=1.0, high=86_400.0, doc="override of the plant's sample interval, s"
    )
    machines: tuple[str, ...] = setting(
        (), doc="machines shown in next_hour.png; empty: the scenario's first machine"
    )
    out: str = setting(str(REPO / "runs" / "sync_report"), doc="output folder")
    benchmark: SyncBenchmark = setting(SyncBenchmark(), doc="the benchmark's settings")  # noqa: RUF009 frozen


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    default = ReportConfig()
    bench = default.benchmark
    # every option defaults to None (not given); load_config layers the given ones over
    # ReportConfig's defaults, which the help texts quote
    parser.add_argument("--plant", type=Path, help=f"plant config TOML (default {default.plant})")
    parser.add_argument(
        "--window-h", type=float, help=f"hours of data to learn from (default {bench.window_h:g})"
    )
    parser.add_argument(
        "--horizon-h", type=float, help=f"hours predicted after it (default {bench.horizon_h:g})"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        help="plant seeds (the config's seed and the next ones); figures are per seed + mean\n"
        f"(default {default.seeds})",
    )
    parser.add_argument(
        "--sync",
        choices=SYNCHRONISERS,
        help=f"state synchroniser: extended Kalman filter or fixed-gain nudging (default "
        f"{bench.sync})",
    )
    parser.add_argument(
        "--beta", type=float, help=f"nudging gain in [0, 1] (--sync nudging; default {bench.beta})"
    )
    parser.add_argument(
        "--ph-threshold",
        type=float,
        help="Page-Hinkley threshold on residual / span (smaller: faster, more false alarms;\n"
        f"default {bench.ph_threshold})",
    )
    parser.add_argument(
        "--sample-interval-s",
        type=float,
        help="override the plant's sample interval (s; a multiple of the scenario's tick\n"
        "dividing its decision interval); default: the plant config's",
    )
    parser.add_argument(
        "--tracking",
        choices=TRACKINGS,
        help="how the tracked twin re-lives the plant's discrete events: 'events' runs its own\n"
        "(seeded by --twin-seed) and adopts reported failures; 'states' makes its machines\n"
        f"follow every reported state (calibrated by state replay too): no seed needed\n"
        f"(default {bench.tracking})",
    )
    parser.add_argument(
        "--twin-seed",
        type=int,
        help="seed of the twin's own discrete events (job arrivals, failures); default: the\n"
        "plant's, i.e. the twin replays the plant's events (the stand-in for discrete-state\n"
        "synchronisation). Another value shows what unknown events cost.",
    )
    parser.add_argument(
        "--machine",
        action="append",
        metavar="MACHINE",
        help="machine whose temperature and wear next_hour.png shows (repeatable; default:\n"
        "the scenario's first machine, e.g. machining-1)",
    )
    parser.add_argument("--out", type=Path, help=f"output folder (default {default.out})")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[ReportConfig, bool]:
    """The command line as a validated :class:`ReportConfig` (``envs.config.load_config``) and
    whether to show progress bars."""
    from envs.config import load_config

    args = build_parser().parse_args(argv)
    benchmark = {
        "window_h": args.window_h,
        "horizon_h": args.horizon_h,
        "sync": args.sync,
        "beta": args.beta,
        "ph_threshold": args.ph_threshold,
        "twin_seed": args.twin_seed,
        "tracking": args.tracking,
    }
    given: dict[str, Any] = {
        "plant": None if args.plant is None else str(args.plant),
        "seeds": args.seeds,
        "sample_interval_s": args.sample_interval_s,
        "machines": args.machine,
        "out": None if args.out is None else str(args.out),
        "benchmark": benchmark,
    }
    return load_config(ReportConfig, overrides=given), not args.quiet  # None: not given


def run(config: ReportConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run the benchmark for every seed, plot, print the summary, write report.json."""
    from tqdm import tqdm

    from envs.atomic import write_atomic
    from envs.config import ConfigError, config_to_dict
    from envs.plant import check_plant_config, load_plant_config
    from envs.sync.benchmark import benchmark_seeds, progress_steps
    from envs.sync.plots import plot_next_hour, plot_tracking
    from envs.sync.summary import format_summary, summarise

    benchmark = config.benchmark
    base = load_plant_config(config.plant)
    source = config.plant
    if config.sample_interval_s is not None:
        base = dataclasses.replace(base, sample_interval_s=config.sample_interval_s)
        source = f"--sample-interval-s {config.sample_interval_s:g}"
    scenario = check_plant_config(base, source=source)
    machines = list(config.machines) or scenario.machine_names[:1]
    unknown = [m for m in machines if m not in scenario.machine_names]
    if unknown:
        raise ConfigError(
            f"--machine {', '.join(unknown)}: not a machine of {scenario.name}; choose from "
            f"{', '.join(scenario.machine_names)}"
        )
    total = config.seeds * progress_steps(benchmark, base, scenario.decision_interval_s)
    with tqdm(total=total, desc="plant + twins", unit="step", disable=not progress) as bar:
        results = benchmark_seeds(benchmark, base, config.seeds, bar)
    out = Path(config.out)
    plot_next_hour(results[0], out / "next_hour.png", benchmark.sync, machines)
    if results[0]["drift"]:
        plot_tracking(results[0], out / "tracking.png")
    summary = summarise(results)
    print(format_summary(results, summary, benchmark.beta))
    report = {
        "config": config_to_dict(config),
        "summary": summary,
        "seeds": [{k: v for k, v in r.items() if k != "_traces"} for r in results],
    }
    write_atomic(out / "report.json", json.dumps(report, indent=1))
    print(f"\nwrote {out / 'report.json'}, next_hour.png, tracking.png")
    return report


def main(argv: list[str] | None = None) -> int:
    from envs.config import ConfigError

    try:
        config, progress = parse_args(argv)
        run(config, progress=progress)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
