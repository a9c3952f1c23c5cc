"""Federated PPO across factory twins with Flower: the common cases in one command.

    python scripts/federate.py certs --out runs/federation/credentials --node node-1 --node node-2
    python scripts/federate.py deploy-local --nodes node-1 node-2 node-3 node-4 --rounds 10
    python scripts/federate.py deploy-local --nodes node-1 node-2 --rounds 2 --local-steps 256 \\
        --set horizon-h=24 --out runs/federation/quick
    python scripts/federate.py export --out runs/federation/quick --to runs/policy.npz

``deploy-local`` starts a SuperLink and one SuperNode per node profile on this machine as
separate processes (TLS and SuperNode authentication on), submits the Flower App in this
repository (``[tool.flwr.app]`` in pyproject.toml) with ``flwr run``, shows each round's
per-node return and wall time as it lands in ``<out>/rounds.csv``, and stops every process at
the end (or on Ctrl-C; start it again with the same ``--out`` to resume after the last
checkpointed round). Across machines, start the same daemons by hand (README, "Federated
training"); ``certs`` writes the CA, the SuperLink certificate and the node keys for that.

``simulate`` (Flower's simulation engine) is not offered: it needs ``ray``, which is not a
dependency of twinfactory (``pip install "flwr[simulation]"`` adds it; then ``flwr run .`` with
a local simulation connection works with this app unchanged). ``deploy-local`` runs the same
app without ray, in real processes.

Exit status: 0 done; 2 bad command line, profile or run configuration; 1 the run failed.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from federation.app_config import RUN_CONFIG_DEFAULTS, AppConfig, RunConfigError  # noqa: E402
from federation.certificates import DEFAULT_HOSTS, generate_credentials  # noqa: E402
from federation.deployment import DeploymentError, LocalDeployment, NodeSpec  # noqa: E402

BAD_INPUT = 2


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _run_config(args: argparse.Namespace) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or key not in RUN_CONFIG_DEFAULTS:
            raise RunConfigError(
                f"--set {item!r}: expected KEY=VALUE with KEY one of "
                f"{', '.join(RUN_CONFIG_DEFAULTS)}"
            )
        config[key] = _parse_value(value)
    given = {
        "num-rounds": args.rounds,
        "strategy": args.strategy,
        "local-steps": args.local_steps,
        "min-nodes": args.min_nodes,
        "held-out": args.held_out,
    }
    config.update({k: v for k, v in given.items() if v is not None})
    config["out-dir"] = str(Path(args.out).resolve())
    AppConfig.from_run_config(config).local_config()  # fail here, not in the ServerApp
    return config


class Progress:
    """Prints each completed round (per-node return, wall time) from rounds.csv."""

    def __init__(self, out: Path, rounds: int) -> None:
        self.out = out
        self.rounds = rounds
        self.shown = 0
        self.started = time.monotonic()
        try:
            from rich.console import Console

            self.console: Any = Console()
        except ImportError:  # rich is a dependency; plain print otherwise
            self.console = None

    def _print(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, highlight=False)
        else:
            print(text, flush=True)

    def __call__(self, status: Any) -> None:
        path = self.out / "rounds.csv"
        if not path.is_file():
            return
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        last = max((int(r["round"]) for r in rows), default=0)
        for server_round in range(self.shown + 1, last + 1):
            cells = [
                f"{r['node']} {float(r['return']):8.3f}"
                + (" (rejected)" if r.get("rejected") == "1" else "")
                for r in rows
                if int(r["round"]) == server_round and r.get("return")
            ]
            round_s = next(
                (float(r["round_s"]) for r in rows if int(r["round"]) == server_round), 0.0
            )
            self._print(
                f"round {server_round:3d}/{self.rounds} | {' | '.join(cells)} | "
                f"{round_s:6.1f} s (total {time.monotonic() - self.started:6.1f} s)"
            )
        self.shown = max(self.shown, last)


def cmd_certs(args: argparse.Namespace) -> int:
    made = generate_credentials(args.out, args.node or [], hosts=args.host or DEFAULT_HOSTS)
    print(f"CA certificate     {made.ca_certificate}  (give it to every SuperNode and flwr CLI)")
    print(f"SuperLink cert/key {made.server_certificate}, {made.server_key}")
    for keys in made.nodes.values():
        print(f"{keys.name:18} {keys.private_key} (SuperNode), {keys.public_key} (register)")
    return 0


def cmd_deploy_local(args: argparse.Namespace) -> int:
    from federation.profiles import load_node_profile

    try:
        for name in args.nodes:
            load_node_profile(name)  # a bad profile fails here, naming file, key and range
        run_config = _run_config(args)
        held_out = str(run_config.get("held-out", RUN_CONFIG_DEFAULTS["held-out"]))
        if held_out and held_out in args.nodes:
            raise ValueError(
                f"{held_out!r} is the held-out node (never trains); leave it out of --nodes "
                "or pass --held-out ''"
            )
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    out = Path(args.out).resolve()
    rounds = int(run_config.get("num-rounds", RUN_CONFIG_DEFAULTS["num-rounds"]))
    nodes = [NodeSpec(name, {"profile": name}) for name in args.nodes]
    progress = Progress(out, rounds)
    print(f"starting a SuperLink and {len(nodes)} SuperNodes (TLS, node authentication) ...")
    try:
        with LocalDeployment(out / "deployment", nodes, tls=not args.insecure) as deployment:
            print(f"SuperLink at {deployment.address}; logs in {deployment.logs}")
            run_id = deployment.submit(run_config)
            print(f"run {run_id} submitted; outputs in {out}")
            status = deployment.wait(run_id, timeout_s=args.timeout, on_poll=progress)
            progress(status)
            if not status.completed:
                print(deployment.run_log(run_id)[-4000:], file=sys.stderr)
                print(f"run {run_id} ended {status.status}", file=sys.stderr)
                return 1
    except DeploymentError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"done in {time.monotonic() - progress.started:.0f} s; policy: {out / 'policy.npz'}")
    return 0


def cmd_profiles(args: argparse.Namespace) -> int:
    """How different the nodes are: the heuristics' KPIs on each node's twin."""
    from envs.config import ConfigError
    from envs.seeding import held_out_seeds
    from federation.profiles import heuristic_table, load_node_profile

    try:
        profiles = [load_node_profile(name) for name in args.nodes]
        seeds = held_out_seeds(args.seeds)
    except (ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    print(heuristic_table(profiles, seeds, args.horizon_h))
    print(
        f"\n{len(profiles)} nodes, held-out seeds {seeds[0]}..{seeds[-1]}, {args.horizon_h:g} h "
        f"each, {time.perf_counter() - started:.0f} s"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from federation.records import load_checkpoint
    from federation.task import export_policy

    out = Path(args.out)
    try:
        checkpoint = load_checkpoint(out)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    if checkpoint is None:
        print(f"error: no checkpoint.npz in {out}", file=sys.stderr)
        return BAD_INPUT
    try:
        config = AppConfig.from_run_config(
            {key: _parse_value(v) for key, v in (s.partition("=")[::2] for s in args.set or [])}
        )
        local = config.local_config()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    target = Path(args.to) if args.to else out / "policy.npz"
    export_policy(checkpoint.weights, checkpoint.norm, local, target)
    print(f"round {checkpoint.server_round} global policy exported to {target}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0]
        + " (simulate needs ray, not installed: use deploy-local)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="simulate: not available — Flower's simulation engine needs ray "
        "(pip install 'flwr[simulation]'); deploy-local runs the same app in real processes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    certs = sub.add_parser("certs", help="write a test CA, SuperLink certificate, node keys")
    certs.add_argument("--out", required=True, help="folder for the files")
    certs.add_argument("--node", action="append", help="a node name (repeat); one key pair each")
    certs.add_argument(
        "--host",
        action="append",
        help="a name or address the SuperLink certificate is valid for (repeat; default "
        f"{', '.join(DEFAULT_HOSTS)}); add the SuperLink host's for several machines",
    )
    certs.set_defaults(run=cmd_certs)

    deploy = sub.add_parser(
        "deploy-local", help="SuperLink + one SuperNode per profile here, then run the app"
    )
    deploy.add_argument(
        "--nodes",
        nargs="+",
        default=["node-1", "node-2", "node-3", "node-4"],
        help="node profiles (configs/federation/ names or TOML paths)",
    )
    deploy.add_argument("--rounds", type=int, help="num-rounds")
    deploy.add_argument("--strategy", help="fedavg, fedprox, fedavgm, fedadam, fedmedian, ...")
    deploy.add_argument("--local-steps", type=int, help="PPO env steps per node per round")
    deploy.add_argument("--min-nodes", type=int, help="minimum nodes per round")
    deploy.add_argument("--held-out", help="held-out profile ('' for none)")
    deploy.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any [tool.flwr.app.config] key (repeat)",
    )
    deploy.add_argument("--out", default="runs/federation", help="output folder (resumes there)")
    deploy.add_argument("--timeout", type=float, default=24 * 3600.0, help="s for the whole run")
    deploy.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS (to measure its cost); node authentication stays on",
    )
    deploy.set_defaults(run=cmd_deploy_local)

    profiles = sub.add_parser(
        "profiles", help="the heuristics' KPIs on each node's twin (how non-IID the nodes are)"
    )
    profiles.add_argument(
        "--nodes",
        nargs="+",
        default=["node-1", "node-2", "node-3", "node-4", "held-out"],
        help="node profiles (configs/federation/ names or TOML paths)",
    )
    profiles.add_argument("--seeds", type=int, default=3, help="held-out seeds from 1000")
    profiles.add_argument("--horizon-h", type=float, default=168.0, help="hours per episode")
    profiles.set_defaults(run=cmd_profiles)

    export = sub.add_parser("export", help="export the checkpointed global policy")
    export.add_argument("--out", default="runs/federation", help="the federation's folder")
    export.add_argument("--to", help="policy file (default <out>/policy.npz)")
    export.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="run configuration the federation used, if not the defaults",
    )
    export.set_defaults(run=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
