"""Gymnasium spaces from FMU variables, and the values that cross them.

:func:`bind_inputs` turns a unit's inputs (or tunable parameters) into an
:class:`ActionBinding`: the action space, the bounds of every element, and the conversions
from an action to one flat float64 vector (checked or clipped) and from that vector to the
typed values the unit sets. :func:`bind_outputs` turns its outputs into an
:class:`ObservationBinding`: the observation space and the shaping of a flat vector of
output values into an observation. :class:`envs.fmu_env.FmuEnv` documents the spaces
("Action Space", "Observation Space") and drives the unit with these bindings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from envs.fmu import FmuUnit, FmuWorker, Variable
from envs.fmu.variables import Value

ObsType = np.ndarray | dict[str, np.ndarray]
InputsSpec = Sequence[str] | Mapping[str, tuple[float, float]] | None


@dataclass(frozen=True, eq=False)
class ActionBinding:
    """The inputs an action drives and its space.

    ``low``/``high`` hold the bounds of every element of the flat action vector (an array
    input contributes one element per entry, in C order); ``element_names`` names them
    (``"u[0, 1]"`` style for arrays), ``slices`` the (start, stop) of each variable in it.
    """

    names: tuple[str, ...]
    variables: tuple[Variable, ...]
    space: spaces.Space[Any]
    low: np.ndarray
    high: np.ndarray
    slices: tuple[tuple[int, int], ...]
    element_names: tuple[str, ...]
    is_dict: bool = field(init=False)
    """The action is a dict keyed by input name (a ``Dict`` space)."""
    # plain floats beat numpy on a handful of values in the per-step bounds check
    _low_list: list[float] = field(init=False, repr=False)
    _high_list: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_dict", isinstance(self.space, spaces.Dict))
        object.__setattr__(self, "_low_list", self.low.tolist())
        object.__setattr__(self, "_high_list", self.high.tolist())

    @property
    def size(self) -> int:
        """Number of elements of the flat action vector."""
        return len(self.low)

    @property
    def real_inputs(self) -> bool:
        """True when every variable is a Real of causality input (the fast exchange applies)."""
        return all(v.kind == "Real" and v.causality == "input" for v in self.variables)

    def flat(self, action: Any, *, clip: bool = False) -> np.ndarray:
        """``action`` as one flat float64 vector, checked against the bounds.

        Raises ValueError, naming the element, for a wrong number of values, a non-finite
        value or (unless ``clip``) a value out of bounds; ``clip`` clips finite values.
        """
        if self.is_dict:
            values = np.concatenate(
                [np.asarray(action[n], dtype=np.float64).reshape(-1) for n in self.names]
            )
        else:
            values = np.asarray(action, dtype=np.float64)
            if values.ndim != 1:
                values = values.reshape(-1)
        if values.shape[0] != self.size:
            raise ValueError(
                f"action has {values.size} values; this env's action has "
                f"{self.size}: {list(self.element_names)}"
            )
        # NaN fails every comparison
        for value, low, high in zip(values.tolist(), self._low_list, self._high_list, strict=True):
            if not low <= value <= high:
                return self._out_of_bounds(values, clip)
        return values

    def _out_of_bounds(self, values: np.ndarray, clip: bool) -> np.ndarray:
        finite = np.isfinite(values)
        if not finite.all():
            bad = self.element_names[int(np.flatnonzero(~finite)[0])]
            raise ValueError(f"action value for '{bad}' is not finite; nothing was changed")
        if clip:
            return np.clip(values, self.low, self.high)
        i = int(np.flatnonzero((values < self.low) | (values > self.high))[0])
        raise ValueError(
            f"action value {values[i]} for '{self.element_names[i]}' is outside "
            f"[{self.low[i]}, {self.high[i]}]; nothing was changed (pass "
            "clip_actions=True to clip instead)"
        )

    def unit_values(self, values: np.ndarray) -> dict[str, Value]:
        """Name → value of its kind (and shape) from a flat vector, for ``FmuUnit.set``."""
        return {
            v.name: _typed(v, values[start:stop])
            for v, (start, stop) in zip(self.variables, self.slices, strict=True)
        }


@dataclass(frozen=True, eq=False)
class ObservationBinding:
    """The outputs an observation holds and its space.

    ``single_array``: the only output is an array, the observation is that array;
    ``is_dict``: a mix with arrays, the observation is a dict keyed by name (scalars of
    shape ``(1,)``); else the observation is the flat float64 vector itself.
    """

    names: tuple[str, ...]
    variables: tuple[Variable, ...]
    space: spaces.Space[Any]
    slices: tuple[tuple[int, int], ...]
    single_array: bool
    is_dict: bool

    @property
    def real_outputs(self) -> bool:
        """True when every output is a Real (the fast exchange applies)."""
        return all(v.kind == "Real" for v in self.variables)

    def read(self, unit: FmuUnit | FmuWorker) -> np.ndarray:
        """The outputs' values read one by one from ``unit``, as one flat float64 vector."""
        if not self.variables or all(not v.is_array for v in self.variables):
            return np.array([float(unit.get(n)) for n in self.names], dtype=np.float64)
        return np.concatenate(
            [np.asarray(unit.get(n), dtype=np.float64).reshape(-1) for n in self.names]
        )

    def shape(self, flat: np.ndarray) -> ObsType:
        """The observation (of :attr:`space`'s structure) from a flat vector of output values."""
        if self.single_array:
            return flat.reshape(self.variables[0].shape)
        if self.is_dict:
            return {
                v.name: flat[start:stop].reshape(v.shape or (1,))
                for v, (start, stop) in zip(self.variables, self.slices, strict=True)
            }
        return flat


def bind_inputs(unit: FmuUnit | FmuWorker, inputs: InputsSpec) -> ActionBinding:
    """The action of ``unit``: all its inputs (``None``), a list of names (inputs or tunable
    parameters), or name → (low, high) bounds. Raises ValueError for a variable an action
    cannot drive, an input without finite bounds, or bounds outside the variable's range."""
    bounds: dict[str, tuple[float, float]] = {}
    if inputs is None:
        names = unit.names("input")
    elif isinstance(inputs, Mapping):
        names, bounds = list(inputs), {n: (b[0], b[1]) for n, b in inputs.items()}
    else:
        names = list(inputs)
    variables = [unit.variable(n) for n in names]
    for variable in variables:
        if variable.causality not in ("input", "parameter") or (
            variable.causality == "parameter" and variable.variability != "tunable"
        ):
            raise ValueError(
                f"'{variable.name}' has causality {variable.causality}"
                f" ({variable.variability}); actions drive inputs or tunable "
                "parameters"
            )
        _supported_array(variable, "input")
    lows, highs = [], []
    for variable in variables:
        low, high = bounds.get(variable.name, (variable.min, variable.max))
        if variable.kind == "Boolean":
            low, high = 0, 1
        if low is None or high is None or not np.isfinite([low, high]).all():
            raise ValueError(
                f"input '{variable.name}' has no finite min/max in the model description; "
                f"give its bounds: inputs={{'{variable.name}': (low, high), ...}}"
            )
        if (
            (variable.min is not None and low < variable.min)
            or (variable.max is not None and high > variable.max)
            or low > high
        ):
            raise ValueError(
                f"bounds ({low}, {high}) for '{variable.name}' must lie inside its range "
                f"[{variable.min}, {variable.max}] with low <= high"
            )
        lows.append(low)
        highs.append(high)
    sizes = [v.size for v in variables]
    return ActionBinding(
        names=tuple(names),
        variables=tuple(variables),
        space=_action_space(variables, lows, highs),
        low=np.repeat(np.array(lows, dtype=np.float64), sizes),
        high=np.repeat(np.array(highs, dtype=np.float64), sizes),
        slices=tuple(_slices(variables)),
        element_names=tuple(_element_names(variables)),
    )


def bind_outputs(unit: FmuUnit | FmuWorker, outputs: Sequence[str] | None) -> ObservationBinding:
    """The observation of ``unit``: all its outputs (``None``) or a list of names. Raises
    ValueError for an Integer or Boolean array output."""
    names = unit.names("output") if outputs is None else list(outputs)
    variables = [unit.variable(n) for n in names]
    for variable in variables:
        _supported_array(variable, "output")
    single_array = len(variables) == 1 and variables[0].is_array
    is_dict = not single_array and any(v.is_array for v in variables)
    space: spaces.Space[Any]
    if single_array or is_dict:
        boxes: dict[str, spaces.Space[Any]] = {v.name: _box(v, v.shape or (1,)) for v in variables}
        space = boxes[variables[0].name] if single_array else spaces.Dict(boxes)
    else:
        low = np.array([_bound(v.min, -np.inf) for v in variables], dtype=np.float64)
        high = np.array([_bound(v.max, np.inf) for v in variables], dtype=np.float64)
        space = spaces.Box(low, high, dtype=np.float64)
    return ObservationBinding(
        names=tuple(names),
        variables=tuple(variables),
        space=space,
        slices=tuple(_slices(variables)),
        single_array=single_array,
        is_dict=is_dict,
    )


def _action_space(
    variables: Sequence[Variable], lows: Sequence[Any], highs: Sequence[Any]
) -> spaces.Space[Any]:
    kinds = {v.kind for v in variables}
    arrays = any(v.is_array for v in variables)
    if arrays and len(variables) == 1:
        return spaces.Box(lows[0], highs[0], shape=variables[0].shape, dtype=np.float64)
    if kinds <= {"Real"} and not arrays:
        return spaces.Box(
            np.array(lows, dtype=np.float64), np.array(highs, dtype=np.float64), dtype=np.float64
        )
    if "Real" not in kinds:
        return spaces.MultiDiscrete(
            np.array(highs, dtype=np.int64) - np.array(lows, dtype=np.int64) + 1,
            start=np.array(lows, dtype=np.int64),
        )
    members: dict[str, spaces.Space[Any]] = {}
    for variable, low, high in zip(variables, lows, highs, strict=True):
        members[variable.name] = (
            spaces.Box(low, high, shape=variable.shape or (1,), dtype=np.float64)
            if variable.kind == "Real"
            else spaces.Discrete(int(high) - int(low) + 1, start=int(low))
        )
    return spaces.Dict(members)


def _supported_array(variable: Variable, role: str) -> None:
    if variable.is_array and variable.kind != "Real":
        raise ValueError(
            f"{role} '{variable.name}' is an FMI 3 {variable.type} array of shape "
            f"{variable.shape}; array variables are supported for Real (Float64/Float32) "
            "variables only, not yet for Integer or Boolean ones"
        )


def _slices(variables: Sequence[Variable]) -> list[tuple[int, int]]:
    """(start, stop) of each variable's values in the flat vector."""
    bounds, start = [], 0
    for variable in variables:
        bounds.append((start, start + variable.size))
        start += variable.size
    return bounds


def _element_names(variables: Sequence[Variable]) -> list[str]:
    names = []
    for variable in variables:
        if not variable.is_array:
            names.append(variable.name)
            continue
        for index in np.ndindex(*variable.shape):
            names.append(f"{variable.name}{[int(i) for i in index]}")
    return names


def _box(variable: Variable, shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(
        _bound(variable.min, -np.inf), _bound(variable.max, np.inf), shape=shape, dtype=np.float64
    )


def _bound(value: float | None, default: float) -> float:
    return default if value is None else float(value)


def _typed(variable: Variable, values: np.ndarray) -> Value:
    """Values of one variable from the flat action vector, of its kind (and shape)."""
    if variable.is_array:
        return values.reshape(variable.shape)
    value = values[0]
    if variable.kind == "Boolean":
        return bool(value)
    if variable.kind == "Integer":
        return int(value)
    return float(value)
