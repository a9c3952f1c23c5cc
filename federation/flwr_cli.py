"""The ``flwr`` CLI as a client of one SuperLink: the connection in ``$FLWR_HOME/config.toml``,
SuperNode key registration, ``flwr run`` submission, a run's status (``flwr ls``), waiting for
it to finish, and its ServerApp log (``flwr log``).

Every call runs ``flwr`` (from this interpreter's ``bin`` folder) as a subprocess in the
environment it is given, so it reads the connection from that environment's ``FLWR_HOME``.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from envs.atomic import write_atomic
from federation.daemons import executable

__all__ = [
    "APP_DIR",
    "CONNECTION",
    "ConfigValue",
    "DeploymentError",
    "FlwrCli",
    "RunStatus",
    "write_connection",
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


def write_connection(flwr_home: Path, address: str, ca_certificate: Path | None) -> None:
    """Write ``$FLWR_HOME/config.toml`` with the SuperLink connection :data:`CONNECTION` (the
    default) to ``address``: TLS with ``ca_certificate`` as root, or insecure if it is None."""
    connection: dict[str, Any] = {"address": address}
    if ca_certificate is not None:
        connection["root-certificates"] = str(ca_certificate)
    else:
        connection["insecure"] = True
    config = {"superlink": {"default": CONNECTION, CONNECTION: connection}}
    flwr_home.mkdir(parents=True, exist_ok=True)
    write_atomic(flwr_home / "config.toml", tomli_w.dumps(config))


class FlwrCli:
    """``flwr`` calls against the SuperLink connection :data:`CONNECTION`, run in ``folder``
    (which also receives ``--run-config`` files) with the environment ``environment()``
    returns at each call."""

    def __init__(self, folder: Path, environment: Callable[[], Mapping[str, str]]) -> None:
        self.folder = folder
        self._environment = environment

    def __call__(self, *args: str, timeout_s: float = 120.0) -> str:
        """Run ``flwr <args>``; its stdout, or DeploymentError with the command and its
        output."""
        command = [executable("flwr"), *args]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=dict(self._environment()),
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

    def json(self, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
        """Run ``flwr <args> --format json``; the JSON object it prints, or DeploymentError
        unless it says ``success``."""
        out = self(*args, "--format", "json", timeout_s=timeout_s)
        start = out.find("{")
        try:
            data = json.loads(out[start:]) if start >= 0 else None
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or not data.get("success", False):
            raise DeploymentError(f"`flwr {' '.join(args)}` did not succeed: {out[-3000:]}")
        return data

    def register_node(self, public_key: Path, name: str) -> int:
        """Register a SuperNode's public key under ``name``; the node id it gets."""
        data = self.json("supernode", "register", str(public_key), CONNECTION, "--name", name)
        return int(data["node-id"])

    def online_nodes(self) -> int:
        """How many SuperNodes the SuperLink sees online now."""
        data = self.json("supernode", "list", CONNECTION)
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
        return int(self.json(*args)["run-id"])

    def status(self, run_id: int) -> RunStatus:
        """The run's status now."""
        data = self.json("list", CONNECTION, "--run-id", str(run_id))
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
                    self("stop", str(run_id), CONNECTION)
                raise DeploymentError(
                    f"run {run_id} did not finish within {timeout_s} s "
                    f"(status {status.status}):\n{self.run_log(run_id)[-4000:]}"
                )
            time.sleep(poll_s)

    def run_log(self, run_id: int) -> str:
        """The ServerApp's log of the run, as ``flwr log --show`` prints it."""
        try:
            return self("log", str(run_id), CONNECTION, "--show", timeout_s=60.0)
        except DeploymentError as error:
            return str(error)
