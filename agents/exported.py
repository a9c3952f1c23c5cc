"""Self-contained policies: a trained PPO actor (and its observation normalisation) as one
``.npz`` file that runs with numpy alone, for the edge bridge.

File format ``twinfactory-policy/1`` (a numpy ``.npz``):

- ``meta``: JSON text — format, env_id, scenario, activation ("tanh"), observation and action
  sizes, whether observations are normalised, the training timesteps and the source model;
- ``hidden_<i>_weight`` / ``hidden_<i>_bias``: the actor's hidden layers (out × in, out);
- ``action_weight`` / ``action_bias``: the Gaussian mean layer;
- ``obs_mean``, ``obs_var``, ``obs_clip``, ``obs_epsilon``: VecNormalize statistics;
- ``action_low`` / ``action_high``: the action box (deterministic actions are clipped to it,
  as stable-baselines3 does).

This module imports numpy only, so a device can run policies without torch or Gymnasium.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

FORMAT = "twinfactory-policy/1"
_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


class ExportedPolicyError(ValueError):
    """The file is not a usable exported policy."""


class ExportedPolicy:
    """A deterministic actor loaded from an exported file; ``predict`` mirrors SB3's."""

    def __init__(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self.meta = meta
        self.hidden = [
            (arrays[f"hidden_{i}_weight"], arrays[f"hidden_{i}_bias"])
            for i in range(meta["hidden_layers"])
        ]
        self.action_weight = arrays["action_weight"]
        self.action_bias = arrays["action_bias"]
        self.normalize = bool(meta["normalize_observations"])
        self.obs_mean, self.obs_var = arrays["obs_mean"], arrays["obs_var"]
        self.obs_clip = float(arrays["obs_clip"])
        self.obs_epsilon = float(arrays["obs_epsilon"])
        self.action_low, self.action_high = arrays["action_low"], arrays["action_high"]
        self.activation = _ACTIVATIONS[meta["activation"]]
        self.observation_size = int(meta["observation_size"])

    @classmethod
    def load(cls, path: str | Path) -> ExportedPolicy:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as error:
            raise ExportedPolicyError(
                f"{path}: not an exported policy file ({error}); make "
                "one with scripts/export_policy.py"
            ) from error
        if "meta" not in arrays:
            raise ExportedPolicyError(f"{path}: no 'meta' entry; not an exported policy")
        meta = json.loads(str(arrays["meta"]))
        if meta.get("format") != FORMAT:
            raise ExportedPolicyError(f"{path}: format {meta.get('format')!r}, expected {FORMAT}")
        if meta.get("activation") not in _ACTIVATIONS:
            raise ExportedPolicyError(f"{path}: unsupported activation {meta.get('activation')}")
        needed = [
            f"hidden_{i}_{p}" for i in range(meta["hidden_layers"]) for p in ("weight", "bias")
        ]
        needed += [
            "action_weight",
            "action_bias",
            "obs_mean",
            "obs_var",
            "obs_clip",
            "obs_epsilon",
            "action_low",
            "action_high",
        ]
        missing = [key for key in needed if key not in arrays]
        if missing:
            raise ExportedPolicyError(f"{path}: missing arrays {missing}")
        return cls(meta, arrays)

    def normalized(self, observations: np.ndarray) -> np.ndarray:
        """Observations scaled and clipped as VecNormalize does (unchanged without it)."""
        if not self.normalize:
            return observations
        scaled = (observations - self.obs_mean) / np.sqrt(self.obs_var + self.obs_epsilon)
        return np.clip(scaled, -self.obs_clip, self.obs_clip)

    def act(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions for raw observations of shape (n, obs) or (obs,)."""
        x = np.asarray(observations, dtype=np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.observation_size:
            raise ValueError(
                f"observation has {x.shape[1]} values; this policy expects {self.observation_size}"
            )
        if not np.isfinite(x).all():
            raise ValueError("observation contains NaN or infinite values")
        # float32 like the trained network, so actions match the SB3 model's
        h = self.normalized(x).astype(np.float32)
        for weight, bias in self.hidden:
            h = self.activation(h @ weight.T + bias)
        mean = h @ self.action_weight.T + self.action_bias
        actions = np.clip(mean, self.action_low, self.action_high)
        return actions[0] if single else actions

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: deterministic actions (``state`` and the rest are ignored)."""
        return self.act(observation), None


def export(
    model_path: str | Path,
    out_path: str | Path,
    *,
    normalization_path: str | Path | None = None,
    env_id: str = "",
    scenario: str = "",
) -> Path:
    """Write a trained SB3 PPO model (MlpPolicy, Box actions) as an exported policy file."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

    model = PPO.load(model_path, device="cpu")
    policy: Any = model.policy
    layers = [m for m in policy.mlp_extractor.policy_net if isinstance(m, torch.nn.Linear)]
    activations = {
        type(m).__name__
        for m in policy.mlp_extractor.policy_net
        if not isinstance(m, torch.nn.Linear)
    }
    names = {"Tanh": "tanh", "ReLU": "relu"}
    if len(activations) > 1 or (activations and next(iter(activations)) not in names):
        raise ExportedPolicyError(f"{model_path}: activations {activations} are not exportable")
    activation = names[next(iter(activations))] if activations else "tanh"
    observation_space: Any = model.observation_space
    action_space: Any = model.action_space
    size = int(np.prod(observation_space.shape))
    mean, var = np.zeros(size), np.ones(size)
    clip, epsilon, normalize = 10.0, 1e-8, False
    if normalization_path is not None:
        stats = VecNormalize.load(str(normalization_path), cast(VecEnv, _DummyVec(model)))
        normalize = bool(stats.norm_obs)
        obs_rms: Any = stats.obs_rms
        mean, var = obs_rms.mean, obs_rms.var
        clip, epsilon = float(stats.clip_obs), float(stats.epsilon)
    arrays = {
        "obs_mean": mean.astype(np.float64),
        "obs_var": var.astype(np.float64),
        "obs_clip": np.array(clip),
        "obs_epsilon": np.array(epsilon),
        "action_low": action_space.low.astype(np.float32),
        "action_high": action_space.high.astype(np.float32),
        "action_weight": policy.action_net.weight.detach().numpy().astype(np.float32),
        "action_bias": policy.action_net.bias.detach().numpy().astype(np.float32),
    }
    for i, layer in enumerate(layers):
        arrays[f"hidden_{i}_weight"] = layer.weight.detach().numpy().astype(np.float32)
        arrays[f"hidden_{i}_bias"] = layer.bias.detach().numpy().astype(np.float32)
    meta = {
        "format": FORMAT,
        "env_id": env_id,
        "scenario": scenario,
        "activation": activation,
        "hidden_layers": len(layers),
        "observation_size": size,
        "action_size": int(np.prod(action_space.shape)),
        "normalize_observations": normalize,
        "timesteps": int(model.num_timesteps),
        "source": str(model_path),
    }
    from envs.atomic import atomic_path  # here: importing envs loads Gymnasium

    out_path = Path(out_path)
    with atomic_path(out_path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
    return out_path


class _DummyVec:
    """Just enough of a VecEnv for VecNormalize.load to restore statistics."""

    def __init__(self, model: Any) -> None:
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.num_envs = 1
        self.render_mode = None
