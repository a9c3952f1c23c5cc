"""Federated PPO across factory twins with Flower: the common cases in one command.

    python scripts/federate.py certs --out runs/federation/credentials --node node-1 --node node-2
    python scripts/federate.py deploy-local --nodes node-1 node-2 node-3 node-4 --rounds 10
    python scripts/federate.py deploy-local --nodes node-1 node-2 --rounds 2 --local-steps 256 \\
        --set horizon-h=24 --out runs/federation/quick
    python scripts/federate.py simulate --nodes node-1 node-2 --rounds 2 --local-steps 256
    python scripts/federate.py export --out runs/federation/quick --to runs/policy.npz

``deploy-local`` starts a SuperLink and one SuperNode per node profile on this machine as
separate processes (TLS and SuperNode authentication on), submits the Flower App in this
repository (``[tool.flwr.app]`` in pyproject.toml) with ``flwr run``, shows each round's
per-node return and wall time as it lands in ``<out>/rounds.csv``, and stops every process at
the end (or on Ctrl-C; start it again with the same ``--out`` to resume after the last
checkpointed round). Across machines, start the same daemons by hand (README, "Federated
training"); ``certs`` writes the CA, the SuperLink certificate and the node keys for that.

``simulate`` runs the same app through Flower's simulation engine on this machine: the
SuperNodes are simulated by Ray actors (one CPU and one torch thread per ClientApp), node ``i``
gets profile ``--nodes[i]``; progress, outputs and resuming as for ``deploy-local``. It needs
ray: ``pip install -e ".[simulation]"``.

    python scripts/federate.py simulate --nodes node-1 node-2 node-3 node-4 --rounds 10 \\
        --local-steps 1024 --out runs/federation/sim

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
from federation.simulation import SIMULATION_INSTALL, ray_available  # noqa: E402

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


def _checked_run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The run configuration of ``args``, the node profiles loaded (a bad one fails here,
    naming file, key and range); ValueError / FileNotFoundError on bad input."""
    from federation.profiles import load_node_profile

    if len(set(args.nodes)) != len(args.nodes):
        raise ValueError(f"--nodes repeats a node: {' '.join(args.nodes)}")
    for name in args.nodes:
        load_node_profile(name)
    run_config = _run_config(args)
    held_out = str(run_config.get("held-out", RUN_CONFIG_DEFAULTS["held-out"]))
    if held_out and held_out in args.nodes:
        raise ValueError(
            f"{held_out!r} is the held-out node (never trains); leave it out of --nodes "
            "or pass --held-out ''"
        )
    return run_config


def cmd_deploy_local(args: argparse.Namespace) -> int:
    try:
        run_config = _checked_run_config(args)
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


def cmd_simulate(args: argparse.Namespace) -> int:
    from federation.simulation import SimulationUnavailable, simulate

    if args.num_cpus is not None and args.num_cpus < 1:
        print(f"error: --num-cpus must be >= 1, got {args.num_cpus}", file=sys.stderr)
        return BAD_INPUT
    try:  # the options first: a bad one is reported whether or not Ray is installed
        run_config = _checked_run_config(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    if not ray_available():
        print(
            "error: simulate needs Flower's simulation engine (ray), which is not installed: "
            f"{SIMULATION_INSTALL} — or run the same app in processes with deploy-local",
            file=sys.stderr,
        )
        return BAD_INPUT
    out = Path(args.out).resolve()
    rounds = int(run_config.get("num-rounds", RUN_CONFIG_DEFAULTS["num-rounds"]))
    progress = Progress(out, rounds)
    print(f"simulating {len(args.nodes)} SuperNodes with Flower's simulation engine (Ray) ...")
    try:
        summary = simulate(
            args.nodes, run_config, num_cpus=args.num_cpus, on_poll=lambda: progress(None)
        )
    except (SimulationUnavailable, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except RuntimeError as error:
        print(f"error: the simulation failed: {error}", file=sys.stderr)
        return 1
    progress(None)
    print(
        f"done in {summary['simulation_wall_s']:.0f} s ({summary['rounds']} rounds); "
        f"policy: {summary['policy']}"
    )
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


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options deploy-local and simulate share: nodes and run configuration."""
    parser.add_argument(
        "--nodes",
        nargs="+",
        default=["node-1", "node-2", "node-3", "node-4"],
        help="node profiles (configs/federation/ names or TOML paths), one SuperNode each",
    )
    parser.add_argument("--rounds", type=int, help="num-rounds")
    parser.add_argument("--strategy", help="fedavg, fedprox, fedavgm, fedadam, fedmedian, ...")
    parser.add_argument("--local-steps", type=int, help="PPO env steps per node per round")
    parser.add_argument("--min-nodes", type=int, help="minimum nodes per round")
    parser.add_argument("--held-out", help="held-out profile ('' for none)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any [tool.flwr.app.config] key (repeat)",
    )
    parser.add_argument("--out", default="runs/federation", help="output folder (resumes there)")


def build_parser() -> argparse.ArgumentParser:
    simulation_note = (
        "simulate: Flower's simulation engine (ray is installed)."
        if ray_available()
        else f"simulate: needs ray, not installed here ({SIMULATION_INSTALL}); deploy-local "
        "runs the same app in real processes."
    )
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=simulation_note,
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
    _add_run_options(deploy)
    deploy.add_argument("--timeout", type=float, default=24 * 3600.0, help="s for the whole run")
    deploy.add_argument(
        "--insecure",
        action="store_true",
        help="no TLS (to measure its cost); node authentication stays on",
    )
    deploy.set_defaults(run=cmd_deploy_local)

    simulation = sub.add_parser(
        "simulate",
        help="the same app on Flower's simulation engine (Ray), one simulated SuperNode per "
        "profile" + ("" if ray_available() else f" — needs {SIMULATION_INSTALL}"),
    )
    _add_run_options(simulation)
    simulation.add_argument(
        "--num-cpus",
        type=int,
        help="CPUs Ray may use (default all); each ClientApp takes one, so this many train "
        "at a time",
    )
    simulation.set_defaults(run=cmd_simulate)

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
