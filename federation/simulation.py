"""Flower's simulation engine (Ray) running this repository's Flower App on one machine.

The same ServerApp (``federation.server_app:app``) and the same ClientApp
(``federation.client_app:app``) a SuperLink/SuperNode deployment runs, with the SuperNodes
simulated: Flower's Simulation Runtime starts a Ray actor pool (``cpus_per_node`` CPUs per
ClientApp, ``num_cpus`` in all, so on 2 cores two ClientApps train at a time) and hands each
simulated node's messages to an actor; the ServerApp runs in a thread of this process.

Node profiles: a simulated SuperNode's node config holds only Flower's ``partition-id`` and
``num-partitions``, while the ClientApp reads its twin from ``profile`` (what
``flower-supernode --node-config 'profile="node-1"'`` sets in a deployment).
:func:`simulation_client_app` therefore wraps the ClientApp: before each message it sets
``profile`` to ``profiles[partition-id]`` in the node's context, then calls
``federation.client_app.app`` itself — the train and evaluate code is the deployment's.

Run configuration: the keys of ``[tool.flwr.app.config]`` in ``pyproject.toml`` with the given
overrides (an unknown key is an error), fused as ``flwr run`` fuses them; both the ServerApp
and every ClientApp read it from ``Context.run_config``. The ServerApp writes ``rounds.csv``,
``checkpoint.npz``, ``policy.npz`` and ``summary.json`` into ``out-dir`` as in a deployment.

Ray is an extra (``pip install -e ".[simulation]"``); :func:`ray_available` says whether it is
importable and :func:`simulate` raises :class:`SimulationUnavailable` naming that command when
not. The engine is entered through ``flwr.simulation.run_simulation._run_simulation``, the
function Flower's own ``flwr-simulation`` process (behind ``flwr run`` on a simulation
federation) calls, because the public ``run_simulation`` takes no run configuration; tested
with flwr 1.42.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from federation.flwr_cli import APP_DIR

__all__ = [
    "SIMULATION_INSTALL",
    "SimulationUnavailable",
    "fused_run_config",
    "ray_available",
    "simulate",
    "simulation_client_app",
]

SIMULATION_INSTALL = 'pip install -e ".[simulation]"'
"""The command that installs Flower's simulation engine (Ray) for this project."""

_SINGLE_THREAD = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class SimulationUnavailable(RuntimeError):
    """Ray, which Flower's simulation engine needs, is not installed."""


def ray_available() -> bool:
    """Whether ``ray`` is importable (the ``simulation`` extra is installed)."""
    return importlib.util.find_spec("ray") is not None


def fused_run_config(overrides: Mapping[str, Any], app_dir: str | Path = APP_DIR) -> dict[str, Any]:
    """``[tool.flwr.app.config]`` of ``app_dir``'s pyproject.toml with ``overrides``, as
    ``flwr run --run-config`` fuses them; ValueError naming a key that is not in it."""
    from flwr.common.config import get_fused_config_from_dir

    try:
        return dict(get_fused_config_from_dir(Path(app_dir), dict(overrides)))
    except ValueError as error:
        raise ValueError(
            f"run config: {error} ([tool.flwr.app.config] of pyproject.toml)"
        ) from None


def simulation_client_app(profiles: Sequence[str]) -> Any:
    """A ClientApp that gives simulated node ``i`` (Flower's ``partition-id``) the node profile
    ``profiles[i]`` and then runs ``federation.client_app.app`` on the message."""
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp

    names = [str(name) for name in profiles]
    wrapper = ClientApp()

    def with_profile(msg: Message, context: Context) -> Message:
        from flwr.common.constant import PARTITION_ID_KEY

        from federation.client_app import app as node_app

        partition = int(context.node_config[PARTITION_ID_KEY])
        context.node_config["profile"] = names[partition]
        return node_app(msg, context)

    wrapper.train()(with_profile)
    wrapper.evaluate()(with_profile)
    return wrapper


def _poll(on_poll: Callable[[], None], stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        try:
            on_poll()
        except Exception:
            pass


def simulate(
    profiles: Sequence[str],
    run_config: Mapping[str, Any],
    *,
    num_cpus: int | None = None,
    cpus_per_node: float = 1.0,
    on_poll: Callable[[], None] | None = None,
    poll_s: float = 2.0,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run the Flower App over ``len(profiles)`` simulated SuperNodes, node ``i`` training on
    profile ``profiles[i]``; the ServerApp's ``summary.json`` (rounds, nodes, ``round_s``,
    ``wall_s``, ...) with ``simulation_wall_s`` (s, Ray start-up included) added.

    ``run_config``: overrides of ``[tool.flwr.app.config]`` (``out-dir`` where the ServerApp
    writes). ``num_cpus`` (default: this machine's) is what Ray may use, ``cpus_per_node``
    what each ClientApp reserves (1: one torch thread each). ``on_poll`` is called every
    ``poll_s`` seconds while the run goes on (a progress display). Raises
    SimulationUnavailable without Ray, ValueError for a bad run configuration, RuntimeError if
    the run fails."""
    if not ray_available():
        raise SimulationUnavailable(
            f"Flower's simulation engine needs ray, which is not installed: {SIMULATION_INSTALL}"
            " (or run the same app in real processes: scripts/federate.py deploy-local)"
        )
    if not profiles:
        raise ValueError("simulate needs at least one node profile")
    if cpus_per_node <= 0:
        raise ValueError(f"cpus_per_node must be > 0, got {cpus_per_node}")
    from flwr.app import Context, RecordDict
    from flwr.common.constant import RUN_ID_NUM_BYTES, SUPERLINK_NODE_ID, TASK_ID_NUM_BYTES
    from flwr.server.superlink.linkstate.utils import generate_rand_int_from_bytes
    from flwr.simulation.run_simulation import _run_simulation
    from flwr.supercore.constant import NOOP_FEDERATION_ID
    from flwr.supercore.run import Run
    from flwr.supercore.task_identity import TaskIdentity
    from flwr.supercore.telemetry import EventType

    from federation.app_config import AppConfig
    from federation.server_app import app as server_app

    config = fused_run_config(run_config)
    settings = AppConfig.from_run_config(config)
    settings.local_config()  # a bad PPO setting fails here, not in a Ray actor
    for name in _SINGLE_THREAD:
        os.environ.setdefault(name, "1")  # the Ray workers inherit it
    cpus = int(num_cpus or os.cpu_count() or 1)
    # the run as _run_simulation makes one itself, with the run configuration's overrides
    run_id = generate_rand_int_from_bytes(RUN_ID_NUM_BYTES)
    run = Run.create_empty(run_id=run_id)
    run.override_config = dict(run_config)
    run.primary_task_id = generate_rand_int_from_bytes(TASK_ID_NUM_BYTES)
    run.federation_id = NOOP_FEDERATION_ID
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = run_id
    TaskIdentity.node_id = SUPERLINK_NODE_ID
    context = Context(
        run_id=run_id, node_id=0, node_config={}, state=RecordDict(), run_config=config
    )
    backend_config: dict[str, Any] = {
        "client_resources": {"num_cpus": cpus_per_node, "num_gpus": 0.0},
        "init_args": {"num_cpus": cpus, "num_gpus": 0, "include_dashboard": False},
    }
    stop = threading.Event()
    poller = None
    if on_poll is not None:
        poller = threading.Thread(target=_poll, args=(on_poll, stop, poll_s), daemon=True)
        poller.start()
    started, wall_started = time.monotonic(), time.time()
    try:
        _run_simulation(
            num_supernodes=len(profiles),
            exit_event=EventType.PYTHON_API_RUN_SIMULATION_LEAVE,
            client_app=simulation_client_app(profiles),
            server_app=server_app,
            backend_name="ray",
            backend_config=backend_config,
            server_app_context=context,
            app_dir=str(APP_DIR),
            is_app=True,
            run=run,
            verbose_logging=verbose,
        )
    finally:
        stop.set()
        if poller is not None:
            poller.join()
        _shutdown_ray()
    summary_path = settings.output_folder() / "summary.json"
    if not summary_path.is_file() or summary_path.stat().st_mtime < wall_started:
        raise RuntimeError(f"the simulation ended without writing {summary_path}: see its log")
    summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    summary["simulation_wall_s"] = time.monotonic() - started
    return summary


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
