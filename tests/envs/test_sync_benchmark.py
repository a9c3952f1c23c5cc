"""SyncBenchmark is a validated config (envs.config: every error names the source, the key and
what is allowed); the benchmark's progress count follows the scenario's decision interval; the
cross-seed summary averages the seeds."""

from __future__ import annotations

import dataclasses

import pytest

from envs.config import ConfigError, from_mapping, load_config
from envs.plant import DriftEvent, PlantConfig
from envs.sync import SyncBenchmark, format_summary, summarise
from envs.sync.benchmark import progress_steps


def test_defaults_and_a_valid_mapping():
    assert from_mapping(SyncBenchmark, {}) == SyncBenchmark()
    config = from_mapping(
        SyncBenchmark,
        {"window_h": 0.5, "sync": "nudging", "beta": 0.4, "twin_seed": 999, "tracking": "states"},
    )
    assert (config.window_h, config.sync, config.beta, config.twin_seed) == (
        0.5,
        "nudging",
        0.4,
        999,
    )
    assert config.horizon_h == 1.0 and config.tracking == "states"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"window_h": 0.1},
            "bench.toml: 'window_h' = 0.1 is outside the allowed range [0.25, 8.0]",
        ),
        ({"horizon_h": 9.0}, "'horizon_h' = 9.0 is outside the allowed range [0.25, 8.0]"),
        ({"sync": "particle"}, "'sync' = 'particle' is not one of ['kalman', 'nudging']"),
        ({"tracking": "both"}, "'tracking' = 'both' is not one of ['events', 'states']"),
        ({"beta": 2.0}, "'beta' = 2.0 is outside the allowed range [0.0, 1.0]"),
        ({"beta": "high"}, "'beta' must be a number, not 'high'"),
        ({"ph_threshold": 0.0}, "'ph_threshold' = 0.0 is outside the allowed range"),
        ({"twin_seed": -1}, "'twin_seed' = -1 is outside the allowed range"),
        ({"twin_seed": 1.5}, "'twin_seed' must be a whole number"),
        ({"window": 1.0}, "unknown key 'window'; allowed keys here: beta, horizon_h"),
    ],
)
def test_bad_settings_name_the_source_the_key_and_the_allowed_values(data, message):
    with pytest.raises(ConfigError) as error:
        from_mapping(SyncBenchmark, data, source="bench.toml")
    assert message in str(error.value)


def test_the_one_loader_layers_file_and_command_line(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('window_h = 2.0\nsync = "nudging"\n')
    config = load_config(SyncBenchmark, path, overrides={"beta": 0.5})
    assert (config.window_h, config.sync, config.beta) == (2.0, "nudging", 0.5)
    with pytest.raises(ConfigError, match=r"bench\.toml \(with command-line options\): 'beta'"):
        load_config(SyncBenchmark, path, overrides={"beta": 3.0})
    with pytest.raises(ConfigError, match="command line: 'window_h' = 20.0 is outside"):
        load_config(SyncBenchmark, overrides={"window_h": 20.0})


def test_progress_steps_follow_the_decision_interval():
    plant = PlantConfig(
        drift=(
            DriftEvent(time_h=2.0, target="ambient_temperature", value=1.0),
            DriftEvent(time_h=0.5, target="ambient_temperature", value=1.0),  # in the window
        )
    )
    config = SyncBenchmark(window_h=1.0, horizon_h=1.0)
    # 2 h of window and horizon + 3 h for the drift after the window, 2 fits
    assert progress_steps(config, plant, 300.0) == 5 * 12 + 2
    assert progress_steps(config, plant, 600.0) == 5 * 6 + 2
    quiet = dataclasses.replace(plant, drift=())
    assert progress_steps(config, quiet, 300.0) == 2 * 12 + 2


def _seed(error: float, trust: int, rmse: float) -> dict:
    kinds = {"temperature": {"rmse": rmse, "nrmse_mean": rmse / 10, "nrmse_worst": rmse / 5}}
    kinds["wear"] = {"rmse": rmse / 100, "nrmse_mean": rmse / 1000, "nrmse_worst": rmse / 500}
    event = {"time_h": 2.0, "target": "wear_rate_factor", "operation": "multiply", "value": 2.0}
    return {
        "calibration": {
            "machining.thermal_resistance": {
                "fitted": 0.021,
                "std_error": 1e-4,
                "true": 0.021,
                "identified": True,
                "error_pct": error,
                "error_pct_state_replay": 2 * error,
            }
        },
        "next_hour": {"calibration only": kinds},
        "one_sample_ahead": {"none": {"temperature": {"rmse": rmse}, "wear": {"rmse": rmse}}},
        "hybrid_alpha": {"nominal": {"temperature": 1.0}, "calibrated": {"temperature": 0.0}},
        "drift": [
            {
                "event": {**event, "machine": "machining-2"},
                "intervals_to_trust_below_half": trust,
                "intervals_to_drift_flag": trust + 1,
                "false_alarms_before": 0,
                "min_trust_before": 0.5 + trust / 10,
                "state_mismatches_per_interval_before": float(trust),
            }
        ],
        "_traces": {"interval_s": 60.0},
    }


def test_summary_averages_over_seeds_and_prints_the_tables():
    results = [_seed(1.0, 2, 0.1), _seed(3.0, 3, 0.3)]
    summary = summarise(results)
    assert summary["calibration_error_pct"] == {"machining.thermal_resistance": 2.0}
    assert summary["calibration_error_pct_state_replay"] == {"machining.thermal_resistance": 4.0}
    row = summary["next_hour"]["calibration only"]["temperature"]
    assert row == pytest.approx({"rmse": 0.2, "nrmse_mean": 0.02, "nrmse_worst": 0.04})
    assert summary["one_sample_ahead_rmse"]["none"]["temperature"] == pytest.approx(0.2)
    (drift,) = summary["drift"]
    assert drift["trust"] == [2, 3] and drift["flag"] == [3, 4]
    assert drift["min_trust_before"] == pytest.approx(0.7)
    assert drift["state_mismatches_per_interval_before"] == pytest.approx(2.5)
    text = format_summary(results, summary, beta=0.8)
    assert "Next-hour prediction" in text and "One sample (60 s) ahead" in text
    assert "trust < 1/2 after [2, 3], Page-Hinkley after [3, 4]" in text
    with pytest.raises(ValueError, match="at least one seed"):
        summarise([])
