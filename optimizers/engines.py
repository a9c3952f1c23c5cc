"""Where evaluations run. Every engine maps a picklable function over a list of tasks and returns
the results in task order, calling ``on_result`` as each one finishes (for progress bars):

- :class:`SerialEngine` — in this process;
- :class:`ProcessEngine` — a pool of ``workers`` local processes (``spawn``: no FMU state is
  forked); each worker builds its production line on its first task and reuses it;
- :class:`DaskEngine` — a Dask cluster when one machine is too small: ``address`` of a running
  scheduler (``dask scheduler`` on one host, ``dask worker tcp://HOST:8786 --nthreads 1`` on
  each machine with this project installed), or a ``LocalCluster`` of ``workers`` processes.
  An address that cannot be reached within ``timeout_s``, or a scheduler without workers, is a
  :class:`SchedulerUnreachable` error that says what to start where.
  Needs the ``distributed`` extra: ``pip install -e ".[distributed]"``.

Results do not depend on the engine: each task carries its seeds (common random numbers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, Self

from optimizers.config import ENGINES

OnResult = Callable[[Any], None] | None


class Engine(Protocol):
    """What every engine does: map a picklable function over tasks, in task order."""

    name: str
    workers: int

    def map(self, fn: Callable, tasks: Sequence, on_result: OnResult = None) -> list: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class SerialEngine:
    """Evaluate in the calling process, one task after another."""

    name = "serial"
    workers = 1

    def map(self, fn: Callable, tasks: Sequence, on_result: OnResult = None) -> list:
        """``[fn(task) for task in tasks]``, calling ``on_result`` after each."""
        results = []
        for task in tasks:
            results.append(fn(task))
            if on_result is not None:
                on_result(results[-1])
        return results

    def close(self) -> None:
        """Free the FMUs of the lines this process built."""
        from optimizers.simulate import close_lines

        close_lines()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ProcessEngine:
    """A local pool of ``workers`` processes, started once and reused for every batch."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        import multiprocessing

        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        self.workers = workers
        self._pool = multiprocessing.get_context("spawn").Pool(workers)

    def map(self, fn: Callable, tasks: Sequence, on_result: OnResult = None) -> list:
        results = []
        for result in self._pool.imap(fn, tasks, chunksize=1):
            results.append(result)
            if on_result is not None:
                on_result(result)
        return results

    def warm_up(self, fn: Callable, task: Any) -> None:
        """Run ``task`` once on every worker (builds their lines), e.g. before timing."""
        self._pool.map(fn, [task] * self.workers, chunksize=1)

    def close(self) -> None:
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SchedulerUnreachable(ConnectionError, ValueError):
    """The Dask scheduler at the address cannot be reached, or has no workers. Also a
    ``ValueError``: the address is a setting, and programs report bad settings as such."""


DASK_TIMEOUT_S = 5.0
"""How long :class:`DaskEngine` waits for the scheduler to answer, and then for a worker."""


class DaskEngine:
    """Tasks on a Dask cluster (a scheduler address, or a local cluster of processes).

    With an ``address``, connecting waits at most ``timeout_s`` for the scheduler and as long
    again for its first worker; either failing raises :class:`SchedulerUnreachable`."""

    name = "dask"

    def __init__(
        self, workers: int = 2, address: str = "", *, timeout_s: float = DASK_TIMEOUT_S
    ) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as error:
            raise ImportError(
                'the dask engine needs dask.distributed: pip install -e ".[distributed]" '
                "(or choose engine = 'processes')"
            ) from error
        self._cluster = None
        if address:
            self._client = _connect(Client, address, timeout_s)
        else:
            self._cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            self._client = Client(self._cluster)
        self.workers = max(1, len(self._client.scheduler_info().get("workers", {})))

    def map(self, fn: Callable, tasks: Sequence, on_result: OnResult = None) -> list:
        from dask.distributed import as_completed

        futures = self._client.map(fn, list(tasks), pure=False)
        if on_result is not None:
            for future in as_completed(futures):
                on_result(future.result())
        return self._client.gather(futures)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _connect(client_class: Any, address: str, timeout_s: float) -> Any:
    """A client of the scheduler at ``address`` that has at least one worker."""
    try:
        client = client_class(address, timeout=timeout_s)
    except (OSError, TimeoutError) as error:  # refused, unknown host, no answer in time
        raise SchedulerUnreachable(
            f"cannot reach a Dask scheduler at {address} within {timeout_s:g} s ({error}). "
            f"Start one there ('dask scheduler --port PORT' on that host), check the host, the "
            "port and the firewall, or leave dask_address empty for a local cluster"
        ) from error
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (OSError, TimeoutError) as error:
        client.close()
        raise SchedulerUnreachable(
            f"the Dask scheduler at {address} has no workers after {timeout_s:g} s. Start "
            f"'dask worker {address} --nthreads 1' on each host with this project installed"
        ) from error
    return client


def make_engine(
    name: str = "serial", workers: int = 1, address: str = ""
) -> SerialEngine | ProcessEngine | DaskEngine:
    """An engine by name: ``serial``, ``processes`` or ``dask`` (a context manager)."""
    if name == "serial":
        return SerialEngine()
    if name == "processes":
        return ProcessEngine(workers)
    if name == "dask":
        return DaskEngine(workers, address)
    raise ValueError(f"unknown engine '{name}'; choose one of {list(ENGINES)}")
