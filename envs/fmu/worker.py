"""``FmuWorker``: an :class:`FmuUnit` in a separate process.

A third-party FMU that segfaults or calls ``abort()`` kills only the worker; the caller
gets :class:`FmuWorkerError` and can start a new worker. The cost is one pipe round trip
per call plus about 0.3 s to start the worker: ``scripts/bench_envs.py`` measured 0.1 to
1 ms per env step on the 2-core development machine, against about 15 µs in process, so
isolate FMUs you do not trust, not your own. An env step uses :meth:`WorkerRealIO.exchange`,
which writes the inputs, steps and reads the outputs in one round trip. Snapshots live in
the worker and are addressed by handle.
"""

from __future__ import annotations

import multiprocessing
import signal
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from envs.fmu.errors import FmuVariableError, FmuWorkerError, StopRequest
from envs.fmu.variables import Value, Variable


def _serve(connection: Connection, path: str, options: dict[str, Any]) -> None:
    from envs.fmu.unit import FmuUnit, Snapshot

    try:
        unit = FmuUnit(path, **options)
    except BaseException as error:
        connection.send(("error", error))
        return
    connection.send(
        (
            "ok",
            {
                "variables": unit.variables,
                "capabilities": unit.capabilities,
                "name": unit.name,
                "time": unit.time,
                "start_values": unit.start_values,
            },
        )
    )
    snapshots: dict[int, Snapshot] = {}
    ios: dict[int, Any] = {}
    counter = 0
    result: Any
    while True:
        try:
            method, args = connection.recv()
        except (EOFError, OSError):
            break
        if method == "free":
            snapshots.pop(args[0], None)
            continue
        try:
            if method == "close":
                unit.close()
                connection.send(("ok", None))
                break
            if method == "snapshot":
                counter += 1
                snapshots[counter] = unit.snapshot()
                result = (counter, unit.time)
            elif method == "restore":
                unit.restore(snapshots[args[0]])
                result = unit.time
            elif method == "real_io":
                counter += 1
                ios[counter] = unit.real_io(*args)
                result = counter
            elif method == "io":
                handle, operation, *rest = args
                result = getattr(ios[handle], operation)(*rest)
            else:
                result = getattr(unit, method)(*args)
            connection.send(("ok", (result, unit.time, unit.last_reset, unit.stop_request)))
        except BaseException as error:
            connection.send(("error", error))


@dataclass
class WorkerSnapshot:
    """A snapshot held in the worker process, addressed by ``handle``."""

    handle: int
    time: float
    owner: weakref.ReferenceType


class FmuWorker:
    """Runs ``FmuUnit(fmu, **options)`` in a child process and forwards calls to it.

    ``call_timeout`` (seconds, default none) kills a worker whose FMU hangs. An FMU's request
    to stop reaches the caller as in :class:`envs.fmu.FmuUnit`: ``stop_request`` and
    ``terminated``, and a further step raises :class:`envs.fmu.FmuStoppedError`.
    """

    def __init__(
        self, fmu: str | Path, *, call_timeout: float | None = None, **options: Any
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(child, str(fmu), options),
            daemon=True,
            name=f"fmu-worker-{Path(fmu).stem}",
        )
        self._process.start()
        child.close()
        self.call_timeout = call_timeout
        self.name = Path(fmu).stem
        self._closed = True  # until the worker answers
        meta = self._receive()
        self.variables: dict[str, Variable] = meta["variables"]
        self.capabilities = meta["capabilities"]
        self.name = meta["name"]
        self.time = meta["time"]
        self.start_values = meta["start_values"]
        self.last_reset: str | None = None
        self.stop_request: StopRequest | None = None
        self._closed = False

    # -- transport -------------------------------------------------------------
    def _receive(self) -> Any:
        try:
            if self.call_timeout is not None and not self._connection.poll(self.call_timeout):
                self._process.kill()
                self._process.join()
                raise FmuWorkerError(
                    f"{self.name}: the worker did not answer within "
                    f"{self.call_timeout} s and was stopped; the FMU hangs. "
                    "Create a new unit."
                )
            status, payload = self._connection.recv()
        except (EOFError, OSError, ConnectionError) as error:
            self._process.join(timeout=5)
            raise FmuWorkerError(self._death_message()) from error
        if status == "error":
            raise payload
        return payload

    def _death_message(self) -> str:
        code = self._process.exitcode
        cause = f"exit code {code}"
        if code is not None and code < 0:
            try:
                cause = f"signal {signal.Signals(-code).name}"
            except ValueError:
                cause = f"signal {-code}"
        return (
            f"{self.name}: the worker process died ({cause}); the FMU crashed it. The "
            "calling process is unharmed; create a new FmuWorker to continue."
        )

    def _call(self, method: str, *args: Any) -> Any:
        if self._closed:
            raise FmuWorkerError(f"{self.name}: the worker is closed")
        try:
            self._connection.send((method, args))
        except (OSError, ConnectionError) as error:
            self._process.join(timeout=5)
            raise FmuWorkerError(self._death_message()) from error
        result, self.time, self.last_reset, self.stop_request = self._receive()
        return result

    # -- the FmuUnit interface -----------------------------------------------------
    def set(self, name_or_values: str | Mapping[str, Value], value: Value | None = None) -> None:
        """:meth:`envs.fmu.FmuUnit.set` in the worker."""
        self._call("set", name_or_values, value)

    def get(self, name: str) -> Any:
        """:meth:`envs.fmu.FmuUnit.get` in the worker."""
        return self._call("get", name)

    def get_many(self, names: Sequence[str]) -> dict[str, Any]:
        return self._call("get_many", list(names))

    def names(self, causality: str | None = None) -> list[str]:
        return [n for n, v in self.variables.items() if causality in (None, v.causality)]

    def variable(self, name: str) -> Variable:
        if name not in self.variables:
            raise FmuVariableError(f"{self.name} has no variable '{name}'")
        return self.variables[name]

    @property
    def terminated(self) -> bool:
        """Whether the FMU asked to stop (see ``stop_request``)."""
        return self.stop_request is not None

    def step(self, dt: float, *, time: float | None = None) -> float:
        """:meth:`envs.fmu.FmuUnit.step` in the worker."""
        return self._call("step", dt, time) if time is not None else self._call("step", dt)

    def reset(self, start_values: Mapping[str, Value] | None = None) -> str:
        """:meth:`envs.fmu.FmuUnit.reset` in the worker; returns the rung used."""
        return self._call("reset", start_values)

    def snapshot(self) -> WorkerSnapshot:
        handle, time = self._call("snapshot")
        snap = WorkerSnapshot(handle, time, weakref.ref(self))
        weakref.finalize(snap, _forget, weakref.ref(self), handle)
        return snap

    def restore(self, snapshot: WorkerSnapshot) -> None:
        self._call("restore", snapshot.handle)

    def real_io(self, inputs: Sequence[str], outputs: Sequence[str]) -> WorkerRealIO:
        return WorkerRealIO(
            self, self._call("real_io", list(inputs), list(outputs)), list(inputs), list(outputs)
        )

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if self._process.is_alive():
            try:
                self._connection.send(("close", ()))
                self._connection.recv()
            except (EOFError, OSError, ConnectionError):
                pass
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        self._connection.close()

    def __enter__(self) -> FmuWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _forget(owner_ref: weakref.ReferenceType, handle: int) -> None:
    owner = owner_ref()
    if owner is not None and not owner._closed and owner._process.is_alive():
        try:
            owner._connection.send(("free", (handle,)))
        except (OSError, ConnectionError):
            pass


class WorkerRealIO:
    """:class:`envs.fmu.RealIO` across the process boundary."""

    def __init__(
        self, worker: FmuWorker, handle: int, inputs: list[str], outputs: list[str]
    ) -> None:
        self.unit, self._handle, self.inputs, self.outputs = worker, handle, inputs, outputs

    def write(self, values: np.ndarray) -> None:
        self.unit._call("io", self._handle, "write", np.asarray(values, dtype=np.float64))

    def read(self) -> np.ndarray:
        return self.unit._call("io", self._handle, "read")

    def exchange(
        self, values: np.ndarray, dt: float, time: float | None = None, *, checked: bool = False
    ) -> np.ndarray:
        """One round trip: write, step, read (the worker checks the values again)."""
        return self.unit._call(
            "io", self._handle, "exchange", np.asarray(values, dtype=np.float64), dt, time
        )
