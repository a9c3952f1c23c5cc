"""Hybrid prediction R = α·y + (1 − α)·S: α comes out large where the physics is biased and
small where it is right, and the arithmetic of R and its NRMSE is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs.sync import HybridPredictor

SIGNAL = "machining-1.temperature"


def windows(true_of, seed=0, count=120):
    """Simulated samples S(t) and measurements true_of(S) + 0.2 K noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(count)
    temperature = 40.0 + 5.0 * np.sin(t / 9.0)
    wear = 0.002 * t
    power = 3.0 + np.cos(t / 9.0)
    simulated = [
        {SIGNAL: a, "machining-1.wear": b, "machining-1.power": c}
        for a, b, c in zip(temperature, wear, power, strict=True)
    ]
    measured = [{SIGNAL: true_of(a) + rng.normal(0.0, 0.2)} for a in temperature]
    return simulated, measured


def split(simulated, measured):
    return (
        (simulated[:60], measured[:60]),
        (simulated[60:90], measured[60:90]),
        (
            simulated[90:],
            measured[90:],
        ),
    )


def test_alpha_is_large_for_a_biased_twin_and_the_hybrid_beats_it():
    train, validation, test = split(*windows(lambda s: 1.1 * s - 1.0))  # wrong gain and offset
    hybrid = HybridPredictor([SIGNAL])
    hybrid.fit(*train)
    alpha = hybrid.choose_alpha(*validation)
    assert alpha >= 0.8
    physics, blended = hybrid.score(*test, alpha=0.0), hybrid.score(*test)
    assert blended < 0.3 * physics
    assert blended < 2.5 * 0.02  # near the noise floor: 0.2 K / 10 K span


def test_alpha_is_small_for_a_right_twin():
    train, validation, test = split(*windows(lambda s: s, seed=1))
    hybrid = HybridPredictor([SIGNAL])
    hybrid.fit(*train)
    assert hybrid.choose_alpha(*validation) <= 0.5
    assert hybrid.score(*test) <= 1.1 * hybrid.score(*test, alpha=0.0)
    assert sorted(hybrid.validation) == pytest.approx(list(np.linspace(0, 1, 11)))


def test_blend_arithmetic_and_nan_measurements():
    simulated, measured = windows(lambda s: s + 2.0, seed=2, count=40)
    measured[5][SIGNAL] = math.nan  # a dropout is skipped, not fitted
    hybrid = HybridPredictor([SIGNAL])
    hybrid.fit(simulated, measured)
    learned = hybrid.learned(simulated)[SIGNAL]
    physics = np.array([s[SIGNAL] for s in simulated])
    assert np.allclose(hybrid.predict(simulated, 0.25)[SIGNAL], 0.25 * learned + 0.75 * physics)
    assert np.mean(learned - physics) == pytest.approx(2.0, abs=0.1)
    assert math.isfinite(hybrid.score(simulated, measured, 1.0))


def test_bad_input_is_rejected():
    simulated, measured = windows(lambda s: s, count=20)
    with pytest.raises(ValueError, match="at least one signal"):
        HybridPredictor([])
    with pytest.raises(ValueError, match="no scale for 'm.pressure'"):
        HybridPredictor(["m.pressure"])
    hybrid = HybridPredictor([SIGNAL])
    with pytest.raises(RuntimeError, match="call fit"):
        hybrid.predict(simulated)
    with pytest.raises(ValueError, match="as many simulated samples"):
        hybrid.fit(simulated, measured[:-1])
    sparse = [{SIGNAL: math.nan} for _ in measured]
    sparse[0] = {SIGNAL: 40.0}
    with pytest.raises(ValueError, match="1 valid measurements"):
        hybrid.fit(simulated, sparse)
    hybrid.fit(simulated, measured)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        hybrid.predict(simulated, 1.5)
