"""The one NRMSE (envs.sync.metrics): RMSE over the finite measurements / a fixed span, and
every user of it (fidelity and trust, the hybrid's α choice, the benchmark's errors, the
calibration report) computing the same figure with the same default spans."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.sync import SPANS, FidelityMonitor, HybridPredictor, nrmse
from envs.sync.benchmark import errors
from envs.sync.calibration_report import kind_nrmse, signal_rmse
from envs.sync.metrics import FIT_SCALES, residual_rms, rmse, scale_of
from envs.sync.recording import Recording


def test_nrmse_is_rmse_over_finite_measurements_divided_by_the_span():
    predicted = np.array([1.0, 2.0, 3.0, 4.0])
    measured = np.array([2.0, math.nan, 1.0, 4.0])  # the NaN is a lost sample
    expected = math.sqrt((1.0 + 4.0 + 0.0) / 3)
    assert rmse(predicted, measured) == pytest.approx(expected)
    assert nrmse(predicted, measured, 10.0) == pytest.approx(expected / 10.0)
    assert nrmse(0.0, [3.0, -4.0], 5.0) == pytest.approx(math.sqrt(12.5) / 5.0)  # residuals
    assert math.isnan(nrmse(predicted, np.full(4, math.nan), 10.0))
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="normalising span must be a positive number"):
            nrmse(predicted, measured, bad)
    assert residual_rms([3.0, -4.0]) == pytest.approx(math.sqrt(12.5))
    assert math.isnan(residual_rms([]))


def test_spans_are_looked_up_by_full_name_first_then_by_kind():
    scales = {"temperature": 10.0, "machining-1.temperature": 2.0}
    assert scale_of("machining-1.temperature", scales) == 2.0
    assert scale_of("welding-1.temperature", scales) == 10.0
    assert scale_of("welding-1.wear", scales) is None
    assert set(SPANS) == set(FIT_SCALES) == {"temperature", "wear", "power"}


def test_fidelity_and_hybrid_default_to_the_one_set_of_spans():
    monitor = FidelityMonitor(window=4, min_samples=1)
    assert monitor.scales == dict(SPANS)
    residuals = [0.5, -1.5, 2.0]
    for r in residuals:
        monitor.update({"m.wear": 0.3 + r}, {"m.wear": 0.3})
    assert monitor.metrics()["m.wear"].nrmse == pytest.approx(nrmse(0.0, residuals, SPANS["wear"]))
    model = HybridPredictor(["m.temperature", "m.wear"], ridge=1.0)
    assert model.scales == dict(SPANS)
    simulated = [{"m.temperature": 40.0 + k, "m.wear": 0.01 * k, "m.power": 5.0} for k in range(8)]
    measured = [{"m.temperature": 41.0 + k, "m.wear": 0.01 * k + 0.002} for k in range(8)]
    model.fit(simulated, measured)
    physics = [
        nrmse([s[name] for s in simulated], [m[name] for m in measured], SPANS[name[2:]])
        for name in ("m.temperature", "m.wear")
    ]
    assert model.score(simulated, measured, alpha=0.0) == pytest.approx(np.mean(physics))


def test_benchmark_errors_normalise_by_the_fixed_span_not_the_data_range():
    truths = [
        {"a.temperature": 40.0 + k, "b.temperature": 20.0, "a.wear": 0.1, "b.wear": 0.2}
        for k in range(10)
    ]
    guesses = [
        {
            "a.temperature": t["a.temperature"] + 1.0,
            "b.temperature": 22.0,
            "a.wear": 0.1,
            "b.wear": 0.23,
        }
        for t in truths
    ]
    result = errors(guesses, truths, start=2)
    temperature, wear = result["temperature"], result["wear"]
    assert temperature["rmse"] == pytest.approx(1.5)  # mean of 1 K and 2 K
    assert temperature["nrmse_mean"] == pytest.approx(1.5 / SPANS["temperature"])
    assert temperature["nrmse_worst"] == pytest.approx(2.0 / SPANS["temperature"])
    assert wear["nrmse_worst"] == pytest.approx(0.03 / SPANS["wear"])
    assert temperature["scale"] == SPANS["temperature"]
    shifted = [{k: v + 100.0 if "temperature" in k else v for k, v in t.items()} for t in truths]
    moved = [{k: v + 100.0 if "temperature" in k else v for k, v in g.items()} for g in guesses]
    assert errors(moved, shifted, start=2)["temperature"] == pytest.approx(temperature)


def test_calibration_report_figures_use_the_same_nrmse():
    samples = tuple(
        {"time_s": 60.0 * (k + 1), "m-1.temperature": 30.0 + k, "m-1.wear": math.nan}
        for k in range(4)
    )
    recording = Recording(
        start_s=0.0, seed=0, sample_interval_s=60.0, samples=samples, setpoints=()
    )
    predictions = [{"m-1.temperature": 31.0 + k, "m-1.wear": 0.0} for k in range(4)]
    assert signal_rmse(recording, predictions) == {"m-1.temperature": pytest.approx(1.0)}
    assert kind_nrmse(recording, predictions) == {"temperature": pytest.approx(0.1)}
