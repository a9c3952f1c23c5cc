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

Every host needs twinfactory installed (``pip install -e .``): the Flower App Bundle carries the
app's configuration, the code comes from the installed package (see ``[tool.flwr.app]``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import tomli_w

from envs.atomic import write_atomic
from federation.certificates import Credentials, generate_credentials

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

APP_DIR = Path(__file__).resolve().parents[1]
"""The Flower App: the repository root, whose ``pyproject.toml`` has ``[tool.flwr.app]``."""

CONNECTION = "twinfactory-local"
"""Name of the SuperLink connection written into the deployment's ``$FLWR_HOME``."""

ConfigValue = str | int | float | bool


class DeploymentError(RuntimeError):
    """A daemon did not start, a CLI call failed or a run did not finish; the message carries
    the command and the tail of its log."""


@dataclass(frozen=True)
class NodeSpec:
    """One SuperNode: its name (also the name of its key pair) and its ``--node-config``.
    ``register=False`` leaves its public key unregistered, so an authenticating SuperLink must
    refuse it (to test that it does)."""

    name: str
    node_config: Mapping[str, ConfigValue] = field(default_factory=dict)
    register: bool = True


@dataclass(frozen=True)
class RunStatus:
    """A run's state as ``flwr ls`` reports it (``status`` e.g. ``running``,
    ``finished:completed``, ``finished:failed``, ``finished:stopped``)."""

    run_id: int
    status: str
    details: str
    elapsed_s: float

    @property
    def finished(self) -> bool:
        """True once the run is over, whichever way."""
        return self.status.startswith("finished")

    @property
    def completed(self) -> bool:
        """True if the run finished without an error."""
        return self.status == "finished:completed"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


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


def _wait_for_port(
    host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]
) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.2)
    return False


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (children, grandchildren, ...), from /proc where there is one."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _signal_tree(process: subprocess.Popen[bytes], sig: signal.Signals) -> list[int]:
    """Send ``sig`` to ``process`` and everything it started (by process id)."""
    tree = _descendants(process.pid)
    for pid in [process.pid, *tree]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return tree


def _reap(pids: Sequence[int], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


class _Daemon:
    """One started daemon: its process, command and log file."""

    def __init__(self, name: str, command: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.command = command
        self.log = log
        self._handle = log.open("ab")
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            command, stdout=self._handle, stderr=subprocess.STDOUT, env=dict(env)
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        if self.alive():
            tree = _signal_tree(self.process, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                tree += _signal_tree(self.process, signal.SIGKILL)
                self.process.wait(timeout=timeout_s)
            _reap(tree, timeout_s)
        self._handle.close()


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
        self._superlink: _Daemon | None = None
        self._supernodes: dict[str, _Daemon] = {}
        self._node_ports: dict[str, int] = {}

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
        env = dict(os.environ)
        bin_dir = str(Path(sys.executable).parent)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        env["FLWR_HOME"] = str(self.flwr_home)
        env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(name, "1")
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._extra_env)
        return env

    def _executable(self, name: str) -> str:
        candidate = Path(sys.executable).parent / name
        return str(candidate) if candidate.exists() else name

    def flwr(self, *args: str, timeout_s: float = 120.0) -> str:
        """Run ``flwr <args>`` against this deployment; its stdout, or DeploymentError with
        the command and its output."""
        command = [self._executable("flwr"), *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=self.environment(),
                timeout=timeout_s,
                check=False,
                cwd=self.folder,
            )
        except subprocess.TimeoutExpired as error:
            raise DeploymentError(f"`{' '.join(command)}` ran past {timeout_s} s") from error
        if done.returncode != 0:
            raise DeploymentError(
                f"`{' '.join(command)}` failed (exit {done.returncode}):\n"
                f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def _flwr_json(self, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
        out = self.flwr(*args, "--format", "json", timeout_s=timeout_s)
        start = out.find("{")
        try:
            data = json.loads(out[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not data.get("success", False):
            raise DeploymentError(f"`flwr {' '.join(args)}` did not succeed: {out[-3000:]}")
        return data

    def _write_connection(self) -> None:
        connection: dict[str, Any] = {"address": self.address}
        if self.tls:
            assert self.credentials is not None
            connection["root-certificates"] = str(self.credentials.ca_certificate)
        else:
            connection["insecure"] = True
        config = {"superlink": {"default": CONNECTION, CONNECTION: connection}}
        self.flwr_home.mkdir(parents=True, exist_ok=True)
        write_atomic(self.flwr_home / "config.toml", tomli_w.dumps(config))

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
            self._write_connection()
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
            self._executable("flower-superlink"),
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
        daemon = _Daemon("superlink", command, self.logs / "superlink.log", self.environment())
        self._superlink = daemon
        assert self.port is not None
        if not _wait_for_port(self.host, self.port, self.startup_timeout_s, daemon.process):
            raise DeploymentError(
                f"the SuperLink did not start listening on {self.address}:\n{daemon.log_tail()}"
            )

    def register_node(self, name: str) -> int:
        """Register node ``name``'s public key with the SuperLink; the node id it gets."""
        assert self.credentials is not None
        data = self._flwr_json(
            "supernode",
            "register",
            str(self.credentials.node(name).public_key),
            CONNECTION,
            "--name",
            name,
        )
        return int(data["node-id"])

    def start_node(self, name: str) -> None:
        """Start (or restart, after ``kill_node``) the SuperNode ``name``."""
        if name in self._supernodes and self._supernodes[name].alive():
            raise DeploymentError(f"SuperNode {name} is running already")
        spec = self.nodes[name]
        port = self._node_ports.setdefault(name, free_port(self.host))
        command = [
            self._executable("flower-supernode"),
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
        daemon = _Daemon(name, command, self.logs / f"{name}.log", self.environment())
        self._supernodes[name] = daemon
        started = _wait_for_port(self.host, port, self.startup_timeout_s, daemon.process)
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
        data = self._flwr_json("supernode", "list", CONNECTION)
        nodes = data.get("nodes", [])
        return sum(1 for node in nodes if str(node.get("status", "")).lower() == "online")

    def submit(
        self, run_config: Mapping[str, ConfigValue] | None = None, app_dir: str | Path = APP_DIR
    ) -> int:
        """Submit the Flower App in ``app_dir`` with ``run_config`` overrides (keys must be in
        its ``[tool.flwr.app.config]``); the run id."""
        args = ["run", str(Path(app_dir).resolve()), CONNECTION]
        if run_config:
            overrides = self.folder / f"run-config-{time.time_ns()}.toml"
            write_atomic(overrides, tomli_w.dumps(dict(run_config)))
            args += ["--run-config", str(overrides)]
        return int(self._flwr_json(*args)["run-id"])

    def status(self, run_id: int) -> RunStatus:
        """The run's status now."""
        data = self._flwr_json("list", CONNECTION, "--run-id", str(run_id))
        for run in data.get("runs", []):
            if int(run["run-id"]) == run_id:
                return RunStatus(
                    run_id=run_id,
                    status=str(run["status"]),
                    details=str(run.get("status-details", "")),
                    elapsed_s=float(run.get("elapsed", 0.0) or 0.0),
                )
        raise DeploymentError(f"the SuperLink does not know run {run_id}")

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
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.status(run_id)
            if on_poll is not None:
                on_poll(status)
            if status.finished:
                return status
            if time.monotonic() > deadline:
                with contextlib.suppress(DeploymentError):
                    self.flwr("stop", str(run_id), CONNECTION)
                raise DeploymentError(
                    f"run {run_id} did not finish within {timeout_s} s "
                    f"(status {status.status}):\n{self.run_log(run_id)[-4000:]}"
                )
            time.sleep(poll_s)

    def run_log(self, run_id: int) -> str:
        """The ServerApp's log of the run, as ``flwr log --show`` prints it."""
        try:
            return self.flwr("log", str(run_id), CONNECTION, "--show", timeout_s=60.0)
        except DeploymentError as error:
            return str(error)


@contextlib.contextmanager
def local_deployment(
    folder: str | Path, nodes: Sequence[NodeSpec], **options: Any
) -> Iterator[LocalDeployment]:
    """``with local_deployment(folder, nodes) as deployment:`` — LocalDeployment started and
    stopped around the block."""
    deployment = LocalDeployment(folder, nodes, **options)
    with deployment:
        yield deployment
