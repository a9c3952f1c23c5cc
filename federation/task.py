"""The federated task: PPO's policy network, local training and evaluation on a node's twin.

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
added as its gradient μ·(w − w_global) to each parameter's gradient by a hook, before SB3 clips
the gradient norm and Adam steps.
"""

from __future__ import annotations

import io
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from envs.config import setting
from envs.seeding import HELD_OUT_SEEDS_FROM
from federation.normalisation import NormStats
from federation.profiles import NodeProfile, make_node_env

if TYPE_CHECKING:
    from stable_baselines3 import PPO

__all__ = [
    "RECIPE",
    "LocalConfig",
    "LocalResult",
    "evaluate_weights",
    "export_policy",
    "initial_weights",
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
OBS_CLIP = 10.0
OBS_EPSILON = 1e-8


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


# -- the network -----------------------------------------------------------------------------
def _vec_env(profile: NodeProfile | None, config: LocalConfig, *, shaped: bool) -> Any:
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


def _model(config: LocalConfig, env: Any, seed: int) -> PPO:
    import torch
    from stable_baselines3 import PPO

    torch.set_num_threads(1)
    model = PPO(
        "MlpPolicy",
        env,
        learning_rate=config.learning_rate,
        n_steps=config.n_steps,
        batch_size=config.batch_size,
        n_epochs=config.n_epochs,
        gamma=config.gamma,
        gae_lambda=config.gae_lambda,
        clip_range=config.clip_range,
        ent_coef=config.ent_coef,
        use_sde=config.use_sde,
        sde_sample_freq=config.sde_sample_freq,
        policy_kwargs={"net_arch": list(config.net_arch), "log_std_init": config.log_std_init},
        seed=seed,
        device="cpu",
        verbose=0,
    )
    if config.action_log_std:
        from agents.training import set_action_log_std

        set_action_log_std(model, config.action_log_std)
    return model


def _get_weights(policy: Any) -> list[np.ndarray]:
    return [value.detach().cpu().numpy().copy() for value in policy.state_dict().values()]


def _set_weights(policy: Any, weights: Sequence[np.ndarray]) -> None:
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
    env = _vec_env(None, config, shaped=False)
    try:
        return list(_model(config, env, config.seed).policy.state_dict())
    finally:
        env.close()


def initial_weights(config: LocalConfig) -> list[np.ndarray]:
    """A fresh policy's parameters (seeded by ``config.seed``), in :func:`weight_names` order;
    the action log std set as the recipe says."""
    env = _vec_env(None, config, shaped=False)
    try:
        return _get_weights(_model(config, env, config.seed).policy)
    finally:
        env.close()


# -- local training ---------------------------------------------------------------------------
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


def _proximal_hooks(policy: Any, global_weights: Sequence[np.ndarray], mu: float) -> list[Any]:
    """Hooks adding μ·(w − w_global) to each parameter's gradient: the gradient of the FedProx
    term (μ/2)·‖w − w_global‖² added to the loss."""
    import torch

    handles = []
    anchors = dict(zip(policy.state_dict(), global_weights, strict=True))
    for name, parameter in policy.named_parameters():
        anchor = torch.as_tensor(np.asarray(anchors[name]), dtype=parameter.dtype)

        def hook(grad: Any, parameter: Any = parameter, anchor: Any = anchor) -> Any:
            return grad + mu * (parameter.detach() - anchor)

        handles.append(parameter.register_hook(hook))
    return handles


def _to_bytes(obj: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _from_bytes(data: bytes) -> Any:
    import torch

    return torch.load(io.BytesIO(data), weights_only=True)


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

    env = _vec_env(profile, config, shaped=True)
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
        model = _model(config, normalized, round_seed)
        _set_weights(model.policy, weights)
        previous = dict(state or {})
        if "optimizer" in previous:
            model.policy.optimizer.load_state_dict(_from_bytes(previous["optimizer"]))
        rounds = int(json.loads(previous.get("meta", b"{}")).get("rounds", 0))
        handles = []
        if config.proximal_mu > 0:
            handles = _proximal_hooks(model.policy, weights, config.proximal_mu)
        episodes = _episode_callback(_objective(profile))
        try:
            model.learn(total_timesteps=config.local_steps, callback=episodes)
        finally:
            for handle in handles:
                handle.remove()
        new_weights = _get_weights(model.policy)
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
            "optimizer": _to_bytes(model.policy.optimizer.state_dict()),
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


# -- evaluation and export ------------------------------------------------------------------------
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
    env = _vec_env(None, config, shaped=False)
    try:
        model = _model(config, env, config.seed)
    finally:
        env.close()
    _set_weights(model.policy, weights)
    return _FederatedPolicy(model, norm if config.normalize_observations else None)


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

    env = _vec_env(None, config, shaped=False)
    try:
        model = _model(config, env, config.seed)
        _set_weights(model.policy, weights)
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
