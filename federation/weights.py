"""The policy network of the federated task: SB3's PPO built from a :class:`LocalConfig`, its
parameters as float32 arrays in ``state_dict`` order, the FedProx gradient hooks, and the
(de)serialisation of what stays on a node (the optimiser's state).

The weights are every parameter of SB3's ``ActorCriticPolicy`` (``MlpPolicy``: tanh MLPs,
separate actor and critic), in the order of :func:`weight_names` — see :mod:`federation.task`.

FedProx (Li et al. 2020): with ``proximal_mu`` > 0 the local loss gains (μ/2)·‖w − w_global‖²,
added as its gradient μ·(w − w_global) to each parameter's gradient by :func:`proximal_hooks`,
before SB3 clips the gradient norm and Adam steps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from federation.normalisation import NormStats
from federation.profiles import NodeProfile, make_node_env

if TYPE_CHECKING:
    from stable_baselines3 import PPO

    from federation.task import LocalConfig

__all__ = [
    "OBS_CLIP",
    "OBS_EPSILON",
    "build_model",
    "from_bytes",
    "get_weights",
    "initial_weights",
    "policy_from_weights",
    "proximal_hooks",
    "set_weights",
    "to_bytes",
    "vec_env",
    "weight_names",
]

OBS_CLIP = 10.0
"""VecNormalize's ``clip_obs``: normalised observations are clipped to ±this."""
OBS_EPSILON = 1e-8
"""VecNormalize's ``epsilon`` under the square root of the variance."""


def vec_env(profile: NodeProfile | None, config: LocalConfig, *, shaped: bool) -> Any:
    """A DummyVecEnv of the node's twin (``profile`` None: the plain scenario), Monitor inside
    the wear shaping so episode returns are the env's own."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from agents.shaping import WearShaping

    def make() -> Any:
        if profile is None:
            from envs.line_env import ProductionLineEnv

            env: Any = ProductionLineEnv(config.scenario, horizon_h=config.horizon_h)
        else:
            env = make_node_env(profile, horizon_h=config.horizon_h)
        env = Monitor(env)
        if shaped and config.wear_shaping_eur > 0:
            env = WearShaping(env, eur_per_wear=config.wear_shaping_eur, gamma=config.gamma)
        return env

    return DummyVecEnv([make] * config.n_envs)


def build_model(config: LocalConfig, env: Any, seed: int) -> PPO:
    """SB3's PPO with ``MlpPolicy`` on ``env`` as ``config`` says (CPU, one torch thread),
    seeded by ``seed``; the action log std set as the recipe says."""
    import torch

    from agents.training import build_ppo

    torch.set_num_threads(1)
    return build_ppo(config, env, seed=seed)


def get_weights(policy: Any) -> list[np.ndarray]:
    """Copies of the policy's parameters, in ``state_dict`` order."""
    return [value.detach().cpu().numpy().copy() for value in policy.state_dict().values()]


def set_weights(policy: Any, weights: Sequence[np.ndarray]) -> None:
    """Load ``weights`` (in ``state_dict`` order) into the policy; ValueError naming the
    parameter where the count or a shape does not match."""
    import torch

    state = policy.state_dict()
    if len(weights) != len(state):
        raise ValueError(
            f"got {len(weights)} weight arrays; this policy has {len(state)} ({', '.join(state)})"
        )
    loaded = {}
    for (name, current), array in zip(state.items(), weights, strict=True):
        array = np.asarray(array)
        if tuple(array.shape) != tuple(current.shape):
            raise ValueError(
                f"weight '{name}' has shape {array.shape}; the policy needs {tuple(current.shape)}"
            )
        loaded[name] = torch.as_tensor(array, dtype=current.dtype)
    policy.load_state_dict(loaded)


def weight_names(config: LocalConfig) -> list[str]:
    """The parameter names behind :func:`initial_weights`' arrays, in their order."""
    env = vec_env(None, config, shaped=False)
    try:
        return list(build_model(config, env, config.seed).policy.state_dict())
    finally:
        env.close()


def initial_weights(config: LocalConfig) -> list[np.ndarray]:
    """A fresh policy's parameters (seeded by ``config.seed``), in :func:`weight_names` order;
    the action log std set as the recipe says."""
    env = vec_env(None, config, shaped=False)
    try:
        return get_weights(build_model(config, env, config.seed).policy)
    finally:
        env.close()


class _FederatedPolicy:
    """SB3's ``predict`` on raw observations: normalised with the global statistics."""

    def __init__(self, model: PPO, norm: NormStats | None) -> None:
        self.model, self.norm = model, norm

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        x = np.asarray(observation, dtype=np.float64)
        if self.norm is not None:
            x = self.norm.normalize(x, clip=OBS_CLIP, epsilon=OBS_EPSILON)
        return self.model.predict(x.astype(np.float32), deterministic=deterministic)


def policy_from_weights(
    weights: Sequence[np.ndarray], norm: NormStats | None, config: LocalConfig
) -> Any:
    """An object with SB3's ``predict`` for raw observations: the SB3 PPO policy built from
    ``weights``, observations normalised with ``norm`` (None or ``normalize_observations``
    off: unnormalised)."""
    env = vec_env(None, config, shaped=False)
    try:
        model = build_model(config, env, config.seed)
    finally:
        env.close()
    set_weights(model.policy, weights)
    return _FederatedPolicy(model, norm if config.normalize_observations else None)


def proximal_hooks(policy: Any, global_weights: Sequence[np.ndarray], mu: float) -> list[Any]:
    """Hooks adding μ·(w − w_global) to each parameter's gradient: the gradient of the FedProx
    term (μ/2)·‖w − w_global‖² added to the loss. Remove them (``handle.remove()``) after
    training."""
    import torch

    handles = []
    anchors = dict(zip(policy.state_dict(), global_weights, strict=True))
    for name, parameter in policy.named_parameters():
        anchor = torch.as_tensor(np.asarray(anchors[name]), dtype=parameter.dtype)

        def hook(grad: Any, parameter: Any = parameter, anchor: Any = anchor) -> Any:
            return grad + mu * (parameter.detach() - anchor)

        handles.append(parameter.register_hook(hook))
    return handles


def to_bytes(obj: Any) -> bytes:
    """``obj`` (e.g. an optimiser's ``state_dict``) as ``torch.save`` bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def from_bytes(data: bytes) -> Any:
    """The object :func:`to_bytes` wrote (``torch.load`` with ``weights_only``)."""
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)
