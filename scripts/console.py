"""The operator console in the browser (edge_bridge.console).

    python scripts/console.py adduser --users configs/console/users.toml alice --role operator
    python scripts/console.py serve --config configs/console/console.toml
    python scripts/console.py serve --config console.toml --host 0.0.0.0 \\
        --ssl-keyfile key.pem --ssl-certfile cert.pem
    python scripts/console.py demo            # broker + bridge + emulated plant + console

``adduser``: add or replace a user (role operator or viewer) in a users TOML file, storing only
a scrypt hash; the password is read from the terminal (or one line on stdin with
``--password-stdin``). ``serve``: the console against a running bridge (the config's site,
store, broker); binds 127.0.0.1 unless ``--host`` says otherwise — on a plant network give it
TLS (``--ssl-keyfile``/``--ssl-certfile``, uvicorn's). ``demo``: a first look on this machine —
a LocalDeployment (Mosquitto, the bridge, the plant emulator free-running at
``--realtime-factor`` plant seconds per wall second) with a candidate behind an approval gate
and a wear drift on the canary machine at ``--drift-at-h`` plant hours, and the console on
http://127.0.0.1:PORT with two fresh users whose passwords are printed. Exit 0 when done (130
on Ctrl-C), 2 on bad options or a config that cannot be used.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, TimeoutError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser("adduser", help="add a user (hash only) to a users file")
    add.add_argument("name", help="user name (letters, digits, _ - .)")
    add.add_argument("--users", required=True, help="users TOML file (created if missing)")
    add.add_argument("--role", required=True, choices=("operator", "viewer"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    serve = commands.add_parser("serve", help="the console against a running bridge")
    serve.add_argument("--config", help="console TOML (edge_bridge.console.config keys)")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--users", help="users file")
    serve.add_argument("--store", help="the bridge's SQLite store")
    serve.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    serve.add_argument("--ssl-certfile", help="TLS certificate (PEM)")

    demo = commands.add_parser("demo", help="broker + bridge + emulator + console, for a look")
    demo.add_argument("--folder", default="runs/console_demo", help="working folder")
    demo.add_argument("--port", type=int, default=8080, help="console port")
    demo.add_argument("--realtime-factor", type=float, default=60.0, help="plant s per wall s")
    demo.add_argument("--drift-at-h", type=float, default=3.0, help="drift time, plant hours")
    demo.add_argument("--drift-machine", default="machining-1", help="the drifting machine")
    demo.add_argument("--hours", type=float, help="stop after this many plant hours")
    return parser


def start_demo(
    folder: str | Path,
    *,
    port: int = 8080,
    realtime_factor: float | None = 60.0,
    drift_at_h: float = 3.0,
    drift_machine: str = "machining-1",
    users: dict[str, Any] | None = None,
) -> tuple[Any, Any, dict[str, str]]:
    """Start the demo's deployment and console (module docstring); returns (deployment,
    console server, {user: password}). ``realtime_factor`` None: lock-step."""
    from edge_bridge.console.auth import add_user, load_users
    from edge_bridge.console.server import ConsoleServer, deployment_console_settings
    from edge_bridge.deployment import LocalDeployment, write_gate_config
    from edge_bridge.settings import BridgeSettings
    from envs.plant import DriftEvent

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gate = folder / "gate.toml"
    write_gate_config(
        gate,
        require_approval=True,
        min_intervals=3,
        kpi_min_intervals=3,
        kpi_tolerance=0.1,
        rollback_kpi_tolerance=0.3,
    )
    drift = DriftEvent(
        time_h=drift_at_h, target="wear_rate_factor", machine=drift_machine, value=4.0
    )
    settings = BridgeSettings(gate=str(gate), candidate="fixed_interval")
    deployment = LocalDeployment(
        folder / "local",
        settings,
        keep_plant_drift=False,
        drift=[drift],
        realtime_factor=realtime_factor,
    )
    deployment.start()
    passwords: dict[str, str] = {}
    try:
        console_settings = deployment_console_settings(deployment, folder / "console", port=port)
        if users is None:
            for name, role in (("operator", "operator"), ("viewer", "viewer")):
                passwords[name] = secrets.token_urlsafe(9)
                add_user(console_settings.users, name, role, passwords[name])
            users = load_users(console_settings.users)
        server = ConsoleServer(console_settings, users=users).start()
    except BaseException:
        deployment.stop()
        raise
    return deployment, server, passwords


def _adduser(args: argparse.Namespace) -> str:
    from edge_bridge.console.auth import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ; nothing written")
    user = add_user(args.users, args.name, args.role, password)
    return f"{user.name} ({user.role}) written to {args.users} (scrypt hash only)"


def _serve(args: argparse.Namespace) -> str:
    from edge_bridge.console.config import ConsoleSettings
    from edge_bridge.console.server import ConsoleServer
    from envs.config import load_config

    overrides = {"host": args.host, "port": args.port, "users": args.users, "store": args.store}
    settings = load_config(ConsoleSettings, args.config, overrides)
    server = ConsoleServer(settings, ssl_keyfile=args.ssl_keyfile, ssl_certfile=args.ssl_certfile)
    print(f"console on {server.url} (site {settings.site}, store {settings.store})", flush=True)
    server.serve_forever()
    return "console stopped"


def _demo(args: argparse.Namespace) -> str:
    if not args.realtime_factor > 0:
        raise ValueError("--realtime-factor must be > 0")
    deployment, server, passwords = start_demo(
        args.folder,
        port=args.port,
        realtime_factor=args.realtime_factor,
        drift_at_h=args.drift_at_h,
        drift_machine=args.drift_machine,
    )
    try:
        intervals = None if args.hours is None else max(1, round(args.hours * 12))
        deployment.run_emulator(intervals)
        print(f"console: {server.url}  (plant runs {args.realtime_factor:g}x real time)")
        for name, password in passwords.items():
            print(f"  user {name!r} password {password!r}")
        print(f"drift on {args.drift_machine} at {args.drift_at_h} h; Ctrl-C stops", flush=True)
        while deployment.running:
            time.sleep(0.5)
        deployment.wait()
    finally:
        server.stop()
        deployment.stop()
    return "demo finished"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"adduser": _adduser, "serve": _serve, "demo": _demo}
    try:
        print(handlers[args.command](args))
    except KeyboardInterrupt:
        return 130
    except ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
