"""Physics of the Conveyor and RobotCell FMUs against hand-derived values."""

from __future__ import annotations

import math

import numpy as np
import pytest

GRAVITY = 9.80665


def test_conveyor_power_from_speed_and_load(make_slave):
    conveyor = make_slave("Conveyor").initialize()
    p = {
        n: conveyor.get(n)
        for n in (
            "length",
            "rolling_resistance",
            "roller_pitch",
            "roller_drag",
            "drive_efficiency",
            "standby_power",
        )
    }
    for speed, load in ((0.3, 200.0), (1.0, 0.0), (0.5, 1500.0)):
        conveyor.set(belt_speed=speed, load_mass=load)
        force = (
            load * GRAVITY * p["rolling_resistance"]
            + math.floor(p["length"] / p["roller_pitch"]) * p["roller_drag"]
        )
        expected = p["standby_power"] + force * speed / p["drive_efficiency"] / 1000.0
        assert conveyor.get("tractive_force") == pytest.approx(force)
        assert conveyor.get("power") == pytest.approx(expected)
        assert conveyor.get("transport_time") == pytest.approx(p["length"] / speed)
    conveyor.set(running=False)
    assert conveyor.get("power") == pytest.approx(p["standby_power"])
    assert conveyor.get("hazard_rate") == 0.0


def test_conveyor_power_rises_monotonically_with_load(make_slave):
    conveyor = make_slave("Conveyor").initialize()
    powers = []
    for load in np.linspace(0.0, 3000.0, 7):
        conveyor.set(load_mass=float(load))
        powers.append(conveyor.get("power"))
    assert np.all(np.diff(powers) > 0)


def test_conveyor_motor_reaches_analytic_steady_temperature(make_slave):
    conveyor = make_slave("Conveyor").initialize(belt_speed=1.5, load_mass=2500.0)
    electrical_w = (conveyor.get("power") - conveyor.get("standby_power")) * 1000.0
    losses = electrical_w * (1.0 - conveyor.get("drive_efficiency"))
    tau = conveyor.get("thermal_capacity") * conveyor.get("thermal_resistance")
    conveyor.step(60.0, count=int(40 * tau / 60))
    assert conveyor.get("motor_temperature") == pytest.approx(
        20.0 + losses * conveyor.get("thermal_resistance"), rel=1e-9
    )
    assert conveyor.get("distance_travelled") == pytest.approx(1.5 * conveyor.time)


def test_robot_cycle_time_and_power_from_speed(make_slave):
    robot = make_slave("RobotCell").initialize(mode=3, payload=16.0)
    process, motion = robot.get("process_time"), robot.get("motion_time")
    cycle = {}
    for speed in (0.25, 0.5, 1.0):
        robot.set(speed_override=speed)
        cycle[speed] = robot.get("cycle_time")
        assert cycle[speed] == pytest.approx(process + motion / speed)
        assert robot.get("energy_per_cycle") == pytest.approx(
            robot.get("power") * cycle[speed] / 3.6
        )
    # drive power alone: half speed cuts it by about 70 % (speed exponent 1.75)
    drive = robot.get("drive_power")
    assert drive * 0.5 ** robot.get("speed_exponent") / drive == pytest.approx(0.297, abs=0.01)


def test_robot_power_ordering_and_speed_monotonicity(make_slave):
    robot = make_slave("RobotCell").initialize()
    powers = []
    for mode in range(4):
        robot.set(mode=mode)
        powers.append(robot.get("power"))
    assert powers[0] == 0.0 and np.all(np.diff(powers) > 0)
    running = []
    for speed in (0.2, 0.4, 0.6, 0.8, 1.0):
        robot.set(mode=3, speed_override=speed)
        running.append(robot.get("power"))
    assert np.all(np.diff(running) > 0)


def test_robot_wear_and_cycles_accumulate_only_while_running(make_slave):
    robot = make_slave("RobotCell").initialize(mode=3, speed_override=1.0, payload=16.0)
    life_h = robot.get("service_life")
    robot.step(60.0, count=60)
    assert robot.get("wear") == pytest.approx(1.0 / life_h, rel=1e-9)
    assert robot.get("cycles_completed") == pytest.approx(3600.0 / robot.get("cycle_time"))
    worn, hazard = robot.get("wear"), robot.get("hazard_rate")
    robot.set(mode=2)
    robot.step(60.0, count=60)
    assert robot.get("wear") == worn
    robot.set(mode=3)
    robot.step(60.0, count=600)
    assert robot.get("hazard_rate") > hazard
    robot.set(gripper_service=True, mode=2)
    robot.step(1.0)
    assert robot.get("wear") == robot.get("initial_wear")


def test_robot_joint_reaches_analytic_steady_temperature(make_slave):
    robot = make_slave("RobotCell").initialize(mode=2)
    heat_w = robot.get("loss_fraction") * robot.get("hold_power") * 1000.0
    tau = robot.get("thermal_capacity") * robot.get("thermal_resistance")
    robot.step(60.0, count=int(40 * tau / 60))
    assert robot.get("joint_temperature") == pytest.approx(
        20.0 + heat_w * robot.get("thermal_resistance"), rel=1e-9
    )
