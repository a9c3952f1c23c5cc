"""Read the edge bridge's audit log (the SQLite store the bridge writes; opened read-only).

    python scripts/audit.py show --db runs/bridge/bridge.sqlite --machine machining-2 --limit 20
    python scripts/audit.py show --stage canary --reason fallback --since 3600 --until 7200
    python scripts/audit.py export --csv runs/bridge/audit.csv      # '-' writes to stdout
    python scripts/audit.py events --kind rollback
    python scripts/audit.py summary                                  # counts per stage/reason/ack

Exit codes: 0 done, 2 bad options or a store that cannot be read (the message says why).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEFAULT_DB = "runs/bridge/bridge.sqlite"
STAGES = ("shadow", "canary", "full", "rolled_back")
SHOW_COLUMNS = (
    "time_s",
    "decision_index",
    "machine",
    "stage",
    "assignment",
    "applied",
    "trust",
    "reason",
    "ack_status",
)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def _positive(text: str) -> int:
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
        formatter_class=argparse.RawTextHelpFormatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        help=f"the bridge's store file (SQLite, WAL); default {DEFAULT_DB}",
    )
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--machine", help="only this machine, e.g. machining-2")
    filters.add_argument("--stage", choices=STAGES, help="only decisions taken in this gate stage")
    filters.add_argument(
        "--reason", help="only rows whose reason contains this text (case-insensitive)"
    )
    filters.add_argument(
        "--since", type=_seconds, help="plant time from (s since the plant's start, inclusive)"
    )
    filters.add_argument(
        "--until", type=_seconds, help="plant time up to (s since the plant's start, inclusive)"
    )
    filters.add_argument("--limit", type=_positive, help="at most this many rows (the first)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "show",
        parents=[common, filters],
        help="decision rows as a table",
        description="Decision rows (one per machine per decision interval) as a table.",
    )
    export = commands.add_parser(
        "export",
        parents=[common, filters],
        help="decision rows as CSV (every column)",
        description="Decision rows as CSV with every column (JSON columns as JSON text).",
    )
    export.add_argument("--csv", required=True, help="CSV file to write, or '-' for stdout")
    events = commands.add_parser(
        "events",
        parents=[common],
        help="gate events, operator actions, rejected messages",
        description="Gate events, operator actions and rejected messages, in order.",
    )
    events.add_argument("--kind", help="only this kind, e.g. promotion, rollback, operator")
    events.add_argument("--machine", help="only events about this machine")
    events.add_argument("--since", type=_seconds, help="plant time from (s, inclusive)")
    events.add_argument("--until", type=_seconds, help="plant time up to (s, inclusive)")
    events.add_argument("--limit", type=_positive, help="at most this many events (the first)")
    commands.add_parser(
        "summary",
        parents=[common],
        help="counts per stage, assignment, reason, ack status",
        description="Row counts per stage, assignment, reason and ack status; event counts.",
    )
    return parser


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> str:
    """Do the command; returns what to print."""
    from edge_bridge.audit import AuditLog, rows_to_csv
    from edge_bridge.store import Store

    with Store(args.db, readonly=True) as store:
        log = AuditLog(store)
        if args.command == "summary":
            parts = []
            for name, counts in log.summary().items():
                rows = [[key, str(count)] for key, count in counts.items()]
                parts.append(_table([name, "count"], rows) if rows else f"{name}: none")
            return "\n\n".join(parts)
        if args.command == "events":
            found = log.events(
                kind=args.kind,
                machine=args.machine,
                since=args.since,
                until=args.until,
                limit=args.limit,
            )
            if not found:
                return "no events match"
            header = ["time_s", "decision_index", "kind", "machine", "operator", "reason"]
            return _table(header, [[_cell(getattr(e, h)) for h in header] for e in found])
        rows = log.query(
            machine=args.machine,
            stage=args.stage,
            reason=args.reason,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
        if args.command == "export":
            text = rows_to_csv(rows)
            if args.csv == "-":
                return text.rstrip("\n")
            from envs.atomic import write_atomic

            write_atomic(args.csv, text)
            return f"wrote {len(rows)} rows to {args.csv}"
        if not rows:
            return "no rows match"
        return _table(
            list(SHOW_COLUMNS), [[_cell(getattr(r, c)) for c in SHOW_COLUMNS] for r in rows]
        )


def main(argv: list[str] | None = None) -> int:
    from edge_bridge.store import StoreError

    args = build_parser().parse_args(argv)  # bad options: argparse exits with 2
    try:
        print(run(args))
    except (StoreError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
