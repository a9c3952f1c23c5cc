"""The rollout report (``scripts/rollout_report.py``): the rollout's results on the emulated
plant, through a real Mosquitto broker end to end.

(a) Drift runs (:func:`drift_run`), per plant seed and scenario: the plant of the options
without its own drift events, healthy for ``drift_h`` hours, then one injected drift
(:func:`drift_event`; ``wear``: wear rate x2 on ``drift_machine``; ``ambient``: ambient +6 K on
every machine), ``hours`` in all, lock-step (faster than real time). The bridge rolls
``candidate`` out against ``incumbent`` with a gate config generated into the run folder from
``gate`` (``require_approval = false``; ``rollback_kpi_tolerance``). Counted: rollbacks before
the drift (false rollbacks, goal 0; by cause: trust/drift/stale or KPI) and decision intervals
from the drift to the rollback (1 = the interval the drift starts in; goal <= 3), the stage at
the drift and whether the drifted machine was on the candidate. One PNG per run
(:func:`plot_run`): stage over time, trust per machine, paired Z (candidate vs incumbent) per
interval.

(b) Faults (:func:`fault_run`), each in its own ``fault_hours`` run on the first seed: a broker
restart (``Broker.restart``) at interval ``restart_at``; the gateway offline (``go_offline``)
for ``offline_intervals`` from ``offline_at``. Counted: commands issued (ledger) and sends,
applied (emulator), applied twice (goal 0), ``duplicate`` acks, expired by design, lost (issued,
never applied, not expired: goal 0), and what the gate did with the offline node's machines.

:func:`run_report` runs them all, writes ``report.json`` and the PNGs into ``out`` and prints
the tables (:func:`print_tables`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_bridge.comparison import TwinComparison
from edge_bridge.deployment import LocalDeployment, write_gate_config
from edge_bridge.equipment import EmulatorConfig, OfflineFault, StepResult
from edge_bridge.gate_config import GateConfig, load_gate_config
from edge_bridge.settings import BridgeSettings
from envs.atomic import write_atomic
from envs.plant import DriftEvent, PlantConfig, load_plant_config
from envs.scenario import load_scenario

__all__ = [
    "INTERVAL_S",
    "NOT_LOST",
    "SCENARIOS",
    "RolloutOptions",
    "bridge_settings",
    "check_options",
    "drift_event",
    "drift_run",
    "fault_run",
    "gate_events",
    "load_inputs",
    "paired_z",
    "plot_run",
    "print_tables",
    "run_report",
]

SCENARIOS = ("wear", "ambient")
INTERVAL_S = 300.0
NOT_LOST = ("confirmed", "applied", "readback_mismatch", "duplicate")


@dataclass(frozen=True)
class RolloutOptions:
    """One report's settings (module docstring; the command line's options): the emulated
    ``plant``, plant ``seeds`` (one drift run each per scenario), ``hours`` per drift run and
    the ``drift_h`` plant hour of the drift on ``drift_machine``, the drift ``scenarios``, the
    proposer specs, the ``gate`` config the runs' are generated from and their
    ``rollback_kpi_tolerance``, whether to run the ``faults`` (``fault_hours`` each, the
    broker restart at interval ``restart_at``, the gateway offline ``offline_intervals`` from
    ``offline_at``), the ``out`` folder and ``quiet`` (no progress lines)."""

    plant: PlantConfig
    gate: Path
    drift_machine: str
    out: Path
    seeds: tuple[int, ...] = (11, 12, 13)
    hours: float = 30.0
    drift_h: float = 26.0
    scenarios: tuple[str, ...] = SCENARIOS
    incumbent: str = "condition_based"
    candidate: str = "fixed_interval"
    rollback_kpi_tolerance: float | None = None
    faults: bool = True
    fault_hours: float = 10.0
    restart_at: int = 78
    offline_at: int = 90
    offline_intervals: int = 3
    quiet: bool = False


def check_options(
    *,
    hours: float,
    drift_h: float,
    fault_hours: float,
    faults: bool,
    restart_at: int,
    offline_at: int,
    offline_intervals: int,
) -> None:
    """ValueError saying which of the run lengths and fault times is out of range."""
    if not hours > 0 or not 0 < drift_h < hours:
        raise ValueError("need 0 < --drift-h < --hours")
    if not fault_hours > 0:
        raise ValueError("--fault-hours must be > 0")
    intervals = round(fault_hours * 3600.0 / INTERVAL_S)
    if faults and not (0 <= restart_at < intervals and 1 <= offline_at < intervals):
        raise ValueError(
            f"--restart-at and --offline-at must lie within the {intervals} fault intervals"
        )
    if offline_intervals < 1:
        raise ValueError("--offline-intervals must be >= 1")


def load_inputs(
    plant_config: Path, gate: Path, drift_machine: str | None
) -> tuple[PlantConfig, GateConfig, str]:
    """The plant config, the gate config and the drift machine (default: the first canary
    cohort's first machine); ConfigError, ValueError or OSError saying what is wrong."""
    plant = load_plant_config(plant_config)
    gate_config = load_gate_config(gate)
    if drift_machine is None:
        first = gate_config.cohorts[0]
        if not first.machines:
            raise ValueError(f"{gate}: the first cohort names no machine; give --drift-machine")
        drift_machine = first.machines[0]
    machines = load_scenario(plant.scenario).machine_names
    if drift_machine not in machines:
        raise ValueError(f"--drift-machine {drift_machine!r} is not on the line: {list(machines)}")
    return plant, gate_config, drift_machine


def drift_event(scenario: str, hour: float, machine: str) -> DriftEvent:
    if scenario == "wear":
        return DriftEvent(time_h=hour, target="wear_rate_factor", machine=machine, value=2.0)
    return DriftEvent(time_h=hour, target="ambient_temperature", operation="add", value=6.0)


def bridge_settings(options: RolloutOptions, folder: Path) -> BridgeSettings:
    """The bridge's settings of one run; ``folder`` starts empty (a run folder of an earlier
    report is removed: its store would resume that run), its gate file is generated into it."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    gate = folder / "gate.toml"
    changes: dict[str, Any] = {"require_approval": False, "rollout_id": f"report-{folder.name}"}
    if options.rollback_kpi_tolerance is not None:
        changes["rollback_kpi_tolerance"] = options.rollback_kpi_tolerance
    write_gate_config(gate, options.gate, **changes)
    return BridgeSettings(
        incumbent=options.incumbent,
        candidate=options.candidate,
        gate=str(gate),
        store=str(folder / "bridge.sqlite"),
        start_h=options.plant.start_h,
        sample_interval_s=options.plant.sample_interval_s,
        scenario=options.plant.scenario,
    )


def paired_z(settings: BridgeSettings, intervals: int) -> list[tuple[float, float]]:
    """Per interval, (candidate Z, incumbent Z) of the paired twin comparison: the same
    deterministic simulation the bridge's gate was fed (same specs, start and seed)."""
    comparison = TwinComparison.from_settings(settings, load_scenario(settings.scenario))
    try:
        values: list[tuple[float, float]] = []
        for _ in range(intervals):
            paired = comparison.step()
            values.append((paired.candidate_z, paired.incumbent_z))
        return values
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


def drift_run(options: RolloutOptions, seed: int, scenario: str) -> dict[str, Any]:
    """One run of (a); returns its figures and timeline."""
    folder = options.out / f"{scenario}-seed{seed}"
    settings = bridge_settings(options, folder)
    plant = dataclasses.replace(options.plant, seed=seed, drift=())
    intervals = round(options.hours * 3600.0 / INTERVAL_S)
    event = drift_event(scenario, options.drift_h, options.drift_machine)
    began = time.perf_counter()
    with LocalDeployment(folder, settings, plant, drift=[event]) as deployment:
        deployment.run(intervals, progress=_progress(options, f"{scenario} seed {seed}"))
        settled = deployment.settle()
        decisions = list(deployment.bridge.decisions)
        events = gate_events(deployment)
        machines = list(deployment.bridge.machines)
    wall = time.perf_counter() - began
    drift_index = math.floor(options.drift_h * 3600.0 / INTERVAL_S + 1e-9)
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
            else at_drift.assignments.get(options.drift_machine) == "candidate"
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


def _progress(options: RolloutOptions, label: str) -> Callable[[StepResult], None]:
    every = max(1, round(3600.0 / INTERVAL_S))  # one line per plant hour

    def report(result: StepResult) -> None:
        if not options.quiet and (result.interval + 1) % every == 0:
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


def fault_run(options: RolloutOptions, fault: str) -> dict[str, Any]:
    """One run of (b): ``restart`` (broker) or ``offline`` (gateway)."""
    folder = options.out / f"fault-{fault}"
    settings = bridge_settings(options, folder)
    plant = dataclasses.replace(options.plant, seed=options.seeds[0], drift=())
    intervals = round(options.fault_hours * 3600.0 / INTERVAL_S)
    offline = (
        (OfflineFault(options.offline_at, options.offline_intervals),) if fault == "offline" else ()
    )
    with LocalDeployment(folder, settings, plant, emulator=EmulatorConfig(offline=offline)) as dep:
        stage_before: list[str] = []

        def progress(result: StepResult) -> None:
            if fault == "restart" and result.interval == options.restart_at:
                stage_before.append(dep.bridge.loop.gate.stage_label)
                dep.broker.restart()
            if fault == "offline" and result.interval == options.offline_at - 1:
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


def run_report(options: RolloutOptions, gate: GateConfig, command: str) -> dict[str, Any]:
    """Every drift run, then (with ``faults``) both fault runs; writes ``report.json`` and the
    timeline PNGs into ``options.out``, prints the tables and returns the report. ConfigError
    or ValueError from a run propagate (nothing is written then)."""
    report: dict[str, Any] = {
        "command": command,
        "candidate": options.candidate,
        "incumbent": options.incumbent,
        "gate": {
            **dataclasses.asdict(gate),
            "rollback_kpi_tolerance": options.rollback_kpi_tolerance,
        },
        "drift_machine": options.drift_machine,
        "drift_runs": [],
        "fault_runs": [],
    }
    for scenario in options.scenarios:
        for seed in options.seeds:
            print(f"(a) {scenario} drift, plant seed {seed}", flush=True)
            run = drift_run(options, seed, scenario)
            plot_run(
                options.out / f"timeline-{scenario}-seed{seed}.png",
                run,
                len(gate.cohorts),
                gate.trust_threshold,
            )
            report["drift_runs"].append(run)
    if options.faults:
        for fault in ("restart", "offline"):
            print(f"(b) fault: {fault}", flush=True)
            report["fault_runs"].append(fault_run(options, fault))
    write_atomic(options.out / "report.json", json.dumps(report, indent=1, default=str))
    print_tables(report)
    print(f"\nwrote {options.out / 'report.json'} and the timeline PNGs", flush=True)
    return report
