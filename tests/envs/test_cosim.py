"""CoSimulation: exact clock, coupling, ordering, system snapshots, errors."""

from __future__ import annotations

import pytest

from envs import CoSimulation
from envs.fmu import FmuStoppedError, FmuUnit, FmuVariableError

LINK = [("mill.spindle_temperature", "robot.ambient_temperature")]


def make(fmu_files, order=("mill", "robot"), connections=LINK, tick="0.1"):
    units = {
        "mill": FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}),
        "robot": FmuUnit(fmu_files["RobotCell"], start_values={"mode": 3}),
    }
    return CoSimulation({name: units[name] for name in order}, connections, tick=tick)


def test_clock_reads_exactly_ten_seconds_after_a_hundred_tenths(fmu_files):
    system = make(fmu_files)
    for _ in range(100):
        system.step(0.1)
    assert system.time == 10.0 and system.ticks == 100
    assert all(unit.time == 10.0 for unit in system.units.values())
    system.close()


def test_step_size_may_change_between_steps(fmu_files):
    system = make(fmu_files)
    for dt in (60.0, 0.1, 0.1, 30.0, 0.5):
        system.step(dt)
    assert system.time == 90.7
    with pytest.raises(ValueError, match="not a positive whole number of clock ticks"):
        system.step(0.05)
    with pytest.raises(ValueError, match="not a positive whole number"):
        system.step(0.0)
    system.close()


def test_connection_feeds_the_output_into_the_input(fmu_files):
    system = make(fmu_files)
    for _ in range(30):
        system.step(10.0)
    assert system.get("robot.ambient_temperature") == system.get("mill.spindle_temperature") > 30
    system.close()


def test_jacobi_coupling_matches_a_hand_run_and_ignores_unit_order(fmu_files):
    forward, backward = make(fmu_files), make(fmu_files, order=("robot", "mill"))
    with (
        FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as mill,
        FmuUnit(fmu_files["RobotCell"], start_values={"mode": 3}) as robot,
    ):
        for _ in range(20):
            robot.set("ambient_temperature", mill.get("spindle_temperature"))
            mill.step(30.0)
            robot.step(30.0)
            forward.step(30.0)
            backward.step(30.0)
        assert forward.get("robot.joint_temperature") == robot.get("joint_temperature")
        assert backward.get("robot.joint_temperature") == robot.get("joint_temperature")
    forward.close()
    backward.close()


def test_system_snapshot_restore_and_reset(fmu_files):
    system = make(fmu_files)
    for _ in range(10):
        system.step(10.0)
    snap = system.snapshot()
    system.step(60.0)
    branch = (system.get("mill.tool_wear"), system.get("robot.joint_temperature"))
    system.restore(snap)
    assert system.time == 100.0
    system.step(60.0)
    assert (system.get("mill.tool_wear"), system.get("robot.joint_temperature")) == branch
    system.reset()
    assert system.time == 0.0 and system.get("mill.tool_wear") == 0.0
    system.close()


def test_wrong_connections_and_sets_are_refused(fmu_files):
    units = {"mill": FmuUnit(fmu_files["CncMill"]), "robot": FmuUnit(fmu_files["RobotCell"])}
    with pytest.raises(ValueError, match="must be an output"):
        CoSimulation(units, [("mill.spindle_speed", "robot.payload")])
    with pytest.raises(ValueError, match="must be an input"):
        CoSimulation(units, [("mill.power", "robot.power")])
    with pytest.raises(ValueError, match="cannot connect Real 'mill.power' to Integer"):
        CoSimulation(units, [("mill.power", "robot.mode")])
    with pytest.raises(ValueError, match="connected more than once"):
        CoSimulation(units, [("mill.power", "robot.payload"), ("mill.energy", "robot.payload")])
    with pytest.raises(FmuVariableError, match="unit one of"):
        CoSimulation(units, [("lathe.power", "robot.payload")])
    system = CoSimulation(units, LINK)
    with pytest.raises(FmuVariableError, match="driven by a connection"):
        system.set("robot.ambient_temperature", 20.0)
    system.set("robot.speed_override", 0.5)
    assert system.get("robot.speed_override") == 0.5
    system.close()


@pytest.mark.parametrize("stopper", ["Decay2Stop", "Decay3Stop"])
def test_a_unit_that_asks_to_stop_stops_the_co_simulation_cleanly(test_fmus, stopper):
    units = {"plain": FmuUnit(test_fmus["Decay2CS"]), "stopper": FmuUnit(test_fmus[stopper])}
    system = CoSimulation(units, [("stopper.y", "plain.u")], tick="0.1")
    snap = system.snapshot()
    while not system.terminated:
        system.step(0.3)
    assert system.terminated_by == "stopper" and system.time == pytest.approx(2.1)
    assert system.stop_request.time == 2.0 and units["stopper"].time == 2.0
    assert units["plain"].time == pytest.approx(2.1)  # the others complete the step
    with pytest.raises(FmuStoppedError, match=r"stopped by unit 'stopper' at t = 2 s.*reset\(\)"):
        system.step(0.3)
    system.restore(snap)
    assert not system.terminated and system.time == 0.0
    system.step(0.3)
    system.reset()
    assert system.terminated_by is None and system.step(0.5) == 0.5
    system.close()
