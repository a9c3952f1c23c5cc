"""The rollout's results on the emulated plant, through a real Mosquitto broker end to end.

(a) Drift runs, per plant seed (``--seeds``, the plant config's ``seed``) and scenario: the plant
of ``--plant-config`` without its own drift events, healthy for ``--drift-h`` hours, then one
injected drift (``wear``: wear rate x2 on ``--drift-machine``, default the first canary cohort's
machine; ``ambient``: ambient +6 K on every machine), ``--hours`` in all, lock-step (faster than
real time). The bridge rolls ``--candidate`` out against ``--incumbent`` with a gate config
generated into the run folder from ``--gate`` (``require_approval = false``; the report's
``rollback_kpi_tolerance``, see below). Counted: rollbacks before the drift (false rollbacks,
goal 0; by cause: trust/drift/stale or KPI) and decision intervals from the drift to the
rollback (1 = the interval the drift starts in; goal <= 3), the stage at the drift and whether
the drifted machine was on the candidate. One PNG per run: stage over time, trust per machine,
paired Z (candidate vs incumbent) per interval.

(b) Faults, each in its own ``--fault-hours`` run on the first seed: a broker restart
(``Broker.restart``) at interval ``--restart-at``; the gateway offline (``go_offline``) for
``--offline-intervals`` from ``--offline-at``. Counted: commands issued (ledger) and sends,
applied (emulator), applied twice (goal 0), ``duplicate`` acks, expired by design, lost (issued,
never applied, not expired: goal 0), and what the gate did with the offline node's machines.

Tables on stdout; ``report.json`` and the PNGs in ``--out``.

    python scripts/rollout_report.py                          # 24 h x 3 seeds x 2 drifts + faults
    python scripts/rollout_report.py --hours 2 --drift-h 1 --seeds 11 --scenarios wear --no-faults

Exit 0 when done, 2 on bad options or a config error (the message says which).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_bridge.comparison import TwinComparison  # noqa: E402
from edge_bridge.deployment import LocalDeployment, write_gate_config  # noqa: E402
from edge_bridge.equipment import EmulatorConfig, OfflineFault, StepResult  # noqa: E402
from edge_bridge.gate_config import load_gate_config  # noqa: E402
from edge_bridge.settings import BridgeSettings  # noqa: E402
from envs.atomic import write_atomic  # noqa: E402
from envs.config import ConfigError  # noqa: E402
from envs.plant import DriftEvent, load_plant_config  # noqa: E402

SCENARIOS = ("wear", "ambient")
INTERVAL_S = 300.0
NOT_LOST = ("confirmed", "applied", "readback_mismatch", "duplicate")


def drift_event(scenario: str, hour: float, machine: str) -> DriftEvent:
    if scenario == "wear":
        return DriftEvent(time_h=hour, target="wear_rate_factor", machine=machine, value=2.0)
    return DriftEvent(time_h=hour, target="ambient_temperature", operation="add", value=6.0)


def bridge_settings(args: argparse.Namespace, folder: Path) -> BridgeSettings:
    """The bridge's settings of one run; ``folder`` starts empty (a run folder of an earlier
    report is removed: its store would resume that run), its gate file is generated into it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    gate = folder / "gate.toml"
    write_gate_config(
        gate,
        args.gate,
        require_approval=False,
        rollback_kpi_tolerance=args.rollback_kpi_tolerance,
        rollout_id=f"report-{folder.name}",
    )
    return BridgeSettings(
        incumbent=args.incumbent,
        candidate=args.candidate,
        gate=str(gate),
        store=str(folder / "bridge.sqlite"),
        start_h=args.plant.start_h,
        sample_interval_s=args.plant.sample_interval_s,
        scenario=args.plant.scenario,
    )


def paired_z(settings: BridgeSettings, intervals: int) -> list[tuple[float, float]]:
    """Per interval, (candidate Z, incumbent Z) of the paired twin comparison: the same
    deterministic simulation the bridge's gate was fed (same specs, start and seed)."""
    from envs.scenario import load_scenario

    scenario = load_scenario(settings.scenario)
    weights = scenario.objective
    comparison = TwinComparison(
        scenario,
        settings.incumbent,
        settings.candidate,
        start_h=settings.start_h,
        seed=settings.shadow_seed,
    )
    try:
        values = []
        for _ in range(intervals):
            paired = comparison.step()
            values.append(
                tuple(
                    kpi.weighted_objective(weights.w_cost, weights.w_energy, weights.w_downtime)
                    for kpi in (paired.candidate, paired.incumbent)
                )
            )
        return values  # type: ignore[return-value]
    finally:
        comparison.close()


def _cause(reason: str) -> str:
    return "kpi" if reason.startswith("KPI regression") else "trust/drift/stale"


def gate_events(deployment: LocalDeployment) -> list[dict[str, Any]]:
    kinds = ("promotion", "rollback", "override")
    return [
        {
            "kind": e.kind,
            "decision_index": e.decision_index,
            "time_h": None if e.time_s is None else e.time_s / 3600.0,
            "from": e.detail.get("from_stage"),
            "to": e.detail.get("to_stage"),
            "reason": e.reason,
        }
        for e in deployment.bridge.audit.events()
        if e.kind in kinds
    ]


def drift_run(args: argparse.Namespace, seed: int, scenario: str) -> dict[str, Any]:
    """One run of (a); returns its figures and timeline."""
    folder = args.out / f"{scenario}-seed{seed}"
    settings = bridge_settings(args, folder)
    plant = dataclasses.replace(args.plant, seed=seed, drift=())
    intervals = round(args.hours * 3600.0 / INTERVAL_S)
    event = drift_event(scenario, args.drift_h, args.drift_machine)
    began = time.perf_counter()
    with LocalDeployment(folder, settings, plant, drift=[event]) as deployment:
        deployment.run(intervals, progress=_progress(args, f"{scenario} seed {seed}"))
        settled = deployment.settle()
        decisions = list(deployment.bridge.decisions)
        events = gate_events(deployment)
        machines = list(deployment.bridge.machines)
    wall = time.perf_counter() - began
    drift_index = math.floor(args.drift_h * 3600.0 / INTERVAL_S + 1e-9)
    rollbacks = [e for e in events if e["kind"] == "rollback"]
    false = [e for e in rollbacks if e["decision_index"] < drift_index]
    after = [e for e in rollbacks if e["decision_index"] >= drift_index]
    at_drift = next((d for d in decisions if d.index == drift_index), None)
    z = paired_z(settings, len(decisions))
    return {
        "scenario": scenario,
        "seed": seed,
        "drift": dataclasses.asdict(event),
        "drift_index": drift_index,
        "intervals": len(decisions),
        "wall_s": round(wall, 1),
        "settled": settled,
        "false_rollbacks": len(false),
        "false_rollback_causes": [_cause(e["reason"]) for e in false],
        "stage_at_drift": None if at_drift is None else at_drift.stage,
        "drift_machine_on_candidate": (
            None
            if at_drift is None or scenario != "wear"
            else at_drift.assignments.get(args.drift_machine) == "candidate"
        ),
        "intervals_to_rollback": (
            after[0]["decision_index"] - drift_index + 1 if after and not false else None
        ),
        "rollback_reason": rollbacks[0]["reason"] if rollbacks else None,
        "final_stage": decisions[-1].stage if decisions else None,
        "events": events,
        "timeline": {
            "index": [d.index for d in decisions],
            "stage": [d.stage for d in decisions],
            "trust": {m: [d.trust.get(m) for d in decisions] for m in machines},
            "z_candidate": [c for c, _ in z],
            "z_incumbent": [i for _, i in z],
        },
    }


def _progress(args: argparse.Namespace, label: str) -> Any:
    every = max(1, round(3600.0 / INTERVAL_S))  # one line per plant hour

    def report(result: StepResult) -> None:
        if not args.quiet and (result.interval + 1) % every == 0:
            hours = result.time_s / 3600.0
            print(f"  {label}: plant {hours:5.1f} h, applied {result.applied}", flush=True)

    return report


def _stage_level(stage: str, cohorts: int) -> float:
    if stage == "shadow":
        return 0.0
    if stage.startswith("canary["):
        return 1.0 + int(stage[7:-1])
    if stage == "full":
        return 1.0 + cohorts
    return -1.0  # rolled_back


def plot_run(path: Path, run: dict[str, Any], cohorts: int, threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timeline = run["timeline"]
    hours = [(k + 1) * INTERVAL_S / 3600.0 for k in timeline["index"]]
    figure, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    levels = [_stage_level(s, cohorts) for s in timeline["stage"]]
    axes[0].step(hours, levels, where="post", color="black")
    labels = ["rolled back", "shadow", *(f"canary[{k}]" for k in range(cohorts)), "full"]
    axes[0].set_yticks(range(-1, cohorts + 2), labels)
    axes[0].set_title(
        f"{run['scenario']} drift at {run['drift']['time_h']} h, plant seed {run['seed']}: "
        f"false rollbacks {run['false_rollbacks']}, intervals to rollback "
        f"{run['intervals_to_rollback']}"
    )
    for machine, values in timeline["trust"].items():
        axes[1].plot(hours, [math.nan if v is None else v for v in values], label=machine, lw=1)
    axes[1].axhline(threshold, color="red", ls="--", lw=1, label="threshold")
    axes[1].set_ylabel("trust")
    axes[1].legend(fontsize=7, ncol=4)
    axes[2].plot(hours, timeline["z_incumbent"], label="incumbent Z", lw=1)
    axes[2].plot(hours, timeline["z_candidate"], label="candidate Z", lw=1)
    axes[2].set_ylabel("paired Z per interval")
    axes[2].set_xlabel("plant time, h")
    axes[2].legend(fontsize=8)
    for axis in axes:
        axis.axvline(run["drift"]["time_h"], color="orange", ls=":", lw=1.5)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def fault_run(args: argparse.Namespace, fault: str) -> dict[str, Any]:
    """One run of (b): ``restart`` (broker) or ``offline`` (gateway)."""
    folder = args.out / f"fault-{fault}"
    settings = bridge_settings(args, folder)
    plant = dataclasses.replace(args.plant, seed=args.seeds[0], drift=())
    intervals = round(args.fault_hours * 3600.0 / INTERVAL_S)
    offline = (OfflineFault(args.offline_at, args.offline_intervals),) if fault == "offline" else ()
    with LocalDeployment(folder, settings, plant, emulator=EmulatorConfig(offline=offline)) as dep:
        stage_before: list[str] = []

        def progress(result: StepResult) -> None:
            if fault == "restart" and result.interval == args.restart_at:
                stage_before.append(dep.bridge.loop.gate.stage_label)
                dep.broker.restart()
            if fault == "offline" and result.interval == args.offline_at - 1:
                stage_before.append(dep.bridge.loop.gate.stage_label)

        dep.run(intervals, progress=progress)
        settled = dep.settle(20.0)
        ledger = dep.bridge.loop.ledger.commands()
        applications = dict(dep.dedup.applications)
        counters = dep.emulator.counters
        statuses: dict[str, int] = {}
        for command in ledger:
            statuses[command.status] = statuses.get(command.status, 0) + 1
        lost = [
            c.idempotency_key
            for c in ledger
            if c.idempotency_key not in applications and c.status not in ("expired", "rejected")
        ]
        expired = [c for c in ledger if c.status == "expired"]
        result = {
            "fault": fault,
            "intervals": intervals,
            "settled": settled,
            "stage_before": stage_before[0] if stage_before else None,
            "final_stage": dep.bridge.loop.gate.stage_label,
            "issued": len(ledger),
            "sends": dep.bridge.counts["commands_sent"],
            "resends": dep.bridge.counts["commands_resent"],
            "applied": counters.applied,
            "applied_twice": len(dep.dedup.applied_twice()),
            "duplicate_acks": counters.duplicate,
            "expired_by_design": len(expired),
            "expired_and_applied": sum(1 for c in expired if c.idempotency_key in applications),
            "lost": len(lost),
            "missing_machine_intervals": counters.missing,
            "ledger_status": statuses,
            "bridge_connects": dep.bridge.client.connects,
            "births": dep.emulator.births,
            "decisions": len(dep.bridge.decisions),
            "events": gate_events(dep),
            "node_events": [
                e.reason
                for e in dep.bridge.audit.events()
                if e.kind in ("node_death", "node_birth", "command_expired", "command_escalated")
            ],
        }
    return result


def _table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def print_tables(report: dict[str, Any]) -> None:
    runs = report["drift_runs"]
    if runs:
        print("\n(a) drift runs: rollbacks before the drift and intervals from drift to rollback")
        header = ["scenario", "seed", "false rb", "stage at drift", "on cand.", "to rollback"]
        header += ["final", "wall s"]
        rows = [
            [
                r["scenario"],
                r["seed"],
                f"{r['false_rollbacks']} {r['false_rollback_causes'] or ''}".strip(),
                r["stage_at_drift"],
                r["drift_machine_on_candidate"],
                r["intervals_to_rollback"],
                r["final_stage"],
                r["wall_s"],
            ]
            for r in runs
        ]
        print(_table(header, rows))
        for r in runs:
            print(f"  {r['scenario']} seed {r['seed']} rollback: {r['rollback_reason']}")
    faults = report["fault_runs"]
    if faults:
        print("\n(b) faults: commands issued, applied, applied twice, duplicate acks, lost")
        keys = ["issued", "sends", "applied", "applied_twice", "duplicate_acks"]
        keys += ["expired_by_design", "lost", "missing_machine_intervals", "final_stage"]
        print(_table(["fault", *keys], [[f["fault"], *(f[k] for k in keys)] for f in faults]))
        for f in faults:
            print(f"  {f['fault']}: stage before {f['stage_before']}, gate events after:")
            grouped: dict[tuple[Any, ...], int] = {}
            for e in f["events"]:
                key = (e["decision_index"], e["kind"], e["to"], e["reason"])
                grouped[key] = grouped.get(key, 0) + 1
            for (index, kind, to, reason), count in grouped.items():
                times = f" x{count}" if count > 1 else ""
                print(f"    interval {index}: {kind} -> {to}: {reason}{times}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="See the module docstring (python -m pydoc scripts/rollout_report.py) for details.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--plant-config",
        type=Path,
        default=REPO / "configs" / "plant_example.toml",
        help="the emulated plant (its [[drift]] events are removed)",
    )
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[11, 12, 13], help="plant seeds, one run each"
    )
    parser.add_argument("--hours", type=float, default=24.0, help="plant hours per drift run")
    parser.add_argument("--drift-h", type=float, default=18.0, help="plant hour of the drift")
    parser.add_argument(
        "--drift-machine",
        help="machine of the wear drift (default: the first canary cohort's first machine)",
    )
    parser.add_argument(
        "--scenarios",
        nargs="+",
        choices=SCENARIOS,
        default=list(SCENARIOS),
        help="wear: wear rate x2 on the drift machine; ambient: ambient +6 K",
    )
    parser.add_argument("--incumbent", default="condition_based", help="proposer spec in force")
    parser.add_argument(
        "--candidate", default="fixed_interval", help="proposer spec rolled out (heuristic, file)"
    )
    parser.add_argument(
        "--gate",
        type=Path,
        default=REPO / "configs" / "bridge" / "gate.toml",
        help="gate config the run's is generated from (require_approval = false)",
    )
    parser.add_argument(
        "--rollback-kpi-tolerance",
        type=float,
        default=10.0,
        help="the generated gate's rollback_kpi_tolerance (gate.toml: 0.05; a 1 h paired-Z "
        "window with one maintenance in it swings by several 100 %%, see the report)",
    )
    parser.add_argument("--no-faults", action="store_true", help="skip (b)")
    parser.add_argument("--fault-hours", type=float, default=6.0, help="plant hours per fault run")
    parser.add_argument("--restart-at", type=int, default=40, help="interval of the broker restart")
    parser.add_argument("--offline-at", type=int, default=50, help="interval the gateway drops")
    parser.add_argument("--offline-intervals", type=int, default=3, help="intervals offline")
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "rollout_report", help="output folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.hours > 0 or not 0 < args.drift_h < args.hours:
        parser.error("need 0 < --drift-h < --hours")
    if not args.fault_hours > 0:
        parser.error("--fault-hours must be > 0")
    faults = round(args.fault_hours * 3600.0 / INTERVAL_S)
    if not args.no_faults and not (0 <= args.restart_at < faults and 1 <= args.offline_at < faults):
        parser.error(f"--restart-at and --offline-at must lie within the {faults} fault intervals")
    if args.offline_intervals < 1:
        parser.error("--offline-intervals must be >= 1")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    try:
        args.plant = load_plant_config(args.plant_config)
        gate = load_gate_config(args.gate)
        if args.drift_machine is None:
            first = gate.cohorts[0]
            if not first.machines:
                raise ValueError(
                    f"{args.gate}: the first cohort names no machine; give --drift-machine"
                )
            args.drift_machine = first.machines[0]
        from envs.scenario import load_scenario

        machines = load_scenario(args.plant.scenario).machine_names
        if args.drift_machine not in machines:
            raise ValueError(
                f"--drift-machine {args.drift_machine!r} is not on the line: {list(machines)}"
            )
    except (ConfigError, ValueError, OSError) as error:
        print(f"rollout_report: error: {error}", file=sys.stderr)
        return 2
    report: dict[str, Any] = {
        "command": " ".join(["python scripts/rollout_report.py", *(argv or sys.argv[1:])]),
        "candidate": args.candidate,
        "incumbent": args.incumbent,
        "gate": {**dataclasses.asdict(gate), "rollback_kpi_tolerance": args.rollback_kpi_tolerance},
        "drift_machine": args.drift_machine,
        "drift_runs": [],
        "fault_runs": [],
    }
    try:
        for scenario in args.scenarios:
            for seed in args.seeds:
                print(f"(a) {scenario} drift, plant seed {seed}", flush=True)
                run = drift_run(args, seed, scenario)
                plot_run(
                    args.out / f"timeline-{scenario}-seed{seed}.png",
                    run,
                    len(gate.cohorts),
                    gate.trust_threshold,
                )
                report["drift_runs"].append(run)
        if not args.no_faults:
            for fault in ("restart", "offline"):
                print(f"(b) fault: {fault}", flush=True)
                report["fault_runs"].append(fault_run(args, fault))
    except (ConfigError, ValueError) as error:
        print(f"rollout_report: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    write_atomic(args.out / "report.json", json.dumps(report, indent=1, default=str))
    print_tables(report)
    print(f"\nwrote {args.out / 'report.json'} and the timeline PNGs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
