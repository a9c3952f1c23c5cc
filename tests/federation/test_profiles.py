"""Node profiles: the shipped files load and apply to the scenario, bad ones fail clearly,
and the nodes' twins differ measurably."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agents.heuristics import make_heuristic
from envs.config import ConfigError
from envs.scenario import load_scenario
from federation.profiles import (
    HELD_OUT_NODE,
    PROFILE_DIR,
    TRAINING_NODES,
    NodeProfile,
    StationProfile,
    heuristic_table,
    load_node_profile,
    make_node_env,
    node_scenario,
    profile_names,
)


def test_shipped_profiles_are_the_training_nodes_and_the_held_out_one():
    assert profile_names() == sorted([*TRAINING_NODES, HELD_OUT_NODE])
    for name in profile_names():
        profile = load_node_profile(name)
        assert profile.name == name
        assert profile.source == str(PROFILE_DIR / f"{name}.toml")
        # every shipped profile says where its values come from
        assert "factory_parameters.md" in (PROFILE_DIR / f"{name}.toml").read_text()


def test_node_scenario_applies_every_difference():
    base = load_scenario("automotive_components")
    profile = load_node_profile("node-2")
    scenario = node_scenario(profile)
    machining = scenario.stations[0]
    assert machining.parameters["wear_rate_factor"] == 1.85
    # 20 % of the CncMill's 0.3 mm wear limit
    assert machining.parameters["initial_tool_wear"] == pytest.approx(0.06)
    welding = scenario.stations[1]
    assert welding.parameters["initial_wear"] == 0.3
    assert welding.parameters["process_time"] == base.stations[1].parameters["process_time"]

    node3 = node_scenario(load_node_profile("node-3"))
    assert node3.demand.orders_per_hour == pytest.approx(1.15 * base.demand.orders_per_hour)
    assert node3.objective.throughput_min_per_h == pytest.approx(
        1.15 * base.objective.throughput_min_per_h
    )
    assert node3.tariff.price(0, 11.0) == pytest.approx(1.35 * base.tariff.price(0, 11.0))
    assert node3.tariff.weekend_price == pytest.approx(1.35 * base.tariff.weekend_price)

    node4 = node_scenario(load_node_profile("node-4"))  # a whole tariff table
    assert node4.tariff.price(0, 11.0) == pytest.approx(0.0808)
    assert node4.tariff.price(0, 3.0) == pytest.approx(0.0547)
    assert node4.tariff.price(6, 11.0) == pytest.approx(0.0547)


def test_a_profile_built_in_code_applies_too():
    profile = NodeProfile(
        name="x", stations=(StationProfile(station="inspection", wear_rate_factor=2.0),)
    )
    scenario = node_scenario(profile)
    assert scenario.stations[2].parameters["wear_rate_factor"] == 2.0
    assert scenario.stations[2].parameters["drive_power"] == 1.2  # the scenario's own kept


def _run_naive(name: str, hours: float) -> dict[str, float]:
    env = make_node_env(load_node_profile(name), horizon_h=hours)
    try:
        policy = make_heuristic("naive", env)
        observation, _ = env.reset(seed=1000)
        start_wear = [machine.wear_ratio for machine in env.line.machines]
        temperatures, info = [], {}
        done = False
        while not done:
            action, _ = policy.predict(observation)
            observation, _, terminated, truncated, info = env.step(action)
            temperatures.append(env.line.machines[0].temperature)
            done = terminated or truncated
        kpis = info["kpi_total"]
        prices = [env.scenario.tariff.price(0, h) for h in range(24)]
        return {
            "cost": kpis["cost"],
            "energy_kwh": kpis["energy_kwh"],
            "machining_wear": env.line.machines[0].wear_ratio - start_wear[0],
            "welding_wear": env.line.machines[4].wear_ratio - start_wear[4],
            "temperature": float(np.mean(temperatures)),
            "mean_price": float(np.mean(prices)),
        }
    finally:
        env.close()


def test_profiles_produce_measurably_different_twins():
    hours = 7.0  # Monday 00:00-07:00: the first staffed hour wears the tools, none is renewed
    runs = {name: _run_naive(name, hours) for name in TRAINING_NODES}
    # each pair of nodes differs by more than 5 % in at least one measured quantity
    for a, b in itertools.combinations(TRAINING_NODES, 2):
        gaps = [
            abs(runs[a][k] - runs[b][k]) / max(abs(runs[a][k]), abs(runs[b][k]), 1e-9)
            for k in runs[a]
        ]
        assert max(gaps) > 0.05, (a, b, runs[a], runs[b])
    # and in the direction the profiles say
    assert runs["node-2"]["machining_wear"] > 1.5 * runs["node-1"]["machining_wear"] > 0
    assert runs["node-4"]["machining_wear"] < runs["node-1"]["machining_wear"]
    assert runs["node-3"]["welding_wear"] > runs["node-1"]["welding_wear"]
    assert runs["node-3"]["temperature"] > runs["node-1"]["temperature"] + 5.0
    assert (
        runs["node-1"]["mean_price"] < runs["node-2"]["mean_price"] < runs["node-3"]["mean_price"]
    )
    assert runs["node-1"]["cost"] < runs["node-3"]["cost"]


def _write(tmp_path, text: str):
    path = tmp_path / "bad.toml"
    path.write_text('name = "bad"\n' + text)
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[stations]]\nstation = "machining"\nwear_rate_factor = 12.0\n',
            ["'stations[0].wear_rate_factor' = 12.0", "[0.1, 5.0]"],
        ),
        (
            '[[stations]]\nstation = "machining"\ninitial_wear = 0.95\n',
            ["'stations[0].initial_wear' = 0.95", "[0.0, 0.9]"],
        ),
        ("demand_factor = 3.0\n", ["'demand_factor' = 3.0", "[0.5, 1.5]"]),
        ("ambient_temperature = 80.0\n", ["'ambient_temperature' = 80.0", "[-10.0, 45.0]"]),
        ("tariff_factor = 0.0\n", ["'tariff_factor' = 0.0", "[0.1, 5.0]"]),
        ("wear_factor = 1.0\n", ["unknown key 'wear_factor'", "demand_factor"]),
        (
            '[[stations]]\nstation = "painting"\n',
            ["'stations[0].station' = 'painting'", "machining, welding, inspection"],
        ),
        (
            '[[stations]]\nstation = "welding"\nparameters = { spindle_speed = 1.0 }\n',
            ["'stations[0].parameters.spindle_speed' is not a parameter of RobotCell"],
        ),
        (
            '[[stations]]\nstation = "welding"\nparameters = { process_time = 5000.0 }\n',
            ["'stations[0].parameters.process_time' = 5000.0", "[0.0, 3600.0]"],
        ),
        ('scenario = "no_such_plant"\n', ["'scenario' = 'no_such_plant'", "automotive_components"]),
        (
            "[tariff]\nweekend_price = 0.1\n"
            "periods = [{ start_hour = 0.0, end_hour = 12.0, price = 0.1 }]\n",
            ["tariff", "24 h"],
        ),
    ],
)
def test_a_bad_profile_fails_at_load_naming_file_key_and_range(tmp_path, text, expected):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_node_profile(path)
    message = str(caught.value)
    assert str(path) in message
    for part in expected:
        assert part in message


def test_an_unknown_shipped_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="node-1"):
        load_node_profile("node-9")


def test_heuristic_table_has_a_row_per_node_and_heuristic():
    profiles = [load_node_profile("node-1"), load_node_profile("node-2")]
    table = heuristic_table(profiles, [1000], 2.0, heuristics=("naive", "condition_based"))
    lines = table.splitlines()
    assert lines[0].startswith("| node | heuristic | C EUR")
    rows = [line.split("|")[1:3] for line in lines[2:]]
    assert [(n.strip(), h.strip()) for n, h in rows] == [
        ("node-1", "naive"),
        ("node-1", "condition_based"),
        ("node-2", "naive"),
        ("node-2", "condition_based"),
    ]
