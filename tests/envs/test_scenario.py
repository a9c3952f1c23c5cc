"""Scenario files: the shipped one loads; every failure names the file, the key and the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from envs.config import ConfigError, from_mapping
from envs.scenario import SCENARIO_DIR, Scenario, load_scenario, scenario_names

SHIPPED = SCENARIO_DIR / "automotive_components.toml"


def test_shipped_scenario_loads():
    assert scenario_names() == ["automotive_components", "large_line", "small_line"]
    scenario = load_scenario("automotive_components")
    assert [s.name for s in scenario.stations] == ["machining", "welding", "inspection"]
    assert scenario.machine_count == 7
    assert scenario.tariff.price(weekday=2, hour=11.0) == 0.26
    assert scenario.tariff.price(weekday=2, hour=23.0) == 0.12
    assert scenario.tariff.price(weekday=6, hour=11.0) == 0.12
    assert scenario.stations[1].parameters == {"process_time": 65.0}
    assert load_scenario(SHIPPED) == scenario


def write_variant(tmp_path: Path, edit) -> Path:
    """A copy of the shipped scenario with ``edit(text)`` applied."""
    path = tmp_path / "variant.toml"
    path.write_text(edit(SHIPPED.read_text()))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace("tick_s = 30.0", "tick_s = 30.0\ntick_size = 3"),
            "unknown key 'tick_size'; allowed keys here: contracted_peak_kw",
        ),
        (
            lambda t: t.replace("machines = 4", "machines = 4\nspare = 1"),
            "unknown key 'stations[0].spare'",
        ),
        (
            lambda t: t.replace("mean_repair_h = 1.35", 'mean_repair_h = "long"'),
            "'reliability.mean_repair_h' must be a number",
        ),
        (
            lambda t: t.replace("machines = 4", "machines = 4.5"),
            "'stations[0].machines' must be a whole number",
        ),
        (
            lambda t: t.replace("machines = 4", "machines = 40"),
            "'stations[0].machines' = 40 is outside the allowed range [1, 20]",
        ),
        (
            lambda t: t.replace('equipment = "CncMill"', 'equipment = "Lathe"'),
            "'stations[0].equipment' = 'Lathe' is not one of ['CncMill', 'RobotCell']",
        ),
        (
            lambda t: t.replace("contracted_peak_kw = 45.0\n", ""),
            "missing key 'contracted_peak_kw'",
        ),
        (
            lambda t: t.replace("0.3, 0.3, 0.3, 0.3, 0.3, 0.5,", "0.3, 0.5,"),
            "demand.hourly_profile needs 24 values, got 20",
        ),
        (
            lambda t: t.replace("{ start_hour = 8.0,  end_hour = 10.0, price = 0.19 },", ""),
            "must cover 0..24 h in order without gaps",
        ),
        (
            lambda t: t.replace("decision_interval_s = 300.0", "decision_interval_s = 310.0"),
            "must be a whole multiple of tick_s",
        ),
        (
            lambda t: t.replace("process_time = 65.0", "process_tim = 65.0"),
            "'stations[1].parameters.process_tim' is not a parameter of RobotCell",
        ),
        (
            lambda t: t.replace("process_time = 65.0", "process_time = -5.0"),
            "'stations[1].parameters.process_time' = -5.0 is outside the allowed range "
            "[0.0, 3600.0] s",
        ),
        (
            lambda t: t.replace("start_hour = 6.0", "start_hour = 23.0"),
            "shifts.start_hour must be before shifts.end_hour",
        ),
        (
            lambda t: t.replace('name = "welding"', 'name = "machining"'),
            "station names must be unique",
        ),
        (lambda t: t.replace("[demand]", "[demand\n"), "not valid TOML"),
    ],
)
def test_bad_scenarios_name_file_key_and_range(tmp_path, edit, message):
    path = write_variant(tmp_path, edit)
    with pytest.raises(ConfigError) as raised:
        load_scenario(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_missing_file_and_unknown_name(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_scenario(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="no shipped scenario 'steelworks'"):
        load_scenario("steelworks")


def test_mapping_source_and_type_errors():
    data = tomllib.loads(SHIPPED.read_text())
    data["stations"] = "all of them"
    with pytest.raises(ConfigError, match="<memory>: 'stations' must be a list of a table"):
        from_mapping(Scenario, data, source="<memory>")
    with pytest.raises(ConfigError, match="expected a table of settings"):
        from_mapping(Scenario, ["not", "a", "table"])
