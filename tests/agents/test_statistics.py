"""Statistics over seeds on hand-made results."""

from __future__ import annotations

import numpy as np
import pytest

from agents.statistics import bootstrap_ci, estimate, iqm, mean_ci


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
