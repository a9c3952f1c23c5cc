"""The safety envelope: bounds, rate limits, clamp vs reject, NaN, config errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from edge_bridge.envelope import TAGS, SafetyEnvelope
from envs.config import ConfigError
from envs.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = load_scenario("automotive_components")
STATIONS = """
[[stations]]
name = "machining"
[[stations]]
name = "welding"
[[stations]]
name = "inspection"
"""


def envelope_from(tmp_path, text: str) -> SafetyEnvelope:
    path = tmp_path / "envelope.toml"
    path.write_text(text)
    return SafetyEnvelope.load(path, SCENARIO)


def setpoints(speed=1.0, standby=False, maintenance=False) -> dict:
    return {"speed_factor": speed, "standby": standby, "maintenance": maintenance}


def test_shipped_envelope_loads_and_matches_the_plant():
    envelope = SafetyEnvelope.load(ROOT / "configs/bridge/envelope.toml", SCENARIO)
    assert envelope.machine_names == SCENARIO.machine_names
    envelope.check_machines(SCENARIO.machine_names)
    assert envelope.version
    limits = envelope.limits["machining-2"]
    assert (limits.speed_low, limits.speed_high, limits.speed_max_step) == (0.7, 1.2, 0.1)
    assert envelope.limits["inspection-1"].speed_high == 1.25  # the station's speed_range


def test_in_envelope_setpoints_pass_unchanged(tmp_path):
    envelope = envelope_from(tmp_path, 'version = "v1"\n' + STATIONS)
    result = envelope.check("machining-1", setpoints(1.05, True), setpoints(1.0))
    assert result.applied == setpoints(1.05, True) and result.actions == []
    assert not result.rejected


def test_bounds_and_rate_are_clamped(tmp_path):
    envelope = envelope_from(tmp_path, 'version = "v1"\n' + STATIONS)
    result = envelope.check("machining-1", setpoints(1.25), setpoints(1.0))
    assert result.applied["speed_factor"] == pytest.approx(1.1)
    assert [a.action for a in result.actions] == ["clamp"]
    assert "exceeds ±0.1" in result.actions[0].reason
    # no last applied value: no rate limit, bounds still hold
    result = envelope.check("machining-1", setpoints(1.9))
    assert result.applied["speed_factor"] == 1.3
    assert "outside [0.7, 1.3]" in result.actions[0].reason
    # bounds win over the rate limit: a machine outside tightened bounds is brought back in
    result = envelope.check("machining-1", setpoints(1.3), setpoints(1.6))
    assert result.applied["speed_factor"] == pytest.approx(1.3)


def test_reject_mode_rejects_the_whole_command(tmp_path):
    text = 'version = "v1"\nspeed_factor = { max_step = 0.05, mode = "reject" }\n' + STATIONS
    envelope = envelope_from(tmp_path, text)
    result = envelope.check("welding-1", setpoints(1.1), setpoints(1.0))
    assert result.rejected and result.applied is None
    assert result.actions[0].tag == "speed_factor" and result.actions[0].action == "reject"
    assert envelope.check("welding-1", setpoints(1.04), setpoints(1.0)).applied is not None


def test_switch_tags_clamp_or_reject_per_tag(tmp_path):
    text = (
        'version = "v1"\nstandby = { allow_true = false, mode = "clamp" }\n'
        'maintenance = { allow_true = false, mode = "reject" }\n' + STATIONS
    )
    envelope = envelope_from(tmp_path, text)
    result = envelope.check("machining-1", setpoints(1.0, standby=True))
    assert result.applied == setpoints(1.0, standby=False)
    assert result.actions[0][:2] == ("standby", "clamp")
    result = envelope.check("machining-1", setpoints(1.0, maintenance=True))
    assert result.rejected and result.actions[0][:2] == ("maintenance", "reject")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.0", None, True])
def test_non_finite_or_wrong_type_speed_is_rejected_even_in_clamp_mode(tmp_path, bad):
    envelope = envelope_from(tmp_path, 'version = "v1"\n' + STATIONS)
    result = envelope.check("machining-1", setpoints(bad), setpoints(1.0))
    assert result.rejected
    assert (
        result.actions[0].tag == "speed_factor"
        and "not a finite number" in result.actions[0].reason
    )


def test_numpy_values_missing_and_unknown_tags(tmp_path):
    envelope = envelope_from(tmp_path, 'version = "v1"\n' + STATIONS)
    result = envelope.check(
        "machining-1", setpoints(np.float64(1.0), np.bool_(True)), setpoints(np.float32(1.0))
    )
    assert result.applied == setpoints(1.0, True)
    missing = envelope.check("machining-1", {"speed_factor": 1.0, "standby": False})
    assert missing.rejected and missing.actions == [("maintenance", "reject", "missing")]
    extra = envelope.check("machining-1", {**setpoints(), "valve": 1})
    assert extra.rejected and extra.actions[0].tag == "valve"
    wrong = envelope.check("machining-1", setpoints(standby=1))
    assert wrong.rejected and "not true or false" in wrong.actions[0].reason
    with pytest.raises(KeyError, match="not a machine"):
        envelope.check("press-1", setpoints())


def test_machine_overrides_station_overrides_defaults(tmp_path):
    text = (
        'version = "v1"\nspeed_factor = { max_step = 0.2 }\n'
        + STATIONS.replace(
            'name = "machining"', 'name = "machining"\nspeed_factor = { high = 1.2 }'
        )
        + '[[machines]]\nname = "machining-3"\nspeed_factor = { high = 1.1, mode = "reject" }\n'
    )
    envelope = envelope_from(tmp_path, text)
    assert envelope.limits["machining-1"].speed_high == 1.2
    assert envelope.limits["machining-3"].speed_high == 1.1
    assert envelope.limits["machining-3"].speed_mode == "reject"
    assert envelope.limits["machining-3"].speed_max_step == 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('version = "v1"\n', "missing key 'stations'"),
        (STATIONS, "missing key 'version'"),
        ('version = "v1"\nspeed_factor = { mode = "soft" }\n' + STATIONS, "speed_factor.mode"),
        ('version = "v1"\nspeed_factor = { max_step = -1 }\n' + STATIONS, "allowed range"),
        ('version = "v1"\nspeed_factor = { max_step = nan }\n' + STATIONS, "finite"),
        ('version = "v1"\nbogus = 1\n' + STATIONS, "unknown key 'bogus'"),
        (
            'version = "v1"\n' + STATIONS + '[[stations]]\nname = "press"\n',
            "'stations[3].name' = 'press' is not a station",
        ),
        ('version = "v1"\n[[stations]]\nname = "machining"\n', "welding, inspection"),
        (
            'version = "v1"\n' + STATIONS + '[[machines]]\nname = "machining-9"\n',
            "'machines[0].name' = 'machining-9' is not a machine",
        ),
        (
            'version = "v1"\n'
            + STATIONS.replace(
                'name = "welding"', 'name = "welding"\nspeed_factor = { high = 1.5 }'
            ),
            "speed_range",
        ),
        ("version = ", "not valid TOML"),
    ],
)
def test_malformed_envelopes_name_file_key_and_range(tmp_path, text, message):
    with pytest.raises(ConfigError, match="envelope.toml") as error:
        envelope_from(tmp_path, text)
    assert message in str(error.value)


def test_machine_list_mismatch_is_an_error(tmp_path):
    envelope = envelope_from(tmp_path, 'version = "v1"\n' + STATIONS)
    with pytest.raises(ConfigError, match="press-1"):
        envelope.check_machines([*SCENARIO.machine_names, "press-1"])
    with pytest.raises(ConfigError, match="inspection-1"):
        envelope.check_machines(SCENARIO.machine_names[:-1])
    assert TAGS == ("speed_factor", "standby", "maintenance")
