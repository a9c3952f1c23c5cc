"""The rollout's results on the emulated plant, through a real Mosquitto broker end to end.

(a) Drift runs, per plant seed (``--seeds``, the plant config's ``seed``) and scenario: the plant
of ``--plant-config`` without its own drift events, healthy for ``--drift-h`` hours, then one
injected drift (``wear``: wear rate x2 on ``--drift-machine``, default the first canary cohort's
machine; ``ambient``: ambient +6 K on every machine), ``--hours`` in all, lock-step (faster than
real time). The bridge rolls ``--candidate`` out against ``--incumbent`` with a gate config
generated into the run folder from ``--gate`` (``require_approval = false``; its
``rollback_kpi_tolerance`` kept unless overridden). Counted: rollbacks before the drift (false
rollbacks, goal 0; by cause: trust/drift/stale or KPI) and decision intervals from the drift to the
rollback (1 = the interval the drift starts in; goal <= 3), the stage at the drift and whether
the drifted machine was on the candidate. One PNG per run: stage over time, trust per machine,
paired Z (candidate vs incumbent) per interval.

(b) Faults, each in its own ``--fault-hours`` run on the first seed: a broker restart
(``Broker.restart``) at interval ``--restart-at``; the gateway offline (``go_offline``) for
``--offline-intervals`` from ``--offline-at``. Counted: commands issued (ledger) and sends,
applied (emulator), applied twice (goal 0), ``duplicate`` acks, expired by design, lost (issued,
never applied, not expired: goal 0), and what the gate did with the offline node's machines.

Tables on stdout; ``report.json`` and the PNGs in ``--out``.

    python scripts/rollout_report.py                          # 30 h x 3 seeds x 2 drifts + faults
    python scripts/rollout_report.py --hours 2 --drift-h 1 --seeds 11 --scenarios wear --no-faults

Exit 0 when done, 2 on bad options or a config error (the message says which).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from edge_bridge.rollout import (  # noqa: E402
    SCENARIOS,
    RolloutOptions,
    check_options,
    load_inputs,
    run_report,
)
from envs.config import ConfigError  # noqa: E402


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
    parser.add_argument("--hours", type=float, default=30.0, help="plant hours per drift run")
    parser.add_argument(
        "--drift-h",
        type=float,
        default=26.0,
        help="plant hour of the drift (26: 08:00 on day 2, mills cutting — at night an idle "
        "mill's wear does not move, so a wear-rate drift cannot show)",
    )
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
        default=None,
        help="override the gate config's rollback_kpi_tolerance (default: keep it)",
    )
    parser.add_argument("--no-faults", action="store_true", help="skip (b)")
    parser.add_argument("--fault-hours", type=float, default=10.0, help="plant hours per fault run")
    parser.add_argument(
        "--restart-at", type=int, default=78, help="interval of the broker restart (6.5 h: canary)"
    )
    parser.add_argument(
        "--offline-at", type=int, default=90, help="interval the gateway drops (7.5 h: canary)"
    )
    parser.add_argument("--offline-intervals", type=int, default=3, help="intervals offline")
    parser.add_argument(
        "--out", type=Path, default=REPO / "runs" / "rollout_report", help="output folder"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_options(
            hours=args.hours,
            drift_h=args.drift_h,
            fault_hours=args.fault_hours,
            faults=not args.no_faults,
            restart_at=args.restart_at,
            offline_at=args.offline_at,
            offline_intervals=args.offline_intervals,
        )
    except ValueError as error:
        parser.error(str(error))
    try:
        plant, gate, drift_machine = load_inputs(args.plant_config, args.gate, args.drift_machine)
    except (ConfigError, ValueError, OSError) as error:
        print(f"rollout_report: error: {error}", file=sys.stderr)
        return 2
    options = RolloutOptions(
        plant=plant,
        gate=args.gate,
        drift_machine=drift_machine,
        out=args.out,
        seeds=tuple(args.seeds),
        hours=args.hours,
        drift_h=args.drift_h,
        scenarios=tuple(args.scenarios),
        incumbent=args.incumbent,
        candidate=args.candidate,
        rollback_kpi_tolerance=args.rollback_kpi_tolerance,
        faults=not args.no_faults,
        fault_hours=args.fault_hours,
        restart_at=args.restart_at,
        offline_at=args.offline_at,
        offline_intervals=args.offline_intervals,
        quiet=args.quiet,
    )
    command = " ".join(["python scripts/rollout_report.py", *(argv or sys.argv[1:])])
    try:
        run_report(options, gate, command)
    except (ConfigError, ValueError) as error:
        print(f"rollout_report: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
