"""What the plant measures of each machine, and what a twin predicts of it: one definition.

Measured signals, per machine ``<name>`` (:attr:`envs.scenario.Scenario.machine_names`, e.g.
``machining-1``):

=========================== ====== ============================================
``<name>.temperature``      degC   spindle (CncMill) / joint (RobotCell)
``<name>.wear``             1      tool / gripper wear as a fraction of its limit
``<name>.power``            kW     electrical power at the sample instant
``<name>.vibration``        mm/s   RMS housing vibration (CncMill only)
``<name>.state``            1      :class:`envs.machines.MachineState` code, noise-free
=========================== ====== ============================================
"""

from __future__ import annotations

from envs.machines import Machine

__all__ = ["SIGNAL_KINDS", "machine_signals"]

SIGNAL_KINDS = ("temperature", "wear", "power", "vibration")
"""The noisy signal kinds (``state`` is reported as is)."""


def machine_signals(machine: Machine) -> dict[str, float]:
    """Noise-free values of one machine's measured signals (names and units as in the module
    docstring, without ``state``); the plant's samples and the twin's predictions both use it."""
    name = machine.name
    values = {
        f"{name}.temperature": machine.temperature,
        f"{name}.wear": machine.wear_ratio,
        f"{name}.power": machine.output("power"),
    }
    if machine.equipment.vibration_output:
        values[f"{name}.vibration"] = machine.vibration
    return values
