"""``FmuUnit``: one instance of any FMI 2.0 / 3.0 FMU, co-simulation or model exchange.

    unit = FmuUnit("Boiler.fmu", start_values={"capacity": 3.0})
    unit.set("u", 1.5)
    unit.step(0.1)
    unit.get("y")
    unit.reset()
    unit.close()

The archive is extracted once per process and shared by every unit made from it.
Capabilities are probed once (:mod:`envs.fmu.capabilities`). ``reset`` goes down a ladder:
initial snapshot → ``fmiReset`` → a new instance (:mod:`envs.fmu.states`); ``last_reset``
says which rung was used. After a reset on the reinstantiate rung, older snapshots are refused.

An FMU may ask to end the simulation during a step; the unit then records a
:class:`envs.fmu.StopRequest` in ``stop_request`` (``terminated`` is true), its ``time`` is
where the FMU stopped, and a further ``step`` raises :class:`envs.fmu.FmuStoppedError`
until ``reset()`` or ``restore()``. A step that returns ``fmiDiscard`` without that request
raises :class:`envs.fmu.FmuDiscardError`.

FMI 3 array variables are read and written whole: ``get`` returns an array of the variable's
shape and ``set`` takes one.

The per-step C calls live in :mod:`envs.fmu.fast_io`; initialisation, snapshots and the reset
ladder in :mod:`envs.fmu.states`; this module is the lifecycle and the public API.
"""

from __future__ import annotations

import difflib
import math
import os
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fmpy import read_model_description
from fmpy.fmi1 import FMICallException

from envs.fmu import _archive, _logging, states
from envs.fmu.capabilities import INTERFACES, Capabilities, choose_interface, fmpy_class, probe
from envs.fmu.errors import (
    FmuCallError,
    FmuLoadError,
    FmuStoppedError,
    FmuVariableError,
    StopRequest,
)
from envs.fmu.fast_io import FastCalls, RealIO, ScalarInput, flatten, fmpy_type, status_name
from envs.fmu.model_exchange import ModelExchangeStepper, TerminationRequested
from envs.fmu.states import RESET_RUNGS, Snapshot
from envs.fmu.variables import Value, Variable, read_variables

__all__ = ["INTERFACES", "RESET_RUNGS", "Capabilities", "FmuUnit", "Snapshot"]

STRUCTURAL = "structuralParameter"


class FmuUnit:
    """One FMU instance with variables addressed by name.

    Parameters:
        fmu: path of an ``.fmu`` archive or of an extracted FMU directory.
        name: instance name (default: the model identifier).
        interface: "auto" (co-simulation when offered), "co_simulation" or "model_exchange".
        solver: for model exchange: "cvode" (FMPy's CVode, default) or "euler".
        solver_step: maximum internal step of the solver in seconds (Euler's fixed step).
        relative_tolerance: CVode's relative tolerance.
        start_values: name → value applied before initialisation on every (re)initialisation;
            structural parameters (FMI 3) among them set the shapes of array variables.
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
        start_values: Mapping[str, Value] | None = None,
        start_time: float = 0.0,
        reset_ladder: Sequence[str] = RESET_RUNGS,
    ) -> None:
        self.path = Path(fmu)
        self._unzipdir: str | None = None
        self._unzipdir, self._extraction = _archive.acquire(self.path)
        self._fmu: Any = None
        self._initial_state: Any = None
        self._log_key: int | None = None
        try:
            try:
                self.model_description: Any = read_model_description(self._unzipdir)
            except Exception as error:
                raise FmuLoadError(
                    f"{self.path}: cannot read modelDescription.xml: {error}"
                ) from error
            md = self.model_description
            self.capabilities = probe(md, choose_interface(md, interface))
            self.variables: dict[str, Variable] = read_variables(md)
            self.name = name or self.capabilities.model_identifier
            self.start_time = float(start_time)
            self.start_values: dict[str, Value] = dict(start_values or {})
            structural = {n: v for n, v in self.start_values.items() if self._is_structural(n)}
            if structural:  # shapes of arrays follow the structural parameters given
                self.variables = read_variables(md, structural)  # type: ignore[arg-type]
            self._check_values(self.start_values, when="start")
            self.reset_ladder = states.check_ladder(reset_ladder)
            self._solver = solver
            self._solver_step = solver_step
            self._relative_tolerance = relative_tolerance
            self._fmi3 = md.fmiVersion.startswith("3")
            self._messages: deque[str] = deque(maxlen=256)
            self._logger_ref: Any = None
            self._library = _archive.ensure_binary(
                self._unzipdir, md, self.capabilities.model_identifier
            )
            self._reset_supported = True
            self._generation = 0
            self.last_reset: str | None = None
            self.stop_request: StopRequest | None = None
            self.time = self.start_time
            self._instantiate()
            states.initialize(self, self.start_values)
            states.capture_initial_state(self, overridden=False)
        except BaseException:
            self.close()
            raise

    # -- lifecycle -----------------------------------------------------------
    def _instantiate(self) -> None:
        md = self.model_description
        working_directory = os.getcwd()  # FMPy changes it to load and skips changing back on error
        try:
            fmu = fmpy_class(self.capabilities)(
                guid=md.guid,
                unzipDirectory=self._unzipdir,
                modelIdentifier=self.capabilities.model_identifier,
                instanceName=self.name,
            )
        except Exception as error:
            raise _archive.explain_load_failure(self._library, error) from error
        finally:
            os.chdir(working_directory)
        self._fmu = fmu
        self._generation += 1
        if self._fmi3:
            from fmpy.fmi3 import fmi3LogMessageCallback

            def log3(_env: Any, status: int, _category: Any, message: bytes) -> None:
                self._messages.append(f"[{status_name(status)}] {message.decode(errors='replace')}")

            self._logger_ref = fmi3LogMessageCallback(log3)
            self._call("instantiate", fmu.instantiate, loggingOn=True, logMessage=log3)
        else:
            self._call(
                "instantiate",
                fmu.instantiate,
                loggingOn=True,
                callbacks=self._fmi2_callbacks(),
            )
        self._fast = FastCalls(fmu, self._fmi3)
        self._stepper: ModelExchangeStepper | None = None
        if self.capabilities.interface == "model_exchange":
            self._stepper = ModelExchangeStepper(
                fmu,
                md,
                solver=self._solver,
                solver_step=self._solver_step,
                relative_tolerance=self._relative_tolerance,
            )

    def _fmi2_callbacks(self) -> Any:
        def sink(status: int, text: str) -> None:
            self._messages.append(f"[{status_name(status)}] {text}")

        _logging.forget(self._log_key)
        callbacks, self._log_key = _logging.fmi2_callbacks(sink)
        self._logger_ref = callbacks
        return callbacks

    def _is_structural(self, name: str) -> bool:
        variable = self.variables.get(name)
        return variable is not None and variable.causality == STRUCTURAL

    def reset(self, start_values: Mapping[str, Value] | None = None) -> str:
        """Return to the state right after initialisation; returns the rung used.

        The constructor's ``start_values``, updated with ``start_values``, are applied again.
        Values of inputs and tunable parameters can be applied after restoring the initial
        snapshot; any other value (a fixed parameter, a start state) needs a fresh
        initialisation, so the ladder starts at ``fmiReset`` then. A later ``reset()`` without
        values returns to the constructor's start values whichever rung is used. Structural
        parameters cannot change on reset (they set the shapes of arrays): make a new unit.
        """
        return states.reset(self, start_values)

    def _free_instance(self) -> None:
        """Free the FMU instance, and with it every state taken from it."""
        fmu, self._fmu = self._fmu, None
        if fmu is not None and getattr(fmu, "component", None) is not None:
            if self._initial_state is not None:
                try:
                    (fmu.freeFMUState if self._fmi3 else fmu.freeFMUstate)(self._initial_state)
                except Exception:
                    pass
            try:
                fmu.freeInstance()
            except Exception:
                pass
        self._initial_state = None
        _logging.forget(getattr(self, "_log_key", None))
        self._log_key = None

    def close(self) -> None:
        """Free the instance and give back the extracted directory. Safe to call twice."""
        if getattr(self, "_fmu", None) is not None:
            self._free_instance()
        if getattr(self, "_unzipdir", None) is not None:
            _archive.release(self._extraction)
            self._unzipdir = None

    def __enter__(self) -> FmuUnit:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- calls ---------------------------------------------------------------
    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._messages.clear()
        try:
            return function(*args, **kwargs)
        except FMICallException as error:
            raise FmuCallError(
                self.name, error.function, status_name(error.status), list(self._messages)
            ) from error
        except (FmuCallError, TerminationRequested):
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
        """The variable called ``name``, or FmuVariableError naming similar ones."""
        try:
            return self.variables[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.variables), n=3, cutoff=0.5)
            hint = f"; similar: {', '.join(close)}" if close else ""
            raise FmuVariableError(f"{self.name} has no variable '{name}'{hint}") from None

    def names(self, causality: str | None = None) -> list[str]:
        """Variable names in model-description order, optionally of one causality."""
        return [n for n, v in self.variables.items() if causality in (None, v.causality)]

    def _check_values(self, values: Mapping[str, Value], when: str) -> None:
        for name, value in values.items():
            variable = self.variable(name)
            if when == "set" and variable.causality not in ("input", "parameter"):
                raise FmuVariableError(
                    f"'{name}' has causality {variable.causality}; only "
                    "inputs and parameters can be set"
                )
            variable.check(value)

    def set(self, name_or_values: str | Mapping[str, Value], value: Value | None = None) -> None:
        """Set one variable (``set("u", 1.0)``) or several (``set({"u": 1.0, "k": 2})``); an
        array variable takes an array of its shape.

        Every value is checked against the model description first: an unknown name, a NaN,
        an out-of-range value or an array of the wrong shape raises FmuVariableError and
        nothing is set.
        """
        if isinstance(name_or_values, str):
            if value is None:
                raise FmuVariableError(f"set('{name_or_values}', value): the value is missing")
            values: dict[str, Value] = {name_or_values: value}
        else:
            values = dict(name_or_values)
        if not values:
            return
        self._check_values(values, when="set")
        if self._stepper is not None:
            if any(self.variables[n].variability != "continuous" for n in values):
                self._call("enterEventMode", self._stepper.enter_event_mode)
            else:
                self._stepper.inputs_changed()
        self._set_values(values)

    def _set_values(self, values: Mapping[str, Value]) -> None:
        groups: dict[str, tuple[list[int], list[float | int | bool]]] = {}
        for name, value in values.items():
            variable = self.variables[name]
            refs, vals = groups.setdefault(variable.type, ([], []))
            refs.append(variable.value_reference)
            vals.extend(flatten(variable, value))
        for type_name, (refs, vals) in groups.items():
            setter = getattr(self._fmu, "set" + fmpy_type(type_name, self._fmi3))
            self._call("set" + type_name, setter, refs, vals)

    def get(self, name: str) -> Any:
        """Current value of one variable: a scalar, or for an array variable a new array of
        its shape."""
        variable = self.variable(name)
        getter = getattr(self._fmu, "get" + fmpy_type(variable.type, self._fmi3))
        if variable.is_array:
            values = self._call(
                "get" + variable.type, getter, [variable.value_reference], variable.size
            )
            dtype = {"Real": np.float64, "Integer": np.int64, "Boolean": np.bool_}[variable.kind]
            return np.array(values, dtype=dtype).reshape(variable.shape)
        value = self._call("get" + variable.type, getter, [variable.value_reference])[0]
        return bool(value) if variable.kind == "Boolean" else value

    def get_many(self, names: Iterable[str]) -> dict[str, Any]:
        """Current values by name."""
        return {name: self.get(name) for name in names}

    # -- stepping ------------------------------------------------------------
    @property
    def terminated(self) -> bool:
        """Whether the FMU asked to stop (see :attr:`stop_request`)."""
        return self.stop_request is not None

    def step(self, dt: float, *, time: float | None = None) -> float:
        """Advance by ``dt`` seconds from ``time`` (default: the unit's time); returns the new
        time. Pass ``time`` from an exact clock (the co-simulation's integer ticks) so that no
        float drift accumulates.

        When the FMU asks to stop during the step, :attr:`stop_request` records it and the
        returned time is where the FMU stopped; stepping again raises FmuStoppedError."""
        if not (dt > 0 and math.isfinite(dt)):
            raise ValueError(f"step size must be a positive finite number of seconds, not {dt}")
        if self.stop_request is not None:
            raise FmuStoppedError(self.stop_request.refusal())
        now = self.time if time is None else float(time)
        reached: float | None
        if self._stepper is not None:
            function = "model exchange step"
            try:
                self._call(function, self._stepper.step, now, now + dt)
                reached = None
            except TerminationRequested as request:
                reached, function = request.time, request.function
        else:
            reached = self._fast.do_step(self, now, dt)
            if reached is not None:
                function = "fmi3DoStep" if self._fmi3 else "fmi2DoStep"
        if reached is not None:
            self.time = reached
            self.stop_request = StopRequest(self.name, reached, function, tuple(self._messages))
            return self.time
        self.time = now + dt
        return self.time

    # -- states (envs.fmu.states) ---------------------------------------------
    def snapshot(self) -> Snapshot:
        """Capture the whole FMU state (for what-if branching)."""
        return states.snapshot(self)

    def restore(self, snapshot: Snapshot) -> None:
        """Return to a snapshot taken from this unit's current instance."""
        states.restore(self, snapshot)

    def serialize(self, snapshot: Snapshot) -> bytes:
        """Bytes of a snapshot, for saving to disk (needs canSerializeFMUstate)."""
        return states.serialize(self, snapshot)

    def deserialize(self, data: bytes, time: float) -> Snapshot:
        """A snapshot from :meth:`serialize` bytes, restorable with :meth:`restore`."""
        return states.deserialize(self, data, time)

    # -- fast real I/O ---------------------------------------------------------
    def real_io(self, inputs: Sequence[str], outputs: Sequence[str]) -> RealIO:
        """A pre-bound exchange of Real inputs and outputs for tight loops (envs, benchmarks);
        array variables take their elements in row-major order."""
        return RealIO(self, inputs, outputs)

    def scalar_input(self, name: str) -> ScalarInput:
        """A pre-bound setter of one Integer, Enumeration or Boolean input for tight loops
        (``write`` checks the value, ``write_checked`` trusts the caller)."""
        return ScalarInput(self, name)
