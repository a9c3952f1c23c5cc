"""scripts/bench_bridge.py: a tiny run through a real Mosquitto (started and stopped by the run)
loses nothing, prints the table and writes the JSON and the PNG; --help; bad arguments."""

from __future__ import annotations

import json

import pytest

from edge_bridge.load import MAX_PER_STATION, scaled_scenario
from envs.scenario import load_scenario
from scripts import bench_bridge


def test_help_names_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_bridge.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--machines", "--seconds", "--rate", "--out", "--candidate", "--profile"):
        assert option in text


@pytest.mark.parametrize("argv", [["--machines", "2"], ["--seconds", "0"], ["--rate", "0"]])
def test_bad_arguments_exit_2_and_say_why(argv, tmp_path, capsys):
    assert bench_bridge.main([*argv, "--out", str(tmp_path)]) == 2
    assert "--machines must be" in capsys.readouterr().err
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize("machines", [14, 100, 500])
def test_the_scaled_scenario_keeps_the_stations_and_splits_them_into_cells(machines, tmp_path):
    scenario = scaled_scenario(machines)
    assert scenario.machine_count == machines
    assert all(1 <= s.machines <= MAX_PER_STATION for s in scenario.stations)
    assert len(scenario.stations) % 3 == 0
    base = load_scenario("automotive_components")
    for station in scenario.stations:
        shipped = next(s for s in base.stations if station.name.endswith(s.name))
        assert station.parameters == shipped.parameters
        assert station.speed_range == shipped.speed_range
    paths = bench_bridge.write_plant_files(tmp_path, scenario)
    assert load_scenario(paths["scenario"]).machine_names == scenario.machine_names


def test_a_tiny_run_loses_nothing_and_writes_its_report(tmp_path, capsys):
    out = tmp_path / "bench"
    argv = ["--machines", "14", "--seconds", "2", "--rate", "5", "--out", str(out)]
    assert bench_bridge.main([*argv, "--progress-s", "1", "--settle-s", "20"]) == 0
    printed = capsys.readouterr().out
    assert "cmd p50" in printed and "twin" in printed
    assert any(line.split()[:1] == ["14"] for line in printed.splitlines())
    result = json.loads((out / "bench.json").read_text())["results"][0]
    assert result["failures"] == []
    assert result["decisions"] == result["decisions_expected"] == 1
    assert result["telemetry_sent"] == 11 * 14  # ticks 0..10: one decision interval
    assert result["telemetry_lost"] == result["telemetry_refused"] == 0
    assert result["commands_issued"] == result["commands_received"] == 14
    assert result["commands_lost"] == result["commands_duplicated"] == 0
    assert result["commands_applied_twice"] == 0
    assert result["command_statuses"] == {"confirmed": 14}
    assert result["command_latency_ms"]["n"] == 14 and result["command_latency_ms"]["p50"] > 0
    assert result["ingest_lag_ms"]["n"] == 11 * 14
    assert result["decision_ms"]["twin"] > 0 and result["decision_ms"]["audit"] > 0
    assert (
        result["decision_ms"]["publish"] > 0
        and result["decision_ms"]["reports"] > 0
        and result["decision_ms"]["rest"] >= 0
    )
    assert result["realtime"] is False and result["inbox_at_end"] == 0
    assert result["load"]["cores"] >= 1 and len(result["load"]["at_start"]) == 3
    assert (out / "latency.png").stat().st_size > 0


def test_realtime_needs_whole_samples_per_decision_and_bad_steps_are_refused():
    from edge_bridge.bench import BenchOptions, check_arguments
    from edge_bridge.load import SyntheticEquipment
    from edge_bridge.mqtt import ConnectionSettings

    check_arguments([100], BenchOptions(realtime=True, rate_hz=10.0))
    with pytest.raises(ValueError, match="--realtime"):
        check_arguments([100], BenchOptions(realtime=True, rate_hz=0.007))
    assert BenchOptions(realtime=True, rate_hz=10.0).plant_step_s == pytest.approx(0.1)
    assert BenchOptions(rate_hz=10.0).plant_step_s is None
    settings = ConnectionSettings(host="127.0.0.1", port=1, client_id="t", session_expiry_s=60)
    scenario = scaled_scenario(14)
    realtime = SyntheticEquipment(scenario, settings, site="s", plant_step_s=0.1)
    assert realtime.ticks_per_decision == 3000
    assert SyntheticEquipment(scenario, settings, site="s").ticks_per_decision == 10
    with pytest.raises(ValueError, match="plant_step_s must divide"):
        SyntheticEquipment(scenario, settings, site="s", plant_step_s=7.0)
