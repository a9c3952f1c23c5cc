"""FMU states of an :class:`envs.fmu.FmuUnit`: initialisation to the start state, snapshots
and their serialisation, and the reset ladder.

``reset`` goes down a ladder: restore the snapshot taken right after initialisation with the
constructor's start values → ``fmiReset`` and initialise again → a new instance from the
already extracted directory. A :class:`Snapshot` lives as long as the instance it was taken
from: after a reset on the reinstantiate rung, older snapshots are refused.

It does not import :mod:`envs.fmu.unit`; it talks to a unit through :class:`StatefulUnit`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from envs.fmu.capabilities import Capabilities
from envs.fmu.errors import FmuCallError, FmuStateError, FmuVariableError, StopRequest
from envs.fmu.fast_io import UnitLike
from envs.fmu.variables import Value

RESET_RUNGS = ("snapshot", "fmi_reset", "reinstantiate")


@dataclass
class Snapshot:
    """An FMU state taken by :meth:`FmuUnit.snapshot`; freed when garbage-collected.

    ``generation`` numbers the FMU instance it was taken from: a reset on the reinstantiate
    rung frees that instance, and with it every state taken from it."""

    state: object
    time: float
    owner: weakref.ReferenceType
    generation: int = 0
    stop_request: StopRequest | None = None
    _finalizer: weakref.finalize | None = None


class StatefulUnit(UnitLike, Protocol):
    """What state handling needs of a unit (implemented by :class:`envs.fmu.FmuUnit`)."""

    capabilities: Capabilities
    start_time: float
    start_values: dict[str, Value]
    reset_ladder: tuple[str, ...]
    last_reset: str | None
    time: float
    _fmu: Any
    _fmi3: bool
    _generation: int
    _initial_state: Any
    _reset_supported: bool

    def _call(self, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call into the FMU, turning its failures into FmuCallError."""

    def _check_values(self, values: Mapping[str, Value], when: str) -> None:
        """Check values against the model description."""

    def _is_structural(self, name: str) -> bool:
        """Whether ``name`` is a structural parameter."""

    def _instantiate(self) -> None:
        """Make a new FMU instance."""

    def _set_values(self, values: Mapping[str, Value]) -> None:
        """Write checked values into the FMU."""

    def _free_instance(self) -> None:
        """Free the FMU instance and every state taken from it."""


# -- initialisation and the reset ladder ---------------------------------------------
def check_ladder(reset_ladder: Sequence[str]) -> tuple[str, ...]:
    """``reset_ladder`` as a tuple, or ValueError unless it is a non-empty sequence of rungs."""
    unknown = set(reset_ladder) - set(RESET_RUNGS)
    if unknown or not reset_ladder:
        raise ValueError(f"reset_ladder must be a non-empty sequence of {RESET_RUNGS}")
    return tuple(reset_ladder)


def initialize(unit: StatefulUnit, values: Mapping[str, Value]) -> None:
    """Initialise the unit's instance with ``values`` (FMI 3 structural parameters in
    configuration mode first) at its start time."""
    fmu = unit._fmu
    if not unit._fmi3:
        unit._call("setupExperiment", fmu.setupExperiment, startTime=unit.start_time)
        unit._set_values(values)
        unit._call("enterInitializationMode", fmu.enterInitializationMode)
    else:
        structural = {n: v for n, v in values.items() if unit._is_structural(n)}
        if structural:
            unit._call("enterConfigurationMode", fmu.enterConfigurationMode)
            unit._set_values(structural)
            unit._call("exitConfigurationMode", fmu.exitConfigurationMode)
        unit._set_values({n: v for n, v in values.items() if n not in structural})
        unit._call(
            "enterInitializationMode", fmu.enterInitializationMode, startTime=unit.start_time
        )
    unit._call("exitInitializationMode", fmu.exitInitializationMode)
    if unit._stepper is not None:
        unit._call("event iteration", unit._stepper.start, unit.start_time)
    unit.time = unit.start_time
    unit.stop_request = None


def capture_initial_state(unit: StatefulUnit, overridden: bool) -> None:
    """Keep the state right after an initialisation with the constructor's start values
    (never one with a reset's overrides: a later plain reset restores this)."""
    if unit.capabilities.can_get_set_state and unit._initial_state is None and not overridden:
        unit._initial_state = get_state(unit)


def reset(unit: StatefulUnit, start_values: Mapping[str, Value] | None) -> str:
    """:meth:`envs.fmu.FmuUnit.reset`: go down the unit's ladder; returns the rung used."""
    overrides = dict(start_values or {})
    unit._check_values(overrides, when="start")
    structural = [n for n in overrides if unit._is_structural(n)]
    if structural:
        raise FmuVariableError(
            f"{unit.name}: {structural} are structural parameters (they set the shapes of "
            "array variables) and cannot change on reset; create a new FmuUnit with them "
            "in start_values"
        )
    values = {**unit.start_values, **overrides}
    after_init = all(
        unit.variables[n].causality == "input" or unit.variables[n].variability == "tunable"
        for n in overrides
    )
    if unit._initial_state is not None and after_init and "snapshot" in unit.reset_ladder:
        # the initial snapshot already holds the constructor's start values
        unit._fast.restore(unit, unit._initial_state)
        unit.time = unit.start_time
        unit.stop_request = None
        if unit._stepper is not None:
            unit._stepper.enter_event_mode()
        if overrides:
            unit.set(overrides)
        unit.last_reset = "snapshot"
        return unit.last_reset
    if unit._reset_supported and "fmi_reset" in unit.reset_ladder:
        try:
            unit._call("reset", unit._fmu.reset)
        except FmuCallError:
            unit._reset_supported = False
        else:
            initialize(unit, values)
            capture_initial_state(unit, overridden=bool(overrides))
            unit.last_reset = "fmi_reset"
            return unit.last_reset
    unit._free_instance()
    unit._instantiate()
    initialize(unit, values)
    capture_initial_state(unit, overridden=bool(overrides))
    unit.last_reset = "reinstantiate"
    return unit.last_reset


# -- snapshots ---------------------------------------------------------------------------
def _require_state(unit: StatefulUnit) -> None:
    if not unit.capabilities.can_get_set_state:
        raise FmuStateError(
            f"{unit.name}: the FMU declares canGetAndSetFMUstate=false, so it cannot take "
            "snapshots. Use reset() to restart it, or re-run from the start to branch."
        )


def get_state(unit: StatefulUnit) -> Any:
    """The FMU's current state (an FMI handle the unit's instance owns)."""
    return unit._call("getFMUstate", unit._fmu.getFMUState if unit._fmi3 else unit._fmu.getFMUstate)


def _set_state(unit: StatefulUnit, state: Any) -> None:
    setter = unit._fmu.setFMUState if unit._fmi3 else unit._fmu.setFMUstate
    setter(state)


def _own(unit: StatefulUnit, snapshot: Snapshot) -> None:
    if snapshot.owner() is not unit:
        raise FmuStateError(f"{unit.name}: the snapshot was taken from another unit")
    if snapshot.generation != unit._generation:
        raise FmuStateError(
            f"{unit.name}: the snapshot was taken from an earlier instance of this unit, "
            "which reset() freed when it made a new instance (the reinstantiate rung); "
            "its state cannot go into the new instance. Take snapshots after the reset."
        )


def _snapshot_of(unit: StatefulUnit, state: Any, time: float) -> Snapshot:
    snap = Snapshot(
        state=state,
        time=time,
        owner=weakref.ref(unit),
        generation=unit._generation,
        stop_request=unit.stop_request,
    )
    snap._finalizer = weakref.finalize(
        snap, _free_state, weakref.ref(unit), unit._generation, state
    )
    return snap


def snapshot(unit: StatefulUnit) -> Snapshot:
    """:meth:`envs.fmu.FmuUnit.snapshot`."""
    _require_state(unit)
    if unit._stepper is not None:
        unit._stepper.inputs_changed()  # both branches restart the solver from here
    return _snapshot_of(unit, get_state(unit), unit.time)


def restore(unit: StatefulUnit, snapshot: Snapshot) -> None:
    """:meth:`envs.fmu.FmuUnit.restore`."""
    _require_state(unit)
    _own(unit, snapshot)
    unit._call("setFMUstate", _set_state, unit, snapshot.state)
    unit.time = snapshot.time
    unit.stop_request = snapshot.stop_request
    if unit._stepper is not None:
        unit._stepper.enter_event_mode()


def serialize(unit: StatefulUnit, snapshot: Snapshot) -> bytes:
    """:meth:`envs.fmu.FmuUnit.serialize`."""
    if not unit.capabilities.can_serialize_state:
        raise FmuStateError(f"{unit.name}: the FMU declares canSerializeFMUstate=false")
    _own(unit, snapshot)
    serialize = unit._fmu.serializeFMUState if unit._fmi3 else unit._fmu.serializeFMUstate
    return bytes(unit._call("serializeFMUstate", serialize, snapshot.state))


def deserialize(unit: StatefulUnit, data: bytes, time: float) -> Snapshot:
    """:meth:`envs.fmu.FmuUnit.deserialize`."""
    if not unit.capabilities.can_serialize_state:
        raise FmuStateError(f"{unit.name}: the FMU declares canSerializeFMUstate=false")
    deserialize = unit._fmu.deserializeFMUState if unit._fmi3 else unit._fmu.deSerializeFMUstate
    state = unit._call("deSerializeFMUstate", deserialize, data)
    return _snapshot_of(unit, state, time)


def _free_state(owner_ref: weakref.ReferenceType, generation: int, state: Any) -> None:
    """Free a snapshot's state, unless its instance is gone (and the state with it)."""
    owner = owner_ref()
    if owner is None or owner._fmu is None or owner._generation != generation:
        return
    try:
        (owner._fmu.freeFMUState if owner._fmi3 else owner._fmu.freeFMUstate)(state)
    except Exception:
        pass
