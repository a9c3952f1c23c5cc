"""Potential-based reward shaping for training on ``twinfactory/ProductionLine-v0``.

A preventive maintenance costs its price at once while what it prevents (scrap from a worn tool,
a breakage, a repair) comes hours later, so a young policy learns "never maintain" first. The
shaping of Ng, Harada and Russell (1999) adds F = γ·Φ(s') − Φ(s) to each reward, which leaves
the optimal policy unchanged, with the potential

    Φ(s) = −eur_per_wear × Σ_machines wear_ratio

the wear on the tools valued at what renewing it costs: cutting is charged for the wear it adds
as it happens, and a maintenance is credited with the wear it removes. Only training uses it:
evaluation scores the env's own reward and KPIs.
"""

from __future__ import annotations

import math
from typing import Any, SupportsFloat

import gymnasium


class WearShaping(gymnasium.Wrapper):
    """Adds γ·Φ(s') − Φ(s), Φ = −eur_per_wear·Σ wear_ratio / reward_scale, to the reward."""

    def __init__(self, env: gymnasium.Env, *, eur_per_wear: float, gamma: float) -> None:
        super().__init__(env)
        if not (math.isfinite(eur_per_wear) and eur_per_wear >= 0):
            raise ValueError(f"eur_per_wear = {eur_per_wear} must be finite and >= 0")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f"gamma = {gamma} must lie in [0, 1]")
        line_env: Any = env.unwrapped
        if not hasattr(line_env, "line") or not hasattr(line_env, "reward_scale"):
            raise ValueError(
                f"{env.spec.id if env.spec else env}: wear shaping needs a production-line env"
            )
        self.eur_per_wear = eur_per_wear
        self.gamma = gamma
        self._potential = 0.0

    def potential(self) -> float:
        """Φ(s) of the current state, in reward units."""
        line_env: Any = self.env.unwrapped
        wear = sum(machine.wear_ratio for machine in line_env.line.machines)
        return -self.eur_per_wear * wear / line_env.reward_scale

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        result = self.env.reset(**kwargs)
        self._potential = self.potential()
        return result

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = self.env.step(action)
        potential = 0.0 if terminated else self.potential()
        shaping = self.gamma * potential - self._potential
        self._potential = potential
        info["reward_unshaped"] = reward
        return observation, float(reward) + shaping, terminated, truncated, info
