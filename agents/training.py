"""PPO training (stable-baselines3) on any registered twinfactory env, configured by a dataclass
that loads from TOML through :mod:`envs.config`.

A run folder holds ``config.toml`` (what was asked), ``checkpoints/`` (model, normalisation
statistics and progress, each written to a temporary file and renamed, so a kill -9 leaves the
previous checkpoint intact), ``best/`` (the best periodic evaluation), ``model.zip`` and
``vecnormalize.pkl`` at the end, ``timing.json`` (where the wall time went: env stepping inside the
workers, rollout collection, gradient updates, evaluation; env steps/s) and TensorBoard logs under
``tb/``. ``resume=True`` continues
from the latest checkpoint: at most one checkpoint interval of training is lost.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium

from envs.config import ConfigError, load_toml, setting

TRAINING_SEEDS_BELOW = 1000  # evaluation seeds start at 1000 (agents.evaluation, scripts)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A PPO run. Every field has a default; a TOML file overrides any of them."""

    env_id: str = setting("twinfactory/ProductionLine-v0", doc="registered env id")
    env_kwargs: dict[str, float] = setting({}, doc="numeric keyword arguments of the env")
    scenario: str = setting("automotive_components", doc="scenario for production-line envs")
    total_timesteps: int = setting(100_000, low=64, high=100_000_000)
    n_envs: int = setting(2, low=1, high=64, doc="parallel envs")
    vectorization: str = setting(
        "dummy", choices=("dummy", "subproc"), doc="dummy: in process; subproc: one process per env"
    )
    normalize_observations: bool = setting(True)
    normalize_rewards: bool = setting(True)
    learning_rate: float = setting(3e-4, low=1e-6, high=1.0)
    n_steps: int = setting(512, low=8, high=100_000, doc="rollout length per env")
    batch_size: int = setting(128, low=8, high=100_000)
    n_epochs: int = setting(10, low=1, high=100)
    gamma: float = setting(0.99, low=0.0, high=1.0)
    gae_lambda: float = setting(0.95, low=0.0, high=1.0)
    clip_range: float = setting(0.2, low=0.01, high=1.0)
    ent_coef: float = setting(0.0, low=0.0, high=1.0)
    net_arch: tuple[int, ...] = setting((64, 64), low=1, high=4096, doc="hidden layer sizes")
    log_std_init: float = setting(
        0.0, low=-5.0, high=2.0, doc="initial log std of the Gaussian actions (SB3 default 0)"
    )
    action_log_std: tuple[float, ...] = setting(
        (),
        low=-10.0,
        high=2.0,
        doc="initial log std per action, tiled over the action vector (e.g. [-1, -3.5, -3.5]: "
        "explore each machine's speed, hardly its maintenance and standby); empty: log_std_init",
    )
    use_sde: bool = setting(
        False,
        doc="generalised state-dependent exploration: noise that is a smooth function of the "
        "observation, redrawn every sde_sample_freq steps, instead of fresh noise each step",
    )
    sde_sample_freq: int = setting(
        -1, low=-1, high=1_000_000, doc="steps between gSDE noise draws (-1: once per rollout)"
    )
    wear_shaping_eur: float = setting(
        0.0,
        low=0.0,
        high=1e6,
        doc="production lines: potential-based shaping valuing tool wear at this many EUR per "
        "wear limit (agents.shaping; 0 = off); the optimal policy is unchanged",
    )
    pretrain_policy: str = setting(
        "",
        choices=("", "naive", "fixed_interval", "condition_based"),
        doc="heuristic to imitate before PPO starts (agents.pretraining; '' = none)",
    )
    pretrain_steps: int = setting(20_000, low=64, high=10_000_000, doc="env steps of imitation")
    pretrain_epochs: int = setting(20, low=1, high=1000, doc="passes over the imitation data")
    seed: int = setting(0, low=0, high=TRAINING_SEEDS_BELOW - 1)
    out_dir: str = setting("runs/ppo", doc="run folder")
    checkpoint_every: int = setting(10_000, low=1, high=100_000_000, doc="timesteps")
    eval_every: int = setting(10_000, low=1, high=100_000_000, doc="timesteps")
    eval_episodes: int = setting(2, low=1, high=100)

    def __post_init__(self) -> None:
        rollout = self.n_steps * self.n_envs
        if rollout % self.batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must divide n_steps × n_envs ({rollout})"
            )

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        return load_toml(cls, path)


def _write_atomically(path: Path, write) -> None:
    """``write(temporary_path)`` then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def config_to_toml(config: TrainConfig) -> str:
    return "".join(f"{key} = {_toml_value(value)}\n" for key, value in asdict(config).items())


def _env_kwargs(config: TrainConfig) -> dict:
    kwargs = {"render_mode": None, **config.env_kwargs}  # SB3 would ask for "rgb_array"
    if "ProductionLine" in config.env_id:
        kwargs.setdefault("scenario", config.scenario)
    return kwargs


class StepTimer(gymnasium.Wrapper):
    """Adds up the wall time spent in the wrapped env's ``step`` and ``reset``
    (``env_seconds``) and counts steps (``env_steps``): the env's share of a training run."""

    def __init__(self, env) -> None:
        super().__init__(env)
        self.env_seconds = 0.0
        self.env_steps = 0

    def step(self, action):
        started = time.perf_counter()
        try:
            return self.env.step(action)
        finally:
            self.env_seconds += time.perf_counter() - started
            self.env_steps += 1

    def reset(self, **kwargs):
        started = time.perf_counter()
        try:
            return self.env.reset(**kwargs)
        finally:
            self.env_seconds += time.perf_counter() - started


def _wrap(env, *, eur_per_wear: float, gamma: float):
    if eur_per_wear > 0:
        from agents.shaping import WearShaping

        env = WearShaping(env, eur_per_wear=eur_per_wear, gamma=gamma)
    return StepTimer(env)


def make_vec_env(config: TrainConfig, *, seed: int, n_envs: int | None = None, shaped: bool = True):
    """The vector env of a run (wear shaping when configured and ``shaped``); raises
    ConfigError for a bad env id."""
    import gymnasium
    from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    import envs  # noqa: F401 - registers the envs

    if config.env_id not in gymnasium.registry:
        known = sorted(e for e in gymnasium.registry if e.startswith("twinfactory/"))
        raise ConfigError(
            f"env_id '{config.env_id}' is not registered; twinfactory envs: {', '.join(known)}"
        )
    if "ProductionLine" not in config.env_id:
        for name, value in (
            ("wear_shaping_eur", config.wear_shaping_eur),
            ("pretrain_policy", config.pretrain_policy),
        ):
            if value:
                raise ConfigError(
                    f"{name} applies to production-line envs, not '{config.env_id}'; unset it"
                )
    vec_class = SubprocVecEnv if config.vectorization == "subproc" else DummyVecEnv
    # "envs:<id>" makes Gymnasium import envs (and so register the ids) in subprocess workers
    return sb3_make_vec_env(
        f"envs:{config.env_id}",
        n_envs=n_envs or config.n_envs,
        seed=seed,
        env_kwargs=_env_kwargs(config),
        vec_env_cls=vec_class,
        wrapper_class=_wrap,
        wrapper_kwargs={
            "eur_per_wear": config.wear_shaping_eur if shaped else 0.0,
            "gamma": config.gamma,
        },
    )


class Run:
    """Paths of a run folder."""

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)
        self.config = self.root / "config.toml"
        self.checkpoint = self.root / "checkpoints" / "model.zip"
        self.checkpoint_normalization = self.root / "checkpoints" / "vecnormalize.pkl"
        self.progress = self.root / "checkpoints" / "progress.json"
        self.model = self.root / "model.zip"
        self.normalization = self.root / "vecnormalize.pkl"
        self.best = self.root / "best" / "model.zip"
        self.timing = self.root / "timing.json"
        self.best_normalization = self.root / "best" / "vecnormalize.pkl"
        self.tensorboard = self.root / "tb"


def _callbacks(config: TrainConfig, run: Run, eval_env):
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoint(BaseCallback):
        """Atomic checkpoints every ``checkpoint_every`` steps; stops on NaN/inf parameters or
        losses, keeping the last good checkpoint."""

        def __init__(self) -> None:
            super().__init__()
            self.next_checkpoint = config.checkpoint_every
            self.next_eval = config.eval_every
            self.best = -math.inf
            self.seconds = {"rollout": 0.0, "evaluation": 0.0}
            self._rollout_started = 0.0

        def _on_rollout_start(self) -> None:
            self._rollout_started = time.perf_counter()

        def _on_rollout_end(self) -> None:
            self.seconds["rollout"] += time.perf_counter() - self._rollout_started

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_checkpoint:
                self.next_checkpoint += config.checkpoint_every
                if not self._healthy():
                    return False
                save(self.model, run.checkpoint, run.checkpoint_normalization)
                _write_atomically(
                    run.progress,
                    lambda p: Path(p).write_text(
                        json.dumps(
                            {"num_timesteps": self.num_timesteps, "best_mean_reward": self.best}
                        )
                    ),
                )
            if self.num_timesteps >= self.next_eval:
                self.next_eval += config.eval_every
                started = time.perf_counter()
                self._evaluate()
                self.seconds["evaluation"] += time.perf_counter() - started
            return True

        def _healthy(self) -> bool:
            parameters = self.model.policy.parameters()
            finite = all(bool(p.detach().isfinite().all()) for p in parameters)
            losses = [v for k, v in self.model.logger.name_to_value.items() if "loss" in k]
            if finite and all(math.isfinite(v) for v in losses):
                return True
            print(
                f"training stopped at {self.num_timesteps} steps: non-finite parameters or "
                f"losses; the last good checkpoint is {run.checkpoint}"
            )
            self.model._twinfactory_diverged = True
            return False

        def _evaluate(self) -> None:
            from stable_baselines3.common.evaluation import evaluate_policy
            from stable_baselines3.common.vec_env import VecNormalize

            training_env = self.model.get_env()
            if isinstance(eval_env, VecNormalize) and isinstance(training_env, VecNormalize):
                eval_env.obs_rms = training_env.obs_rms
            mean, std = evaluate_policy(
                self.model, eval_env, n_eval_episodes=config.eval_episodes, deterministic=True
            )
            self.logger.record("eval/mean_reward", mean)
            self.logger.record("eval/std_reward", std)
            if mean > self.best:
                self.best = mean
                save(self.model, run.best, run.best_normalization)

    return Checkpoint()


def _set_action_log_std(model, pattern: tuple[float, ...]) -> None:
    """Initial log std per action dimension, ``pattern`` tiled over the action vector."""
    import torch

    size = model.action_space.shape[0]
    if size % len(pattern):
        raise ConfigError(
            f"action_log_std has {len(pattern)} values, which do not tile the env's {size} "
            f"actions; give a pattern whose length divides {size}"
        )
    values = torch.tensor(pattern * (size // len(pattern)), dtype=torch.float32)
    log_std = model.policy.log_std  # (actions,) or, with gSDE, (latent, actions)
    with torch.no_grad():
        log_std.copy_(values.expand_as(log_std))


def save(model, model_path: Path, normalization_path: Path) -> None:
    """Model and (when used) VecNormalize statistics, both written atomically."""
    from stable_baselines3.common.vec_env import VecNormalize

    _write_atomically(model_path, lambda p: model.save(p))
    env = model.get_env()
    if isinstance(env, VecNormalize):
        _write_atomically(normalization_path, lambda p: env.save(p))


def train(config: TrainConfig, *, resume: bool = False, progress_bar: bool = True):
    """Train (or resume) a run; returns the model. Errors in the setup are raised before any
    training starts."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    run = Run(config.out_dir)
    if resume and not run.checkpoint.is_file():
        raise ConfigError(
            f"{run.root}: nothing to resume (no {run.checkpoint}); start without --resume"
        )
    if not resume and run.checkpoint.is_file():
        raise ConfigError(
            f"{run.root} already holds a run; pass --resume to continue it or "
            "choose another out_dir"
        )
    torch.set_num_threads(1)  # small MLPs: threads cost more than they give on 2 cores
    env = make_vec_env(config, seed=config.seed)
    eval_env = make_vec_env(config, seed=TRAINING_SEEDS_BELOW, n_envs=1, shaped=False)
    if config.normalize_observations or config.normalize_rewards:
        eval_env = VecNormalize(
            eval_env, norm_obs=config.normalize_observations, norm_reward=False, training=False
        )
    done = 0
    if resume:
        try:
            if run.checkpoint_normalization.is_file():
                env = VecNormalize.load(str(run.checkpoint_normalization), env)
            model = PPO.load(
                run.checkpoint, env=env, device="cpu", tensorboard_log=str(run.tensorboard)
            )
        except Exception as error:
            env.close()
            eval_env.close()
            raise ConfigError(
                f"{run.checkpoint}: unreadable checkpoint ({error}); delete the "
                "run folder to start afresh"
            ) from error
        done = json.loads(run.progress.read_text())["num_timesteps"]
        model.num_timesteps = done
    else:
        if config.normalize_observations or config.normalize_rewards:
            env = VecNormalize(
                env,
                norm_obs=config.normalize_observations,
                norm_reward=config.normalize_rewards,
                gamma=config.gamma,
            )
        run.root.mkdir(parents=True, exist_ok=True)
        run.config.write_text(config_to_toml(config))
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
            seed=config.seed,
            device="cpu",
            tensorboard_log=str(run.tensorboard),
            verbose=0,
        )
        if config.action_log_std:
            try:
                _set_action_log_std(model, config.action_log_std)
            except ConfigError:
                env.close()
                eval_env.close()
                raise
        if config.pretrain_policy:
            from agents.pretraining import pretrain

            def one_env():
                return gymnasium.make(config.env_id, **_env_kwargs(config))

            report = pretrain(
                model,
                config.pretrain_policy,
                steps=config.pretrain_steps,
                epochs=config.pretrain_epochs,
                env_factory=one_env,
            )
            print(
                f"imitated {config.pretrain_policy} for {report['steps']} env steps: "
                f"actor MSE {report['actor_mse']:.4f}, critic MSE {report['critic_mse']:.4f}"
            )
    callback = _callbacks(config, run, eval_env)
    callback.best = (
        json.loads(run.progress.read_text()).get("best_mean_reward", -math.inf)
        if resume
        else -math.inf
    )
    remaining = config.total_timesteps - done
    before = {name: env.get_attr(name) for name in ("env_seconds", "env_steps")}
    started = time.perf_counter()
    try:
        if remaining > 0:
            model.learn(
                total_timesteps=remaining,
                callback=callback,
                progress_bar=progress_bar,
                reset_num_timesteps=not resume,
                tb_log_name="ppo",
            )
        if not getattr(model, "_twinfactory_diverged", False):
            save(model, run.model, run.normalization)
            save(model, run.checkpoint, run.checkpoint_normalization)
            _write_atomically(
                run.progress,
                lambda p: Path(p).write_text(
                    json.dumps(
                        {"num_timesteps": model.num_timesteps, "best_mean_reward": callback.best}
                    )
                ),
            )
        timing = training_timing(env, callback.seconds, time.perf_counter() - started, before)
        _write_atomically(run.timing, lambda p: Path(p).write_text(json.dumps(timing, indent=1)))
        model.twinfactory_timing = timing
    finally:
        env.close()
        eval_env.close()
    return model


def training_timing(
    env, seconds: dict[str, float], wall_s: float, before: dict[str, list] | None = None
) -> dict[str, float]:
    """Where the wall time of ``learn`` went. Each worker's env time is measured inside the
    worker, minus what it had done ``before`` learning (an imitation warm start); ``env_share``
    is the mean worker's env time over the wall time (with subprocess envs the workers step in
    parallel, so this is the fraction the learner waits on them)."""
    start = before or {"env_seconds": [0.0] * env.num_envs, "env_steps": [0] * env.num_envs}
    env_seconds = [
        a - b for a, b in zip(env.get_attr("env_seconds"), start["env_seconds"], strict=True)
    ]
    env_steps = int(sum(env.get_attr("env_steps")) - sum(start["env_steps"]))
    evaluation = seconds["evaluation"]  # runs inside a rollout, from the callback
    rollout = seconds["rollout"] - evaluation
    mean_env = sum(env_seconds) / len(env_seconds)
    return {
        "wall_s": wall_s,
        "env_steps": env_steps,
        "env_steps_per_s": env_steps / wall_s if wall_s > 0 else 0.0,
        "env_s_per_worker": mean_env,
        "env_share": mean_env / wall_s if wall_s > 0 else 0.0,
        "rollout_s": rollout,
        "update_s": max(0.0, wall_s - rollout - evaluation),
        "evaluation_s": evaluation,
    }
