"""Evaluation and export of federated weights: the deterministic policy on a node's twin
(:func:`evaluate_weights`), and the policy file :class:`agents.exported.ExportedPolicy` loads
(:func:`export_policy`)."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from federation.normalisation import NormStats
from federation.profiles import NodeProfile, make_node_env
from federation.weights import (
    OBS_CLIP,
    OBS_EPSILON,
    build_model,
    policy_from_weights,
    set_weights,
    vec_env,
)

if TYPE_CHECKING:
    from federation.task import LocalConfig

__all__ = ["evaluate_weights", "export_policy"]


class _ReturnLog:
    def __init__(self) -> None:
        self.returns: list[float] = []


def evaluate_weights(
    profile: NodeProfile,
    weights: Sequence[np.ndarray],
    norm: NormStats,
    config: LocalConfig,
    seeds: Sequence[int],
) -> dict[str, float]:
    """The deterministic policy of ``weights`` on the node's twin (unshaped, ``horizon_h``)
    over ``seeds``: mean episode ``return`` (the env's reward), ``objective`` Z, ``violation``
    and the mean of each KPI of :mod:`envs.kpi` (``cost``, ``energy_kwh``, ...)."""
    import gymnasium

    from agents.evaluation import evaluate

    if not seeds:
        raise ValueError("evaluate_weights needs at least one seed")
    policy = policy_from_weights(weights, norm, config)
    log = _ReturnLog()

    class Returns(gymnasium.Wrapper):
        def reset(self, **kwargs: Any) -> Any:
            self.total = 0.0
            return self.env.reset(**kwargs)

        def step(self, action: Any) -> Any:
            result = self.env.step(action)
            self.total += float(result[1])
            if result[2] or result[3]:
                log.returns.append(self.total)
            return result

    env = Returns(make_node_env(profile, horizon_h=config.horizon_h))
    try:
        results = evaluate(env, {"federated": policy}, seeds, record_first=False)["federated"]
    finally:
        env.close()
    out = {
        "return": float(np.mean(log.returns)),
        "objective": float(np.mean([r.objective for r in results])),
        "violation": float(np.mean([r.violation for r in results])),
        "episodes": float(len(results)),
    }
    for key in results[0].kpis:
        value = np.mean([float(r.kpis[key]) for r in results])
        if math.isfinite(value):
            out[key] = float(value)
    return out


def export_policy(
    weights: Sequence[np.ndarray], norm: NormStats, config: LocalConfig, path: str | Path
) -> Path:
    """Write the policy of ``weights`` with normalisation ``norm`` as the file
    :class:`agents.exported.ExportedPolicy` loads (``twinfactory-policy/1``), atomically,
    through :func:`agents.exported.export` itself."""
    from stable_baselines3.common.vec_env import VecNormalize

    from agents.exported import export

    env = vec_env(None, config, shaped=False)
    try:
        model = build_model(config, env, config.seed)
        set_weights(model.policy, weights)
        with tempfile.TemporaryDirectory(prefix="twinfactory-export-") as folder:
            model_path = Path(folder) / "model.zip"
            model.save(model_path)
            statistics = None
            if config.normalize_observations:
                stats = VecNormalize(
                    env, norm_obs=True, norm_reward=False, clip_obs=OBS_CLIP, epsilon=OBS_EPSILON
                )
                stats.obs_rms = norm.to_running_mean_std()
                statistics = Path(folder) / "vecnormalize.pkl"
                stats.save(str(statistics))
            return export(
                model_path,
                path,
                normalization_path=statistics,
                env_id="twinfactory/ProductionLine-v0",
                scenario=config.scenario,
            )
    finally:
        env.close()
