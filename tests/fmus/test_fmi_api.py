"""FMI 2.0 behaviour every shipped FMU must have: states, reset, independence, bad input."""

from __future__ import annotations

import math

import pytest
from fmpy.fmi1 import FMICallException

import fmus

MODELS = fmus.names()
# an input profile per model: (values to set, seconds to run)
PROFILES = {
    "CncMill": [
        ({"mode": 3}, 300),
        ({"spindle_speed": 1700.0, "tool_change": True}, 120),
        ({"mode": 2, "tool_change": False}, 60),
        ({"mode": 3}, 240),
    ],
    "Conveyor": [
        ({"load_mass": 900.0}, 300),
        ({"belt_speed": 1.0}, 120),
        ({"running": False}, 60),
        ({"running": True}, 240),
    ],
    "RobotCell": [
        ({"mode": 3}, 300),
        ({"speed_override": 0.4, "gripper_service": True}, 120),
        ({"mode": 1, "gripper_service": False}, 60),
        ({"mode": 3}, 240),
    ],
}


def run_profile(slave, name: str, step: float = 10.0) -> list[dict[str, float]]:
    trajectory = []
    for values, seconds in PROFILES[name]:
        slave.set(**values)
        for _ in range(round(seconds / step)):
            slave.step(step)
            trajectory.append(slave.outputs())
    return trajectory


@pytest.mark.parametrize("name", MODELS)
def test_snapshot_restore_continues_bit_identically(make_slave, name):
    slave = make_slave(name).initialize()
    run_profile(slave, name)
    state, time = slave.fmu.getFMUstate(), slave.time
    first = run_profile(slave, name)
    slave.fmu.setFMUstate(state)
    slave.time = time
    second = run_profile(slave, name)
    slave.fmu.freeFMUstate(state)
    assert first == second  # exact equality, not approx


@pytest.mark.parametrize("name", MODELS)
def test_serialised_state_round_trips_into_another_instance(make_slave, name):
    source = make_slave(name, "source").initialize()
    run_profile(source, name)
    state = source.fmu.getFMUstate()
    blob = source.fmu.serializeFMUstate(state)
    source.fmu.freeFMUstate(state)
    expected = run_profile(source, name)

    target = make_slave(name, "target").initialize()
    restored = target.fmu.deSerializeFMUstate(blob)
    target.fmu.setFMUstate(restored)
    target.fmu.freeFMUstate(restored)
    target.time = source.time - sum(seconds for _, seconds in PROFILES[name])
    assert run_profile(target, name) == expected


@pytest.mark.parametrize("name", MODELS)
def test_garbled_serialised_state_is_rejected(make_slave, name):
    slave = make_slave(name).initialize()
    state = slave.fmu.getFMUstate()
    blob = bytearray(slave.fmu.serializeFMUstate(state))
    slave.fmu.freeFMUstate(state)
    with pytest.raises(FMICallException):
        slave.fmu.deSerializeFMUstate(bytes(blob[:-8]))
    assert "not made by this FMU" in slave.messages[-1]
    blob[0:4] = b"JUNK"
    with pytest.raises(FMICallException):
        slave.fmu.deSerializeFMUstate(bytes(blob))
    assert "not a serialised state" in slave.messages[-1]


@pytest.mark.parametrize("name", MODELS)
def test_reset_returns_to_initial_outputs(make_slave, name):
    slave = make_slave(name).initialize()
    inputs = [v.name for v in slave.variables.values() if v.causality == "input"]
    initial = slave.outputs(), [slave.get(n) for n in inputs]
    run_profile(slave, name)
    assert slave.outputs() != initial[0]
    slave.fmu.reset()
    slave.initialize()
    # states and the start values of the inputs are restored
    assert (slave.outputs(), [slave.get(n) for n in inputs]) == initial


@pytest.mark.parametrize("name", MODELS)
def test_two_instances_do_not_share_state(make_slave, name):
    busy = make_slave(name, "busy").initialize()
    quiet = make_slave(name, "quiet").initialize()
    reference = make_slave(name, "reference").initialize()
    run_profile(busy, name)
    quiet.step(10.0, count=72)
    reference.step(10.0, count=72)
    assert quiet.outputs() == reference.outputs()
    assert busy.outputs() != quiet.outputs()


@pytest.mark.parametrize("name", MODELS)
def test_nan_and_out_of_range_inputs_are_rejected_and_change_nothing(make_slave, name):
    slave = make_slave(name).initialize()
    slave.step(10.0, count=6)
    reals = [v for v in slave.variables.values() if v.causality == "input" and v.type == "Real"]
    for variable in reals:
        before = slave.outputs(), slave.get(variable.name)
        for bad in (math.nan, math.inf, float(variable.max) * 2 + 1, float(variable.min) - 1):
            with pytest.raises(FMICallException):
                slave.set(**{variable.name: bad})
            assert variable.name in slave.messages[-1]
            assert "nothing was changed" in slave.messages[-1]
            assert (slave.outputs(), slave.get(variable.name)) == before
    # a call with one good and one bad value applies neither
    good, bad = reals[0], reals[1]
    old_good = slave.get(good.name)
    with pytest.raises(FMICallException):
        slave.set(**{good.name: float(good.min), bad.name: math.nan})
    assert slave.get(good.name) == old_good
    # the instance is still usable
    slave.step(10.0)


@pytest.mark.parametrize("name", MODELS)
def test_range_message_names_the_range(make_slave, name):
    slave = make_slave(name).initialize()
    variable = next(
        v
        for v in slave.variables.values()
        if v.causality == "input" and v.type == "Real" and v.max is not None
    )
    with pytest.raises(FMICallException):
        slave.set(**{variable.name: float(variable.max) + 1.0})
    message = slave.messages[-1]
    assert f"[{float(variable.min):g}, {float(variable.max):g}]" in message


def test_integer_mode_out_of_range_is_rejected(make_slave):
    mill = make_slave("CncMill").initialize()
    with pytest.raises(FMICallException):
        mill.set(mode=7)
    assert "'mode' = 7" in mill.messages[-1]
    assert mill.get("mode") == 2


@pytest.mark.parametrize("name", MODELS)
def test_outputs_and_fixed_parameters_cannot_be_set_after_initialisation(make_slave, name):
    slave = make_slave(name).initialize()
    with pytest.raises(FMICallException):
        slave.set(power=1.0)
    assert "cannot be set" in slave.messages[-1]
    with pytest.raises(FMICallException):
        slave.set(thermal_capacity=5000.0)
    assert "fixed" in slave.messages[-1]


def test_tunable_parameter_can_change_between_steps(make_slave):
    mill = make_slave("CncMill").initialize(mode=3)
    mill.step(60.0, count=10)
    wear = mill.get("tool_wear")
    mill.set(wear_rate_factor=2.0)
    mill.step(60.0, count=10)
    doubled = mill.get("tool_wear") - wear
    other = make_slave("CncMill").initialize(mode=3)
    other.step(60.0, count=20)
    single = other.get("tool_wear") - wear
    assert doubled == pytest.approx(2 * single, rel=0.05)


@pytest.mark.parametrize("name", MODELS)
def test_bad_steps_are_rejected(make_slave, name):
    slave = make_slave(name).initialize()
    with pytest.raises(FMICallException):
        slave.fmu.doStep(currentCommunicationPoint=0.0, communicationStepSize=-1.0)
    assert "positive finite" in slave.messages[-1]
    with pytest.raises(FMICallException):
        slave.fmu.doStep(currentCommunicationPoint=5.0, communicationStepSize=1.0)
    assert "does not match the FMU time" in slave.messages[-1]
    slave.step(1.0)  # still usable at the right time


def test_wrong_guid_is_refused(unzipped):
    from fmpy import read_model_description
    from fmpy.fmi2 import FMU2Slave

    description = read_model_description(unzipped["CncMill"])
    fmu = FMU2Slave(
        guid="{not-the-guid}",
        unzipDirectory=unzipped["CncMill"],
        modelIdentifier=description.coSimulation.modelIdentifier,
    )
    with pytest.raises(Exception, match="Failed to instantiate"):
        fmu.instantiate()
    fmu.freeLibrary()
