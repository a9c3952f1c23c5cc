"""Normalisation statistics merge exactly: the merged mean and variance are the pooled data's."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.running_mean_std import RunningMeanStd

from federation.normalisation import NormStats, merge_norm_stats


def _stats(data: np.ndarray) -> NormStats:
    return NormStats(data.mean(axis=0), data.var(axis=0), len(data))


def test_two_nodes_merged_equal_the_pooled_data():
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 1.0, size=(300, 5))
    b = rng.normal(3.0, 0.2, size=(50, 5))  # another plant: other mean, less spread, less data
    merged = merge_norm_stats([_stats(a), _stats(b)])
    pooled = np.concatenate([a, b])
    assert merged.count == 350
    np.testing.assert_allclose(merged.mean, pooled.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.var, pooled.var(axis=0), rtol=1e-12)
    # what averaging them as if they were weights would give is far off
    naive_var = (a.var(axis=0) + b.var(axis=0)) / 2
    assert np.all(np.abs(naive_var - pooled.var(axis=0)) > 0.5)


def test_many_parts_and_an_empty_one_merge_exactly_and_in_any_order():
    rng = np.random.default_rng(1)
    parts = [rng.normal(k, k + 1.0, size=(10 * (k + 1), 3)) for k in range(4)]
    stats = [_stats(p) for p in parts] + [NormStats.empty(3)]
    pooled = np.concatenate(parts)
    for order in (stats, stats[::-1]):
        merged = merge_norm_stats(order)
        np.testing.assert_allclose(merged.mean, pooled.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(merged.var, pooled.var(axis=0), rtol=1e-12)
    # merging in two stages equals merging at once (the server merges round after round)
    staged = merge_norm_stats([merge_norm_stats(stats[:2]), merge_norm_stats(stats[2:])])
    np.testing.assert_allclose(staged.mean, pooled.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(staged.var, pooled.var(axis=0), rtol=1e-12)


def test_merge_agrees_with_sb3_running_mean_std():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 2.0, size=(64, 4)), rng.normal(-1.0, 0.5, size=(16, 4))
    rms = NormStats.empty(4).to_running_mean_std()
    rms.update(a)
    rms.update(b)
    merged = merge_norm_stats([_stats(a), _stats(b)])
    sb3 = NormStats.from_running_mean_std(rms)
    # SB3 starts from a count of 1e-4 at mean 0, var 1: equal up to that
    np.testing.assert_allclose(sb3.mean, merged.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sb3.var, merged.var, rtol=1e-5, atol=1e-5)
    assert sb3.count == pytest.approx(80, abs=1e-3)


def test_arrays_and_running_mean_std_round_trip():
    stats = NormStats(np.array([1.0, 2.0]), np.array([0.5, 4.0]), 12.0)
    back = NormStats.from_arrays(stats.to_arrays())
    np.testing.assert_array_equal(back.mean, stats.mean)
    np.testing.assert_array_equal(back.var, stats.var)
    assert back.count == 12.0
    rms = stats.to_running_mean_std()
    assert isinstance(rms, RunningMeanStd)
    again = NormStats.from_running_mean_std(rms)
    np.testing.assert_array_equal(again.mean, stats.mean)
    assert again.count == 12.0
    assert NormStats.empty(2).to_running_mean_std().count == 1e-4


def test_normalize_matches_vecnormalize_formula():
    stats = NormStats(np.array([1.0, -2.0]), np.array([4.0, 0.25]), 10.0)
    out = stats.normalize(np.array([[3.0, 100.0]]))
    np.testing.assert_allclose(out, [[2.0 / np.sqrt(4.0 + 1e-8), 10.0]])


@pytest.mark.parametrize(
    "bad",
    [
        lambda: NormStats(np.zeros(2), np.ones(3), 1.0),
        lambda: NormStats(np.zeros(2), -np.ones(2), 1.0),
        lambda: NormStats(np.array([np.nan, 0.0]), np.ones(2), 1.0),
        lambda: NormStats(np.zeros(2), np.ones(2), -1.0),
        lambda: NormStats.from_arrays([np.zeros(2), np.ones(2)]),
        lambda: merge_norm_stats([]),
        lambda: merge_norm_stats([NormStats.empty(2), NormStats.empty(3)]),
    ],
)
def test_bad_statistics_are_errors(bad):
    with pytest.raises(ValueError):
        bad()
