"""Seeds: the one split between training and held-out evaluation, and the one definition of
the random stream a line's discrete events draw from.

- Training, tuning and optimisation use seeds below :data:`HELD_OUT_SEEDS_FROM`; evaluation
  and comparisons use seeds from it on, so a policy is never scored on a week it trained on.
- A :class:`envs.line.ProductionLine` reset with :func:`event_rng` ``(seed)`` meets the same
  demand, failures and repairs as every other line reset with that seed (common random numbers
  across policies, plans and the plant emulator).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HELD_OUT_SEEDS_FROM", "event_rng", "held_out_seeds"]

HELD_OUT_SEEDS_FROM = 1000
"""First held-out seed; training, tuning and optimisation seeds stay below it."""


def event_rng(seed: int) -> np.random.Generator:
    """The generator of a line's discrete events for ``seed`` (``numpy.random.default_rng``)."""
    return np.random.default_rng(seed)


def held_out_seeds(count: int, first: int = HELD_OUT_SEEDS_FROM) -> list[int]:
    """``count`` consecutive evaluation seeds from ``first``; refuses a training seed."""
    if first < HELD_OUT_SEEDS_FROM:
        raise ValueError(
            f"evaluation seeds start at {HELD_OUT_SEEDS_FROM} (seeds below it are for training); "
            f"got first seed {first}"
        )
    if count < 0:
        raise ValueError(f"seed count must be >= 0, not {count}")
    return list(range(first, first + count))
