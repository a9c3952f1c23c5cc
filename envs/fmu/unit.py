"""``FmuUnit``: one instance of any FMI 2.0 / 3.0 FMU, co-simulation or model exchange.

    unit = FmuUnit("Boiler.fmu", start_values={"capacity": 3.0})
    unit.set("u", 1.5)
    unit.step(0.1)
    unit.get("y")
    unit.reset()
    unit.close()

The archive is extracted once per process and shared by every unit made from it.
Capabilities are probed once. ``reset`` goes down a ladder: restore the snapshot taken
right after initialisation → ``fmiReset`` and initialise again → a new instance from
the already extracted directory; ``last_reset`` says which rung was used.
"""

from __future__ import annotations

import ctypes
import difflib
import math
import os
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fmpy import read_model_description
from fmpy.fmi1 import FMICallException

from envs.fmu import _archive, _logging
from envs.fmu.errors import (
    FmuCallError,
    FmuLoadError,
    FmuStateError,
    FmuVariableError,
)
from envs.fmu.model_exchange import ModelExchangeStepper
from envs.fmu.variables import Variable, read_variables

INTERFACES = ("auto", "co_simulation", "model_exchange")
RESET_RUNGS = ("snapshot", "fmi_reset", "reinstantiate")
_STATUS = ["ok", "warning", "discard", "error", "fatal", "pending"]


@dataclass(frozen=True)
class Capabilities:
    """What the FMU can do, read once from its model description."""

    fmi_version: str
    interface: str  # "co_simulation" or "model_exchange"
    can_get_set_state: bool
    can_serialize_state: bool
    variable_step: bool
    model_identifier: str


@dataclass
class Snapshot:
    """An FMU state taken by :meth:`FmuUnit.snapshot`; freed when garbage-collected."""

    state: object
    time: float
    owner: weakref.ReferenceType
    _finalizer: weakref.finalize | None = None


def _choose_interface(md, requested: str) -> str:
    if requested not in INTERFACES:
        raise ValueError(f"interface must be one of {INTERFACES}, not {requested!r}")
    available = []
    if md.coSimulation is not None:
        available.append("co_simulation")
    if md.modelExchange is not None:
        available.append("model_exchange")
    if not available:
        raise FmuLoadError(
            f"{md.modelName}: the FMU offers neither co-simulation nor model "
            "exchange (scheduled execution is not supported)"
        )
    if requested == "auto":
        return available[0]
    if requested not in available:
        raise FmuLoadError(
            f"{md.modelName}: interface {requested!r} is not offered; the FMU offers {available}"
        )
    return requested


def _probe(md, interface: str) -> Capabilities:
    element = md.coSimulation if interface == "co_simulation" else md.modelExchange
    # FMPy maps FMI 3's canGetAndSetFMUState onto the FMI 2 attribute names
    variable_step = True
    if interface == "co_simulation":
        variable_step = bool(getattr(element, "canHandleVariableCommunicationStepSize", True))
    return Capabilities(
        fmi_version=md.fmiVersion,
        interface=interface,
        can_get_set_state=bool(element.canGetAndSetFMUstate),
        can_serialize_state=bool(element.canSerializeFMUstate),
        variable_step=variable_step,
        model_identifier=element.modelIdentifier,
    )


class FmuUnit:
    """One FMU instance with variables addressed by name.

    Parameters:
        fmu: path of an ``.fmu`` archive or of an extracted FMU directory.
        name: instance name (default: the model identifier).
        interface: "auto" (co-simulation when offered), "co_simulation" or "model_exchange".
        solver: for model exchange: "cvode" (FMPy's CVode, default) or "euler".
        solver_step: maximum internal step of the solver in seconds (Euler's fixed step).
        relative_tolerance: CVode's relative tolerance.
        start_values: name → value applied before initialisation on every (re)initialisation.
        start_time: simulation time at initialisation, in seconds.
        reset_ladder: the reset rungs allowed, in order (default all three); drop "snapshot"
            for an FMU whose state handling is unreliable.
    """

    def __init__(
        self,
        fmu: str | Path,
        *,
        name: str | None = None,
        interface: str = "auto",
        solver: str = "cvode",
        solver_step: float | None = None,
        relative_tolerance: float = 1e-6,
        start_values: Mapping[str, float | int | bool] | None = None,
        start_time: float = 0.0,
        reset_ladder: Sequence[str] = RESET_RUNGS,
    ) -> None:
        self.path = Path(fmu)
        self._unzipdir, self._extraction = _archive.acquire(self.path)
        self._fmu = None
        try:
            try:
                self.model_description = read_model_description(self._unzipdir)
            except Exception as error:
                raise FmuLoadError(
                    f"{self.path}: cannot read modelDescription.xml: {error}"
                ) from error
            md = self.model_description
            self.capabilities = _probe(md, _choose_interface(md, interface))
            self.variables: dict[str, Variable] = read_variables(md)
            self.name = name or self.capabilities.model_identifier
            self.start_time = float(start_time)
            self.start_values = dict(start_values or {})
            self._check_values(self.start_values, when="start")
            unknown = set(reset_ladder) - set(RESET_RUNGS)
            if unknown or not reset_ladder:
                raise ValueError(f"reset_ladder must be a non-empty sequence of {RESET_RUNGS}")
            self.reset_ladder = tuple(reset_ladder)
            self._solver_options = dict(
                solver=solver, solver_step=solver_step, relative_tolerance=relative_tolerance
            )
            self._fmi3 = md.fmiVersion.startswith("3")
            self._messages: deque[str] = deque(maxlen=256)
            self._logger_ref = None
            self._log_key = None
            self._library = _archive.ensure_binary(
                self._unzipdir, md, self.capabilities.model_identifier
            )
            self._reset_supported = True
            self.last_reset: str | None = None
            self._instantiate()
            self._initialize(self.start_values)
            self._initial_state = self._get_state() if self.capabilities.can_get_set_state else None
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------
    def _fmpy_class(self):
        co_simulation = self.capabilities.interface == "co_simulation"
        if self._fmi3:
            from fmpy.fmi3 import FMU3Model, FMU3Slave

            return FMU3Slave if co_simulation else FMU3Model
        from fmpy.fmi2 import FMU2Model, FMU2Slave

        return FMU2Slave if co_simulation else FMU2Model

    def _instantiate(self) -> None:
        md = self.model_description
        working_directory = os.getcwd()  # FMPy changes it to load and skips changing back on error
        try:
            self._fmu = self._fmpy_class()(
                guid=md.guid,
                unzipDirectory=self._unzipdir,
                modelIdentifier=self.capabilities.model_identifier,
                instanceName=self.name,
            )
        except Exception as error:
            raise _archive.explain_load_failure(self._library, error) from error
        finally:
            os.chdir(working_directory)
        if self._fmi3:
            from fmpy.fmi3 import fmi3LogMessageCallback

            def log3(_env, status, _category, message):
                self._messages.append(f"[{_STATUS[status]}] {message.decode(errors='replace')}")

            self._logger_ref = fmi3LogMessageCallback(log3)
            self._call("instantiate", self._fmu.instantiate, loggingOn=True, logMessage=log3)
        else:
            self._call(
                "instantiate",
                self._fmu.instantiate,
                loggingOn=True,
                callbacks=self._fmi2_callbacks(),
            )
        self._fast = _FastCalls(self._fmu, self._fmi3)
        self._stepper = None
        if self.capabilities.interface == "model_exchange":
            self._stepper = ModelExchangeStepper(self._fmu, md, **self._solver_options)

    def _fmi2_callbacks(self):
        def sink(status: int, text: str) -> None:
            self._messages.append(f"[{_STATUS[status]}] {text}")

        _logging.forget(self._log_key)
        callbacks, self._log_key = _logging.fmi2_callbacks(sink)
        self._logger_ref = callbacks
        return callbacks

    def _initialize(self, values: Mapping[str, float | int | bool]) -> None:
        fmu = self._fmu
        if not self._fmi3:
            self._call("setupExperiment", fmu.setupExperiment, startTime=self.start_time)
            self._set_values(values)
            self._call("enterInitializationMode", fmu.enterInitializationMode)
        else:
            self._set_values(values)
            self._call(
                "enterInitializationMode", fmu.enterInitializationMode, startTime=self.start_time
            )
        self._call("exitInitializationMode", fmu.exitInitializationMode)
        if self._stepper is not None:
            self._call("event iteration", self._stepper.start, self.start_time)
        self.time = self.start_time

    def reset(self, start_values: Mapping[str, float | int | bool] | None = None) -> str:
        """Return to the state right after initialisation; returns the rung used.

        The constructor's ``start_values``, updated with ``start_values``, are applied again.
        Values of inputs and tunable parameters can be applied after restoring the initial
        snapshot; any other value (a fixed parameter, a start state) needs a fresh
        initialisation, so the ladder starts at ``fmiReset`` then.
        """
        overrides = dict(start_values or {})
        self._check_values(overrides, when="start")
        values = {**self.start_values, **overrides}
        after_init = all(
            self.variables[n].causality == "input" or self.variables[n].variability == "tunable"
            for n in overrides
        )
        if self._initial_state is not None and after_init and "snapshot" in self.reset_ladder:
            # the initial snapshot already holds the constructor's start values
            self._fast.restore(self, self._initial_state)
            self.time = self.start_time
            if self._stepper is not None:
                self._stepper.enter_event_mode()
            if overrides:
                self.set(overrides)
            self.last_reset = "snapshot"
            return self.last_reset
        if self._reset_supported and "fmi_reset" in self.reset_ladder:
            try:
                self._call("reset", self._fmu.reset)
            except FmuCallError:
                self._reset_supported = False
            else:
                self._initialize(values)
                self.last_reset = "fmi_reset"
                return self.last_reset
        self._free_instance()
        self._instantiate()
        self._initialize(values)
        if self.capabilities.can_get_set_state and self._initial_state is not None:
            self._initial_state = self._get_state()
        self.last_reset = "reinstantiate"
        return self.last_reset

    def _free_instance(self) -> None:
        if self._fmu is not None and getattr(self._fmu, "component", None) is not None:
            try:
                self._fmu.freeInstance()
            except Exception:
                pass
        self._fmu = None
        _logging.forget(getattr(self, "_log_key", None))
        self._log_key = None

    def close(self) -> None:
        """Free the instance and give back the extracted directory. Safe to call twice."""
        if getattr(self, "_fmu", None) is not None:
            self._initial_state = None
            self._free_instance()
        if getattr(self, "_unzipdir", None) is not None:
            _archive.release(self._extraction)
            self._unzipdir = None

    def __enter__(self) -> FmuUnit:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- calls ---------------------------------------------------------------
    def _call(self, what: str, function, *args, **kwargs):
        self._messages.clear()
        try:
            return function(*args, **kwargs)
        except FMICallException as error:
            raise FmuCallError(
                self.name,
                error.function,
                _STATUS[error.status] if 0 <= error.status < len(_STATUS) else str(error.status),
                list(self._messages),
            ) from error
        except FmuCallError:
            raise
        except Exception as error:
            if "Failed to instantiate" in str(error):
                raise FmuCallError(self.name, what, "error", list(self._messages)) from error
            raise

    @property
    def log(self) -> list[str]:
        """Messages the FMU logged during the last call."""
        return list(self._messages)

    # -- variables -----------------------------------------------------------
    def variable(self, name: str) -> Variable:
        try:
            return self.variables[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.variables), n=3, cutoff=0.5)
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise FmuVariableError(f"{self.name} has no variable '{name}'{hint}") from None

    def names(self, causality: str | None = None) -> list[str]:
        """Variable names in model-description order, optionally of one causality."""
        return [n for n, v in self.variables.items() if causality in (None, v.causality)]

    def _check_values(self, values: Mapping[str, float | int | bool], when: str) -> None:
        for name, value in values.items():
            variable = self.variable(name)
            if when == "set" and variable.causality not in ("input", "parameter"):
                raise FmuVariableError(
                    f"'{name}' has causality {variable.causality}; only "
                    "inputs and parameters can be set"
                )
            variable.check(value)

    def set(
        self,
        name_or_values: str | Mapping[str, float | int | bool],
        value: float | int | bool | None = None,
    ) -> None:
        """Set one variable (``set("u", 1.0)``) or several (``set({"u": 1.0, "k": 2})``).

        Every value is checked against the model description first: an unknown name, a NaN or
        an out-of-range value raises FmuVariableError and nothing is set.
        """
        values = (
            {name_or_values: value} if isinstance(name_or_values, str) else dict(name_or_values)
        )
        if not values:
            return
        self._check_values(values, when="set")
        if self._stepper is not None:
            if any(self.variables[n].variability != "continuous" for n in values):
                self._call("enterEventMode", self._stepper.enter_event_mode)
            else:
                self._stepper.inputs_changed()
        self._set_values(values)

    def _set_values(self, values: Mapping[str, float | int | bool]) -> None:
        groups: dict[str, tuple[list[int], list]] = {}
        for name, value in values.items():
            variable = self.variables[name]
            refs, vals = groups.setdefault(variable.type, ([], []))
            refs.append(variable.value_reference)
            vals.append(value)
        for type_name, (refs, vals) in groups.items():
            setter = getattr(self._fmu, "set" + _fmpy_type(type_name, self._fmi3))
            converted = [_convert(type_name, v) for v in vals]
            self._call("set" + type_name, setter, refs, converted)

    def get(self, name: str) -> float | int | bool:
        """Current value of one variable."""
        variable = self.variable(name)
        getter = getattr(self._fmu, "get" + _fmpy_type(variable.type, self._fmi3))
        value = self._call("get" + variable.type, getter, [variable.value_reference])[0]
        return bool(value) if variable.kind == "Boolean" else value

    def get_many(self, names: Iterable[str]) -> dict[str, float | int | bool]:
        return {name: self.get(name) for name in names}

    # -- stepping ------------------------------------------------------------
    def step(self, dt: float, *, time: float | None = None) -> float:
        """Advance by ``dt`` seconds from ``time`` (default: the unit's time); returns the new
        time. Pass ``time`` from an exact clock (the co-simulation's integer ticks) so that no
        float drift accumulates."""
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"step size must be a positive finite number of seconds, not {dt}")
        now = self.time if time is None else float(time)
        if self._stepper is not None:
            self._call("model exchange step", self._stepper.step, now, now + dt)
        else:
            self._fast.do_step(self, now, dt)
        self.time = now + dt
        return self.time

    # -- states --------------------------------------------------------------
    def _require_state(self) -> None:
        if not self.capabilities.can_get_set_state:
            raise FmuStateError(
                f"{self.name}: the FMU declares canGetAndSetFMUstate=false, so it cannot take "
                "snapshots. Use reset() to restart it, or re-run from the start to branch."
            )

    def _get_state(self):
        return self._call(
            "getFMUstate", self._fmu.getFMUState if self._fmi3 else self._fmu.getFMUstate
        )

    def _set_state(self, state) -> None:
        setter = self._fmu.setFMUState if self._fmi3 else self._fmu.setFMUstate
        setter(state)

    def snapshot(self) -> Snapshot:
        """Capture the whole FMU state (for what-if branching)."""
        self._require_state()
        if self._stepper is not None:
            self._stepper.inputs_changed()  # both branches restart the solver from here
        state = self._get_state()
        snap = Snapshot(state=state, time=self.time, owner=weakref.ref(self))
        free = self._fmu.freeFMUState if self._fmi3 else self._fmu.freeFMUstate
        snap._finalizer = weakref.finalize(snap, _free_state, weakref.ref(self), free, state)
        return snap

    def restore(self, snapshot: Snapshot) -> None:
        """Return to a snapshot taken from this unit."""
        self._require_state()
        if snapshot.owner() is not self:
            raise FmuStateError(f"{self.name}: the snapshot was taken from another unit")
        self._call("setFMUstate", self._set_state, snapshot.state)
        self.time = snapshot.time
        if self._stepper is not None:
            self._stepper.enter_event_mode()

    def serialize(self, snapshot: Snapshot) -> bytes:
        """Bytes of a snapshot, for saving to disk (needs canSerializeFMUstate)."""
        if not self.capabilities.can_serialize_state:
            raise FmuStateError(f"{self.name}: the FMU declares canSerializeFMUstate=false")
        serialize = self._fmu.serializeFMUState if self._fmi3 else self._fmu.serializeFMUstate
        return bytes(self._call("serializeFMUstate", serialize, snapshot.state))

    def deserialize(self, data: bytes, time: float) -> Snapshot:
        """A snapshot from :meth:`serialize` bytes, restorable with :meth:`restore`."""
        if not self.capabilities.can_serialize_state:
            raise FmuStateError(f"{self.name}: the FMU declares canSerializeFMUstate=false")
        deserialize = self._fmu.deserializeFMUState if self._fmi3 else self._fmu.deSerializeFMUstate
        state = self._call("deSerializeFMUstate", deserialize, data)
        snap = Snapshot(state=state, time=time, owner=weakref.ref(self))
        free = self._fmu.freeFMUState if self._fmi3 else self._fmu.freeFMUstate
        snap._finalizer = weakref.finalize(snap, _free_state, weakref.ref(self), free, state)
        return snap

    # -- fast real I/O ---------------------------------------------------------
    def real_io(self, inputs: Sequence[str], outputs: Sequence[str]) -> RealIO:
        """A pre-bound exchange of Real inputs and outputs for tight loops (envs, benchmarks)."""
        return RealIO(self, inputs, outputs)


def _free_state(owner_ref, free, state) -> None:
    owner = owner_ref()
    if owner is not None and owner._fmu is not None:
        try:
            free(state)
        except Exception:
            pass


def _fmpy_type(type_name: str, fmi3: bool) -> str:
    if not fmi3:
        return {"Enumeration": "Integer"}.get(type_name, type_name)
    return {"Enumeration": "Int64"}.get(type_name, type_name)


def _convert(type_name: str, value):
    if type_name == "Boolean":
        return bool(value)
    if type_name in ("Real", "Float64", "Float32"):
        return float(value)
    return int(value)


_P = ctypes.c_void_p


def _raw(function, restype, *argtypes):
    """A bare prototype of an FMU function: pointers are passed as plain integers, which makes
    each call about half as costly as through FMPy's argument-converting wrapper."""
    address = ctypes.cast(function, ctypes.c_void_p).value
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


class _FastCalls:
    """Direct C calls for the per-step hot path (set/get Real, doStep, set state)."""

    def __init__(self, fmu, fmi3: bool) -> None:
        functions = fmu._functions  # FMPy's bound C functions (fmpy >=0.3.20 <0.4)
        self.fmi3 = fmi3
        self.component = fmu.component
        c_int, size = ctypes.c_int, ctypes.c_size_t
        if fmi3:
            self.set_real = _raw(functions["fmi3SetFloat64"], c_int, _P, _P, size, _P, size)
            self.get_real = _raw(functions["fmi3GetFloat64"], c_int, _P, _P, size, _P, size)
            self.set_state = _raw(functions["fmi3SetFMUState"], c_int, _P, _P)
            step = functions.get("fmi3DoStep")
            if step is not None:
                self.do_step_c = _raw(
                    step, c_int, _P, ctypes.c_double, ctypes.c_double, ctypes.c_bool, _P, _P, _P, _P
                )
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

    def check(self, unit: FmuUnit, function: str, status: int) -> None:
        if status > 1:  # error, fatal (and discard / pending, which a synchronous step must not)
            raise FmuCallError(
                unit.name,
                function,
                _STATUS[status] if status < len(_STATUS) else str(status),
                list(unit._messages),
            )

    def reals(self, function, vr_address: int, count: int, buffer_address: int) -> int:
        if self.fmi3:
            return function(self.component, vr_address, count, buffer_address, count)
        return function(self.component, vr_address, count, buffer_address)

    def restore(self, unit: FmuUnit, state) -> None:
        unit._messages.clear()
        self.check(unit, "setFMUstate", self.set_state(self.component, state.value))

    def do_step(self, unit: FmuUnit, time: float, dt: float) -> None:
        unit._messages.clear()
        if self.fmi3:
            status = self.do_step_c(self.component, time, dt, True, *self._flag_addresses)
        else:
            status = self.do_step_c(self.component, time, dt, 1)
        if status:
            self.check(unit, "doStep", status)


class RealIO:
    """Writes a vector of Real inputs and reads a vector of Real outputs with one C call each."""

    def __init__(self, unit: FmuUnit, inputs: Sequence[str], outputs: Sequence[str]) -> None:
        self.unit = unit
        for name in [*inputs, *outputs]:
            if unit.variable(name).type not in ("Real", "Float64"):
                raise FmuVariableError(
                    f"'{name}' is {unit.variables[name].type}; RealIO "
                    "exchanges Real/Float64 variables only"
                )
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self._in_vr = (ctypes.c_uint32 * len(inputs))(
            *[unit.variables[n].value_reference for n in inputs]
        )
        self._out_vr = (ctypes.c_uint32 * len(outputs))(
            *[unit.variables[n].value_reference for n in outputs]
        )
        self._in = np.zeros(len(inputs))
        self._out = np.zeros(len(outputs))
        self._in_address, self._out_address = self._in.ctypes.data, self._out.ctypes.data
        self._in_vr_address = ctypes.addressof(self._in_vr)
        self._out_vr_address = ctypes.addressof(self._out_vr)
        self._low = np.array([_bound(unit.variables[n].min, -np.inf) for n in inputs])
        self._high = np.array([_bound(unit.variables[n].max, np.inf) for n in inputs])

    def write(self, values: np.ndarray) -> None:
        """Set every input; NaN or out-of-range values raise FmuVariableError, nothing is set."""
        values = np.asarray(values, dtype=np.float64)
        # NaN fails both comparisons, so one test covers NaN, infinities and bounds
        inside = (values >= self._low) & (values <= self._high)
        if not inside.all():
            index = int(np.flatnonzero(~inside)[0])
            self.unit.variable(self.inputs[index]).check(float(values[index]))
        self.write_checked(values)

    def write_checked(self, values: np.ndarray) -> None:
        """:meth:`write` for values the caller has already checked against the bounds."""
        if not len(values):
            return
        unit, fast = self.unit, self.unit._fast
        if unit._stepper is not None:
            unit.set(dict(zip(self.inputs, values.tolist(), strict=True)))
            return
        self._in[:] = values
        unit._messages.clear()
        status = fast.reals(fast.set_real, self._in_vr_address, len(self._in), self._in_address)
        if status:
            fast.check(unit, "setReal", status)

    def read(self) -> np.ndarray:
        """The outputs now (a new array)."""
        if not self.outputs:
            return np.zeros(0)
        fast = self.unit._fast
        status = fast.reals(fast.get_real, self._out_vr_address, len(self._out), self._out_address)
        if status:
            fast.check(self.unit, "getReal", status)
        return self._out.copy()

    def exchange(
        self, values: np.ndarray, dt: float, time: float | None = None, *, checked: bool = False
    ) -> np.ndarray:
        """Write the inputs, step by ``dt`` and read the outputs (one env step).
        ``checked=True`` skips the bounds check the caller has already made."""
        if checked:
            self.write_checked(values)
        else:
            self.write(values)
        self.unit.step(dt, time=time)
        return self.read()


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)
