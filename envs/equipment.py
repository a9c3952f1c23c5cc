"""What each shipped equipment model declares: its FMU variables as the FMU layer sees them.

The one answer to "is X a parameter of this equipment, and in range?", used by scenario
loading, the plant emulator, the optimisers' plant changes and calibration alike. It reads the
shipped ``modelDescription.xml`` (no build needed) into :class:`envs.fmu.Variable` objects.
"""

from __future__ import annotations

from functools import cache

from envs.fmu.variables import Variable, read_variables

__all__ = ["ParameterError", "check_parameter", "equipment_parameters", "equipment_variables"]


class ParameterError(ValueError):
    """A name is not a parameter of the equipment, or its value is out of range."""


@cache
def equipment_variables(equipment: str) -> dict[str, Variable]:
    """Every scalar variable of the shipped model ``equipment`` (e.g. ``"CncMill"``), by name."""
    from fmpy import read_model_description

    import fmus

    description = fmus.model_dir(equipment) / "modelDescription.xml"
    return read_variables(read_model_description(str(description), validate=False))


def equipment_parameters(equipment: str) -> dict[str, Variable]:
    """The variables of ``equipment`` with causality ``parameter``, by name."""
    return {
        name: variable
        for name, variable in equipment_variables(equipment).items()
        if variable.causality == "parameter"
    }


def check_parameter(equipment: str, name: str, value: float, *, key: str | None = None) -> Variable:
    """The parameter ``name`` of ``equipment`` if ``value`` is a valid value of it; otherwise a
    :class:`ParameterError` saying what is wrong (unknown name with the valid ones, or the
    allowed range with its unit). ``key`` is how the caller's input names the setting (e.g.
    ``stations[1].parameters.process_time``); the default is ``name``."""
    key = key or name
    parameters = equipment_parameters(equipment)
    variable = parameters.get(name)
    if variable is None:
        raise ParameterError(
            f"'{key}' is not a parameter of {equipment}; its parameters are "
            f"{', '.join(sorted(parameters))}"
        )
    low = -float("inf") if variable.min is None else variable.min
    high = float("inf") if variable.max is None else variable.max
    if not low <= value <= high:
        raise ParameterError(
            f"'{key}' = {value} is outside the allowed range "
            f"[{variable.min}, {variable.max}] {variable.unit or ''}".rstrip()
        )
    return variable
