"""optuna over PPO hyper-parameters. Each trial trains in ``chunks`` (resuming its own run),
evaluates the weighted objective Z = w1·C + w2·E + w3·D plus
:data:`envs.kpi.CONSTRAINT_VIOLATION_PENALTY` per unit of constraint violation
(:func:`envs.kpi.penalised_objective`) on held-out seeds after each chunk, reports it for
pruning, and returns the last value (minimised). A trial whose training diverges is pruned (its
``user_attrs["diverged"]`` says where) and the study goes on. The study lives in an optuna RDB
storage, so a killed study resumes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.config import TrainConfig
from agents.run_folder import Run
from agents.training import TrainingDiverged, train
from envs.atomic import atomic_path
from envs.config import setting
from envs.kpi import penalised_objective
from envs.seeding import held_out_seeds

__all__ = ["TuneConfig", "objective_for", "score", "storage_url", "suggest", "tune", "write_plots"]


@dataclass(frozen=True, kw_only=True)
class TuneConfig:
    base: TrainConfig = setting(TrainConfig(), doc="fields not tuned")
    trials: int = setting(20, low=1, high=10_000)
    chunks: int = setting(3, low=1, high=100, doc="evaluations per trial (pruning points)")
    eval_seeds: int = setting(2, low=1, high=100)
    storage: str = setting("", doc="optuna RDB URL; default sqlite:///<out_dir>/study.db")
    study_name: str = setting("ppo")
    out_dir: str = setting("runs/tune")


def suggest(trial: Any, base: TrainConfig, out_dir: Path) -> TrainConfig:
    """A TrainConfig with the trial's hyper-parameters."""
    n_steps = trial.suggest_categorical("n_steps", [64, 128, 256, 512, 1024])
    width = trial.suggest_categorical("width", [32, 64, 128])
    rollout = n_steps * base.n_envs
    batch = max(b for b in (32, 64, 128, 256) if rollout % b == 0 and b <= rollout)
    return dataclasses.replace(
        base,
        learning_rate=trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True),
        n_steps=n_steps,
        batch_size=batch,
        gamma=trial.suggest_categorical("gamma", [0.98, 0.99, 0.995, 0.999]),
        ent_coef=trial.suggest_float("ent_coef", 1e-6, 1e-2, log=True),
        clip_range=trial.suggest_float("clip_range", 0.1, 0.3),
        net_arch=(width, width),
        out_dir=str(out_dir / f"trial_{trial.number}"),
        checkpoint_every=base.total_timesteps,
        eval_every=10 * base.total_timesteps,
    )


def score(config: TrainConfig, seeds: int) -> float:
    """Mean over the first ``seeds`` held-out seeds of Z plus the violation penalty, for the
    run's current model."""
    from agents.env_factory import make_env
    from agents.evaluation import load_policy, run_episode

    env = make_env(config)
    try:
        _, policy = load_policy(str(Run(config.out_dir).model), env)
        results = [run_episode(env, policy, seed) for seed in held_out_seeds(seeds)]
    finally:
        env.close()
    return float(np.mean([penalised_objective(r.objective, r.constraints) for r in results]))


def objective_for(config: TuneConfig) -> Callable[[Any], float]:
    """The optuna objective of the study: train a trial in chunks, score and report each."""
    import optuna

    def objective(trial: Any) -> float:
        run_config = suggest(trial, config.base, Path(config.out_dir))
        value = float("nan")
        for chunk in range(1, config.chunks + 1):
            steps = config.base.total_timesteps * chunk // config.chunks
            chunk_config = dataclasses.replace(run_config, total_timesteps=steps)
            try:
                train(chunk_config, resume=chunk > 1, progress_bar=False)
            except TrainingDiverged as error:
                trial.set_user_attr("diverged", str(error))
                raise optuna.TrialPruned(str(error)) from error
            value = score(chunk_config, config.eval_seeds)
            trial.report(value, step=steps)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    return objective


def storage_url(config: TuneConfig) -> str:
    """The study's optuna storage: ``storage``, or SQLite under ``out_dir``."""
    if config.storage:
        return config.storage
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(config.out_dir).resolve() / 'study.db'}"


def tune(config: TuneConfig) -> Any:
    """Run (or continue) the study; returns it."""
    import optuna

    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage_url(config),
        direction="minimize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=config.base.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
    )
    done = len([t for t in study.trials if t.state.is_finished()])
    remaining = max(0, config.trials - done)
    if remaining:
        study.optimize(objective_for(config), n_trials=remaining, show_progress_bar=True)
    return study


def write_plots(study: Any, folder: Path) -> list[Path]:
    """optuna's standard matplotlib plots; a plot that needs more trials is skipped."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name in (
        "plot_optimization_history",
        "plot_intermediate_values",
        "plot_param_importances",
        "plot_slice",
    ):
        try:
            getattr(plots, name)(study)
        except (ValueError, RuntimeError, ImportError) as error:
            print(f"skipped {name}: {error}")
            continue
        path = folder / f"{name.removeprefix('plot_')}.png"
        plt.gcf().set_size_inches(8, 5)
        plt.tight_layout()
        with atomic_path(path) as temporary:
            plt.savefig(temporary, dpi=100, format="png")
        plt.close("all")
        written.append(path)
    return written
