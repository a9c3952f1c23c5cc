"""The per-step hot path of an :class:`envs.fmu.FmuUnit`: direct ctypes calls into the FMU.

FMPy's wrappers convert every argument on every call; a tight env loop cannot afford that.
This module binds bare C prototypes to the FMU's functions (through FMPy's table of loaded
functions, ``fmu._functions``, an FMPy internal: fmpy >= 0.3.27, < 0.4; older releases lack
it) and passes pointers as plain integers. It is the one place that depends on FMPy internals
and knows FMI calling conventions beyond FMPy's public API:

- :class:`FastCalls`: set/get Float64, doStep (with the FMU's request to stop), set state.
- :class:`RealIO`: a pre-bound exchange of a vector of Real inputs and outputs (scalars and
  FMI 3 arrays, flattened in order) with one C call each way.
- :class:`ScalarInput`: one FMI 2 Integer or Boolean input (a mode, a reset edge) set with one
  C call.

The C calls' arguments are bound once per FMU instance (a reset that re-instantiates the FMU
makes a new :class:`FastCalls`, and every pre-bound exchange re-binds to it on its next call).

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
    """Direct C calls for the per-step hot path (set/get Float64, doStep, set state; FMI 2 also
    set Integer/Boolean)."""

    def __init__(self, fmu: Any, fmi3: bool) -> None:
        functions = fmu._functions  # FMPy's bound C functions (fmpy >=0.3.27 <0.4)
        self.fmi3 = fmi3
        self.component = fmu.component
        c_int, size = ctypes.c_int, ctypes.c_size_t
        self.do_step_c: Callable[..., int] | None = None
        self.set_integer: Callable[..., int] | None = None  # FMI 2 only (ScalarInput)
        self.set_boolean: Callable[..., int] | None = None
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
            self.set_integer = _raw(functions["fmi2SetInteger"], c_int, _P, _P, size, _P)
            self.set_boolean = _raw(functions["fmi2SetBoolean"], c_int, _P, _P, size, _P)
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
        # ctypes buffers with numpy views of the same memory: numpy for vectors, ctypes for
        # scalars and lists (no numpy call per element)
        self._n_in, self._n_out = sum(self.input_sizes), sum(self.output_sizes)
        self._in_c = (ctypes.c_double * max(1, self._n_in))()
        self._out_c = (ctypes.c_double * max(1, self._n_out))()
        self._in = np.ctypeslib.as_array(self._in_c)[: self._n_in]
        self._out = np.ctypeslib.as_array(self._out_c)[: self._n_out]
        self._in_address, self._out_address = self._in.ctypes.data, self._out.ctypes.data
        self._in_vr_address = ctypes.addressof(self._in_vr)
        self._out_vr_address = ctypes.addressof(self._out_vr)
        self._bound_to: FastCalls | None = None
        self._set_args: tuple[Any, ...] = ()
        self._get_args: tuple[Any, ...] = ()
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

    def _bind(self) -> FastCalls:
        """The unit's current :class:`FastCalls`, with this exchange's C arguments bound to it."""
        fast = self.unit._fast
        if fast is not self._bound_to:
            n_in, n_out = len(self.inputs), len(self.outputs)
            self._set_args = (fast.component, self._in_vr_address, n_in, self._in_address)
            self._get_args = (fast.component, self._out_vr_address, n_out, self._out_address)
            if fast.fmi3:  # FMI 3 also takes the number of values (arrays have several)
                self._set_args += (self._n_in,)
                self._get_args += (self._n_out,)
            self._bound_to = fast
        return fast

    def write_checked(self, values: np.ndarray | Sequence[float]) -> None:
        """:meth:`write` for values the caller has already checked against the bounds."""
        if not self._n_in:
            return
        unit = self.unit
        if unit._stepper is not None:
            unit.set({n: self._unflatten_input(np.asarray(values), n) for n in self.inputs})
            return
        self._in[:] = values
        self._set()

    def write_scalar_checked(self, value: float) -> None:
        """:meth:`write_checked` for an exchange of exactly one Real input value."""
        unit = self.unit
        if unit._stepper is not None or self._n_in != 1:
            self.write_checked([value])
            return
        self._in_c[0] = value
        self._set()

    def _set(self) -> None:
        fast = self._bind()
        self.unit._messages.clear()
        status = fast.set_real(*self._set_args)
        if status:
            fast.check(self.unit, "setReal", status)

    def _get(self) -> None:
        fast = self._bind()
        status = fast.get_real(*self._get_args)
        if status:
            fast.check(self.unit, "getReal", status)

    def read(self) -> np.ndarray:
        """The outputs now (a new flat array)."""
        if not self._n_out:
            return np.zeros(0)
        self._get()
        return self._out.copy()

    def read_list(self) -> list[float]:
        """The outputs now, as a new list of Python floats (the same values as :meth:`read`)."""
        if not self._n_out:
            return []
        self._get()
        return self._out_c[: self._n_out]

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


class ScalarInput:
    """Sets one scalar Integer, Enumeration or Boolean input with one C call (FMI 2
    co-simulation); for other FMUs (FMI 3, model exchange) it goes through ``unit.set``, which
    does the same more slowly."""

    def __init__(self, unit: UnitLike, name: str) -> None:
        variable = unit.variable(name)
        if variable.is_array or variable.kind not in ("Integer", "Boolean"):
            raise FmuVariableError(
                f"'{name}' is {variable.type}{' array' if variable.is_array else ''}; "
                "ScalarInput sets scalar Integer, Enumeration and Boolean variables only"
            )
        if variable.causality not in ("input", "parameter"):
            raise FmuVariableError(
                f"'{name}' has causality {variable.causality}; only inputs and parameters can "
                "be set"
            )
        self.unit, self.name, self.variable = unit, name, variable
        self._boolean = variable.kind == "Boolean"
        self._vr = (ctypes.c_uint32 * 1)(variable.value_reference)
        self._value = (ctypes.c_int * 1)()  # fmi2Integer and fmi2Boolean are C ints
        self._bound_to: FastCalls | None = None
        self._args: tuple[Any, ...] = ()

    def write(self, value: Value) -> None:
        """Set the input; a value outside the variable's range raises FmuVariableError."""
        self.variable.check(value)
        self.write_checked(value)

    def write_checked(self, value: Value) -> None:
        """:meth:`write` for a value the caller has already checked."""
        unit = self.unit
        fast = unit._fast
        if fast is not self._bound_to:
            vr, value_address = ctypes.addressof(self._vr), ctypes.addressof(self._value)
            self._args = (fast.component, vr, 1, value_address)
            self._bound_to = fast
        if fast.fmi3 or unit._stepper is not None:
            unit.set(self.name, value)
            return
        self._value[0] = (1 if value else 0) if self._boolean else int(value)
        unit._messages.clear()
        setter = fast.set_boolean if self._boolean else fast.set_integer
        assert setter is not None  # bound for every FMI 2 FMU
        status = setter(*self._args)
        if status:
            fast.check(unit, "setBoolean" if self._boolean else "setInteger", status)


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)
