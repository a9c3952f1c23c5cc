"""Daemons started as local processes: their environment (this interpreter's ``bin`` first on
``PATH``, a ``FLWR_HOME``), free ports, waiting for a port to listen, and stopping a process
with everything it started.

Both Flower daemons start ``flower-superexec`` from ``PATH``, and stopping one must stop the
ClientApp / ServerApp processes below it too, so a daemon is stopped by process tree (read
from ``/proc`` where there is one), not by its process alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "Daemon",
    "daemon_environment",
    "descendants",
    "executable",
    "free_port",
    "reap",
    "signal_tree",
    "wait_for_port",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes]) -> bool:
    """Whether something listens on ``host:port`` within ``timeout_s``; False at once if
    ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.2)
    return False


def executable(name: str) -> str:
    """``name`` from this interpreter's ``bin`` folder if it is there, else ``name`` (found on
    ``PATH``)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def daemon_environment(flwr_home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with this interpreter's ``bin`` first on PATH
    (``flower-superexec``), ``FLWR_HOME=flwr_home``, one thread per process for torch / BLAS
    (unless set), no runtime dependency installation, unbuffered output; ``extra`` last."""
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    env["FLWR_HOME"] = str(flwr_home)
    env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"] = "1"
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.setdefault(name, "1")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def descendants(pid: int) -> list[int]:
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


def signal_tree(process: subprocess.Popen[bytes], sig: signal.Signals) -> list[int]:
    """Send ``sig`` to ``process`` and everything it started (by process id); the ids below
    it."""
    tree = descendants(process.pid)
    for pid in [process.pid, *tree]:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
    return tree


def reap(pids: Sequence[int], timeout_s: float) -> None:
    """Wait until every process in ``pids`` is gone (collecting our own children); SIGKILL
    those still there after ``timeout_s`` in all."""
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


class Daemon:
    """One started daemon: its process, command and log file (stdout and stderr appended)."""

    def __init__(self, name: str, command: list[str], log: Path, env: Mapping[str, str]) -> None:
        self.name = name
        self.command = command
        self.log = log
        self._handle = log.open("ab")
        self.process: subprocess.Popen[bytes] = subprocess.Popen(
            command, stdout=self._handle, stderr=subprocess.STDOUT, env=dict(env)
        )

    def alive(self) -> bool:
        """Whether the process is running."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log ("" if it cannot be read)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        """SIGTERM (SIGKILL if ``kill``) the process and what it started, SIGKILL what is
        left after ``timeout_s``, and close the log."""
        if self.alive():
            tree = signal_tree(self.process, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                tree += signal_tree(self.process, signal.SIGKILL)
                self.process.wait(timeout=timeout_s)
            reap(tree, timeout_s)
        self._handle.close()
