"""The federated task: PPO's policy network, local training and evaluation on a node's twin.

This module holds the local configuration and one round of local training, and is the public
entry point: the network and its weights live in :mod:`federation.weights`, evaluation and
export in :mod:`federation.evaluation`, and their public names are importable from here too.

What is federated, and what stays on the node:

- **Weights** — every parameter of SB3's ``ActorCriticPolicy`` (``MlpPolicy``: tanh MLPs, separate
  actor and critic), as a list of float32 arrays in the order of :func:`weight_names`, which is
  the policy's ``state_dict`` order: ``log_std`` (the exploration scale; (latent, actions) with
  gSDE), the actor's hidden layers ``mlp_extractor.policy_net.<i>.weight/bias``, the critic's
  ``mlp_extractor.value_net.<i>.weight/bias``, ``action_net.weight/bias`` (the Gaussian mean),
  ``value_net.weight/bias``.
- **Observation normalisation** — :class:`federation.normalisation.NormStats`: a node normalises
  with the global statistics and keeps updating them while it trains (as VecNormalize does);
  it reports the statistics of the observations it saw in this round only
  (:attr:`LocalResult.norm`), which the server merges exactly with the previous global ones.
- **Local state** (:attr:`LocalResult.state`, kept by the ClientApp in ``Context.state``): the
  Adam optimiser's moments and the node's round counter. gSDE's exploration noise is redrawn by
  SB3 at the start of every rollout (and every ``sde_sample_freq`` steps), so no noise outlives a
  round; the next round's noise comes from ``round_seed``. Rewards are not normalised by default
  (the env's ``reward_scale`` keeps them of order 1, and a per-node return scale would give the
  shared critic different targets on each node).

FedProx (Li et al. 2020): with ``proximal_mu`` > 0 the local loss gains (μ/2)·‖w − w_global‖²,
added as its gradient μ·(w − w_global) to each parameter's gradient by a hook
(:func:`federation.weights.proximal_hooks`), before SB3 clips the gradient norm and Adam steps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from envs.config import setting
from envs.seeding import HELD_OUT_SEEDS_FROM
from federation.evaluation import evaluate_weights, export_policy
from federation.normalisation import NormStats
from federation.profiles import NodeProfile
from federation.weights import (
    OBS_CLIP,
    OBS_EPSILON,
    build_model,
    from_bytes,
    get_weights,
    initial_weights,
    policy_from_weights,
    proximal_hooks,
    set_weights,
    to_bytes,
    vec_env,
    weight_names,
)

__all__ = [
    "OBS_CLIP",
    "OBS_EPSILON",
    "RECIPE",
    "LocalConfig",
    "LocalResult",
    "evaluate_weights",
    "export_policy",
    "initial_weights",
    "policy_from_weights",
    "train_locally",
    "weight_names",
]

RECIPE = Path(__file__).resolve().parent.parent / "configs" / "ppo_production_line.toml"
"""The shipped PPO recipe the local PPO settings come from."""

_RECIPE_FIELDS = (
    "scenario",
    "learning_rate",
    "n_steps",
    "batch_size",
    "n_epochs",
    "gamma",
    "gae_lambda",
    "clip_range",
    "ent_coef",
    "net_arch",
    "log_std_init",
    "action_log_std",
    "use_sde",
    "sde_sample_freq",
    "wear_shaping_eur",
    "normalize_observations",
)


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """One node's local PPO training per round. The PPO fields default to the shipped recipe's
    values (``configs/ppo_production_line.toml``, :meth:`from_recipe` reads them)."""

    scenario: str = setting("automotive_components", doc="scenario the network's spaces follow")
    learning_rate: float = setting(1e-4, low=1e-6, high=1.0)
    n_steps: int = setting(1024, low=8, high=100_000, doc="rollout length per env")
    batch_size: int = setting(256, low=8, high=100_000)
    n_epochs: int = setting(5, low=1, high=100)
    gamma: float = setting(0.995, low=0.0, high=1.0)
    gae_lambda: float = setting(0.95, low=0.0, high=1.0)
    clip_range: float = setting(0.1, low=0.01, high=1.0)
    ent_coef: float = setting(0.0, low=0.0, high=1.0)
    net_arch: tuple[int, ...] = setting((128, 128), low=1, high=4096, doc="hidden layer sizes")
    log_std_init: float = setting(0.0, low=-5.0, high=2.0)
    action_log_std: tuple[float, ...] = setting((-1.5, -4.0, -4.0), low=-10.0, high=2.0)
    use_sde: bool = setting(True)
    sde_sample_freq: int = setting(64, low=-1, high=1_000_000)
    wear_shaping_eur: float = setting(150.0, low=0.0, high=1e6, doc="agents.shaping; 0 = off")
    normalize_observations: bool = setting(True)
    n_envs: int = setting(1, low=1, high=64, doc="envs per node (in process)")
    local_steps: int = setting(2048, low=8, high=100_000_000, doc="env steps per round")
    proximal_mu: float = setting(0.0, low=0.0, high=1e6, doc="FedProx μ (0 = plain FedAvg)")
    horizon_h: float = setting(168.0, low=0.1, high=8760.0, doc="episode length, h")
    seed: int = setting(0, low=0, high=HELD_OUT_SEEDS_FROM - 1, doc="initial weights' seed")

    def __post_init__(self) -> None:
        rollout = self.n_steps * self.n_envs
        if rollout % self.batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must divide n_steps × n_envs ({rollout})"
            )

    @classmethod
    def from_recipe(cls, path: str | Path = RECIPE, **overrides: Any) -> LocalConfig:
        """The PPO settings of a :class:`agents.config.TrainConfig` file (default the shipped
        recipe) where they apply, then ``overrides``."""
        from agents.config import TrainConfig

        recipe = TrainConfig.from_toml(path)
        values = {name: getattr(recipe, name) for name in _RECIPE_FIELDS}
        return cls(**{**values, **overrides})


@dataclass
class LocalResult:
    """What one round of local training produced."""

    weights: list[np.ndarray]
    num_steps: int
    """Env steps trained (the FedAvg weight)."""
    norm: NormStats
    """Statistics of this round's observations only (merge them, do not average them)."""
    metrics: dict[str, float] = field(default_factory=dict)
    state: dict[str, bytes] = field(default_factory=dict)
    """What stays on the node until its next round."""


# -- local training -----------------------------------------------------------------------------
def _observation_recorder() -> Any:
    from stable_baselines3.common.vec_env import VecEnvWrapper

    class ObservationRecorder(VecEnvWrapper):
        """Keeps running statistics of the raw observations passing through (this round's)."""

        def __init__(self, venv: Any) -> None:
            super().__init__(venv)
            self.stats = NormStats.empty(int(np.prod(venv.observation_space.shape)))
            self.rms = self.stats.to_running_mean_std()
            self.rms.count = 0.0

        def _record(self, observations: Any) -> None:
            batch = np.asarray(observations, dtype=np.float64).reshape(len(observations), -1)
            if self.rms.count == 0:
                self.rms.mean, self.rms.var = batch.mean(axis=0), batch.var(axis=0)
                self.rms.count = float(len(batch))
            else:
                self.rms.update(batch)

        def reset(self) -> Any:
            observations = self.venv.reset()
            self._record(observations)
            return observations

        def step_wait(self) -> Any:
            observations, rewards, dones, infos = self.venv.step_wait()
            self._record(observations)
            return observations, rewards, dones, infos

        def round_stats(self) -> NormStats:
            if self.rms.count == 0:
                return self.stats
            return NormStats.from_running_mean_std(self.rms)

    return ObservationRecorder


def _episode_callback(objective: Any) -> Any:
    from stable_baselines3.common.callbacks import BaseCallback

    from envs.kpi import Kpis

    class EpisodeKpis(BaseCallback):
        """Collects Z of every training episode that ends."""

        def __init__(self) -> None:
            super().__init__()
            self.objectives: list[float] = []

        def _on_step(self) -> bool:
            for done, info in zip(self.locals["dones"], self.locals["infos"], strict=True):
                if done and "kpi_total" in info:
                    kpis = Kpis.from_dict(info["kpi_total"])
                    self.objectives.append(
                        kpis.weighted_objective(
                            objective.w_cost, objective.w_energy, objective.w_downtime
                        )
                    )
            return True

    return EpisodeKpis()


def train_locally(
    profile: NodeProfile,
    weights: Sequence[np.ndarray],
    norm: NormStats,
    config: LocalConfig,
    *,
    round_seed: int,
    state: dict[str, bytes] | None = None,
) -> LocalResult:
    """One round of PPO on the node's twin from the global ``weights`` and normalisation
    ``norm``: ``config.local_steps`` env steps (rounded up to whole rollouts of
    ``n_steps × n_envs``), envs and policy seeded by ``round_seed``; ``state`` is what the
    node's previous round returned (None: its first round). See the module docstring for what
    is federated and what stays local."""
    from stable_baselines3.common.vec_env import VecNormalize

    env = vec_env(profile, config, shaped=True)
    recorder = _observation_recorder()(env)
    normalized = VecNormalize(
        recorder,
        norm_obs=config.normalize_observations,
        norm_reward=False,
        clip_obs=OBS_CLIP,
        epsilon=OBS_EPSILON,
        gamma=config.gamma,
    )
    try:
        size = int(np.prod(normalized.observation_space.shape or (1,)))
        if config.normalize_observations:
            if norm.size != size:
                raise ValueError(
                    f"norm statistics have {norm.size} features; node '{profile.name}' "
                    f"observes {size}"
                )
            normalized.obs_rms = norm.to_running_mean_std()
        model = build_model(config, normalized, round_seed)
        set_weights(model.policy, weights)
        previous = dict(state or {})
        if "optimizer" in previous:
            model.policy.optimizer.load_state_dict(from_bytes(previous["optimizer"]))
        rounds = int(json.loads(previous.get("meta", b"{}")).get("rounds", 0))
        handles = []
        if config.proximal_mu > 0:
            handles = proximal_hooks(model.policy, weights, config.proximal_mu)
        episodes = _episode_callback(_objective(profile))
        try:
            model.learn(total_timesteps=config.local_steps, callback=episodes)
        finally:
            for handle in handles:
                handle.remove()
        new_weights = get_weights(model.policy)
        returns = [float(info["r"]) for info in model.ep_info_buffer or ()]
        logged = model.logger.name_to_value
        metrics = {
            "episodes": float(len(episodes.objectives)),
            "num_steps": float(model.num_timesteps),
            "update_norm": float(
                math.sqrt(
                    sum(
                        float(np.sum((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
                        for a, b in zip(new_weights, weights, strict=True)
                    )
                )
            ),
        }
        if returns:
            metrics["train_return"] = float(np.mean(returns))
        if episodes.objectives:
            metrics["train_objective"] = float(np.mean(episodes.objectives))
        for key in ("approx_kl", "policy_gradient_loss", "value_loss", "entropy_loss"):
            value = logged.get(f"train/{key}")
            if value is not None and math.isfinite(float(value)):
                metrics[key] = float(value)
        new_state = {
            "optimizer": to_bytes(model.policy.optimizer.state_dict()),
            "meta": json.dumps({"rounds": rounds + 1}).encode(),
        }
        metrics["local_rounds"] = float(rounds + 1)
        return LocalResult(
            weights=new_weights,
            num_steps=int(model.num_timesteps),
            norm=recorder.round_stats(),
            metrics=metrics,
            state=new_state,
        )
    finally:
        normalized.close()


def _objective(profile: NodeProfile) -> Any:
    """The objective weights of the node's scenario (:class:`envs.scenario.ObjectiveConfig`)."""
    from federation.profiles import node_scenario

    return node_scenario(profile).objective
