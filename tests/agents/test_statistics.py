"""Statistics over seeds on hand-made results."""

from __future__ import annotations

import numpy as np
import pytest

from agents.statistics import Estimate, bootstrap_ci, estimate, iqm, mean_ci


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(np.mean([3, 4, 5, 6]))
    assert iqm([5.0]) == 5.0
    with pytest.raises(ValueError, match="no values"):
        iqm([])


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    values = np.arange(20.0)
    low, high = bootstrap_ci(values, iqm, seed=3)
    assert low < iqm(values) < high
    assert (low, high) == bootstrap_ci(values, iqm, seed=3)
    assert bootstrap_ci([4.0], iqm) == (4.0, 4.0)


def test_mean_interval_by_hand():
    low, high = mean_ci([1.0, 2.0, 3.0, 4.0])
    half = 3.182446305284263 * np.std([1, 2, 3, 4], ddof=1) / 2.0  # t(0.975, 3)
    assert (low, high) == pytest.approx((2.5 - half, 2.5 + half))


def test_estimate_dispatch():
    assert estimate([1, 2, 3], "mean").value == 2.0
    assert estimate([1, 2, 3, 100], "iqm").value == pytest.approx(2.5)
    with pytest.raises(ValueError, match="statistic must be one of"):
        estimate([1.0], "median")
    assert estimate([1.0, 2.0], "mean").format("{:.1f}").startswith("1.5 [")


def test_bootstrap_methods_and_degenerate_samples():
    values = np.array([3.0, 9.0, 4.0, 12.0, 5.0, 7.0, 6.0, 20.0])
    for method in ("percentile", "BCa", "basic"):
        low, high = bootstrap_ci(values, iqm, seed=1, method=method)
        assert low < iqm(values) < high
    # any statistic, not only the IQM (scipy resamples it one sample at a time)
    low, high = bootstrap_ci(values, np.median, seed=1)
    assert low <= np.median(values) <= high
    assert bootstrap_ci([2.0, 2.0, 2.0], iqm) == (2.0, 2.0)
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    with pytest.raises(ValueError, match="method must be one of"):
        bootstrap_ci(values, iqm, method="jackknife")


def test_plus_minus_format():
    assert Estimate(10.0, 8.0, 13.0).format_pm("{:.1f}") == "10.0 ± 3.0"
