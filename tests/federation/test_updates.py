"""Update screening: every rejection reason, and good updates pass."""

from __future__ import annotations

import numpy as np
import pytest

from federation.updates import check_update, screen_updates, update_norm


@pytest.fixture
def reference() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)]


def _update(reference, scale: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(w + scale * rng.normal(size=w.shape)).astype(w.dtype) for w in reference]


def _check(weights, reference, others=(1.0, 1.2, 0.9)):
    return check_update(weights, reference, max_norm_ratio=5.0, others_norms=list(others))


def test_a_normal_update_passes(reference):
    update = _update(reference, 0.3, 1)
    assert 0.5 < update_norm(update, reference) < 3
    assert _check(update, reference) is None
    assert check_update(update, reference, max_norm_ratio=5.0, others_norms=[]) is None


def test_wrong_count(reference):
    assert "wrong number of arrays: 1, expected 2" in _check(reference[:1], reference)
    assert "wrong number" in _check([*reference, reference[1]], reference)


def test_wrong_shape(reference):
    bad = [reference[0].T.copy(), reference[1]]
    assert _check(bad, reference) == "array 0 has shape (3, 4), expected (4, 3)"


def test_wrong_dtype(reference):
    bad = [reference[0], reference[1].astype(np.float64)]
    assert _check(bad, reference) == "array 1 has dtype float64, expected float32"


def test_not_an_array(reference):
    assert "is a list, not a numpy array" in _check([reference[0], [0.0, 1.0, 2.0]], reference)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_or_inf(reference, value):
    bad = [reference[0].copy(), reference[1].copy()]
    bad[0][1, 2] = value
    assert _check(bad, reference) == "array 0 has 1 NaN or infinite values"


def test_norm_far_above_the_others(reference):
    boosted = _update(reference, 10.0, 2)  # ~10x a normal update
    reason = _check(boosted, reference)
    assert reason is not None and "median" in reason and "limit 5x" in reason
    # the same update is fine in a round whose others moved as much
    assert _check(boosted, reference, others=(30.0, 40.0)) is None
    # a median of 0 (nobody else moved) is no basis to judge
    assert _check(boosted, reference, others=(0.0, 0.0)) is None


def test_bad_ratio_is_an_error(reference):
    with pytest.raises(ValueError, match="max_norm_ratio"):
        check_update(reference, reference, max_norm_ratio=0.5, others_norms=[1.0])


def test_screen_a_round_leaves_out_only_the_bad_nodes(reference):
    poisoned = _update(reference, 0.3, 9)
    poisoned[1][0] = np.nan
    updates = {
        "node-1": _update(reference, 0.3, 1),
        "node-2": _update(reference, 0.3, 2),
        "node-3": _update(reference, 0.3, 3),
        "boosted": _update(reference, 20.0, 4),
        "poisoned": poisoned,
        "short": reference[:1],
    }
    rejected = screen_updates(updates, reference, max_norm_ratio=5.0)
    assert set(rejected) == {"boosted", "poisoned", "short"}
    assert "NaN" in rejected["poisoned"]
    assert "wrong number" in rejected["short"]
    assert "median" in rejected["boosted"]
