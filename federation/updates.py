"""Screening nodes' updates before aggregation: a bad update is left out, never averaged in.

An update is a node's weight list after local training; the server compares it with the global
weights it sent (``reference``). :func:`check_update` returns ``None`` for a usable update or the
reason it is not:

- the wrong number of arrays, or an array of the wrong shape or dtype (a node on another
  network or scenario, or a corrupted message);
- NaN or infinite values (a diverged node, or a poisoned update);
- an update norm ‖w − w_global‖ more than ``max_norm_ratio`` times the median of the round's
  other updates' norms (a scaled, "boosted" update; norm bounding against it as in Sun et al.
  2019, "Can you really backdoor federated learning?"). The median keeps one bad node from
  hiding another.

:func:`screen_updates` applies it to a whole round: structure first, then each valid update's
norm against the other valid ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

__all__ = ["check_structure", "check_update", "screen_updates", "update_norm"]

K = TypeVar("K")


def check_structure(weights: Sequence[Any], reference: Sequence[np.ndarray]) -> str | None:
    """Why ``weights`` cannot be compared with ``reference`` (count, shape, dtype, NaN/inf),
    or None."""
    if len(weights) != len(reference):
        return f"wrong number of arrays: {len(weights)}, expected {len(reference)}"
    for index, (array, expected) in enumerate(zip(weights, reference, strict=True)):
        if not isinstance(array, np.ndarray):
            return f"array {index} is a {type(array).__name__}, not a numpy array"
        if array.shape != expected.shape:
            return f"array {index} has shape {array.shape}, expected {expected.shape}"
        if array.dtype != expected.dtype:
            return f"array {index} has dtype {array.dtype}, expected {expected.dtype}"
        if not np.issubdtype(array.dtype, np.number):
            return f"array {index} has non-numeric dtype {array.dtype}"
        if not np.isfinite(array).all():
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            return f"array {index} has {bad} NaN or infinite values"
    return None


def update_norm(weights: Sequence[np.ndarray], reference: Sequence[np.ndarray]) -> float:
    """‖w − w_global‖ over all arrays together (float64)."""
    total = 0.0
    for array, expected in zip(weights, reference, strict=True):
        delta = np.asarray(array, dtype=np.float64) - np.asarray(expected, dtype=np.float64)
        total += float(np.sum(delta * delta))
    return math.sqrt(total)


def check_update(
    weights: Sequence[Any],
    reference: Sequence[np.ndarray],
    *,
    max_norm_ratio: float,
    others_norms: Sequence[float],
) -> str | None:
    """None if ``weights`` is a usable update of ``reference``, else the reason (see the
    module docstring). ``others_norms``: the update norms of the round's other (valid)
    updates; with none, or a median of 0, the norm is not judged."""
    if not (math.isfinite(max_norm_ratio) and max_norm_ratio >= 1.0):
        raise ValueError(f"max_norm_ratio = {max_norm_ratio} must be a finite number >= 1")
    reason = check_structure(weights, reference)
    if reason is not None:
        return reason
    others = [float(n) for n in others_norms if math.isfinite(float(n))]
    if not others:
        return None
    median = float(np.median(others))
    norm = update_norm(weights, reference)
    if median > 0 and norm > max_norm_ratio * median:
        return (
            f"update norm {norm:.4g} is {norm / median:.1f}x the median {median:.4g} of the "
            f"round's other updates (limit {max_norm_ratio:g}x)"
        )
    return None


def screen_updates(
    updates: Mapping[K, Sequence[Any]],
    reference: Sequence[np.ndarray],
    *,
    max_norm_ratio: float,
) -> dict[K, str]:
    """The updates of one round to leave out, node → reason (valid ones are absent): each is
    checked for structure, then its norm against the other structurally valid updates'."""
    rejected: dict[K, str] = {}
    norms: dict[K, float] = {}
    for node, weights in updates.items():
        reason = check_structure(weights, reference)
        if reason is None:
            norms[node] = update_norm(weights, reference)
        else:
            rejected[node] = reason
    for node in norms:
        others = [norm for other, norm in norms.items() if other != node]
        reason = check_update(
            updates[node], reference, max_norm_ratio=max_norm_ratio, others_norms=others
        )
        if reason is not None:
            rejected[node] = reason
    return rejected
