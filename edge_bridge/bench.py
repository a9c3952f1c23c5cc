"""The bridge benchmark (``scripts/bench_bridge.py``): telemetry-to-command latency and
throughput of the real :class:`~edge_bridge.service.BridgeService` through Mosquitto.

For each machine count N it starts its own Mosquitto on loopback (:class:`edge_bridge.broker.
Broker`), the bridge on a generated scenario of N machines (:func:`edge_bridge.load.
scaled_scenario`: automotive_components scaled, stations split into cells of at most 20
parallel machines), an envelope and a gate for it (:func:`write_plant_files`), incumbent
``condition_based`` (a candidate adds the paired twin comparison), its own store, and in a
separate process the synthetic equipment (:class:`edge_bridge.load.SyntheticEquipment`): every
machine sampled at ``rate_hz`` for ``seconds``. Two clocks (:class:`BenchOptions`):

- accelerated (default): each sample one scenario tick (30 s of plant time), so a decision
  interval (300 s) completes every 10 samples; the twin samples every tick;
- ``realtime``: plant time = wall time, each sample 1/``rate_hz`` s of plant time, so a decision
  interval takes 300 s of wall time; the bridge decimates the feed to the twin's
  ``REALTIME_SAMPLE_S`` points (``BridgeSettings.sample_interval_s``).

Measured per N (:func:`bench_one`):

- latency of each command = its arrival at the equipment − ``sent_at`` of the telemetry message
  that completed its decision interval (the last machine's boundary sample); per decision the
  latency of its last command (all commands of the interval delivered);
- ingest lag of every telemetry message: sent → handled on the bridge's loop thread;
- loss: telemetry sent vs handled + refused + rejected by the bridge (what is still in the
  bridge's inbox when the run stops counts as lost and is also reported as ``inbox_at_end``,
  the rest was dropped on the way, e.g. by a broker queue over its limit); every command the ledger
  issued received (lost), none received twice (duplicated), none applied twice;
- where a decision's time goes (the bridge's loop thread, timed by wrapping the bridge's parts
  from outside, :class:`Probe`): :data:`PARTS`; ``profile`` adds a cProfile of the decisions;
- the machine's load (``os.getloadavg``) at the start, during and at the end of the run: the
  machine may be shared.

:func:`format_table` prints the figures (the 20 ms p99 goal is marked), :func:`write_outputs`
writes ``bench.json`` and ``latency.png`` (latency distribution per N).
"""

from __future__ import annotations

import io
import json
import math
import multiprocessing
import os
import pstats
import queue
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_bridge.bench_probe import PARTS, LoadSampler, Probe
from edge_bridge.broker import Broker
from edge_bridge.load import LoadReport, SyntheticEquipment, scaled_scenario
from edge_bridge.mqtt import ConnectionSettings
from edge_bridge.service import BridgeService
from edge_bridge.settings import BridgeSettings, MqttSettings
from envs.atomic import write_atomic
from envs.config import write_toml
from envs.scenario import Scenario, load_scenario

__all__ = [
    "GOAL_P99_MS",
    "PARTS",
    "REALTIME_SAMPLE_S",
    "BenchOptions",
    "Probe",
    "bench_one",
    "check_arguments",
    "format_table",
    "plot",
    "run_benchmark",
    "write_outputs",
    "write_plant_files",
]

SITE = "bench"
GOAL_P99_MS = 20.0
REALTIME_SAMPLE_S = 60.0
"""The twin's sample period in the realtime mode, s (the shipped ``sample_interval_s``)."""


@dataclass(frozen=True)
class BenchOptions:
    """One benchmark's settings: ``seconds`` of wall time per N, ``rate_hz`` samples per machine
    per wall second, ``candidate`` policy spec ("" = none), ``profile`` the decisions,
    ``progress_s`` between progress lines, ``settle_s`` to wait for the last commands,
    ``realtime`` plant time = wall time (module docstring)."""

    seconds: float = 300.0
    rate_hz: float = 10.0
    candidate: str = ""
    profile: bool = False
    progress_s: float = 10.0
    settle_s: float = 30.0
    realtime: bool = False

    @property
    def plant_step_s(self) -> float | None:
        """Plant seconds per sample: 1/rate in realtime, else None (one scenario tick)."""
        return 1.0 / self.rate_hz if self.realtime else None


def check_arguments(machines: Sequence[int], options: BenchOptions) -> None:
    """ValueError naming the bad argument; nothing else happens."""
    if any(n < 3 for n in machines) or options.seconds <= 0 or not 0 < options.rate_hz <= 1000:
        raise ValueError("--machines must be >= 3, --seconds > 0, --rate in (0, 1000]")
    if options.realtime and not math.isclose(
        (300.0 * options.rate_hz) % 1.0, 0.0, abs_tol=1e-9
    ):  # the decision interval must be a whole number of samples
        raise ValueError("--realtime needs a --rate that puts a whole number of samples in 300 s")


# --- configuration of one run ------------------------------------------------------------------
def write_plant_files(folder: Path, scenario: Scenario) -> dict[str, Path]:
    """The scenario, an envelope (every station's speed_range, the shipped defaults) and a gate
    (rollout bench, canary 10 % then the rest) for ``scenario``, written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.toml" for name in ("scenario", "envelope", "gate")}
    write_toml(scenario, paths["scenario"])
    stations = "".join(
        f'\n[[stations]]\nname = "{s.name}"\n'
        f"speed_factor = {{ low = {s.speed_range[0]}, high = {s.speed_range[1]} }}\n"
        for s in scenario.stations
    )
    write_atomic(
        paths["envelope"],
        f'version = "{scenario.name}-bench-envelope"\n'
        'speed_factor = { max_step = 0.1, mode = "clamp" }\n'
        'standby = { allow_true = true, mode = "clamp" }\n'
        'maintenance = { allow_true = true, mode = "reject" }\n' + stations,
    )
    write_atomic(
        paths["gate"],
        'rollout_id = "bench"\nmin_intervals = 12\ntrust_threshold = 0.5\n'
        "kpi_tolerance = 0.02\nrollback_kpi_tolerance = 0.05\nrequire_approval = false\n"
        'start_h = 6.0\n\n[[cohorts]]\nname = "canary"\nshare = 0.1\n\n'
        '[[cohorts]]\nname = "rest"\n',
    )
    return paths


# --- the equipment process -----------------------------------------------------------------------
def _equipment_process(
    scenario_path: str,
    settings: ConnectionSettings,
    options: BenchOptions,
    done: Any,
    results: Any,
) -> None:
    """Child process: run the synthetic equipment, then wait for ``done`` (the bridge's last
    commands delivered) and send the report."""
    equipment = SyntheticEquipment(
        load_scenario(scenario_path),
        settings,
        site=SITE,
        rate_hz=options.rate_hz,
        plant_step_s=options.plant_step_s,
    )
    try:
        equipment.start(timeout_s=60.0)  # 500 subscriptions on a busy machine
        results.put(("started", None))
        equipment.run(options.seconds)
        results.put(("ran", equipment.report.telemetry_sent))
        done.wait(120)
    finally:
        equipment.close()
    results.put(("report", equipment.report))


def _percentiles(values: list[float] | np.ndarray) -> dict[str, float]:
    data = np.asarray(values, dtype=float) * 1000.0
    if data.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    return {
        "p50": float(np.percentile(data, 50)),
        "p99": float(np.percentile(data, 99)),
        "max": float(data.max()),
        "n": int(data.size),
    }


def bench_one(machines: int, options: BenchOptions, out: Path) -> dict[str, Any]:
    """One benchmark run with ``machines`` machines in ``out/n<machines>``; returns its figures
    (module docstring). A bridge that fails to start is reported in ``failures``."""
    folder = out / f"n{machines}"
    scenario = scaled_scenario(machines)
    paths = write_plant_files(folder, scenario)
    store = folder / "bridge.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    step_s = options.plant_step_s or scenario.tick_s
    per = round(scenario.decision_interval_s / step_s)
    load = LoadSampler()
    failures: list[str] = []
    hook = threading.excepthook
    threading.excepthook = lambda info: failures.append(
        f"{info.exc_type.__name__}: {info.exc_value}"
    )
    with Broker(folder / "mosquitto") as broker:
        account = broker.account("bridge")
        settings = BridgeSettings(
            scenario=str(paths["scenario"]),
            sample_interval_s=REALTIME_SAMPLE_S if options.realtime else scenario.tick_s,
            incumbent="condition_based",
            candidate=options.candidate,
            envelope=str(paths["envelope"]),
            gate=str(paths["gate"]),
            store=str(store),
            mqtt=MqttSettings(
                site=SITE,
                host=broker.host,
                port=broker.port,
                username=account.username,
                client_id=f"bridge-{uuid.uuid4().hex[:8]}",
            ),
        )
        began = time.perf_counter()
        service = BridgeService(settings, password=account.password)
        startup_s = time.perf_counter() - began
        probe = Probe(service, profile=options.profile)
        try:
            service.start()
        except Exception as error:  # the bridge under test failed: report it, run the next N
            failures.append(f"bridge start: {type(error).__name__}: {error}")
            service.stop()
            threading.excepthook = hook
            return _failed(machines, startup_s, failures) | {"load": load.figures()}
        context = multiprocessing.get_context("spawn")
        done, results = context.Event(), context.Queue()
        equipment_settings = broker.settings(
            "equipment", f"load-{uuid.uuid4().hex[:8]}", session_expiry_s=3600
        )
        child = context.Process(
            target=_equipment_process,
            args=(str(paths["scenario"]), equipment_settings, options, done, results),
            daemon=True,
        )
        child.start()
        report = _supervise(service, probe, child, done, results, machines, per, options, load)
        child.join(10)
        service.stop()
        unhandled = service._inbox.qsize()  # arrived, never handled: part of "lost"
        dropped = broker.log_tail(100_000).count("Outgoing messages are being dropped")
    threading.excepthook = hook
    if report is None:
        failures.append("the equipment process sent no report")
        report = LoadReport(machines, options.rate_hz, per)
    result = _figures(service, probe, report, machines, startup_s, failures)
    result["realtime"] = options.realtime
    result["broker_drop_warnings"] = dropped
    result["inbox_at_end"] = unhandled
    result["load"] = load.figures()
    if probe.profiler is not None:
        text = io.StringIO()
        pstats.Stats(probe.profiler, stream=text).sort_stats("cumulative").print_stats(30)
        write_atomic(folder / "profile.txt", text.getvalue())
        result["profile"] = str(folder / "profile.txt")
    return result


def _failed(machines: int, startup_s: float, failures: list[str]) -> dict[str, Any]:
    nothing = {"p50": float("nan"), "p99": float("nan"), "max": float("nan"), "n": 0}
    return {
        "machines": machines,
        "startup_s": startup_s,
        "msgs_in_per_s": 0.0,
        "msgs_out_per_s": 0.0,
        "command_latency_ms": nothing,
        "decision_latency_ms": nothing,
        "ingest_lag_ms": nothing,
        "telemetry_lost": 0,
        "commands_lost": 0,
        "commands_duplicated": 0,
        "decision_ms": {},
        "goal_met": False,
        "failures": failures,
        "latencies_ms": [],
    }


def _supervise(
    service: BridgeService,
    probe: Probe,
    child: Any,
    done: Any,
    results: Any,
    machines: int,
    per: int,
    options: BenchOptions,
    load: LoadSampler,
) -> LoadReport | None:
    """Print progress while the equipment runs; once it has sent everything, wait until the
    bridge handled it and the ledger settled (or ``settle_s`` passes), then collect the report."""
    began = time.time()
    sent: int | None = None
    settle_until = None
    report = None
    next_line = began + options.progress_s
    while report is None:
        try:
            kind, value = results.get(timeout=0.2)
        except queue.Empty:
            kind, value = "", None
        if kind == "ran":
            sent, settle_until = value, time.time() + options.settle_s
        elif kind == "report":
            report = value
        counts = service.counts
        handled = counts["telemetry"] + counts["telemetry_refused"] + counts["invalid"]
        if time.time() >= next_line:
            next_line += options.progress_s
            load.sample()
            last = probe.decisions[-1]["total"] * 1000 if probe.decisions else float("nan")
            print(
                f"  N={machines} t={time.time() - began:5.0f} s: telemetry {handled}, decisions "
                f"{len(service.decisions)}, commands {counts['commands_sent']} sent / "
                f"{counts['ack_confirmed']} confirmed, inbox {service._inbox.qsize()}, "
                f"last decision {last:.1f} ms, load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        bridge_alive = service._thread is not None and service._thread.is_alive()
        if sent is not None and not done.is_set():
            try:
                busy = bool(service.loop.ledger.pending())
            except RuntimeError:  # the bridge thread changed the ledger meanwhile
                busy = True
            expected = (sent // machines - 1) // per  # intervals whose boundary was sent
            settled = (
                handled >= sent
                and len(service.decisions) >= expected
                and not busy
                and not service.assembler.ready()
            )
            if settled or not bridge_alive or time.time() > (settle_until or 0):
                done.set()
        if not child.is_alive() and report is None and results.empty():
            return None
    return report


def _figures(
    service: BridgeService,
    probe: Probe,
    report: LoadReport,
    machines: int,
    startup_s: float,
    failures: list[str],
) -> dict[str, Any]:
    duration = max(report.ended_at - report.started_at, 1e-9)
    counts = service.counts
    rejected = sum(v for k, v in service.client.rejected.items() if k.startswith("telemetry"))
    handled = counts["telemetry"] + counts["telemetry_refused"]
    issued = {c.command_id: c for c in service.loop.ledger.commands()}
    first: dict[str, float] = {}
    received: dict[str, int] = defaultdict(int)
    applied: dict[str, int] = defaultdict(int)
    for command in report.commands:
        received[command.command_id] += 1
        first.setdefault(command.command_id, command.arrived_at)
        if command.status == "applied":
            applied[command.idempotency_key] += 1
    latency: list[float] = []
    per_decision: dict[int, float] = defaultdict(float)
    for command_id, arrived in first.items():
        tracked = issued.get(command_id)
        if tracked is None:
            continue
        index = tracked.decision_index
        value = arrived - report.boundary_sent_at(index)
        latency.append(value)
        per_decision[index] = max(per_decision[index], value)
    breakdown = (
        {
            part: 1000.0 * float(np.mean([d.get(part, 0.0) for d in probe.decisions]))
            for part in (*PARTS, "decide", "total")
        }
        if probe.decisions
        else {}
    )
    statuses: dict[str, int] = defaultdict(int)
    for tracked_command in issued.values():
        statuses[tracked_command.status] += 1
    command_latency = _percentiles(latency)
    decision_latency = _percentiles(list(per_decision.values()))
    lost_telemetry = report.telemetry_sent - handled - rejected
    return {
        "machines": machines,
        "rate_hz": report.rate_hz,
        "seconds": duration,
        "startup_s": startup_s,
        "decisions": len(service.decisions),
        "decisions_expected": report.decisions_expected,
        "telemetry_sent": report.telemetry_sent,
        "telemetry_handled": counts["telemetry"],
        "telemetry_refused": counts["telemetry_refused"],
        "telemetry_rejected": rejected,
        "telemetry_lost": lost_telemetry,
        "commands_issued": len(issued),
        "commands_received": len(first),
        "commands_lost": len(set(issued) - set(first)),
        "commands_pending_at_end": statuses.get("pending", 0),
        "commands_duplicated": sum(n - 1 for n in received.values()),
        "commands_applied_twice": sum(1 for n in applied.values() if n > 1),
        "commands_resent": counts["commands_resent"],
        "command_statuses": dict(statuses),
        "msgs_in_per_s": (report.telemetry_sent + report.acks_sent) / duration,
        "msgs_out_per_s": (counts["commands_sent"] + counts["commands_resent"]) / duration,
        "late_ticks": report.late_ticks,
        "command_latency_ms": command_latency,
        "decision_latency_ms": decision_latency,
        "ingest_lag_ms": _percentiles(probe.ingest_lag_s),
        "telemetry_handling_us": 1e6 * probe.telemetry_s / max(1, len(probe.ingest_lag_s)),
        "ack_handling_us": 1e6 * probe.ack_s / max(1, probe.acks),
        "decision_ms": breakdown,
        "decision_total_ms": _percentiles([d["total"] for d in probe.decisions]),
        "goal_met": bool(
            decision_latency["p99"] <= GOAL_P99_MS
            and lost_telemetry == 0
            and not set(issued) - set(first)
            and not failures
        ),
        "failures": failures,
        "latencies_ms": [1000.0 * v for v in latency],
    }


def run_benchmark(
    machines: Sequence[int], options: BenchOptions, out: Path
) -> list[dict[str, Any]]:
    """:func:`bench_one` for each machine count in turn, with a line before each."""
    check_arguments(machines, options)
    results = []
    clock = "realtime" if options.realtime else "accelerated"
    for count in machines:
        print(
            f"N={count}: {options.seconds:.0f} s at {options.rate_hz} Hz ({clock}) ...", flush=True
        )
        results.append(bench_one(count, options, out))
    return results


# --- output ------------------------------------------------------------------------------------
def format_table(results: list[dict[str, Any]]) -> str:
    """The results table and the decision-time breakdown (milliseconds)."""
    lines = [
        "latency = command arrival - sent_at of the telemetry that completed its interval (ms);",
        "decision = the interval's last command; goal: decision p99 <= 20 ms, nothing lost",
        f"{'N':>4} {'in/s':>7} {'out/s':>6} {'cmd p50':>8} {'p99':>7} {'max':>7} "
        f"{'dec p50':>8} {'p99':>7} {'max':>7} {'ingest p99':>10} "
        f"{'lost tel':>8} {'lost cmd':>8} {'dup':>4} {'goal':>5} {'load':>5}",
    ]
    for r in results:
        c, d = r["command_latency_ms"], r["decision_latency_ms"]
        load = r.get("load", {}).get("one_min_mean", math.nan)
        lines.append(
            f"{r['machines']:>4} {r['msgs_in_per_s']:>7.0f} {r['msgs_out_per_s']:>6.0f} "
            f"{c['p50']:>8.1f} {c['p99']:>7.1f} {c['max']:>7.1f} "
            f"{d['p50']:>8.1f} {d['p99']:>7.1f} {d['max']:>7.1f} "
            f"{r['ingest_lag_ms']['p99']:>10.1f} {r['telemetry_lost']:>8} "
            f"{r['commands_lost']:>8} {r['commands_duplicated']:>4} "
            f"{'met' if r['goal_met'] else 'MISS':>5} {load:>5.2f}"
        )
    lines += ["", "mean ms per decision on the bridge thread:"]
    names = (*PARTS, "total")
    lines.append(f"{'N':>4} " + " ".join(f"{name:>10}" for name in names))
    for r in results:
        parts = r["decision_ms"]
        lines.append(
            f"{r['machines']:>4} " + " ".join(f"{parts.get(name, 0.0):>10.2f}" for name in names)
        )
    for r in results:
        if r["failures"]:
            lines.append(f"N={r['machines']}: FAILED: {'; '.join(r['failures'])}")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """Empirical CDF of command latency per N, the goal as a line, written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for r in results:
        data = np.sort(np.asarray(r["latencies_ms"]))
        if data.size:
            axis.plot(data, np.arange(1, data.size + 1) / data.size, label=f"N = {r['machines']}")
    axis.axvline(GOAL_P99_MS, color="r", ls="--", lw=0.8, label="20 ms goal")
    axis.set_xscale("log")
    axis.set_xlabel("telemetry-to-command latency, ms")
    axis.set_ylabel("fraction of commands")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)


def write_outputs(results: list[dict[str, Any]], out: Path, arguments: dict[str, Any]) -> None:
    """``bench.json`` (``arguments`` and the results without the per-command latencies) and
    ``latency.png`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    summary = [{k: v for k, v in r.items() if k != "latencies_ms"} for r in results]
    write_atomic(out / "bench.json", json.dumps({"args": arguments, "results": summary}, indent=2))
    plot(results, out / "latency.png")
