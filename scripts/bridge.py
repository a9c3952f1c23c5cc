"""The edge bridge: deploy a candidate policy to equipment behind the gray-scale gate.

    python scripts/bridge.py run --config configs/bridge/bridge.toml --candidate fixed_interval
    python scripts/bridge.py local --hours 6 --candidate fixed_interval \\
        --drift 4:machining-1:wear_rate_factor:multiply:2
    python scripts/bridge.py status --db runs/bridge/bridge.sqlite

``run``: the bridge service against a real broker (bridge.toml's [mqtt]) until Ctrl-C, one
progress line per decision interval. ``local``: broker + emulated plant + bridge on this machine
(edge_bridge.deployment.LocalDeployment), prints the gate's timeline. ``status``: the store's
gate stage, pending approvals and last decisions, read-only. The audit log's queries (rows,
events, CSV export, summary) are scripts/audit.py. Exit 0 when done (130 on Ctrl-C), 2 on bad
options, a bad config, a store that cannot be read or a broker that cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from scripts.emulate_plant import parse_drift  # noqa: E402

DEFAULT_CONFIG = "configs/bridge/bridge.toml"
DEFAULT_DB = "runs/bridge/bridge.sqlite"
ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, TimeoutError)
"""ConfigError is a ValueError; StoreError and BrokerError are RuntimeErrors."""


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        epilog="Audit queries: python scripts/audit.py --help. Details: the module docstring.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    policies = argparse.ArgumentParser(add_help=False)
    policies.add_argument(
        "--incumbent", help="what runs today: heuristic name, .npz/.zip policy or pareto.json#i"
    )
    policies.add_argument("--candidate", help="what is rolled out (same forms; '' = none)")
    policies.add_argument("--gate", help="gray-scale gate TOML (edge_bridge.gate_config)")
    policies.add_argument("--envelope", help="safety envelope TOML (edge_bridge.envelope)")

    run = commands.add_parser(
        "run",
        parents=[policies],
        help="the bridge against a real broker until Ctrl-C",
        description="The bridge service against the broker of the config's [mqtt] table, until "
        "Ctrl-C; one line per decision interval (stage, lowest trust, commands sent/confirmed). "
        "Options override the config file's keys.",
    )
    run.add_argument("--config", default=DEFAULT_CONFIG, help=f"bridge TOML ({DEFAULT_CONFIG})")
    run.add_argument("--store", help="SQLite store (audit, commands, gate state)")
    run.add_argument("--site", help="site name in the topics ([mqtt] site)")
    run.add_argument("--host", help="broker host ([mqtt] host)")
    run.add_argument("--port", type=int, help="broker port ([mqtt] port)")
    run.add_argument("--username", help="the bridge's broker user ([mqtt] username)")
    run.add_argument("--password-file", help="file with its password ([mqtt] password_file)")
    run.add_argument("--ca-file", help="CA certificate for TLS, '' = no TLS ([mqtt] ca_file)")
    run.add_argument("--client-id", help="MQTT client id, stable per bridge ([mqtt] client_id)")
    run.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        help="wall s to reach the broker before giving up (10)",
    )

    local = commands.add_parser(
        "local",
        parents=[policies],
        help="broker + emulated plant + bridge on this machine; prints the timeline",
        description="A Mosquitto broker in --out, the emulated plant (lock-step unless "
        "--realtime-factor) and the bridge; prints every gate event and one line per plant hour, "
        "then a summary. The gate's require_approval is switched off unless --require-approval.",
    )
    local.add_argument("--hours", type=_positive, default=6.0, help="plant hours to run (6)")
    local.add_argument(
        "--realtime-factor",
        type=_positive,
        help="free-running: plant seconds per wall second (default: lock-step, fastest)",
    )
    local.add_argument(
        "--plant-config",
        default="configs/plant_example.toml",
        help="the emulated plant (envs.plant)",
    )
    local.add_argument(
        "--no-plant-drift", action="store_true", help="drop the plant config's [[drift]] events"
    )
    local.add_argument(
        "--drift",
        type=parse_drift,
        action="append",
        default=[],
        metavar="HOUR:MACHINE:TARGET:OP:VALUE",
        help="inject a drift (repeatable), e.g. 4:machining-1:wear_rate_factor:multiply:2",
    )
    local.add_argument(
        "--require-approval",
        action="store_true",
        help="keep the gate's operator approval (nobody approves in a local run: stays in shadow)",
    )
    local.add_argument("--out", help="folder for broker and store (default: a temporary one)")

    status = commands.add_parser(
        "status",
        help="gate stage, pending approvals, last decisions of a store (read-only)",
        description="The gate's stage, pending approvals and the last decisions in a bridge "
        "store, read-only (a running bridge is not disturbed).",
    )
    status.add_argument("--db", default=DEFAULT_DB, help=f"the bridge's store ({DEFAULT_DB})")
    status.add_argument(
        "--last", type=_count, default=3, help="how many decision intervals to show (3)"
    )
    return parser


def _policy_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "incumbent": args.incumbent,
        "candidate": args.candidate,
        "gate": args.gate,
        "envelope": args.envelope,
    }


def decision_line(decision: Any, counts: Any) -> str:
    """One progress line: decision index, plant time, stage, lowest trust, commands."""
    trust = [v for v in decision.trust.values() if math.isfinite(v)]
    lowest = f"{min(trust):.3f}" if trust else "-"
    hours = decision.time_s / 3600.0
    return (
        f"interval {decision.index:5d}  plant {hours:7.2f} h  stage {decision.stage:<11s}  "
        f"trust min {lowest}  commands sent {counts['commands_sent']} confirmed "
        f"{counts['ack_confirmed']}"
    )


def command_run(args: argparse.Namespace) -> int:
    from edge_bridge.service import BridgeService
    from edge_bridge.settings import BridgeSettings
    from envs.config import load_config

    overrides = {
        **_policy_overrides(args),
        "store": args.store,
        "mqtt": {
            "site": args.site,
            "host": args.host,
            "port": args.port,
            "username": args.username,
            "password_file": args.password_file,
            "ca_file": args.ca_file,
            "client_id": args.client_id,
        },
    }
    settings = load_config(BridgeSettings, args.config, overrides)
    service = BridgeService(settings)
    try:
        service.start(args.connect_timeout)
        print(
            f"bridge online: {settings.mqtt.host}:{settings.mqtt.port} site "
            f"{settings.mqtt.site}, store {settings.store}; Ctrl-C stops",
            flush=True,
        )
        shown = 0
        while True:
            decisions = service.decisions
            while shown < len(decisions):
                print(decision_line(decisions[shown], service.counts), flush=True)
                shown += 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 130
    finally:
        service.stop()


def command_local(args: argparse.Namespace) -> int:
    from edge_bridge.deployment import LocalDeployment, write_gate_config
    from edge_bridge.settings import BridgeSettings
    from envs.config import load_config

    folder = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bridge-local-"))
    folder.mkdir(parents=True, exist_ok=True)
    settings = load_config(BridgeSettings, None, _policy_overrides(args))
    if not args.require_approval:
        gate = folder / "gate.toml"
        write_gate_config(gate, settings.gate, require_approval=False)
        settings = load_config(BridgeSettings, None, {**_policy_overrides(args), "gate": str(gate)})
    intervals = max(1, round(args.hours * 3600.0 / 300.0))
    deployment = LocalDeployment(
        folder,
        settings,
        args.plant_config,
        keep_plant_drift=not args.no_plant_drift,
        drift=args.drift,
        realtime_factor=args.realtime_factor,
    )
    print(
        f"local deployment in {folder}: incumbent {settings.incumbent}, candidate "
        f"{settings.candidate or '(none)'}, {intervals} intervals of 5 min",
        flush=True,
    )
    shown = {"decisions": 0, "events": 0}

    def timeline(result: Any) -> None:
        bridge = deployment.bridge
        for event in bridge.audit.events()[shown["events"] :]:
            shown["events"] += 1
            if event.kind in ("promotion", "rollback", "approval_requested", "node_death"):
                at = "-" if event.time_s is None else f"{event.time_s / 3600.0:6.2f} h"
                print(f"  {at}  {event.kind}: {event.reason}", flush=True)
        decisions = bridge.decisions
        if decisions and (result.interval + 1) % 12 == 0:
            print(decision_line(decisions[-1], bridge.counts), flush=True)

    with deployment:
        deployment.run(intervals, progress=timeline)
        deployment.settle()
        bridge, counters = deployment.bridge, deployment.emulator.counters
        stage = bridge.loop.gate.stage_label
        print(
            f"done: stage {stage}; commands sent {bridge.counts['commands_sent']}, confirmed "
            f"{bridge.counts['ack_confirmed']}, applied {counters.applied}, duplicate acks "
            f"{counters.duplicate}, expired {counters.expired}; store {deployment.store_path} "
            "(python scripts/audit.py summary --db ...)",
            flush=True,
        )
    return 0


def status_text(db: Path, last: int) -> str:
    """The store's gate state(s), pending approvals and the last ``last`` decision intervals."""
    from edge_bridge.audit import AuditLog
    from edge_bridge.store import Store

    lines = []
    with Store(db, readonly=True) as store:
        states = store.select("SELECT rollout_id, wall_time, state FROM gate_state")
        if not states:
            lines.append("gate: no rollout state saved yet")
        for row in states:
            state = json.loads(row["state"])
            stage = state["stage"]
            if stage == "canary":
                stage = f"canary[{state['canary_step']}]"
            lines.append(
                f"rollout {row['rollout_id']}: stage {stage}, {state['intervals_in_stage']} "
                f"intervals in stage, last decision {state['last_decision_index']}"
            )
            if state.get("rollback_reason"):
                lines.append(f"  rolled back: {state['rollback_reason']}")
            pending = state.get("pending")
            lines.append(
                "  pending approval: none"
                if not pending
                else f"  pending approval: promotion to {pending['to_stage']} step "
                f"{pending['to_step']} (asked at decision {pending['decision_index']})"
            )
            for machine, reason in {**state["fallback"], **state["local"]}.items():
                lines.append(f"  override {machine}: {reason}")
        newest = store.select(
            "SELECT DISTINCT decision_index FROM audit ORDER BY 1 DESC LIMIT ?", (last,)
        )
        if not newest:
            lines.append("decisions: none yet")
            return "\n".join(lines)
        first = min(row["decision_index"] for row in newest)
        since = store.select(
            "SELECT MIN(time_s) AS t FROM audit WHERE decision_index >= ?", (first,)
        )[0]["t"]
        rows = [r for r in AuditLog(store).query(since=since) if r.decision_index >= first]
        lines.append(f"last {len(newest)} decision intervals:")
        for row in rows:
            trust = "-" if row.trust is None else f"{row.trust:.3f}"
            applied = "-" if row.applied is None else json.dumps(row.applied)
            lines.append(
                f"  {row.decision_index:5d} {row.machine:<13s} {row.stage:<11s} "
                f"{row.assignment:<9s} trust {trust}  applied {applied}  ack "
                f"{row.ack_status or '-'}  {row.reason}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "status":
            print(status_text(Path(args.db), args.last))
            return 0
        if args.command == "run":
            return command_run(args)
        return command_local(args)
    except KeyboardInterrupt:
        return 130
    except ERRORS as error:
        print(f"bridge: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
