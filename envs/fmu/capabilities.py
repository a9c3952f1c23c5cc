"""What an FMU offers, read once from its model description: the interface a unit uses
(co-simulation or model exchange), its :class:`Capabilities` (state handling, variable
communication steps, model identifier) and the FMPy class that implements them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envs.fmu.errors import FmuLoadError

INTERFACES = ("auto", "co_simulation", "model_exchange")


@dataclass(frozen=True)
class Capabilities:
    """What the FMU can do, read once from its model description."""

    fmi_version: str
    interface: str  # "co_simulation" or "model_exchange"
    can_get_set_state: bool
    can_serialize_state: bool
    variable_step: bool
    model_identifier: str


def choose_interface(md: Any, requested: str) -> str:
    """The interface to use: ``requested`` ("auto": co-simulation when offered) if the FMU
    offers it, else FmuLoadError naming what it offers."""
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


def probe(md: Any, interface: str) -> Capabilities:
    """The capabilities the model description declares for ``interface``."""
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


def fmpy_class(capabilities: Capabilities) -> Any:
    """FMPy's class for the interface and FMI version (imported only when a unit is made)."""
    co_simulation = capabilities.interface == "co_simulation"
    if capabilities.fmi_version.startswith("3"):
        from fmpy.fmi3 import FMU3Model, FMU3Slave

        return FMU3Slave if co_simulation else FMU3Model
    from fmpy.fmi2 import FMU2Model, FMU2Slave

    return FMU2Slave if co_simulation else FMU2Model
