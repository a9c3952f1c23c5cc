"""FmuWorker: the same unit in a child process, surviving a crashing FMU."""

from __future__ import annotations

import os

import numpy as np
import pytest

from envs.fmu import FmuUnit, FmuVariableError, FmuWorker, FmuWorkerError


def test_worker_matches_the_in_process_unit(fmu_files):
    with (
        FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as local,
        FmuWorker(fmu_files["CncMill"], start_values={"mode": 3}) as remote,
    ):
        for unit in (local, remote):
            unit.set("spindle_speed", 1500.0)
            for _ in range(30):
                unit.step(10.0)
        assert remote.get("tool_wear") == local.get("tool_wear")
        assert remote.time == local.time == 300.0
        snap = remote.snapshot()
        remote.step(60.0)
        after = remote.get("spindle_temperature")
        remote.restore(snap)
        remote.step(60.0)
        assert remote.get("spindle_temperature") == after
        assert remote.reset() == "snapshot" and remote.time == 0.0
        io = remote.real_io(["spindle_speed"], ["cutting_speed"])
        assert io.exchange(np.array([1000.0]), 1.0)[0] == pytest.approx(np.pi * 50.0)


def test_errors_in_the_worker_reach_the_caller(fmu_files):
    with FmuWorker(fmu_files["Conveyor"]) as worker:
        with pytest.raises(FmuVariableError, match="outside its range"):
            worker.set("belt_speed", 99.0)
        worker.step(1.0)  # still usable


def test_a_crashing_fmu_kills_only_the_worker(test_fmus):
    worker = FmuWorker(test_fmus["Decay2Crash"])
    worker.step(0.5)
    worker.set("crash", True)
    with pytest.raises(FmuWorkerError, match="SIGABRT"):
        worker.step(0.5)
    assert not worker.alive
    with pytest.raises(FmuWorkerError):
        worker.get("y")
    worker.close()
    # the calling process is fine and can start again
    with FmuWorker(test_fmus["Decay2Crash"]) as fresh:
        fresh.step(0.5)
        assert fresh.get("y") < 1.0
    assert os.getpid() > 0


def test_load_errors_in_the_worker_are_reported(test_fmus):
    from envs.fmu import FmuLoadError

    with pytest.raises(FmuLoadError, match="libtwinfactory_absent"):
        FmuWorker(test_fmus["Decay2MissingDep"])


def test_a_stop_request_reaches_the_caller_of_a_worker(test_fmus):
    from envs.fmu import FmuDiscardError, FmuStoppedError

    with FmuWorker(test_fmus["Decay2Stop"]) as worker:
        io = worker.real_io(["u"], ["y"])
        for _ in range(3):
            io.exchange(np.array([0.0]), 0.5)
        assert not worker.terminated
        io.exchange(np.array([0.0]), 0.5)
        assert worker.terminated and worker.stop_request.time == 2.0 and worker.time == 2.0
        with pytest.raises(FmuStoppedError, match="asked to stop at t = 2 s"):
            worker.step(0.5)
        assert worker.reset() == "snapshot" and not worker.terminated
    with FmuWorker(test_fmus["Decay2Discard"]) as worker:
        for _ in range(4):
            worker.step(0.5)
        with pytest.raises(FmuDiscardError, match="not terminated"):
            worker.step(0.5)
