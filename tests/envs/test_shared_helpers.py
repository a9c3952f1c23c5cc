"""The one atomic-write helper, the seed split, the config loader's merge and machine naming."""

from __future__ import annotations

import os

import pytest

from envs.atomic import atomic_path, write_atomic
from envs.config import ConfigError, load_config, load_toml, write_toml
from envs.equipment import ParameterError, check_parameter, equipment_parameters
from envs.scenario import Scenario, load_scenario
from envs.seeding import HELD_OUT_SEEDS_FROM, event_rng, held_out_seeds


def test_write_atomic_replaces_whole_files_and_leaves_no_temporaries(tmp_path):
    target = tmp_path / "deep" / "report.json"
    write_atomic(target, "first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() would make it, not 0600


def test_a_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "model.zip"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.zip"]


def test_held_out_seeds_never_overlap_training_seeds():
    assert held_out_seeds(3) == [HELD_OUT_SEEDS_FROM + k for k in range(3)]
    with pytest.raises(ValueError, match="start at 1000"):
        held_out_seeds(3, first=10)
    assert event_rng(7).random() == event_rng(7).random()


def test_load_config_layers_defaults_file_and_command_line(tmp_path):
    path = tmp_path / "scenario.toml"
    source = load_scenario("automotive_components")
    write_toml(source, path)
    assert load_toml(Scenario, path) == source  # written TOML reads back equal
    changed = load_config(Scenario, path, {"horizon_h": 24.0, "demand": {"orders_per_hour": 9.0}})
    assert changed.horizon_h == 24.0
    assert changed.demand.orders_per_hour == 9.0
    assert changed.demand.hourly_profile == source.demand.hourly_profile  # merged, not replaced
    with pytest.raises(ConfigError, match=r"command-line options.*horizon_h"):
        load_config(Scenario, path, {"horizon_h": -1.0})
    with pytest.raises(ConfigError, match="no such file"):
        load_config(Scenario, tmp_path / "missing.toml")


def test_machine_names_are_station_and_index():
    scenario = load_scenario("automotive_components")
    assert scenario.machine_names[0] == "machining-1"
    assert len(scenario.machine_names) == scenario.machine_count
    assert scenario.machine_equipment["welding-1"] == "RobotCell"


def test_equipment_parameters_say_what_is_wrong():
    assert "wear_rate_factor" in equipment_parameters("CncMill")
    assert check_parameter("CncMill", "wear_rate_factor", 1.5).unit in (None, "", "1")
    with pytest.raises(ParameterError, match="outside the allowed range"):
        check_parameter("CncMill", "wear_rate_factor", 100.0)
    with pytest.raises(ParameterError, match="not a parameter of CncMill; its parameters are"):
        check_parameter("CncMill", "warp_drive", 1.0)
