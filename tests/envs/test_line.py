"""The production line: determinism, conservation, KPI accounting, shifts, tariff, heuristics."""

from __future__ import annotations

import dataclasses

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401 - registers the envs
from agents import make_heuristic
from envs.line import Randomization
from envs.line_env import ProductionLineEnv, ProductionLineMOEnv
from envs.machines import MachineState
from envs.scenario import load_scenario


def run(env, policy_name: str, seed: int = 0, steps: int | None = None):
    policy = make_heuristic(policy_name, env)
    observation, _ = env.reset(seed=seed)
    infos = []
    for _ in range(steps or env.unwrapped.horizon_steps):
        action, _ = policy.predict(observation)
        observation, _reward, terminated, truncated, info = env.step(action)
        infos.append(info)
        if terminated or truncated:
            break
    return infos


@pytest.fixture(scope="module")
def day_env():
    env = ProductionLineEnv(horizon_h=24.0)
    yield env
    env.close()


def test_same_seed_same_kpis(day_env):
    first = run(day_env, "naive", seed=4)[-1]["kpi_total"]
    second = run(day_env, "naive", seed=4)[-1]["kpi_total"]
    other = run(day_env, "naive", seed=5)[-1]["kpi_total"]
    assert first == second
    assert first != other


def test_parts_are_conserved(day_env):
    run(day_env, "condition_based", seed=1, steps=150)  # stops mid-shift, parts everywhere
    line = day_env.line
    in_machines = sum(m.state is MachineState.BUSY for m in line.machines)
    in_buffers = sum(line.buffers[1:])
    on_conveyors = sum(len(c.transit) for c in line.conveyors if c is not None)
    assert line.work_in_progress == in_machines + in_buffers + on_conveyors
    assert line.released == line.delivered + line.scrapped + line.work_in_progress
    assert line.work_in_progress > 0 and line.delivered > 0


def test_energy_is_the_sum_of_the_fmu_energies(day_env):
    infos = run(day_env, "naive", seed=2, steps=100)
    line = day_env.line
    units = [m.unit for m in line.machines] + [c.unit for c in line.conveyors if c is not None]
    fmu_energy = sum(unit.get("energy") for unit in units)
    assert infos[-1]["kpi_total"]["energy_kwh"] == pytest.approx(fmu_energy, rel=1e-9)
    assert sum(i["kpi_step"]["energy_kwh"] for i in infos) == pytest.approx(fmu_energy)


def test_night_energy_is_priced_off_peak_and_produces_nothing(day_env):
    infos = run(day_env, "naive", seed=3, steps=60)  # Monday 00:00-05:00, before the shift
    for info in infos:
        step = info["kpi_step"]
        assert step["energy_cost"] == pytest.approx(0.12 * step["energy_kwh"])
        assert step["good_parts"] == 0
    assert infos[-1]["kpi_total"]["downtime_h"] >= 0.0


def test_energy_cost_follows_the_tariff_over_a_day(day_env):
    infos = run(day_env, "naive", seed=3)
    tariff = day_env.scenario.tariff
    expected = sum(
        tariff.price(0, (k * 300.0 % 86_400) / 3600.0) * i["kpi_step"]["energy_kwh"]
        for k, i in enumerate(infos)
    )
    assert infos[-1]["kpi_total"]["energy_cost"] == pytest.approx(expected)


def test_downtime_counts_only_failures_and_repairs():
    scenario = load_scenario("automotive_components")
    reliable = {
        "CncMill": {"base_hazard_rate": 0.0, "tool_breakage_rate": 0.0},
        "RobotCell": {"base_hazard_rate": 0.0},
    }
    stations = tuple(
        dataclasses.replace(s, parameters={**s.parameters, **reliable[s.equipment]})
        for s in scenario.stations
    )
    env = ProductionLineEnv(dataclasses.replace(scenario, stations=stations), horizon_h=12.0)
    env.reset(seed=0)
    maintain_all = np.tile([0.0, 1.0, -1.0], len(env.line.machines))
    for _ in range(env.horizon_steps):
        *_, info = env.step(maintain_all)
    totals = info["kpi_total"]
    assert totals["downtime_h"] == 0.0
    assert totals["maintenance_cost"] > 0 and totals["availability"] < 1.0
    env.close()


def test_heuristics_are_told_apart(day_env):
    totals = {
        name: run(day_env, name, seed=0)[-1]["kpi_total"]
        for name in ("naive", "fixed_interval", "condition_based")
    }
    naive, cbm = totals["naive"], totals["condition_based"]
    assert cbm["energy_kwh"] < 0.9 * naive["energy_kwh"]  # standby when starved, off at night
    assert cbm["downtime_h"] < naive["downtime_h"]  # tools changed before they break
    assert cbm["cost"] < naive["cost"]
    assert totals["fixed_interval"]["maintenance_cost"] > 0 == naive["maintenance_cost"]


def test_standby_machines_are_off_at_night(day_env):
    run(day_env, "condition_based", seed=0, steps=12)  # Monday 01:00
    assert all(m.state is MachineState.OFF for m in day_env.line.machines)


def test_bad_actions_are_refused(day_env):
    day_env.reset(seed=0)
    size = day_env.action_space.shape[0]
    for action, message in (
        (np.full(size, np.nan), "NaN"),
        (np.full(size, 2.0), r"\[-1, 1\]"),
        (np.zeros(size - 1), "3 per machine"),
    ):
        with pytest.raises(ValueError, match=message):
            day_env.step(action)
    assert day_env.line.time_s == 0.0


def test_multi_objective_reward_is_the_negative_kpi_vector():
    env = ProductionLineMOEnv(horizon_h=1.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.tile([0.0, -1.0, -1.0], len(env.line.machines)))
    step = info["kpi_step"]
    assert reward.tolist() == [-step["cost"], -step["energy_kwh"], -step["downtime_h"]]
    assert env.reward_space.shape == (3,) and set(info["constraints"]) == {
        "throughput",
        "peak_power",
    }
    env.close()


def test_domain_randomisation_is_seeded_and_applied():
    env = ProductionLineEnv(
        horizon_h=1.0,
        randomization={
            "wear_rate_factor": (0.5, 2.0),
            "initial_wear": (0.1, 0.4),
            "ambient_temperature": (15.0, 30.0),
        },
    )
    _, first = env.reset(seed=9)
    _, again = env.reset(seed=9)
    _, other = env.reset(seed=10)
    assert first["randomized"] == again["randomized"] != other["randomized"]
    drawn = other["randomized"]
    mill = env.line.machines[0]
    assert mill.unit.get("wear_rate_factor") == drawn[f"{mill.name}.wear_rate_factor"]
    assert 0.1 <= mill.wear_ratio <= 0.4
    assert 15.0 <= drawn["ambient_temperature"] <= 30.0
    env.close()
    with pytest.raises(ValueError, match="low <= high"):
        Randomization(wear_rate_factor=(2.0, 1.0))


def _wrappers(env) -> list[type]:
    kinds = []
    while hasattr(env, "env"):
        kinds.append(type(env))
        env = env.env
    return kinds


def test_registered_env_has_one_time_limit_its_own_horizon():
    env = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=336.0)
    assert env.spec.max_episode_steps is None
    assert gymnasium.wrappers.TimeLimit not in _wrappers(env)  # nothing cuts two weeks to one
    assert env.unwrapped.horizon_steps == 2 * 7 * 24 * 12
    env.close()
    default = gymnasium.make("twinfactory/ProductionLine-v0")
    assert default.unwrapped.horizon_steps == 7 * 24 * 12  # the scenario's week of 5 min steps
    default.close()


def test_truncation_follows_the_scenario_decision_interval(tmp_path):
    from envs.config import config_to_dict, load_config
    from envs.scenario import Scenario

    base = config_to_dict(load_scenario("automotive_components"))
    minute = load_config(Scenario, overrides={"decision_interval_s": 60.0}, base=base)
    env = gymnasium.make("twinfactory/ProductionLine-v0", scenario=minute, horizon_h=0.25)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, np.float32)
    ends = [env.step(action)[3] for _ in range(15)]
    assert ends == [False] * 14 + [True]  # 15 one-minute steps, truncated on the last
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(action)
    env.reset(seed=0)
    assert env.step(action)[3] is False
    env.close()


def test_step_before_reset_says_so():
    env = ProductionLineEnv(horizon_h=1.0)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(env.action_space.shape, np.float32))
    env.close()


def test_action_mapping_is_centred_on_nominal(day_env):
    day_env.reset(seed=0)
    machines = len(day_env.line.machines)
    for value, expected in ((0.0, 1.0), (1.0, 1.3), (-1.0, 0.7), (0.5, 1.15)):
        speed, maintenance, standby = day_env.decode_action(np.tile([value, -0.1, 0.1], machines))
        assert speed[0] == pytest.approx(expected)  # a mill: speed range [0.7, 1.3]
        assert not maintenance.any() and standby.all()
        assert day_env.speed_action(expected, 0) == pytest.approx(value)


def test_maintenance_is_a_wear_threshold(day_env):
    run(day_env, "naive", seed=0, steps=120)  # ten hours: the tools have worn
    machines = day_env.line.machines
    wear = np.array([m.wear_ratio for m in machines])
    mill = 0
    for value, expected in (
        (1.0, True),  # θ = 0: maintain now
        (-1.0, False),  # never
        (1.0 - wear[mill] + 1e-6, True),  # θ just below the wear
        (1.0 - wear[mill] - 1e-3, False),  # θ just above it
    ):
        action = np.tile([0.0, -1.0, 0.0], len(machines))
        action[3 * mill + 1] = value
        _, maintenance, _ = day_env.decode_action(action)
        assert maintenance[mill] == expected, value
        assert not maintenance[1:].any()


def test_an_fmu_asking_to_stop_terminates_the_episode(monkeypatch):
    # The shipped FMUs never ask to stop. Here the first mill's FMU "asks" on the third tick of
    # the second interval: the co-simulation records the StopRequest exactly as its step does
    # when fmi2DoStep reports discard + terminated (tests/envs/test_cosim.py runs real fixture
    # FMUs that do).
    from envs.fmu import StopRequest

    env = ProductionLineEnv(horizon_h=1.0)
    env.reset(seed=0)
    action = np.zeros(env.action_space.shape, np.float32)
    env.step(action)
    system, mill = env.line.system, env.line.machines[0].unit
    real_step, ticks = system.step, []

    def step_that_stops(dt):
        time = real_step(dt)
        ticks.append(time)
        if len(ticks) == 3:
            system.stop_request = StopRequest(mill.name, time, "fmi2DoStep")
            system.terminated_by = mill.name
        return time

    monkeypatch.setattr(system, "step", step_that_stops)
    _, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated
    assert info["stopped_by"] == mill.name and np.isfinite(reward)
    assert len(ticks) == 3  # the interval ended at the tick the FMU asked in
    assert info["kpi_step"]["hours"] == pytest.approx(3 * env.scenario.tick_s / 3600.0)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step(action)
    env.reset(seed=0)  # a reset clears the stop
    assert env.line.stopped_by is None and not env.step(action)[2]
    env.close()
