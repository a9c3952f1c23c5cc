"""Shared fixtures: the factory problem on a tiny horizon (1 h from Monday 06:00, one seed)."""

from __future__ import annotations

import numpy as np
import pytest

from optimizers.config import ProblemConfig
from optimizers.engines import SerialEngine
from optimizers.problems import FactoryProblem

TINY = ProblemConfig(horizon_h=1.0, seeds=1, throughput_min_per_h=25.0)
"""Over this hour the nominal plan delivers 31 parts/h, the slowest plan 22 (< Tmin = 25), and
the fastest draws 46.9 kW (> Rmax = 45)."""


@pytest.fixture(scope="session")
def tiny_problem() -> FactoryProblem:
    return FactoryProblem(TINY)


@pytest.fixture
def serial():
    with SerialEngine() as engine:
        yield engine


def uniform_plan(problem: FactoryProblem, speed: float | None = None, **values) -> np.ndarray:
    """A decision vector with one value per kind; ``speed`` is clipped into each range."""
    encoding = problem.encoding
    x = encoding.vector(**values)
    if speed is not None:
        g = encoding.n_groups
        x[:g] = np.clip(speed, encoding.xl[:g], encoding.xu[:g])
    return x
