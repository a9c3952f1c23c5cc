"""Heuristic baseline policies for ``twinfactory/ProductionLine-v0``.

Each exposes ``predict(observation, state=None, episode_start=None, deterministic=True)``
returning ``(action, None)`` like a stable-baselines3 model, for one observation or a batch.

- ``naive``: nominal speed, never standby, no preventive maintenance (run to failure).
- ``fixed_interval``: nominal speed, preventive maintenance every N operating hours.
- ``condition_based``: maintenance above a wear threshold (the env's threshold action), standby
  when starved, slower when the last interval's power came close to the contracted peak.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.line_env import MACHINE_FEATURES, ProductionLineEnv

if TYPE_CHECKING:
    import gymnasium

_HOURS = 4  # operating hours since maintenance: feature offset within a machine's block
_POWER = -1  # last feature of the observation: power of the last interval / contracted peak


class HeuristicPolicy(ABC):
    """Base: knows the env's observation layout and the nominal-speed action of each machine."""

    name = "heuristic"

    def __init__(self, env: gymnasium.Env) -> None:
        line_env: ProductionLineEnv = env.unwrapped  # type: ignore[assignment]
        self.machines = len(line_env.machine_names)
        self.kinds = list(line_env.machine_kinds)
        self.nominal = np.array([line_env.speed_action(1.0, k) for k in range(self.machines)])
        self.slow = np.array([line_env.speed_action(0.85, k) for k in range(self.machines)])

    def machine_features(self, observation: np.ndarray, feature: int) -> np.ndarray:
        """One feature of every machine's block of the observation."""
        blocks = observation[: self.machines * MACHINE_FEATURES].reshape(self.machines, -1)
        return blocks[:, feature]

    @abstractmethod
    def act(self, observation: np.ndarray) -> np.ndarray:
        """The action for one observation."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: the action for one observation or a batch (rows)."""
        observation = np.asarray(observation, dtype=np.float64)
        if observation.ndim == 2:
            return np.stack([self.act(o) for o in observation]).astype(np.float32), None
        return self.act(observation).astype(np.float32), None

    def _pack(self, speed: np.ndarray, maintenance: Any, standby: np.ndarray) -> np.ndarray:
        """One action from per-machine speed actions, maintenance (booleans: maintain now or
        not; or floats: the env's wear-threshold actions) and standby permissions."""
        decision = {True: 1.0, False: -1.0}  # maintenance: 1 = now, -1 = never; standby: a > 0
        maintenance = np.asarray(maintenance)
        if maintenance.dtype == bool:
            maintenance = np.array([decision[bool(v)] for v in maintenance])
        standby = np.array([decision[bool(v)] for v in standby])
        return np.column_stack([speed, maintenance, standby]).ravel()


class NaivePolicy(HeuristicPolicy):
    name = "naive"

    def act(self, observation: np.ndarray) -> np.ndarray:
        zeros = np.zeros(self.machines, dtype=bool)
        return self._pack(self.nominal, zeros, zeros)


class FixedIntervalPolicy(HeuristicPolicy):
    """Preventive maintenance every ``interval_h`` operating hours, per equipment kind."""

    name = "fixed_interval"

    def __init__(self, env: gymnasium.Env, interval_h: dict[str, float] | None = None) -> None:
        super().__init__(env)
        intervals = {"CncMill": 2.0, "RobotCell": 40.0, **(interval_h or {})}
        self.interval = np.array([intervals[kind] for kind in self.kinds])

    def act(self, observation: np.ndarray) -> np.ndarray:
        hours = self.machine_features(observation, _HOURS) * 10.0
        return self._pack(self.nominal, hours >= self.interval, np.zeros(self.machines, dtype=bool))


class ConditionBasedPolicy(HeuristicPolicy):
    """Maintain above ``wear_threshold``; standby when starved; slow down near the power limit."""

    name = "condition_based"

    def __init__(
        self, env: gymnasium.Env, wear_threshold: float = 0.85, power_margin: float = 0.9
    ) -> None:
        super().__init__(env)
        self.wear_threshold = wear_threshold
        self.power_margin = power_margin

    def act(self, observation: np.ndarray) -> np.ndarray:
        near_limit = observation[_POWER] >= self.power_margin
        speed = self.slow if near_limit else self.nominal
        # the env maintains once wear ratio >= 1 - a: a constant action is a wear threshold
        threshold = np.full(self.machines, 1.0 - self.wear_threshold)
        return self._pack(speed, threshold, np.ones(self.machines, dtype=bool))


HEURISTICS = {
    policy.name: policy for policy in (NaivePolicy, FixedIntervalPolicy, ConditionBasedPolicy)
}


def make_heuristic(name: str, env: gymnasium.Env, **options: Any) -> HeuristicPolicy:
    """A heuristic by name: naive, fixed_interval or condition_based."""
    if name not in HEURISTICS:
        raise ValueError(f"unknown heuristic '{name}'; choose one of {sorted(HEURISTICS)}")
    return HEURISTICS[name](env, **options)
