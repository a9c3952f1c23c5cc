"""envs.scaling: the shipped line grown to N machines (stations split into cells of at most 20),
and envs.profiling's cost-of-a-step figures on a tiny line."""

from __future__ import annotations

import numpy as np
import pytest

from envs.scaling import MAX_PER_STATION, scaled_scenario
from envs.scenario import load_scenario


@pytest.mark.parametrize("machines", [7, 30, 100])
def test_scaled_lines_keep_the_stations_and_their_parameters(machines):
    scenario = scaled_scenario(machines)
    assert scenario.machine_count == machines
    assert all(1 <= s.machines <= MAX_PER_STATION for s in scenario.stations)
    base = load_scenario("automotive_components")
    for station in scenario.stations:
        shipped = next(s for s in base.stations if station.name.endswith(s.name))
        assert station.parameters == shipped.parameters


def test_seven_machines_is_the_shipped_line():
    base = load_scenario("automotive_components")
    scaled = scaled_scenario(7)
    assert scaled.stations == base.stations
    assert scaled.demand == base.demand and scaled.objective == base.objective


@pytest.mark.parametrize("machines", [2, 7.0, "30"])
def test_a_bad_machine_count_says_what_is_allowed(machines):
    with pytest.raises(ValueError, match="machines must be a whole number >= 3"):
        scaled_scenario(machines)


# -- the line's hot path: the same numbers as before it was made faster --------------------------


def test_a_seeded_episode_gives_the_kpis_of_the_line_before_the_hot_path_work():
    """Golden values from the code before the hot-path changes (commit ba7e485): random actions
    (speeds, maintenance thresholds, standby) on a randomised line, through the first shift's
    start. Any change to the simulation's arithmetic or random draws shows here."""
    import hashlib

    import numpy as np

    from envs.line_env import ProductionLineEnv

    env = ProductionLineEnv(scaled_scenario(7), randomization={"initial_wear": (0.5, 0.9)})
    try:
        rng = np.random.default_rng(5)
        observation, _ = env.reset(seed=3)
        digest = hashlib.sha256(observation.tobytes())
        reward = 0.0
        for _ in range(110):
            observation, step_reward, *_, info = env.step(
                rng.uniform(-1, 1, env.action_space.shape)
            )
            digest.update(observation.tobytes())
            reward += step_reward
    finally:
        env.close()
    kpis = info["kpi_total"]
    assert digest.hexdigest()[:16] == "11afb66897cd296a"
    assert reward == -131.0314011711585
    assert kpis["cost"] == 13099.379940282943
    assert kpis["energy_kwh"] == 75.20353665800822
    assert (kpis["good_parts"], kpis["scrap_parts"]) == (48, 2)


def test_pre_bound_scalar_inputs_and_list_reads_match_the_checked_api():
    import fmus
    from envs.fmu import FmuUnit
    from envs.fmu.errors import FmuVariableError

    with FmuUnit(fmus.path("CncMill")) as unit:
        mode = unit.scalar_input("mode")
        mode.write(0)
        assert unit.get("mode") == 0
        mode.write_checked(3)
        assert unit.get("mode") == 3
        edge = unit.scalar_input("tool_change")
        edge.write(True)
        assert unit.get("tool_change") is True
        with pytest.raises(FmuVariableError, match="mode"):
            mode.write(7)  # outside 0..3: refused, nothing set
        assert unit.get("mode") == 3
        with pytest.raises(FmuVariableError, match="ScalarInput sets scalar Integer"):
            unit.scalar_input("spindle_speed")
        with pytest.raises(FmuVariableError, match="causality local"):
            unit.scalar_input("previous_tool_change")
        io = unit.real_io(["spindle_speed"], ["power", "energy", "tool_wear"])
        io.write_scalar_checked(2500.0)
        assert unit.get("spindle_speed") == 2500.0
        unit.step(30.0)
        assert io.read_list() == io.read().tolist()
        assert all(type(value) is float for value in io.read_list())


# -- envs.profiling and scripts/bench_scaling.py ------------------------------------------------


def _line_env(machines: int = 7):
    from envs.line_env import ProductionLineEnv

    return ProductionLineEnv(scaled_scenario(machines), horizon_h=2.0)


def test_a_step_profile_splits_the_step_and_leaves_the_env_as_it_was():
    from envs.profiling import PARTS, profile_steps

    env = _line_env()
    nominal = np.zeros(env.action_space.shape, dtype=np.float32)
    try:
        profile = profile_steps(env, lambda _: nominal, 4, seed=1, skip=2)
        assert set(profile.parts_s) == set(PARTS)
        assert all(seconds >= 0 for seconds in profile.parts_s.values())
        # 10 ticks of 9 units (7 machines, 2 conveyors): at least a doStep, a set and a get each
        assert profile.fmu_calls_per_step >= 10 * 9 * 3
        assert sum(profile.parts_s.values()) <= profile.instrumented_step_s
        assert abs(sum(profile.shares.values()) - 1) < 1e-9
        assert "advance" not in vars(env.line) and "step" not in vars(env.line.system)
        assert all("send_inputs" not in vars(m) for m in env.line.machines)
        fast = env.line.machines[0].unit._fast
        assert type(fast.do_step_c).__name__ != "function"  # the ctypes prototype is back
        with pytest.raises(ValueError, match="must fit in one episode"):
            profile_steps(env, lambda _: nominal, 20, skip=5)  # 2 h = 24 steps
    finally:
        env.close()


def test_bench_scaling_refuses_bad_arguments(capsys):
    from scripts import bench_scaling

    assert bench_scaling.main(["--machines", "2"]) == 2
    assert "--machines must be" in capsys.readouterr().err
    assert bench_scaling.main(["--steps", "2000", "--skip", "72"]) == 2
    assert "fit in one week" in capsys.readouterr().err


def test_bench_scaling_prints_the_table_and_writes_json_and_png(tmp_path, capsys):
    import json

    from scripts import bench_scaling

    argv = ["--machines", "3", "--steps", "2", "--skip", "0", "--evaluations", "1"]
    argv += ["--eval-horizon-h", "0.2", "--in-process", "--out", str(tmp_path)]
    assert bench_scaling.main(argv) == 0
    printed = capsys.readouterr().out
    assert "FMU calls (C)" in printed and "evals/s" in printed
    result = json.loads((tmp_path / "scaling.json").read_text())["results"][0]
    assert result["machines"] == 3 and result["evaluations_per_s"] > 0
    assert set(result["profile"]["shares"]) == {"fmu_calls", "fmu_layer", "discrete_event", "env"}
    assert (tmp_path / "scaling.png").stat().st_size > 1000
