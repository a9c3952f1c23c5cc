"""The bridge's trust signal on the emulator: healthy → trusted after the warm-up, an injected
drift → flagged on that machine only, within 3 decision intervals."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edge_bridge.trust import CommonModeDetector, SignalDetector, TrustConfig
from edge_bridge.twin import BridgeTwin, TwinUpdate
from envs.plant import DriftEvent, Plant, PlantConfig, load_plant_config

REPO = Path(__file__).resolve().parents[2]
DRIFT_H = 1.5


def plant_config(*drift: DriftEvent) -> PlantConfig:
    return dataclasses.replace(
        load_plant_config(REPO / "configs" / "plant_example.toml"), drift=drift
    )


def run(config: PlantConfig, hours: float, lost: range = range(0)) -> list[TwinUpdate]:
    """Per decision interval the twin's update; the intervals in ``lost`` never reach it (a
    gateway offline: the next update starts after a time gap)."""
    with (
        Plant(config) as plant,
        BridgeTwin(
            plant.nominal_scenario,
            sample_interval_s=config.sample_interval_s,
            start_s=config.start_h * 3600.0,
        ) as twin,
    ):
        plant.reset()
        updates = [twin.update(plant.samples, np.ones(len(plant.machine_names)))]
        for k in range(round(hours * 12)):
            plant.advance()
            if k not in lost:
                updates.append(twin.update(plant.samples, np.ones(len(plant.machine_names))))
    return updates


@pytest.fixture(scope="module")
def healthy() -> list[TwinUpdate]:
    return run(plant_config(), 2.0)


@pytest.fixture(scope="module")
def worn() -> list[TwinUpdate]:
    event = DriftEvent(time_h=DRIFT_H, target="wear_rate_factor", machine="machining-2", value=2.0)
    return run(plant_config(event), DRIFT_H + 0.5)


def test_healthy_plant_is_trusted_after_the_warm_up(healthy: list[TwinUpdate]) -> None:
    config = TrustConfig()
    assert not healthy[0].ready and all(v == 0.0 for v in healthy[0].trust.values())
    ready = [u for u in healthy if u.ready]
    assert len(ready) >= 10  # the second hour
    assert all(not u.untrusted(config) for u in ready)
    assert min(min(u.trust.values()) for u in ready) > 0.6


def test_wear_drift_is_flagged_on_that_machine_within_three_intervals(
    worn: list[TwinUpdate],
) -> None:
    config = TrustConfig()
    after = [u for u in worn if u.time_s / 3600.0 > DRIFT_H + 1e-9]
    before = [u for u in worn if u.ready and u.time_s / 3600.0 <= DRIFT_H + 1e-9]
    assert before and all(not u.untrusted(config) for u in before)
    first = next(j for j, u in enumerate(after) if "machining-2" in u.untrusted(config))
    assert first + 1 <= 3
    assert "machining-2.wear" in after[first].drifted["machining-2"]
    assert all(set(u.untrusted(config)) <= {"machining-2"} for u in after)


def test_ambient_step_is_flagged_line_wide_within_two_intervals() -> None:
    hour = 2.5  # machines fitted after 1 h, the line-wide detector after 2 h
    event = DriftEvent(time_h=hour, target="ambient_temperature", operation="add", value=6.0)
    updates = run(plant_config(event), hour + 0.25)
    config = TrustConfig()
    before = [u for u in updates if u.ready and u.time_s / 3600.0 <= hour + 1e-9]
    assert before and all(not u.untrusted(config) for u in before)
    after = [u for u in updates if u.time_s / 3600.0 > hour + 1e-9]
    first = next(j for j, u in enumerate(after) if u.untrusted(config))
    assert first + 1 <= 2
    assert set(after[first].untrusted(config)) == set(after[first].trust)  # every machine
    assert all("line.temperature" in flags for flags in after[first].drifted.values())


def test_a_gateway_offline_for_three_intervals_re_warms_without_a_false_alarm() -> None:
    lost = range(15, 18)  # after the warm-up (12 intervals)
    updates = run(plant_config(), 2.5, lost=lost)
    config = TrustConfig()
    back = next(j for j, u in enumerate(updates) if u.resynced)
    assert updates[back - 1].ready and updates[back].time_s == (lost.stop + 1) * 300.0
    assert set(updates[back].resynced) == set(updates[back].trust)
    # the re-sync's sample and 10 more are not scored: the gate waits two intervals
    assert config.rewarm_samples == 10
    assert not any(u.ready for u in updates[back : back + 2])
    assert all(u.ready and not u.untrusted(config) for u in updates[back + 2 :])


def test_same_samples_give_the_same_trust(healthy: list[TwinUpdate]) -> None:
    again = run(plant_config(), 2.0)
    assert [u.trust for u in again] == [u.trust for u in healthy]
    assert [u.statistics for u in again] == [u.statistics for u in healthy]


def test_trust_config_is_validated() -> None:
    with pytest.raises(ValueError, match="alarm"):
        TrustConfig(alarm=-1.0)
    with pytest.raises(ValueError, match="warmup_samples"):
        TrustConfig(warmup_samples=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="noise_floor"):
        TrustConfig(noise_floor={"wear": 0.0})
    with pytest.raises(ValueError, match="gap_samples"):
        TrustConfig(gap_samples=0)
    with pytest.raises(ValueError, match="rewarm_samples"):
        TrustConfig(rewarm_samples=1.5)  # type: ignore[arg-type]
    assert TrustConfig(threshold=0.7).trusted(0.7)
    assert not TrustConfig(threshold=0.7).trusted(0.69)


def test_detector_learns_then_flags_a_shift() -> None:
    config = TrustConfig(warmup_samples=20)
    detector = SignalDetector(config, noise_floor=0.1)
    rng = np.random.default_rng(0)
    for k in range(20):  # residual = 0.5 + 0.1·x: the healthy model
        x = float(k % 5)
        assert math.isnan(detector.update(0.5 + 0.1 * x + rng.normal(0, 0.1), (1.0, x)))
    assert detector.ready and detector.trust == 1.0
    for k in range(30):
        x = float(k % 5)
        detector.update(0.5 + 0.1 * x + rng.normal(0, 0.1), (1.0, x))
    assert not detector.drifted and detector.trust > 0.5
    for _ in range(10):  # a 5σ shift
        detector.update(0.5 + 0.5 + 0.1 * 2.0, (1.0, 2.0))
    assert detector.drifted and detector.trust < 0.5


def test_detector_re_warms_after_a_resync_and_keeps_its_evidence() -> None:
    config = TrustConfig(warmup_samples=20, rewarm_samples=3)
    detector = SignalDetector(config, noise_floor=0.1)
    detector.rewarm()  # before the first fit: nothing to re-warm
    for _ in range(20):
        detector.update(0.0, (1.0,))
    for _ in range(3):
        detector.update(0.5, (1.0,))  # a 5σ shift: evidence before the gap
    statistic = detector.statistic
    detector.rewarm()
    assert not detector.ready and detector.trust == 0.0
    for _ in range(3):  # not scored: the CUSUM is kept as it was
        assert math.isnan(detector.update(9.0, (1.0,)))
    assert detector.ready and detector.statistic == statistic


def test_common_mode_detector_needs_its_own_warm_up_then_flags_a_shared_shift() -> None:
    config = TrustConfig(warmup_samples=20)
    common = CommonModeDetector(config, "temperature")
    rng = np.random.default_rng(1)
    assert math.isnan(common.update([0.3, math.nan]))  # too few machines: no sample
    for _ in range(20):
        common.update(list(rng.normal(0.0, 1.0, 7)))
        assert common.trust == 1.0 and not common.drifted  # no evidence, no veto
    for _ in range(40):
        common.update(list(rng.normal(0.0, 1.0, 7)))
    assert not common.drifted
    for _ in range(6):  # +1.5 σ on every machine: Z ≈ 4 per sample, 3 above k
        common.update(list(rng.normal(1.5, 1.0, 7)))
    assert common.drifted and common.trust < 0.5 and common.signal == "line.temperature"


def test_report_script_explains_its_options() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "trust_report.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    for option in ("--plant", "--seeds", "--hours", "--drift-h", "--alarm", "--out"):
        assert option in result.stdout
