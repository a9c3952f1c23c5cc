"""Variables of an FMU as the FMU layer sees them: name, type, causality, bounds, unit, shape.

FMI 3 array variables (``<Float64 name="u"><Dimension start="3"/></Float64>``, or a
``<Dimension valueReference="..."/>`` naming a structural parameter that holds the size) have
a ``shape``; scalars have ``shape == ()``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

Scalar = float | int | bool
"""The value of a scalar variable."""
Value = float | int | bool | np.ndarray
"""The value of any variable: a scalar, or an array of the variable's shape."""

# FMI 3.0 type names mapped onto the three kinds the layer handles.
_KINDS = {
    "Real": "Real",
    "Float64": "Real",
    "Float32": "Real",
    "Integer": "Integer",
    "Int32": "Integer",
    "Int16": "Integer",
    "Int8": "Integer",
    "UInt32": "Integer",
    "UInt16": "Integer",
    "UInt8": "Integer",
    "Int64": "Integer",
    "UInt64": "Integer",
    "Enumeration": "Integer",
    "Boolean": "Boolean",
}


@dataclass(frozen=True)
class Dimension:
    """One dimension of an array variable: a fixed ``start`` size, or the value reference of
    the structural parameter that holds the size."""

    start: int | None
    value_reference: int | None


@dataclass(frozen=True)
class Variable:
    """One variable. ``kind`` is "Real", "Integer" or "Boolean" whatever the FMI version;
    ``type`` is the FMI type name (Float64, Int32, ...). Bounds are ``None`` where unbounded.
    ``shape`` is ``()`` for a scalar and the array's shape for an FMI 3 array variable (whose
    bounds apply to every element and whose ``start`` is a tuple of the elements, row-major).
    """

    name: str
    value_reference: int
    kind: str
    type: str
    causality: str
    variability: str
    start: float | int | bool | tuple[float | int | bool, ...] | None
    min: float | None
    max: float | None
    nominal: float | None
    unit: str | None
    description: str
    shape: tuple[int, ...] = ()
    dimensions: tuple[Dimension, ...] = ()

    @property
    def bounded(self) -> bool:
        return self.min is not None and self.max is not None

    @property
    def is_array(self) -> bool:
        return bool(self.dimensions)

    @property
    def size(self) -> int:
        """Number of values: 1 for a scalar, the product of the shape for an array."""
        return math.prod(self.shape)

    def check(self, value: Value) -> None:
        """Raise FmuVariableError unless ``value`` is a valid value of this variable (for an
        array: an array-like of its shape whose every element is valid)."""
        from envs.fmu.errors import FmuVariableError

        if self.is_array:
            elements = np.asarray(value)
            if elements.shape != self.shape:
                raise FmuVariableError(
                    f"'{self.name}' is an array of shape {self.shape}; got a value of shape "
                    f"{elements.shape}"
                )
            if self.kind == "Boolean":
                return
            numbers = elements.astype(np.float64).reshape(-1)
            inside = np.isfinite(numbers)
            if self.min is not None:
                inside &= numbers >= self.min
            if self.max is not None:
                inside &= numbers <= self.max
            if self.kind == "Integer":
                inside &= numbers == np.round(numbers)
            if not inside.all():
                index = int(np.flatnonzero(~inside)[0])
                position = [int(i) for i in np.unravel_index(index, self.shape)]
                element = replace(self, name=f"{self.name}{position}", dimensions=())
                element.check(numbers[index].item())
            return
        if isinstance(value, np.ndarray) and value.shape not in ((), (1,)):
            raise FmuVariableError(f"'{self.name}' is a scalar; got an array of {value.shape}")
        if self.kind == "Boolean":
            return
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise FmuVariableError(f"'{self.name}' = {value} is not a finite number")
        if self.kind == "Integer" and number != int(number):
            raise FmuVariableError(f"'{self.name}' = {value} must be a whole number")
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise FmuVariableError(
                f"'{self.name}' = {value} is outside its range "
                f"[{self.min}, {self.max}] {self.unit or ''}".rstrip()
            )


def _number(text: Any, kind: str) -> float | int | bool | None:
    if text is None or text == "":
        return None
    if kind == "Boolean":
        return text in (True, "true", "1", 1)
    if kind == "Integer":
        return int(float(text))
    return float(text)


def _start(text: Any, kind: str, array: bool) -> float | int | bool | tuple | None:
    if not array:
        return _number(text, kind)
    if text is None or text == "":
        return None
    return tuple(_number(item, kind) for item in str(text).split())


def read_variables(
    model_description: Any, structural: Mapping[str, Scalar] | None = None
) -> dict[str, Variable]:
    """Real/Integer/Boolean variables of an FMPy model description, scalars and FMI 3 arrays,
    by name, in model-description order. Strings, binaries and clocks are skipped.

    An array's shape comes from each ``Dimension``: its ``start``, or the value of the
    structural parameter it references: ``structural[name]`` when given (a start value the
    unit will apply), else that parameter's start value.
    """
    by_reference = {int(v.valueReference): v for v in model_description.modelVariables}
    structural = dict(structural or {})
    variables: dict[str, Variable] = {}
    for v in model_description.modelVariables:
        kind = _KINDS.get(v.type)
        if kind is None:
            continue
        dimensions = tuple(
            Dimension(
                None if d.start is None else int(d.start),
                None if d.valueReference is None else int(d.valueReference),
            )
            for d in getattr(v, "dimensions", None) or ()
        )
        shape = tuple(_size(d, by_reference, structural, v.name) for d in dimensions)
        declared = v.declaredType
        unit = v.unit or (declared.unit if declared is not None else None)
        low = v.min if v.min is not None else getattr(declared, "min", None)
        high = v.max if v.max is not None else getattr(declared, "max", None)
        variables[v.name] = Variable(
            name=v.name,
            value_reference=int(v.valueReference),
            kind=kind,
            type=v.type,
            causality=v.causality or "local",
            variability=v.variability or "continuous",
            start=_start(v.start, kind, bool(dimensions)),
            min=_number(low, kind) if kind != "Boolean" else None,
            max=_number(high, kind) if kind != "Boolean" else None,
            nominal=_number(v.nominal, "Real") if kind == "Real" else None,
            unit=unit,
            description=v.description or "",
            shape=shape,
            dimensions=dimensions,
        )
    return variables


def _size(
    dimension: Dimension, by_reference: Mapping[int, Any], structural: Mapping[str, Scalar], of: str
) -> int:
    from envs.fmu.errors import FmuLoadError

    if dimension.start is not None:
        return dimension.start
    parameter = by_reference.get(dimension.value_reference)  # type: ignore[arg-type]
    if parameter is None:
        raise FmuLoadError(
            f"'{of}' has a Dimension valueReference={dimension.value_reference} that names no "
            "variable of the model description"
        )
    value = structural.get(parameter.name, parameter.start)
    if value is None:
        raise FmuLoadError(
            f"the size of '{of}' is the structural parameter '{parameter.name}', which has no "
            f"start value; give it one: start_values={{'{parameter.name}': n}}"
        )
    return int(value)
