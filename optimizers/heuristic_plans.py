"""The heuristics of :mod:`agents.heuristics` written as operating plans (decision vectors), to
seed the first population of an optimiser (and, for fairness, random search's sample).

=======================  ======  =================  ==============  =============  ==============
plan                     speed   wear threshold     standby after   tariff speed   what it copies
=======================  ======  =================  ==============  =============  ==============
``naive``                1.0     1.0 (at the limit) never (120)     1.0            run to failure
``fixed_interval``       1.0     0.87 (mills),      never (120)     1.0            maintenance
                                 1.0 (robots)                                      every 2 h /
                                                                                   40 h
``condition_based``      1.0     0.85               0 min           1.0            the default
                                                                                   rule
``condition_based_slow`` 0.85    0.85               0 min           1.0            the rule's
                                                                                   speed near the
                                                                                   power limit
=======================  ======  =================  ==============  =============  ==============

A plan cannot say "every N operating hours": ``fixed_interval``'s 2 h for a mill becomes the
wear ratio a mill reaches in 2 h of cutting at nominal speed, 120 min over a Taylor tool life of
138 min ≈ 0.87 (``envs/scenarios/automotive_components.toml``: 204 m/min, coated carbide on
steel [4]); a robot's 40 h is beyond the benchmark's horizons, so its threshold is the bound
1.0 as for ``naive``. ``condition_based``'s power guard (0.85 × speed near the peak) is a state
feedback no static plan has; ``condition_based_slow`` is the rule with the guard always on.
Nothing here is tuned: these are the rules as shipped, the starting point a practitioner has.
"""

from __future__ import annotations

import numpy as np

from optimizers.plan import STANDBY_TIMEOUT_BOUNDS_MIN, PlanEncoding

__all__ = ["FIXED_INTERVAL_MILL_WEAR", "HEURISTIC_PLANS", "heuristic_plans"]

FIXED_INTERVAL_MILL_WEAR = 120.0 / 138.0
"""Wear ratio of a mill after 2 h of cutting at nominal speed (Taylor life 138 min)."""
NEVER = STANDBY_TIMEOUT_BOUNDS_MIN[1]
HEURISTIC_PLANS = ("naive", "fixed_interval", "condition_based", "condition_based_slow")
"""The plans :func:`heuristic_plans` returns, in this order."""


def heuristic_plans(encoding: PlanEncoding) -> dict[str, np.ndarray]:
    """``name -> decision vector`` of each plan of the module table, for ``encoding`` (any
    scenario and granularity); speeds are clipped into each station's range."""
    mills = _mill_groups(encoding)
    fixed_interval_wear = np.where(mills, FIXED_INTERVAL_MILL_WEAR, 1.0)
    plans = {
        "naive": _plan(encoding, 1.0, 1.0, NEVER),
        "fixed_interval": _plan(encoding, 1.0, fixed_interval_wear, NEVER),
        "condition_based": _plan(encoding, 1.0, 0.85, 0.0),
        "condition_based_slow": _plan(encoding, 0.85, 0.85, 0.0),
    }
    return plans


def _plan(
    encoding: PlanEncoding, speed: float, wear_threshold: float | np.ndarray, standby_min: float
) -> np.ndarray:
    """One value per group and kind (speed clipped into each group's range), tariff speed 1."""
    groups = encoding.n_groups
    x = np.concatenate(
        [
            np.clip(np.full(groups, speed), encoding.xl[:groups], encoding.xu[:groups]),
            np.broadcast_to(wear_threshold, groups),
            np.full(groups, standby_min),
            np.ones(len(encoding.prices)),
        ]
    )
    return encoding.check(x)


def _mill_groups(encoding: PlanEncoding) -> np.ndarray:
    """Mask of the encoding's groups (machines or stations) that are CNC mills."""
    scenario = encoding.scenario
    if encoding.granularity == "machine":
        kinds = [station.equipment for _, station in scenario.machines()]
    else:
        kinds = [station.equipment for station in scenario.stations]
    return np.array([kind == "CncMill" for kind in kinds])
