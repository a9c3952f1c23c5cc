"""The per-step hot path of an :class:`envs.fmu.FmuUnit`: direct ctypes calls into the FMU.

FMPy's wrappers convert every argument on every call; a tight env loop cannot afford that.
This module binds bare C prototypes to the FMU's functions (through FMPy's table of loaded
functions, ``fmu._functions``, an FMPy internal: fmpy >= 0.3.27, < 0.4; older releases lack
it) and passes pointers as plain integers. It is the one place that depends on FMPy internals
and knows FMI calling conventions beyond FMPy's public API:

- :class:`FastCalls`: set/get Float64, doStep (with the FMU's request to stop), set state.
- :class:`RealIO`: a pre-bound exchange of a vector of Real inputs and outputs (scalars and
  FMI 3 arrays, flattened in order) with one C call each way.

It does not import :mod:`envs.fmu.unit`; it talks to a unit through :class:`UnitLike`.
"""

from __future__ import annotations

import ctypes
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from envs.fmu._logging import STATUS_NAMES
from envs.fmu.errors import (
    FmuCallError,
    FmuDiscardError,
    FmuStoppedError,
    FmuVariableError,
    StopRequest,
)
from envs.fmu.variables import Value, Variable

_P = ctypes.c_void_p
_FMI2_LAST_SUCCESSFUL_TIME = 2  # fmi2StatusKind
_FMI2_TERMINATED = 3
_OK, _WARNING, _DISCARD = 0, 1, 2


class UnitLike(Protocol):
    """What the hot path needs of a unit (implemented by :class:`envs.fmu.FmuUnit`)."""

    name: str
    variables: dict[str, Variable]
    stop_request: StopRequest | None
    _messages: deque[str]
    _stepper: Any
    _fast: FastCalls

    def variable(self, name: str) -> Variable: ...

    def set(self, name_or_values: str | Mapping[str, Value], value: Value | None = None) -> None:
        """Set variables by name."""

    def step(self, dt: float, *, time: float | None = None) -> float:
        """Advance by ``dt`` seconds."""


def status_name(status: int) -> str:
    return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else str(status)


def fmpy_type(type_name: str, fmi3: bool) -> str:
    """The suffix of FMPy's getter/setter for an FMI type (``getReal``, ``getInt64``...)."""
    if not fmi3:
        return {"Enumeration": "Integer"}.get(type_name, type_name)
    return {"Enumeration": "Int64"}.get(type_name, type_name)


def convert(type_name: str, value: Any) -> float | int | bool:
    """A Python scalar of the FMI type's kind."""
    if type_name == "Boolean":
        return bool(value)
    if type_name in ("Real", "Float64", "Float32"):
        return float(value)
    return int(value)


def flatten(variable: Variable, value: Value) -> list[float | int | bool]:
    """The values FMI passes for ``variable``: one scalar, or an array's elements row-major."""
    if not variable.is_array:
        return [convert(variable.type, value)]
    return [convert(variable.type, v) for v in np.asarray(value).reshape(-1).tolist()]


def _raw(function: Any, restype: Any, *argtypes: Any) -> Callable[..., Any]:
    """A bare prototype of an FMU function: pointers are passed as plain integers, which makes
    each call about half as costly as through FMPy's argument-converting wrapper."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    if address is None:
        raise FmuCallError("?", str(function), "error", ["the FMU function has no address"])
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


class FastCalls:
    """Direct C calls for the per-step hot path (set/get Float64, doStep, set state)."""

    def __init__(self, fmu: Any, fmi3: bool) -> None:
        functions = fmu._functions  # FMPy's bound C functions (fmpy >=0.3.27 <0.4)
        self.fmi3 = fmi3
        self.component = fmu.component
        c_int, size = ctypes.c_int, ctypes.c_size_t
        self.do_step_c: Callable[..., int] | None = None
        if fmi3:
            self.set_real = _raw(functions["fmi3SetFloat64"], c_int, _P, _P, size, _P, size)
            self.get_real = _raw(functions["fmi3GetFloat64"], c_int, _P, _P, size, _P, size)
            self.set_state = _raw(functions["fmi3SetFMUState"], c_int, _P, _P)
            step = functions.get("fmi3DoStep")
            if step is not None:
                self.do_step_c = _raw(
                    step, c_int, _P, ctypes.c_double, ctypes.c_double, ctypes.c_bool, _P, _P, _P, _P
                )
            # out-arguments of fmi3DoStep: eventHandlingNeeded, terminateSimulation,
            # earlyReturn, lastSuccessfulTime
            self._flags = (ctypes.c_bool * 3)()
            self._last_time = ctypes.c_double()
            base = ctypes.addressof(self._flags)
            self._flag_addresses = (base, base + 1, base + 2, ctypes.addressof(self._last_time))
        else:
            self.set_real = _raw(functions["fmi2SetReal"], c_int, _P, _P, size, _P)
            self.get_real = _raw(functions["fmi2GetReal"], c_int, _P, _P, size, _P)
            self.set_state = _raw(functions["fmi2SetFMUstate"], c_int, _P, _P)
            step = functions.get("fmi2DoStep")
            if step is not None:
                self.do_step_c = _raw(step, c_int, _P, ctypes.c_double, ctypes.c_double, c_int)
                self._boolean_status = _raw(functions["fmi2GetBooleanStatus"], c_int, _P, c_int, _P)
                self._real_status = _raw(functions["fmi2GetRealStatus"], c_int, _P, c_int, _P)

    def check(self, unit: UnitLike, function: str, status: int) -> None:
        """Raise :class:`FmuCallError` for error and fatal (and for discard / pending, which a
        synchronous call other than a step must not return)."""
        if status > _WARNING:
            raise FmuCallError(unit.name, function, status_name(status), list(unit._messages))

    def reals(
        self,
        function: Callable[..., int],
        vr_address: int,
        count: int,
        buffer_address: int,
        values: int | None = None,
    ) -> int:
        """Call a Float64/Real getter or setter on ``count`` value references whose values
        (``values`` of them: more than ``count`` when arrays are among them) are at
        ``buffer_address``."""
        if self.fmi3:
            return function(
                self.component,
                vr_address,
                count,
                buffer_address,
                count if values is None else values,
            )
        return function(self.component, vr_address, count, buffer_address)

    def restore(self, unit: UnitLike, state: Any) -> None:
        unit._messages.clear()
        self.check(unit, "setFMUstate", self.set_state(self.component, state.value))

    def do_step(self, unit: UnitLike, time: float, dt: float) -> float | None:
        """One co-simulation step from ``time``. Returns ``None`` when the step completed, or
        the time the FMU reached when it asked to stop (FMI 2: ``fmi2Discard`` with
        ``fmi2Terminated``; FMI 3: ``terminateSimulation``). A discard without that request
        raises :class:`FmuDiscardError`, error and fatal :class:`FmuCallError`."""
        unit._messages.clear()
        if self.do_step_c is None:
            raise FmuCallError(unit.name, "doStep", "error", ["the FMU has no doStep function"])
        if self.fmi3:
            status = self.do_step_c(self.component, time, dt, True, *self._flag_addresses)
            if status > _DISCARD:
                self.check(unit, "fmi3DoStep", status)
            if self._flags[1]:  # terminateSimulation
                reached = self._last_time.value
                return reached if time <= reached <= time + dt else time + dt
            if status == _DISCARD:
                raise FmuDiscardError(
                    unit.name,
                    "fmi3DoStep",
                    "discard",
                    list(unit._messages),
                    "not terminated: terminateSimulation is false, so the FMU failed the step "
                    "rather than asking to stop",
                )
            return None
        status = self.do_step_c(self.component, time, dt, 1)
        if status == _DISCARD:
            return self._fmi2_discarded(unit, time, dt)
        if status > _WARNING:
            self.check(unit, "fmi2DoStep", status)
        return None

    def _fmi2_discarded(self, unit: UnitLike, time: float, dt: float) -> float:
        messages = list(unit._messages)
        terminated = ctypes.c_int(0)
        status = self._boolean_status(
            self.component, _FMI2_TERMINATED, ctypes.addressof(terminated)
        )
        if status > _WARNING or not terminated.value:
            why = (
                f"fmi2GetBooleanStatus(fmi2Terminated) returned {status_name(status)}"
                if status > _WARNING
                else "fmi2GetBooleanStatus(fmi2Terminated) is false"
            )
            raise FmuDiscardError(
                unit.name,
                "fmi2DoStep",
                "discard",
                messages,
                f"not terminated: {why}, so the FMU failed the step rather than asking to stop",
            )
        reached = ctypes.c_double(time + dt)
        status = self._real_status(
            self.component, _FMI2_LAST_SUCCESSFUL_TIME, ctypes.addressof(reached)
        )
        if status > _WARNING or not time <= reached.value <= time + dt:
            return time + dt
        return reached.value


class RealIO:
    """Writes a vector of Real inputs and reads a vector of Real outputs with one C call each.

    Array variables (FMI 3) take their elements in row-major order, so the vectors have
    ``sum(variable.size)`` entries; ``input_sizes`` and ``output_sizes`` say how many each.
    """

    def __init__(self, unit: UnitLike, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self.unit = unit
        for name in [*inputs, *outputs]:
            if unit.variable(name).type not in ("Real", "Float64"):
                raise FmuVariableError(
                    f"'{name}' is {unit.variables[name].type}; RealIO "
                    "exchanges Real/Float64 variables only"
                )
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        in_vars = [unit.variables[n] for n in inputs]
        out_vars = [unit.variables[n] for n in outputs]
        self.input_sizes = [v.size for v in in_vars]
        self.output_sizes = [v.size for v in out_vars]
        self._in_vr = (ctypes.c_uint32 * len(inputs))(*[v.value_reference for v in in_vars])
        self._out_vr = (ctypes.c_uint32 * len(outputs))(*[v.value_reference for v in out_vars])
        self._in = np.zeros(sum(self.input_sizes))
        self._out = np.zeros(sum(self.output_sizes))
        self._in_address, self._out_address = self._in.ctypes.data, self._out.ctypes.data
        self._in_vr_address = ctypes.addressof(self._in_vr)
        self._out_vr_address = ctypes.addressof(self._out_vr)
        self._element_names = [
            name if size == 1 and not unit.variables[name].is_array else f"{name}[{i}]"
            for name, size in zip(self.inputs, self.input_sizes, strict=True)
            for i in range(size)
        ]
        self._low = np.repeat([_bound(v.min, -np.inf) for v in in_vars], self.input_sizes).astype(
            np.float64
        )
        self._high = np.repeat([_bound(v.max, np.inf) for v in in_vars], self.input_sizes).astype(
            np.float64
        )

    def write(self, values: np.ndarray) -> None:
        """Set every input; NaN or out-of-range values raise FmuVariableError, nothing is set."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.shape != self._in.shape:
            raise FmuVariableError(
                f"{len(values)} values for {len(self._in)} input values {self._element_names}"
            )
        # NaN fails both comparisons, so one test covers NaN, infinities and bounds
        inside = (values >= self._low) & (values <= self._high)
        if not inside.all():
            index = int(np.flatnonzero(~inside)[0])
            name = self._element_names[index].partition("[")[0]
            variable = self.unit.variable(name)
            if variable.is_array:
                variable.check(self._unflatten_input(values, name))
            variable.check(float(values[index]))
        self.write_checked(values)

    def _unflatten_input(self, values: np.ndarray, name: str) -> np.ndarray:
        index = self.inputs.index(name)
        start = sum(self.input_sizes[:index])
        variable = self.unit.variables[name]
        return values[start : start + variable.size].reshape(variable.shape)

    def write_checked(self, values: np.ndarray) -> None:
        """:meth:`write` for values the caller has already checked against the bounds."""
        if not len(values):
            return
        unit, fast = self.unit, self.unit._fast
        if unit._stepper is not None:
            unit.set({n: self._unflatten_input(values, n) for n in self.inputs})
            return
        self._in[:] = values
        unit._messages.clear()
        status = fast.reals(
            fast.set_real, self._in_vr_address, len(self.inputs), self._in_address, len(self._in)
        )
        if status:
            fast.check(unit, "setReal", status)

    def read(self) -> np.ndarray:
        """The outputs now (a new flat array)."""
        if not self.outputs:
            return np.zeros(0)
        fast = self.unit._fast
        status = fast.reals(
            fast.get_real,
            self._out_vr_address,
            len(self.outputs),
            self._out_address,
            len(self._out),
        )
        if status:
            fast.check(self.unit, "getReal", status)
        return self._out.copy()

    def exchange(
        self, values: np.ndarray, dt: float, time: float | None = None, *, checked: bool = False
    ) -> np.ndarray:
        """Write the inputs, step by ``dt`` and read the outputs (one env step).
        ``checked=True`` skips the bounds check the caller has already made. When the FMU asks
        to stop during the step, the unit records it (``unit.stop_request``) and the outputs
        are those at the time it stopped; a further exchange raises FmuStoppedError."""
        if self.unit.stop_request is not None:
            raise FmuStoppedError(self.unit.stop_request.refusal())
        if checked:
            self.write_checked(values)
        else:
            self.write(values)
        self.unit.step(dt, time=time)
        return self.read()


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)
