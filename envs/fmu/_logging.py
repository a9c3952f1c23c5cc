"""Route FMI 2.0 log messages to the unit that produced them.

FMI 2.0 loggers are variadic C functions, which ctypes cannot implement, so FMPy offers a
native proxy (``fmpy.logging.addLoggerProxy``) that formats the message and forwards it to a
Python callback. The proxy keeps that callback in one process-wide slot: every call of
``addLoggerProxy`` replaces it, and a replaced callback that is garbage-collected leaves the
slot dangling (a segmentation fault at the next FMU message). So the process registers one
immortal dispatcher, and each instance passes its own key as ``componentEnvironment``; the
dispatcher hands the message to that instance's sink. Messages from instances we did not
create (FMPy's own ``simulate_fmu``) are printed as FMPy would.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from ctypes import byref
from typing import Any

from fmpy.fmi1 import calloc, free
from fmpy.fmi2 import (
    fmi2CallbackAllocateMemoryTYPE,
    fmi2CallbackFreeMemoryTYPE,
    fmi2CallbackFunctions,
    fmi2CallbackLoggerTYPE,
)
from fmpy.logging import addLoggerProxy

STATUS_NAMES = ["ok", "warning", "discard", "error", "fatal", "pending"]
Sink = Callable[[int, str], None]

_sinks: dict[int, Sink] = {}
_keys = itertools.count(1)
_lock = threading.Lock()


def _dispatch(
    environment: int | None,
    instance_name: bytes | None,
    status: int,
    category: bytes | None,
    message: bytes | None,
) -> None:
    text = message.decode(errors="replace") if message else ""
    sink = _sinks.get(environment or 0)
    if sink is not None:
        sink(status, text)
    else:
        name = instance_name.decode(errors="replace") if instance_name else "?"
        label = STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else str(status)
        print(f"[{label}] {name}: {text}")


_DISPATCHER = fmi2CallbackLoggerTYPE(_dispatch)  # module-level: lives as long as the process
_ALLOCATE = fmi2CallbackAllocateMemoryTYPE(calloc)
_FREE = fmi2CallbackFreeMemoryTYPE(free)


def _proxy_logger() -> Any:
    """Point the proxy's slot at the dispatcher (again, in case someone replaced it) and return
    the proxy function to put into callbacks."""
    template = fmi2CallbackFunctions()
    template.logger = _DISPATCHER
    addLoggerProxy(byref(template))
    return template.logger


def fmi2_callbacks(sink: Sink) -> tuple[fmi2CallbackFunctions, int]:
    """Callbacks for one FMI 2.0 instance whose messages go to ``sink(status, text)``; returns
    them with the key to :func:`forget` when the instance is freed."""
    with _lock:
        key = next(_keys)
        _sinks[key] = sink
        callbacks = fmi2CallbackFunctions()
        callbacks.logger = _proxy_logger()
        callbacks.allocateMemory = _ALLOCATE
        callbacks.freeMemory = _FREE
        callbacks.componentEnvironment = key
    return callbacks, key


def forget(key: int | None) -> None:
    """Stop routing messages of a freed instance."""
    if key is not None:
        with _lock:
            _sinks.pop(key, None)
