"""A Flower deployment on this machine: one SuperLink and N SuperNodes as separate processes,
with TLS and SuperNode authentication on, and runs submitted through the ``flwr`` CLI.

Used by the tests and ``scripts/federate.py deploy-local``. It starts exactly what a user
starts by hand on several hosts (README, "Federation across machines"):

    flower-superlink --ssl-ca-certfile ca.crt --ssl-certfile server.pem \\
        --ssl-keyfile server.key --enable-supernode-auth --port 8000
    flwr supernode register node-1.pub <connection>     # once per node, on the SuperLink
    flower-supernode --superlink <host>:8000 --root-certificates ca.crt \\
        --auth-supernode-private-key node-1.key --node-config 'profile="node-1"' --port 9094
    flwr run . <connection> --run-config run.toml

Since flwr 1.40 the SuperLink serves the Fleet, Control and Runtime APIs on one HTTP port;
each SuperNode serves its own Runtime API (for the ClientApp processes it starts) on another.
Both daemons start ``flower-superexec`` from ``PATH``, so this interpreter's ``bin`` folder is
put first on it. The ``flwr`` CLI reads SuperLink connections from ``$FLWR_HOME/config.toml``;
each deployment has its own ``FLWR_HOME`` inside its folder.

Split: :mod:`federation.daemons` starts and stops the processes, :mod:`federation.flwr_cli`
talks to the SuperLink through the ``flwr`` CLI; this module puts them together.

Every host needs twinfactory installed (``pip install -e .``): the Flower App Bundle carries the
app's configuration, the code comes from the installed package (see ``[tool.flwr.app]``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from federation.certificates import Credentials, generate_credentials
from federation.daemons import Daemon, daemon_environment, executable, free_port, wait_for_port
from federation.flwr_cli import (
    APP_DIR,
    CONNECTION,
    ConfigValue,
    DeploymentError,
    FlwrCli,
    RunStatus,
    write_connection,
)

__all__ = [
    "APP_DIR",
    "CONNECTION",
    "DeploymentError",
    "LocalDeployment",
    "NodeSpec",
    "RunStatus",
    "free_port",
    "local_deployment",
    "node_config_argument",
]


@dataclass(frozen=True)
class NodeSpec:
    """One SuperNode: its name (also the name of its key pair) and its ``--node-config``.
    ``register=False`` leaves its public key unregistered, so an authenticating SuperLink must
    refuse it (to test that it does)."""

    name: str
    node_config: Mapping[str, ConfigValue] = field(default_factory=dict)
    register: bool = True


def _toml_value(value: ConfigValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a TOML basic string for what we pass (no control chars)


def node_config_argument(node_config: Mapping[str, ConfigValue]) -> str:
    """The ``--node-config`` value for ``node_config``: space-separated ``key=value`` pairs
    with TOML values (strings quoted)."""
    for key in node_config:
        if not key or any(c.isspace() or c == "=" for c in key):
            raise ValueError(f"node-config key {key!r} must not be empty or hold spaces or '='")
    return " ".join(f"{key}={_toml_value(value)}" for key, value in node_config.items())


class LocalDeployment:
    """A SuperLink and SuperNodes on this machine, started as processes; a context manager
    that stops all of them (and what they started) on exit.

    ``folder`` receives the credentials (unless given), the daemons' logs (``logs/``) and
    ``$FLWR_HOME``. ``tls=False`` / ``authenticate=False`` start the daemons ``--insecure`` /
    without SuperNode authentication (for comparing costs; the tests keep both on)."""

    def __init__(
        self,
        folder: str | Path,
        nodes: Sequence[NodeSpec],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        tls: bool = True,
        authenticate: bool = True,
        credentials: Credentials | None = None,
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 60.0,
    ) -> None:
        names = [node.name for node in nodes]
        if len(set(names)) != len(names):
            raise ValueError(f"node names repeat: {names}")
        self.folder = Path(folder).resolve()
        self.nodes = {node.name: node for node in nodes}
        self.host = host
        self.port = port
        self.tls = tls
        self.authenticate = authenticate
        self.credentials = credentials
        self.startup_timeout_s = startup_timeout_s
        self.flwr_home = self.folder / "flwr-home"
        self.logs = self.folder / "logs"
        self._extra_env = dict(env or {})
        self._superlink: Daemon | None = None
        self._supernodes: dict[str, Daemon] = {}
        self._node_ports: dict[str, int] = {}
        self._cli = FlwrCli(self.folder, self.environment)

    # -- environment and CLI ---------------------------------------------------------------

    @property
    def address(self) -> str:
        """``host:port`` of the SuperLink (Fleet, Control and Runtime APIs)."""
        if self.port is None:
            raise DeploymentError("the SuperLink is not started")
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """The environment the daemons and CLI calls run in: this interpreter's ``bin`` first
        on PATH (``flower-superexec``), this deployment's ``FLWR_HOME``, one thread per
        process for torch / BLAS, no runtime dependency installation."""
        return daemon_environment(self.flwr_home, self._extra_env)

    def flwr(self, *args: str, timeout_s: float = 120.0) -> str:
        """Run ``flwr <args>`` against this deployment; its stdout, or DeploymentError with
        the command and its output."""
        return self._cli(*args, timeout_s=timeout_s)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LocalDeployment:
        """Write credentials (if none were given), start the SuperLink, register every node's
        public key and start every SuperNode; DeploymentError with the log if one fails."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        if (self.tls or self.authenticate) and self.credentials is None:
            self.credentials = generate_credentials(self.folder / "credentials", list(self.nodes))
        if self.port is None:
            self.port = free_port(self.host)
        try:
            self._start_superlink()
            ca_certificate = None
            if self.tls:
                assert self.credentials is not None
                ca_certificate = self.credentials.ca_certificate
            write_connection(self.flwr_home, self.address, ca_certificate)
            if self.authenticate:
                for name, spec in self.nodes.items():
                    if spec.register:
                        self.register_node(name)
            for name in self.nodes:
                self.start_node(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_superlink(self) -> None:
        command = [
            executable("flower-superlink"),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--disable-runtime-dependency-installation",
        ]
        if self.tls:
            assert self.credentials is not None
            command += [
                "--ssl-ca-certfile",
                str(self.credentials.ca_certificate),
                "--ssl-certfile",
                str(self.credentials.server_certificate),
                "--ssl-keyfile",
                str(self.credentials.server_key),
            ]
        else:
            command.append("--insecure")
        if self.authenticate:
            command.append("--enable-supernode-auth")
        daemon = Daemon("superlink", command, self.logs / "superlink.log", self.environment())
        self._superlink = daemon
        assert self.port is not None
        if not wait_for_port(self.host, self.port, self.startup_timeout_s, daemon.process):
            raise DeploymentError(
                f"the SuperLink did not start listening on {self.address}:\n{daemon.log_tail()}"
            )

    def register_node(self, name: str) -> int:
        """Register node ``name``'s public key with the SuperLink; the node id it gets."""
        assert self.credentials is not None
        return self._cli.register_node(self.credentials.node(name).public_key, name)

    def start_node(self, name: str, node_config: Mapping[str, ConfigValue] | None = None) -> None:
        """Start (or restart, after ``kill_node``) the SuperNode ``name``, with its key pair
        (so the SuperLink knows it again under the same node id) and its ``--node-config``,
        or ``node_config`` instead (kept for later restarts)."""
        if name in self._supernodes and self._supernodes[name].alive():
            raise DeploymentError(f"SuperNode {name} is running already")
        if node_config is not None:
            self.nodes[name] = NodeSpec(name, dict(node_config), self.nodes[name].register)
        spec = self.nodes[name]
        port = self._node_ports.setdefault(name, free_port(self.host))
        command = [
            executable("flower-supernode"),
            "--superlink",
            self.address,
            "--host",
            self.host,
            "--port",
            str(port),
        ]
        if self.tls:
            assert self.credentials is not None
            command += ["--root-certificates", str(self.credentials.ca_certificate)]
        else:
            command.append("--insecure")
        if self.authenticate:
            assert self.credentials is not None
            command += [
                "--auth-supernode-private-key",
                str(self.credentials.node(name).private_key),
            ]
        if spec.node_config:
            command += ["--node-config", node_config_argument(spec.node_config)]
        daemon = Daemon(name, command, self.logs / f"{name}.log", self.environment())
        self._supernodes[name] = daemon
        started = wait_for_port(self.host, port, self.startup_timeout_s, daemon.process)
        if not started and spec.register:  # an unregistered node is meant to be refused
            raise DeploymentError(f"SuperNode {name} did not start:\n{daemon.log_tail()}")

    def kill_node(self, name: str) -> None:
        """SIGKILL SuperNode ``name`` and the ClientApp processes it started (a crash)."""
        self._supernodes[name].stop(kill=True)

    def node_exit_code(self, name: str) -> int | None:
        """SuperNode ``name``'s exit status, None while it runs."""
        return self._supernodes[name].process.poll()

    def node_alive(self, name: str) -> bool:
        """Whether SuperNode ``name``'s process is running."""
        return name in self._supernodes and self._supernodes[name].alive()

    def node_log(self, name: str) -> str:
        """The log of SuperNode ``name`` so far."""
        return self._supernodes[name].log.read_text(errors="replace")

    def superlink_log(self) -> str:
        """The SuperLink's log so far."""
        return "" if self._superlink is None else self._superlink.log.read_text(errors="replace")

    def stop(self) -> None:
        """Stop the SuperNodes, then the SuperLink, and what they started."""
        for daemon in self._supernodes.values():
            daemon.stop()
        if self._superlink is not None:
            self._superlink.stop()

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- runs ------------------------------------------------------------------------------

    def online_nodes(self) -> int:
        """How many SuperNodes the SuperLink sees online now."""
        return self._cli.online_nodes()

    def submit(
        self, run_config: Mapping[str, ConfigValue] | None = None, app_dir: str | Path = APP_DIR
    ) -> int:
        """Submit the Flower App in ``app_dir`` with ``run_config`` overrides (keys must be in
        its ``[tool.flwr.app.config]``); the run id."""
        return self._cli.submit(run_config, app_dir)

    def status(self, run_id: int) -> RunStatus:
        """The run's status now."""
        return self._cli.status(run_id)

    def wait(
        self,
        run_id: int,
        timeout_s: float,
        *,
        poll_s: float = 2.0,
        on_poll: Callable[[RunStatus], None] | None = None,
    ) -> RunStatus:
        """Poll the run until it finishes; DeploymentError with the ServerApp log if it runs
        past ``timeout_s`` (the run is stopped first)."""
        return self._cli.wait(run_id, timeout_s, poll_s=poll_s, on_poll=on_poll)

    def run_log(self, run_id: int) -> str:
        """The ServerApp's log of the run, as ``flwr log --show`` prints it."""
        return self._cli.run_log(run_id)


@contextlib.contextmanager
def local_deployment(
    folder: str | Path, nodes: Sequence[NodeSpec], **options: Any
) -> Iterator[LocalDeployment]:
    """``with local_deployment(folder, nodes) as deployment:`` — LocalDeployment started and
    stopped around the block."""
    deployment = LocalDeployment(folder, nodes, **options)
    with deployment:
        yield deployment
