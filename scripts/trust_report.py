"""Does the bridge's trust signal roll back a healthy plant, and how fast does it see a drift?

Runs the plant emulator (``envs.plant.Plant``, no MQTT) and feeds every decision interval's
samples to the bridge's seed-free twin (``edge_bridge.twin.BridgeTwin``, trust from
``edge_bridge.trust``) and, beside it, to the old signal (``envs.sync.TwinTracker`` defaults on a
twin following the same reported states: line-wide trust 2^(-NRMSE/0.1), Page-Hinkley flags).

1. healthy: ``--hours`` (24) with the config's drift events removed, on ``--seeds`` plant seeds;
   counts the decision intervals after the warm-up where ANY machine is untrusted (trust below
   the threshold or a drift flag; old signal: trust < 1/2 or a flag) = would be a false rollback.
2. drift: the same plant with one injected event at ``--drift-h``: machining-2 wear rate x2, and
   (a separate run) ambient +6 K; counts decision intervals from the drift (1 = the interval it
   starts in) to the first untrusted interval of the drifted machine (ambient: of any machine),
   and the intervals in which another machine was untrusted (wear run).

Prints a table, writes ``trust.png`` (trust per machine over the first healthy seed and the
wear drift) and ``report.json`` in ``--out``, and the wall time per simulated 24 h.

    python scripts/trust_report.py                    # configs/plant_example.toml, 3 seeds, 24 h
    python scripts/trust_report.py --seeds 1 --hours 4 --out runs/trust
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from edge_bridge.trust import TrustConfig  # noqa: E402
from edge_bridge.twin import BridgeTwin  # noqa: E402
from envs.atomic import write_atomic  # noqa: E402
from envs.plant import DriftEvent, Plant, PlantConfig, load_plant_config  # noqa: E402
from envs.sync.recording import Recording  # noqa: E402
from envs.sync.replay import StateReplay  # noqa: E402
from envs.sync.tracking import TwinTracker  # noqa: E402

DRIFT_MACHINE = "machining-2"


def drift_events(hour: float) -> dict[str, DriftEvent]:
    return {
        "wear x2": DriftEvent(
            time_h=hour, target="wear_rate_factor", machine=DRIFT_MACHINE, value=2.0
        ),
        "ambient +6 K": DriftEvent(
            time_h=hour, target="ambient_temperature", operation="add", value=6.0
        ),
    }


def run_plant(config: PlantConfig, hours: float, trust: TrustConfig) -> list[dict[str, Any]]:
    """One run; per decision interval: time, new trust/flags per machine, old trust/flags."""
    rows: list[dict[str, Any]] = []
    with Plant(config) as plant:
        plant.reset()
        first = list(plant.samples)
        start_s = config.start_h * 3600.0
        bridge = BridgeTwin(
            plant.nominal_scenario,
            sample_interval_s=config.sample_interval_s,
            start_s=start_s,
            config=trust,
        )
        count = len(plant.machine_names)
        nominal = (np.ones(count), np.zeros(count), np.zeros(count))
        old_twin = BridgeTwin(plant.nominal_scenario, sample_interval_s=config.sample_interval_s)
        old_twin.line.reset(np.random.default_rng(0), start_s=start_s)
        recording = Recording(
            start_s=start_s,
            seed=0,
            sample_interval_s=config.sample_interval_s,
            samples=tuple(first),
            setpoints=(nominal,),
        )
        replay = StateReplay(old_twin.line, recording)
        old = TwinTracker(old_twin.line, replay=replay)
        try:
            bridge.update(first, nominal[0])
            old.step(first[-1], *nominal, samples=first)
            for _ in range(round(hours * 3600.0 / plant.decision_interval_s)):
                plant.advance()
                samples = list(plant.samples)
                update = bridge.update(samples, nominal[0])
                replay.thresholds = bridge.cutting_thresholds  # the same live rule
                step = old.step(samples[-1], *nominal, samples=samples)
                rows.append(
                    {
                        "time_h": update.time_s / 3600.0,
                        "ready": update.ready,
                        "trust": update.trust,
                        "untrusted": list(update.untrusted(trust)),
                        "old_trust": step.trust,
                        "old_flags": list(step.drifted),
                    }
                )
        finally:
            bridge.close()
            old_twin.close()
    return rows


def old_untrusted(row: dict[str, Any], machine: str | None = None) -> bool:
    flags = [f for f in row["old_flags"] if machine is None or f.startswith(f"{machine}.")]
    return row["old_trust"] < 0.5 or bool(flags)


def healthy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ready = [r for r in rows if r["ready"]]
    return {
        "intervals": len(ready),
        "false_rollbacks": sum(bool(r["untrusted"]) for r in ready),
        "min_trust": min(min(r["trust"].values()) for r in ready) if ready else float("nan"),
        "old_false_rollbacks": sum(old_untrusted(r) for r in ready),
        "old_min_trust": min(r["old_trust"] for r in ready) if ready else float("nan"),
    }


def delays(rows: list[dict[str, Any]], hour: float, machine: str | None) -> dict[str, Any]:
    after = [r for r in rows if r["time_h"] > hour + 1e-9]
    new = next(
        (
            j + 1
            for j, r in enumerate(after)
            if (machine in r["untrusted"] if machine else r["untrusted"])
        ),
        None,
    )
    old = next((j + 1 for j, r in enumerate(after) if old_untrusted(r, machine)), None)
    others = sum(bool(set(r["untrusted"]) - {machine}) for r in after) if machine else None
    return {"delay": new, "old_delay": old, "others_untrusted_intervals": others}


def plot(path: Path, runs: dict[str, list[dict[str, Any]]], threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(runs), 1, figsize=(11, 3.2 * len(runs)), squeeze=False)
    for axis, (title, rows) in zip(axes[:, 0], runs.items(), strict=True):
        hours = [r["time_h"] for r in rows]
        for name in rows[0]["trust"]:
            axis.plot(hours, [r["trust"][name] for r in rows], lw=1, label=name)
        axis.plot(hours, [r["old_trust"] for r in rows], "k:", lw=1, label="old (line-wide)")
        axis.axhline(threshold, color="r", lw=0.8, ls="--")
        axis.set_ylim(-0.02, 1.02)
        axis.set_title(title)
        axis.set_ylabel("trust")
    axes[-1, 0].set_xlabel("hours since reset")
    axes[0, 0].legend(ncol=4, fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path.with_suffix(".tmp.png"), dpi=110)
    plt.close(figure)
    path.with_suffix(".tmp.png").replace(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument(
        "--plant",
        type=Path,
        default=REPO / "configs" / "plant_example.toml",
        help="plant config TOML (its drift events are replaced; default %(default)s)",
    )
    parser.add_argument(
        "--seeds", type=int, default=3, help="plant seeds: the config's and the next ones (>= 1)"
    )
    parser.add_argument(
        "--hours", type=float, default=24.0, help="simulated hours of each healthy run"
    )
    parser.add_argument(
        "--drift-h", type=float, default=6.0, help="hour of the injected drift (after warm-up)"
    )
    parser.add_argument(
        "--drift-window-h", type=float, default=2.0, help="hours simulated after the drift"
    )
    parser.add_argument(
        "--alarm", type=float, default=None, help="CUSUM alarm h in σ (TrustConfig.alarm)"
    )
    parser.add_argument(
        "--allowance", type=float, default=None, help="CUSUM allowance k in σ (TrustConfig)"
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "trust_report", help="output folder"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.seeds < 1 or args.hours <= 0 or args.drift_h < 1.0 or args.drift_window_h <= 0:
        raise SystemExit(
            "--seeds >= 1, --hours > 0, --drift-h >= 1 (warm-up), --drift-window-h > 0"
        )
    overrides = {
        k: getattr(args, k) for k in ("alarm", "allowance") if getattr(args, k) is not None
    }
    trust = TrustConfig(**overrides)
    base = load_plant_config(args.plant)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    figures: dict[str, list[dict[str, Any]]] = {}
    simulated_h, wall = 0.0, 0.0
    for k in range(args.seeds):
        seed = base.seed + k
        print(f"seed {seed}: healthy {args.hours:g} h ...", flush=True)
        started = time.perf_counter()
        rows = run_plant(dataclasses.replace(base, seed=seed, drift=()), args.hours, trust)
        wall += time.perf_counter() - started
        simulated_h += args.hours
        result: dict[str, Any] = {"seed": seed, "healthy": healthy(rows)}
        if k == 0:
            figures[f"healthy, seed {seed}"] = rows
        for label, event in drift_events(args.drift_h).items():
            print(f"seed {seed}: {label} at {args.drift_h:g} h ...", flush=True)
            started = time.perf_counter()
            hours = args.drift_h + args.drift_window_h
            drifted = run_plant(dataclasses.replace(base, seed=seed, drift=(event,)), hours, trust)
            wall += time.perf_counter() - started
            simulated_h += hours
            machine = event.machine or None
            result[label] = delays(drifted, args.drift_h, machine)
            if k == 0 and machine:
                figures[f"{label} on {machine} at {args.drift_h:g} h, seed {seed}"] = drifted
        results.append(result)
    per_day = wall / simulated_h * 24.0
    print(f"\nthreshold {trust.threshold}, CUSUM k {trust.allowance} σ, h {trust.alarm} σ")
    print(
        "seed | healthy false rollbacks new (old) | min trust new (old) | "
        "wear x2 delay new (old), others | ambient +6 K delay new (old)"
    )
    for r in results:
        h, w, a = r["healthy"], r["wear x2"], r["ambient +6 K"]
        print(
            f"{r['seed']} | {h['false_rollbacks']} ({h['old_false_rollbacks']}) of "
            f"{h['intervals']} | {h['min_trust']:.2f} ({h['old_min_trust']:.2f}) | "
            f"{w['delay']} ({w['old_delay']}), {w['others_untrusted_intervals']} | "
            f"{a['delay']} ({a['old_delay']})"
        )
    print(
        f"wall time per simulated 24 h (plant + both twins): {per_day:.1f} s "
        f"({86400.0 / per_day:.0f}x real time)"
    )
    plot(args.out / "trust.png", figures, trust.threshold)
    report = {
        "trust_config": dataclasses.asdict(trust),
        "seconds_per_24h": per_day,
        "seeds": results,
    }
    write_atomic(args.out / "report.json", json.dumps(report, indent=2, default=str))
    print(f"wrote {args.out / 'trust.png'} and {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
