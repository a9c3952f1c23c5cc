"""Physics of the CncMill FMU against hand-derived values from its parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest

OFF, STANDBY, IDLE, CUTTING = 0, 1, 2, 3


def parameters(slave) -> dict[str, float]:
    return {
        name: slave.get(name) for name, v in slave.variables.items() if v.causality == "parameter"
    }


def spindle_heat_kw(p: dict[str, float], n: float, fz: float) -> float:
    """Heat into the spindle while cutting with a tool of zero wear, from the README's equations."""
    mrr = p["depth_of_cut"] * p["width_of_cut"] * fz * p["tooth_count"] * n / 60.0  # mm3/s
    u = p["specific_cutting_energy"] * (fz / p["reference_chip_thickness"]) ** (
        -p["chip_thickness_exponent"]
    )
    tip = u * mrr / 1000.0
    return (
        p["spindle_loss_linear"] * n
        + p["spindle_loss_quadratic"] * n**2
        + (p["spindle_loss_fraction"] * tip)
    )


def test_steady_state_temperature_matches_analytic_value(make_slave):
    mill = make_slave("CncMill").initialize(
        mode=CUTTING, wear_rate_factor=0.0, ambient_temperature=22.0
    )
    p = parameters(mill)
    tau = p["thermal_capacity"] * p["thermal_resistance"]
    steady = 22.0 + spindle_heat_kw(p, 1300.0, 0.15) * 1000.0 * p["thermal_resistance"]
    mill.step(60.0, count=round(tau * 40 / 60))
    assert mill.get("spindle_temperature") == pytest.approx(steady, rel=1e-9)


def test_warm_up_follows_first_order_response(make_slave):
    mill = make_slave("CncMill").initialize(mode=CUTTING, wear_rate_factor=0.0)
    p = parameters(mill)
    tau = p["thermal_capacity"] * p["thermal_resistance"]
    t0 = p["initial_spindle_temperature"]
    steady = 20.0 + spindle_heat_kw(p, 1300.0, 0.15) * 1000.0 * p["thermal_resistance"]
    mill.step(tau / 100, count=100)
    assert mill.get("spindle_temperature") == pytest.approx(
        steady + (t0 - steady) * math.exp(-1.0), rel=1e-9
    )


def test_spindle_cools_to_ambient_when_idle(make_slave):
    mill = make_slave("CncMill").initialize(mode=CUTTING)
    mill.step(60.0, count=60)
    assert mill.get("spindle_temperature") > 35.0
    mill.set(mode=IDLE, ambient_temperature=18.0)
    mill.step(60.0, count=600)
    assert mill.get("spindle_temperature") == pytest.approx(18.0, abs=1e-6)


def test_energy_is_the_integral_of_power(make_slave):
    mill = make_slave("CncMill").initialize(mode=STANDBY)
    modes = [STANDBY, IDLE, CUTTING, CUTTING, IDLE, OFF, CUTTING, STANDBY]
    times, powers = [0.0], [mill.get("power")]
    energy = 0.0
    for mode in modes:
        mill.set(mode=mode, spindle_speed=900.0 + 150.0 * mode)
        start_power = mill.get("power")
        for _ in range(30):
            mill.step(30.0)
            times.append(mill.time)
            powers.append(mill.get("power"))
        # trapezoid within the segment; power is continuous between mode changes
        segment = np.array([start_power, *powers[-30:]])
        energy += 30.0 * (segment[:-1] + segment[1:]).sum() / 2.0 / 3600.0  # trapezoid rule
    assert mill.get("energy") == pytest.approx(energy, rel=1e-5)


def test_standby_energy_is_exact(make_slave):
    mill = make_slave("CncMill").initialize(mode=STANDBY)
    mill.step(60.0, count=60)
    assert mill.get("energy") == pytest.approx(mill.get("standby_power") * 1.0, rel=1e-12)


def test_wear_never_decreases_and_grows_only_while_cutting(make_slave):
    mill = make_slave("CncMill").initialize()
    rng = np.random.default_rng(7)
    previous = mill.get("tool_wear")
    for _ in range(400):
        mode = int(rng.integers(0, 4))
        mill.set(
            mode=mode,
            spindle_speed=float(rng.uniform(600, 2000)),
            feed_per_tooth=float(rng.uniform(0.08, 0.3)),
        )
        mill.step(float(rng.choice([1.0, 10.0, 60.0])))
        wear = mill.get("tool_wear")
        if mode == CUTTING:
            assert wear > previous
        else:
            assert wear == previous
        previous = wear


def test_wear_follows_taylor_life(make_slave):
    """At the reference temperature a new tool reaches the wear limit after the Taylor life."""
    mill = make_slave("CncMill").initialize(
        mode=CUTTING, initial_spindle_temperature=45.0, wear_temperature_coefficient=0.0
    )
    life_min = mill.get("tool_life")
    p = parameters(mill)
    vc = math.pi * p["tool_diameter"] * 1300.0 / 1000.0
    assert life_min == pytest.approx((p["taylor_constant"] / vc) ** (1 / p["taylor_exponent"]))
    mill.step(life_min * 60.0 / 100, count=100)
    assert mill.get("tool_wear") == pytest.approx(p["wear_limit"], rel=1e-9)


def test_faster_cutting_wears_the_tool_faster(make_slave):
    wear = {}
    for speed in (1000.0, 1300.0, 1600.0):
        mill = make_slave("CncMill").initialize(mode=CUTTING, spindle_speed=speed)
        mill.step(60.0, count=60)
        wear[speed] = mill.get("tool_wear")
    assert wear[1000.0] < wear[1300.0] < wear[1600.0]


def test_hotter_spindle_wears_the_tool_faster(make_slave):
    wear = []
    for ambient in (10.0, 30.0):
        mill = make_slave("CncMill").initialize(
            mode=CUTTING, ambient_temperature=ambient, initial_spindle_temperature=ambient
        )
        mill.step(60.0, count=60)
        wear.append(mill.get("tool_wear"))
    assert wear[0] < wear[1]


def test_hazard_rises_with_wear_and_over_temperature(make_slave):
    hazards = []
    for wear in (0.0, 0.1, 0.2, 0.3, 0.4):
        mill = make_slave("CncMill").initialize(mode=CUTTING, initial_tool_wear=wear)
        hazards.append(mill.get("hazard_rate"))
    assert np.all(np.diff(hazards) > 0)
    base, breakage = 1.0 / 1058.0, 0.5
    assert hazards[0] == pytest.approx(base + breakage * math.exp(-8.0))
    # at the wear limit: machine hazard x (1 + 4) plus the tool-breakage rate itself
    assert hazards[3] == pytest.approx(base * 5.0 + breakage)
    idle = make_slave("CncMill").initialize(mode=IDLE, initial_tool_wear=0.3)
    assert idle.get("hazard_rate") == pytest.approx(base * 5.0)  # tools break only when cutting
    cool = make_slave("CncMill").initialize(mode=IDLE, initial_spindle_temperature=50.0)
    hot = make_slave("CncMill").initialize(mode=IDLE, initial_spindle_temperature=70.0)
    assert hot.get("hazard_rate") == pytest.approx(
        cool.get("hazard_rate") * math.exp(15.0 / 10.0), rel=1e-12
    )


def test_off_machine_cannot_fail_and_draws_no_power(make_slave):
    mill = make_slave("CncMill").initialize(mode=OFF)
    assert mill.get("hazard_rate") == 0.0
    assert mill.get("power") == 0.0


def test_cycle_time_scales_inversely_with_speed_and_feed(make_slave):
    mill = make_slave("CncMill").initialize()
    handling = mill.get("handling_time")
    cutting = {}
    for speed in (650.0, 1300.0, 2600.0):
        mill.set(spindle_speed=speed)
        cutting[speed] = mill.get("cutting_time")
        assert mill.get("cycle_time") == pytest.approx(cutting[speed] + handling)
    assert cutting[650.0] == pytest.approx(2 * cutting[1300.0])
    assert cutting[1300.0] == pytest.approx(2 * cutting[2600.0])
    mill.set(spindle_speed=1300.0, feed_per_tooth=0.3)
    assert mill.get("cutting_time") == pytest.approx(cutting[1300.0] / 2)


def test_power_ordering_by_mode(make_slave):
    mill = make_slave("CncMill").initialize()
    power = {}
    for mode in (OFF, STANDBY, IDLE, CUTTING):
        mill.set(mode=mode)
        power[mode] = mill.get("power")
    assert power[OFF] < power[STANDBY] < power[IDLE] < power[CUTTING]


def test_vibration_and_defects_rise_with_wear_and_speed(make_slave):
    readings = []
    for wear in (0.0, 0.15, 0.3, 0.45):
        mill = make_slave("CncMill").initialize(mode=CUTTING, initial_tool_wear=wear)
        readings.append((mill.get("vibration_rms"), mill.get("defect_probability")))
    vibration, defects = np.array(readings).T
    assert np.all(np.diff(vibration) > 0) and np.all(np.diff(defects) > 0)
    assert vibration[0] < 1.4 < vibration[2]  # new tool in ISO 10816-3 zone A, worn beyond it
    mill = make_slave("CncMill").initialize(mode=CUTTING)
    slow = mill.get("vibration_rms")
    mill.set(spindle_speed=2000.0)
    assert mill.get("vibration_rms") > slow


def test_parts_count_matches_cutting_time(make_slave):
    mill = make_slave("CncMill").initialize(mode=CUTTING)
    cutting_time = mill.get("cutting_time")
    mill.step(cutting_time / 10, count=50)
    assert mill.get("parts_machined") == pytest.approx(5.0, rel=1e-12)


def test_tool_change_restores_wear_on_rising_edge_only(make_slave):
    mill = make_slave("CncMill").initialize(mode=CUTTING)
    mill.step(60.0, count=30)
    worn = mill.get("tool_wear")
    assert worn > 0.0
    mill.set(tool_change=True)
    mill.step(1.0)
    assert mill.get("tool_wear") < worn / 100
    mill.step(60.0, count=30)  # holding the input high does not change the tool again
    assert mill.get("tool_wear") > worn * 0.9


def test_a_tool_never_changed_wears_out_and_stays_finite(make_slave):
    """Wear saturates at three times the wear limit (edge destroyed); nothing runs away."""
    mill = make_slave("CncMill").initialize(
        mode=CUTTING, spindle_speed=2600.0, ambient_temperature=50.0
    )
    mill.step(600.0, count=6 * 60)  # 60 h of cutting
    outputs = mill.outputs()
    assert all(math.isfinite(value) for value in outputs.values())
    assert outputs["tool_wear"] == pytest.approx(3 * mill.get("wear_limit"))
    assert outputs["defect_probability"] <= 1.0
