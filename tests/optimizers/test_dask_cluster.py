"""The Dask engine against a real cluster of separate processes on loopback: ``dask scheduler``
and two ``dask worker`` processes, as a user starts them on several hosts. A tiny optimisation
through ``scripts/optimize.py --engine dask --dask-address`` gives what the serial engine gives;
an address nobody answers, or a scheduler without workers, is a clear error within seconds.
The processes are started here, each in its own process group, and stopped at the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("dask.distributed", reason="the dask engine is the 'distributed' extra")

from optimizers.engines import DaskEngine, SchedulerUnreachable
from scripts import optimize

REPO = Path(__file__).resolve().parents[2]
DASK = Path(sys.executable).with_name("dask")
TINY_RUN = [
    "--algorithm", "random", "--budget", "4", "--pop-size", "2", "--seed", "3",
    "--horizon-h", "1", "--sim-seeds", "1", "--compare-seeds", "0", "--quiet",
]  # fmt: skip


def _start(arguments: list[str], folder: Path, log: str) -> subprocess.Popen:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(folder / log, "w") as output:
        return subprocess.Popen(
            [str(DASK), *arguments],
            cwd=folder,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with its children below
        )


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM to every process group started here, then SIGKILL to any still running."""
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _scheduler_address(scheduler_file: Path, process: subprocess.Popen, log: Path) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dask scheduler exited: {log.read_text()[-2000:]}")
        if scheduler_file.is_file():
            try:
                return json.loads(scheduler_file.read_text())["address"]
            except (ValueError, KeyError):
                pass  # being written
        time.sleep(0.1)
    pytest.fail(f"dask scheduler did not start in 30 s: {log.read_text()[-2000:]}")


@pytest.mark.slow  # 3 interpreters start (scheduler, 2 workers): 10-20 s on a loaded 2-core box
@pytest.mark.skipif(not DASK.is_file(), reason="the dask command is not installed")
def test_an_optimisation_on_a_scheduler_and_two_worker_processes_equals_serial(tmp_path):
    import numpy as np
    from dask.distributed import Client

    from optimizers.config import ProblemConfig
    from optimizers.engines import SerialEngine
    from optimizers.problems import FactoryProblem

    scheduler_file = tmp_path / "scheduler.json"
    arguments = ["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
    scheduler = _start([*arguments, "--scheduler-file", str(scheduler_file)], tmp_path, "s.log")
    processes = [scheduler]
    serial = SerialEngine()
    try:
        address = _scheduler_address(scheduler_file, scheduler, tmp_path / "s.log")
        assert address.startswith("tcp://127.0.0.1:")
        started = time.monotonic()
        with pytest.raises(SchedulerUnreachable, match="has no workers after 0.5 s"):
            DaskEngine(address=address, timeout_s=0.5)  # no worker started yet
        assert time.monotonic() - started < 5
        for k in range(2):
            worker = [
                "worker", address, "--nthreads", "1", "--no-dashboard", "--name", f"w{k}",
                "--preload", "optimizers.simulate",
            ]  # fmt: skip
            processes.append(_start(worker, tmp_path, f"w{k}.log"))
        # while the workers start: the serial reference's line, built in this process, and
        # what the optimisation imports (the test's time is the workers' start-up otherwise)
        problem = FactoryProblem(ProblemConfig(horizon_h=1.0, seeds=1))
        problem.evaluate_batch(problem.encoding.vector()[None, :], serial)
        import matplotlib

        import optimizers.algorithms
        import optimizers.pareto  # noqa: F401

        matplotlib.use("Agg")
        import matplotlib.pyplot

        with Client(address, timeout=10) as client:
            client.wait_for_workers(2, timeout=30)
        dask_run = [*TINY_RUN, "--engine", "dask", "--dask-address", address]
        assert optimize.main([*dask_run, "--out", str(tmp_path / "d")]) == 0
        points = json.loads((tmp_path / "d" / "pareto.json").read_text())["points"]
        names = problem.var_names
        X = np.array([[point["x"][name] for name in names] for point in points])
        expected = problem.evaluate_batch(X, serial)
    finally:
        serial.close()
        _stop(processes)
    assert len(points) >= 1
    for point, evaluation in zip(points, expected, strict=True):
        assert point["F"] == dict(zip(problem.obj_names, evaluation.F.tolist(), strict=True))
        assert point["G"] == dict(zip(problem.constr_names, evaluation.G.tolist(), strict=True))


def test_an_address_nobody_answers_is_a_clear_error_within_seconds():
    import socket

    with socket.socket() as probe:  # a loopback port that was free a moment ago: refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    expected = f"cannot reach a Dask scheduler at tcp://127.0.0.1:{port} within 1 s"
    with pytest.raises(SchedulerUnreachable, match=expected) as raised:
        DaskEngine(address=f"tcp://127.0.0.1:{port}", timeout_s=1.0)
    assert time.monotonic() - started < 5
    assert "dask scheduler --port" in str(raised.value)
    assert isinstance(raised.value, ValueError)  # scripts report it as a bad setting
