"""Put the emulated plant (envs.plant.Plant) on an MQTT broker as an equipment gateway.

    python scripts/emulate_plant.py --port 1883 --username gw-line1 --password-file gw.pass \\
        --site plant-a --node gw-1 --intervals 288 --drift 2:machining-2:wear_rate_factor:multiply:2

Lock-step (default, faster than real time): after each 5-minute decision interval it waits up to
--command-timeout s for the bridge's commands of that interval. --realtime-factor F runs on a wall
clock instead (F = 60: one plant hour per wall minute). One progress line per interval; exit 0
when done, 2 on bad options, a config error or a refused connection. See edge_bridge/equipment.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from edge_bridge.equipment import (  # noqa: E402
    DropFault,
    EmulatorConfig,
    OfflineFault,
    PlantEmulator,
    StepResult,
)
from edge_bridge.mqtt import ConnectionSettings, TlsSettings  # noqa: E402
from envs.config import ConfigError, from_mapping  # noqa: E402
from envs.plant import DRIFT_TARGETS, DriftEvent, Plant, load_plant_config  # noqa: E402

DEFAULT_PLANT = ROOT / "configs" / "plant_example.toml"


def _fields(text: str, count: int, form: str) -> list[str]:
    parts = text.split(":")
    if len(parts) != count:
        raise argparse.ArgumentTypeError(f"{text!r} is not {form}")
    return parts


def _whole(text: str, what: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{what} {value} must be >= {low}")
    return value


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None


def parse_drop(text: str) -> DropFault:
    """``MACHINE:FROM:COUNT`` → DropFault."""
    machine, start, count = _fields(text, 3, "MACHINE:FROM:COUNT (e.g. machining-2:10:3)")
    return DropFault(machine, _whole(start, "FROM", 0), _whole(count, "COUNT", 1))


def parse_offline(text: str) -> OfflineFault:
    """``FROM:COUNT`` → OfflineFault."""
    start, count = _fields(text, 2, "FROM:COUNT (e.g. 20:2)")
    return OfflineFault(_whole(start, "FROM", 0), _whole(count, "COUNT", 1))


def parse_drift(text: str) -> DriftEvent:
    """``HOUR:MACHINE:TARGET:OP:VALUE`` → DriftEvent (MACHINE empty = every machine)."""
    form = "HOUR:MACHINE:TARGET:OP:VALUE (e.g. 2:machining-2:wear_rate_factor:multiply:2)"
    hour, machine, target, operation, value = _fields(text, 5, form)
    fields = {
        "time_h": _number(hour, "HOUR"),
        "machine": machine,
        "target": target,
        "operation": operation,
        "value": _number(value, "VALUE"),
    }
    try:  # the plant config's own checks (ranges, choices); the machine is checked later
        return from_mapping(DriftEvent, fields, source=f"--drift {text}")
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    broker = parser.add_argument_group("broker")
    broker.add_argument("--host", default="127.0.0.1", help="broker host")
    broker.add_argument("--port", type=int, default=1883, help="broker port (8883 for TLS)")
    broker.add_argument("--username", help="the gateway's broker user (role equipment)")
    secret = broker.add_mutually_exclusive_group()
    secret.add_argument("--password", help="its password (prefer --password-file)")
    secret.add_argument("--password-file", type=Path, help="file whose first line is the password")
    broker.add_argument("--tls-ca", type=Path, help="CA certificate of the broker: enables TLS")
    broker.add_argument("--client-id", help="MQTT client id (stable per gateway); default NODE")
    broker.add_argument(
        "--session-expiry",
        type=int,
        default=3600,
        help="s the broker keeps the session (queued commands) while the gateway is away",
    )
    plant = parser.add_argument_group("plant")
    plant.add_argument("--site", default="plant-a", help="site name in the topics")
    plant.add_argument("--node", default="gw-1", help="the gateway's node name")
    plant.add_argument(
        "--plant-config", type=Path, default=DEFAULT_PLANT, help="plant config TOML (envs.plant)"
    )
    plant.add_argument(
        "--intervals", type=int, default=288, help="decision intervals of 5 min to run (288 = 24 h)"
    )
    timing = parser.add_mutually_exclusive_group()
    timing.add_argument(
        "--lockstep",
        action="store_true",
        default=argparse.SUPPRESS,
        help="(default) after each interval wait for its commands, then go on",
    )
    timing.add_argument(
        "--realtime-factor",
        type=float,
        help="free-running: plant seconds per wall second (60 = one plant hour per minute)",
    )
    plant.add_argument(
        "--command-timeout",
        type=float,
        default=10.0,
        help="lock-step: wall s to wait for every machine's command before keeping setpoints",
    )
    faults = parser.add_argument_group("faults on demand (repeatable)")
    faults.add_argument(
        "--drop",
        type=parse_drop,
        action="append",
        default=[],
        metavar="MACHINE:FROM:COUNT",
        help="no telemetry from MACHINE for COUNT intervals from interval FROM (0-based)",
    )
    faults.add_argument(
        "--ack-delay", type=float, default=0.0, metavar="S", help="hold every ack back S wall s"
    )
    faults.add_argument(
        "--offline",
        type=parse_offline,
        action="append",
        default=[],
        metavar="FROM:COUNT",
        help="drop the connection at interval FROM (the broker sends the death), reconnect "
        "after COUNT intervals with a new birth",
    )
    faults.add_argument(
        "--buffer-offline",
        action="store_true",
        help="send the samples taken while offline after the reconnect instead of losing them",
    )
    faults.add_argument(
        "--drift",
        type=parse_drift,
        action="append",
        default=[],
        metavar="HOUR:MACHINE:TARGET:OP:VALUE",
        help=f"at HOUR h change TARGET ({'|'.join(DRIFT_TARGETS)}) of MACHINE (empty = all) "
        "by OP (multiply|add|set) VALUE",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file is None:
        return args.password
    try:
        lines = args.password_file.read_text().splitlines()
    except OSError as error:
        raise ValueError(f"cannot read --password-file {args.password_file}: {error}") from None
    if not lines or not lines[0].strip():
        raise ValueError(
            f"--password-file {args.password_file} is empty; put the password on line 1"
        )
    return lines[0].strip()


def progress_line(result: StepResult) -> str:
    """One line per interval: index, plant time, commands applied/missing, what was sent."""
    seconds = round(result.time_s)
    clock = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    state = "online" if result.online else "OFFLINE"
    return (
        f"interval {result.interval:4d}  plant {clock}  applied {result.applied:3d}  "
        f"missing {len(result.missing):2d}  telemetry {len(result.telemetry):4d}  {state}  "
        f"step {result.wall_s * 1000:7.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.intervals < 1:
        parser.error("--intervals must be >= 1")
    if args.realtime_factor is not None and not args.realtime_factor > 0:
        parser.error("--realtime-factor must be > 0 (plant seconds per wall second)")
    try:
        settings = ConnectionSettings(
            host=args.host,
            port=args.port,
            client_id=args.client_id or args.node,
            username=args.username,
            password=_password(args),
            tls=None if args.tls_ca is None else TlsSettings(ca_file=args.tls_ca),
            session_expiry_s=args.session_expiry,
        )
        if args.tls_ca is not None and not args.tls_ca.is_file():
            raise ValueError(f"--tls-ca {args.tls_ca} is not a file")
        config = EmulatorConfig(
            site=args.site,
            node=args.node,
            lockstep=args.realtime_factor is None,
            command_timeout_s=args.command_timeout,
            ack_delay_s=args.ack_delay,
            buffer_offline=args.buffer_offline,
            drops=tuple(args.drop),
            offline=tuple(args.offline),
        )
        plant = Plant(load_plant_config(args.plant_config))
    except (ConfigError, ValueError) as error:
        print(f"emulate_plant: error: {error}", file=sys.stderr)
        return 2
    try:
        for event in args.drift:  # checked before anything is connected
            if event.machine and event.machine not in plant.machine_names:
                raise ValueError(
                    f"--drift machine {event.machine!r} is not on this line; the machines are "
                    f"{', '.join(plant.machine_names)} (or leave it empty for every machine)"
                )
        emulator = PlantEmulator(plant, settings, config)
        with emulator:
            emulator.reset()
            for event in args.drift:
                emulator.inject_drift(event)
            report = None if args.quiet else lambda r: print(progress_line(r), flush=True)
            emulator.run(args.intervals, realtime_factor=args.realtime_factor, progress=report)
            counters = emulator.counters
            print(
                f"done: {args.intervals} intervals; commands applied {counters.applied}, "
                f"duplicate {counters.duplicate}, expired {counters.expired}, rejected "
                f"{counters.rejected}, missing {counters.missing}; samples lost "
                f"{emulator.lost_samples}; births {emulator.births}",
                flush=True,
            )
    except (ConfigError, ValueError, ConnectionRefusedError, TimeoutError, OSError) as error:
        print(f"emulate_plant: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        plant.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
