"""Variables of an FMU as the FMU layer sees them: name, type, causality, bounds, unit."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
class Variable:
    """One scalar variable. ``kind`` is "Real", "Integer" or "Boolean" whatever the FMI version;
    ``type`` is the FMI type name (Float64, Int32, ...). Bounds are ``None`` where unbounded."""

    name: str
    value_reference: int
    kind: str
    type: str
    causality: str
    variability: str
    start: float | int | bool | None
    min: float | None
    max: float | None
    nominal: float | None
    unit: str | None
    description: str

    @property
    def bounded(self) -> bool:
        return self.min is not None and self.max is not None

    def check(self, value: float | int | bool) -> None:
        """Raise FmuVariableError unless ``value`` is a valid value of this variable."""
        from envs.fmu.errors import FmuVariableError

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


def _number(text, kind: str):
    if text is None or text == "":
        return None
    if kind == "Boolean":
        return text in (True, "true", "1", 1)
    if kind == "Integer":
        return int(float(text))
    return float(text)


def read_variables(model_description) -> dict[str, Variable]:
    """Scalar Real/Integer/Boolean variables of an FMPy model description, by name, in
    model-description order. Strings, binaries, clocks and arrays are skipped."""
    variables: dict[str, Variable] = {}
    for v in model_description.modelVariables:
        kind = _KINDS.get(v.type)
        if kind is None or getattr(v, "dimensions", None):
            continue
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
            start=_number(v.start, kind),
            min=_number(low, kind) if kind != "Boolean" else None,
            max=_number(high, kind) if kind != "Boolean" else None,
            nominal=_number(v.nominal, "Real") if kind == "Real" else None,
            unit=unit,
            description=v.description or "",
        )
    return variables
