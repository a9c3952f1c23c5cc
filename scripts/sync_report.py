"""How well the twin follows a plant: calibration errors, next-hour prediction with and without
synchronisation, the hybrid model, and how fast trust and drift detection react.

Runs the synchronisation benchmark (:mod:`envs.sync.benchmark`, where the procedure and the error
definitions are documented) on the plant emulator for ``--seeds`` plant seeds, prints the tables
(means over seeds) and writes ``report.json``, ``next_hour.png`` (twin vs plant over the window
and the predicted hour) and ``tracking.png`` (trust and Page-Hinkley flags around each drift) in
``--out``.

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

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class ReportConfig:
    plant: Path = REPO / "configs" / "plant_example.toml"
    window_h: float = 1.0
    horizon_h: float = 1.0
    seeds: int = 3
    sync: str = "kalman"
    beta: float = 0.8
    ph_threshold: float = 0.2
    twin_seed: int | None = None
    sample_interval_s: float | None = None
    tracking: str = "events"
    out: Path = REPO / "runs" / "sync_report"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    default = ReportConfig()
    parser.add_argument("--plant", type=Path, default=default.plant, help="plant config TOML")
    parser.add_argument(
        "--window-h", type=float, default=default.window_h, help="hours of data to learn from"
    )
    parser.add_argument(
        "--horizon-h", type=float, default=default.horizon_h, help="hours predicted after it"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=default.seeds,
        help="plant seeds (the config's seed and the next ones); figures are per seed + mean",
    )
    parser.add_argument(
        "--sync",
        choices=("kalman", "nudging"),
        default=default.sync,
        help="state synchroniser: extended Kalman filter or fixed-gain nudging",
    )
    parser.add_argument(
        "--beta", type=float, default=default.beta, help="nudging gain in [0, 1] (--sync nudging)"
    )
    parser.add_argument(
        "--ph-threshold",
        type=float,
        default=default.ph_threshold,
        help="Page-Hinkley threshold on residual / span (smaller: faster, more false alarms)",
    )
    parser.add_argument(
        "--sample-interval-s",
        type=float,
        default=None,
        help="override the plant's sample interval (s; a multiple of the 30 s tick dividing\n"
        "the 300 s decision interval); default: the plant config's",
    )
    parser.add_argument(
        "--tracking",
        choices=("events", "states"),
        default="events",
        help="how the tracked twin re-lives the plant's discrete events: 'events' runs its own\n"
        "(seeded by --twin-seed) and adopts reported failures; 'states' makes its machines\n"
        "follow every reported state (calibrated by state replay too): no seed needed",
    )
    parser.add_argument(
        "--twin-seed",
        type=int,
        default=None,
        help="seed of the twin's own discrete events (job arrivals, failures); default: the\n"
        "plant's, i.e. the twin replays the plant's events (the stand-in for discrete-state\n"
        "synchronisation). Another value shows what unknown events cost.",
    )
    parser.add_argument("--out", type=Path, default=default.out, help="output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def plot_next_hour(seed_result: dict, path: Path, sync: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = seed_result["_traces"]
    runs, truths, samples, window = (
        traces["runs"],
        traces["truths"],
        traces["samples"],
        traces["window"],
    )
    panels = [
        "machining-1.temperature",
        "machining-1.wear",
        "welding-1.temperature",
        "machining-4.wear",
    ]
    shown = {
        "unsynchronised (nominal, free-running)": ("tab:red", "--"),
        f"calibration + {sync}": ("tab:blue", "-"),
        "hybrid on the nominal twin": ("tab:orange", ":"),
    }
    minutes = np.array([s["time_s"] for s in samples]) / 60.0
    figure, axes = plt.subplots(2, 2, figsize=(12, 7), sharex=True)
    for axis, signal in zip(axes.flat, panels, strict=True):
        axis.plot(minutes, [s[signal] for s in samples], ".", color="0.6", ms=3, label="measured")
        axis.plot(minutes, [t[signal] for t in truths], color="k", lw=1, label="plant (true)")
        for label, (colour, style) in shown.items():
            axis.plot(minutes, [p[signal] for p in runs[label]], style, color=colour, label=label)
        axis.axvline(minutes[window - 1], color="0.3", lw=0.8)
        axis.set_title(signal)
    axes[1, 0].set_xlabel("minutes since reset (left of the line: learned from; right: predicted)")
    axes[1, 1].set_xlabel("minutes since reset")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"Next-hour prediction, plant seed {seed_result['seed']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_tracking(seed_result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drift = seed_result["drift"]
    figure, axes = plt.subplots(len(drift), 1, figsize=(10, 2.6 * len(drift)), squeeze=False)
    for axis, item in zip(axes[:, 0], drift, strict=True):
        hours = [row["time_h"] for row in item["trace"]]
        axis.step(hours, [row["trust"] for row in item["trace"]], where="post", label="trust")
        flagged = [row["time_h"] for row in item["trace"] if row["flags"]]
        axis.plot(flagged, [0.05] * len(flagged), "v", color="tab:red", label="Page-Hinkley flag")
        axis.axvline(item["event"]["time_h"], color="tab:red", lw=0.8, label="drift event")
        axis.axhline(0.5, color="0.5", lw=0.6, ls=":")
        event = item["event"]
        axis.set_title(
            f"{event['target']} {event['operation']} {event['value']} "
            f"{event['machine'] or 'all machines'} at {event['time_h']} h",
            fontsize=9,
        )
        axis.set_ylim(0, 1.02)
        axis.set_ylabel("trust")
    axes[-1, 0].set_xlabel("hours since reset")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summarise(results: list[dict], sync: str, beta: float) -> dict:
    """Means over seeds, and the printed tables."""
    from envs.sync.benchmark import KINDS

    first = results[0]
    calibration = {
        key: float(np.mean([r["calibration"][key]["error_pct"] for r in results]))
        for key in first["calibration"]
    }
    by_states = {
        key: float(np.mean([r["calibration"][key]["error_pct_state_replay"] for r in results]))
        for key in first["calibration"]
    }
    print(
        "\nCalibration from the window (error against the plant's hidden value, mean over seeds;"
        "\n'by states': the machines follow the recorded states, no event seed, as for real data)"
    )
    for key, item in first["calibration"].items():
        print(
            f"  {key:36s} fitted {item['fitted']:11.5g} ± {item['std_error']:9.2g}  "
            f"true {item['true']:11.5g}  error {calibration[key]:6.2f} %  "
            f"by states {by_states[key]:6.2f} %"
            + ("" if item["identified"] else "  (not identified: s.e. > 10 % of the value)")
        )
    prediction = {}
    print("\nNext-hour prediction vs the plant's noise-free signals (mean over seeds)")
    print(
        f"  {'twin':42s} {'T RMSE K':>9s} {'T NRMSE':>8s} {'worst':>6s} "
        f"{'wear RMSE':>9s} {'NRMSE':>7s} {'worst':>6s}"
    )
    for label in first["next_hour"]:
        row = {
            kind: {
                stat: float(np.mean([r["next_hour"][label][kind][stat] for r in results]))
                for stat in ("rmse", "nrmse_mean", "nrmse_worst")
            }
            for kind in KINDS
        }
        prediction[label] = row
        t, w = row["temperature"], row["wear"]
        print(
            f"  {label:42s} {t['rmse']:9.3f} {100 * t['nrmse_mean']:7.2f}% "
            f"{100 * t['nrmse_worst']:5.1f}% {w['rmse']:9.4f} {100 * w['nrmse_mean']:6.2f}% "
            f"{100 * w['nrmse_worst']:5.1f}%"
        )
    print(
        f"\nOne sample ({first['_traces']['interval_s']:g} s) ahead during the window, nominal "
        "twin, after its first sixth (mean over seeds)"
    )
    one_step = {}
    for sync in first["one_sample_ahead"]:
        one_step[sync] = {
            kind: float(np.mean([r["one_sample_ahead"][sync][kind]["rmse"] for r in results]))
            for kind in KINDS
        }
        name = {"none": "free-running", "nudging": f"nudging beta {beta}"}.get(sync, sync)
        print(
            f"  {name:20s} temperature RMSE {one_step[sync]['temperature']:.3f} K, "
            f"wear RMSE {one_step[sync]['wear']:.4f}"
        )
    for label in ("nominal", "calibrated"):
        alphas = [r["hybrid_alpha"][label] for r in results]
        print(f"  hybrid alpha on the {label} twin per seed: {alphas}")
    drift = []
    print("\nDrift (decision intervals from the one the drift starts in; 1 = that interval)")
    for index, item in enumerate(first["drift"]):
        trust = [r["drift"][index]["intervals_to_trust_below_half"] for r in results]
        flags = [r["drift"][index]["intervals_to_drift_flag"] for r in results]
        alarms = [r["drift"][index]["false_alarms_before"] for r in results]
        lowest = min(r["drift"][index]["min_trust_before"] for r in results)
        mismatch = np.mean(
            [r["drift"][index]["state_mismatches_per_interval_before"] for r in results]
        )
        event = item["event"]
        name = f"{event['target']} {event['operation']} {event['value']} {event['machine'] or '*'}"
        print(
            f"  {name:40s} trust < 1/2 after {trust}, Page-Hinkley after {flags}; "
            f"before it ({event['time_h']} h): false alarms {alarms}, lowest trust {lowest:.2f}, "
            f"machines in another state than the plant's {mismatch:.2f} per interval"
        )
        drift.append(
            {
                "event": event,
                "trust": trust,
                "flag": flags,
                "false_alarms": alarms,
                "min_trust_before": lowest,
                "state_mismatches_per_interval_before": float(mismatch),
            }
        )
    return {
        "calibration_error_pct": calibration,
        "calibration_error_pct_state_replay": by_states,
        "next_hour": prediction,
        "one_sample_ahead_rmse": one_step,
        "drift": drift,
    }


def run(config: ReportConfig, *, progress: bool = True) -> dict:
    from tqdm import tqdm

    from envs.plant import check_plant_config, load_plant_config
    from envs.sync.benchmark import SyncBenchmark, benchmark_seed

    if config.sync not in ("kalman", "nudging"):
        raise ValueError(f"--sync must be kalman or nudging, not {config.sync!r}")
    if not 0.0 <= config.beta <= 1.0:
        raise ValueError(f"--beta {config.beta} must be in [0, 1]")
    if not (0.25 <= config.window_h <= 8 and 0.25 <= config.horizon_h <= 8):
        raise ValueError("--window-h and --horizon-h must be between 0.25 and 8 hours")
    if not 1 <= config.seeds <= 20:
        raise ValueError(f"--seeds {config.seeds} must be between 1 and 20")
    base = load_plant_config(config.plant)
    if config.sample_interval_s is not None:
        base = dataclasses.replace(base, sample_interval_s=config.sample_interval_s)
        check_plant_config(base, source=f"--sample-interval-s {config.sample_interval_s:g}")
    intervals_per_h = 3600.0 / 300.0
    drift_hours = sum(e.time_h + 1.0 for e in base.drift if e.time_h >= config.window_h)
    total = config.seeds * (
        round((config.window_h + config.horizon_h + drift_hours) * intervals_per_h) + 2
    )
    benchmark = SyncBenchmark(
        window_h=config.window_h,
        horizon_h=config.horizon_h,
        sync=config.sync,
        beta=config.beta,
        ph_threshold=config.ph_threshold,
        twin_seed=config.twin_seed,
        tracking=config.tracking,
    )
    results = []
    with tqdm(total=total, desc="plant + twins", unit="step", disable=not progress) as bar:
        for offset in range(config.seeds):
            plant_config = dataclasses.replace(base, seed=base.seed + offset)
            results.append(benchmark_seed(benchmark, plant_config, bar))
    config.out.mkdir(parents=True, exist_ok=True)
    plot_next_hour(results[0], config.out / "next_hour.png", config.sync)
    if results[0]["drift"]:
        plot_tracking(results[0], config.out / "tracking.png")
    summary = summarise(results, config.sync, config.beta)
    report = {
        "config": {k: str(v) for k, v in dataclasses.asdict(config).items()},
        "summary": summary,
        "seeds": [{k: v for k, v in r.items() if k != "_traces"} for r in results],
    }
    (config.out / "report.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {config.out / 'report.json'}, next_hour.png, tracking.png")
    return report


def main(argv: list[str] | None = None) -> int:
    from envs.config import ConfigError

    args = build_parser().parse_args(argv)
    config = ReportConfig(
        plant=args.plant,
        window_h=args.window_h,
        horizon_h=args.horizon_h,
        seeds=args.seeds,
        sync=args.sync,
        beta=args.beta,
        ph_threshold=args.ph_threshold,
        twin_seed=args.twin_seed,
        sample_interval_s=args.sample_interval_s,
        tracking=args.tracking,
        out=args.out,
    )
    try:
        run(config, progress=not args.quiet)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
