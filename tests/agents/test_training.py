"""PPO training: smoke runs, resume after kill -9, divergence, reproducibility, bad
configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback

from agents.run_folder import Run
from agents.training import TrainConfig, TrainingDiverged, train
from envs.config import ConfigError
from scripts import train as train_script

ROOT = Path(__file__).resolve().parents[2]
SHORT = {"horizon_h": 2.0}  # 24 decisions per episode


def tiny(tmp_path: Path, **changes) -> TrainConfig:
    fields = {
        "env_kwargs": SHORT,
        "total_timesteps": 256,
        "n_envs": 1,
        "n_steps": 128,
        "batch_size": 64,
        "n_epochs": 2,
        "net_arch": (16,),
        "checkpoint_every": 128,
        "eval_every": 256,
        "eval_episodes": 1,
        "out_dir": str(tmp_path / "run"),
    }
    fields.update(changes)
    return TrainConfig(**fields)


def test_single_env_run_writes_model_checkpoint_and_logs(tmp_path):
    model = train(tiny(tmp_path), progress_bar=False)
    run = Run(tmp_path / "run")
    assert model.num_timesteps == 256
    for path in (run.model, run.normalization, run.checkpoint, run.best, run.config):
        assert path.is_file(), path
    assert any(run.tensorboard.rglob("events.out.tfevents.*"))
    assert json.loads(run.progress.read_text())["num_timesteps"] == 256
    assert TrainConfig.from_toml(run.config) == tiny(tmp_path)
    written = tomllib.loads(run.config.read_text())
    assert written["env_kwargs"] == SHORT and written["net_arch"] == [16]


@pytest.mark.parametrize("vectorization", ["dummy", "subproc"])
def test_vector_env_runs(tmp_path, vectorization):
    model = train(
        tiny(tmp_path, n_envs=2, n_steps=64, vectorization=vectorization), progress_bar=False
    )
    assert model.num_timesteps == 256 and model.get_env().num_envs == 2
    timing = json.loads(Run(tmp_path / "run").timing.read_text())
    assert timing == model.twinfactory_timing
    assert timing["env_steps"] == 256  # counted inside the workers
    assert 0 < timing["env_s_per_worker"] < timing["rollout_s"] <= timing["wall_s"]
    assert 0 < timing["env_share"] < 1
    parts = timing["rollout_s"] + timing["update_s"] + timing["evaluation_s"]
    assert parts == pytest.approx(timing["wall_s"])
    assert timing["env_steps_per_s"] == pytest.approx(256 / timing["wall_s"])


def test_resume_after_kill_continues_the_run(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(
        'env_id = "twinfactory/ProductionLine-v0"\nenv_kwargs = { horizon_h = 2.0 }\n'
        "total_timesteps = 1000000\nn_envs = 1\nn_steps = 128\nbatch_size = 64\nn_epochs = 1\n"
        "net_arch = [16]\ncheckpoint_every = 256\neval_every = 1000000\n"
        f'out_dir = "{tmp_path}/run"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "scripts/train.py", "--config", str(config), "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = Run(tmp_path / "run")
    deadline = time.monotonic() + 120
    while not run.progress.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)  # mid-run, no chance to clean up
    process.wait()
    saved = json.loads(run.progress.read_text())["num_timesteps"]
    assert saved >= 256
    resumed = train(
        TrainConfig.from_toml(config).__class__(
            **{**TrainConfig.from_toml(config).__dict__, "total_timesteps": saved + 256}
        ),
        resume=True,
        progress_bar=False,
    )
    assert resumed.num_timesteps == saved + 256
    assert json.loads(run.progress.read_text())["num_timesteps"] == saved + 256


class PoisonAfter(BaseCallback):
    """Sets every policy parameter to NaN at the end of the first rollout past ``steps``: the
    next update starts from a diverged model."""

    def __init__(self, steps: int) -> None:
        super().__init__()
        self.steps = steps

    def _on_rollout_end(self) -> None:
        if self.num_timesteps >= self.steps:
            for parameter in self.model.policy.parameters():
                parameter.data[...] = np.nan

    def _on_step(self) -> bool:
        return True


def parameters(model) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.policy.parameters()])


def test_divergence_raises_and_keeps_the_last_good_checkpoint(tmp_path):
    from stable_baselines3 import PPO

    config = tiny(tmp_path, total_timesteps=512, checkpoint_every=128, eval_every=10_000)
    with pytest.raises(TrainingDiverged, match="last good checkpoint is .*model.zip") as caught:
        train(config, progress_bar=False, callbacks=[PoisonAfter(256)])
    run = Run(config.out_dir)
    error = caught.value
    assert error.checkpoint == run.checkpoint and error.checkpoint_timesteps == 256
    assert error.timesteps == 256  # noticed at the update after the poisoned rollout
    assert json.loads(run.progress.read_text())["num_timesteps"] == 256
    assert np.isfinite(parameters(PPO.load(run.checkpoint, device="cpu"))).all()
    assert not run.model.exists()  # no final model from a diverged run
    assert json.loads(run.timing.read_text())["env_steps"] >= 256


def test_divergence_before_any_checkpoint_says_so(tmp_path):
    config = tiny(tmp_path, total_timesteps=512, checkpoint_every=100_000, eval_every=100_000)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written") as caught:
        train(config, progress_bar=False, callbacks=[PoisonAfter(128)])
    assert caught.value.checkpoint is None and caught.value.checkpoint_timesteps is None


def test_train_script_exits_non_zero_on_divergence(tmp_path, monkeypatch, capsys):
    real_train = train_script.train
    monkeypatch.setattr(
        train_script,
        "train",
        lambda config, **options: real_train(config, callbacks=[PoisonAfter(128)], **options),
    )
    arguments = ["--timesteps", "512", "--out", str(tmp_path / "run"), "--set", "horizon_h=2"]
    code = train_script.main([*arguments, "--no-progress"])
    assert code == train_script.DIVERGED != 0
    assert "training diverged at" in capsys.readouterr().err


def test_same_config_and_seed_give_the_same_model_and_figures(tmp_path):
    """The demo's recipe in miniature (imitation, gSDE, per-action log std, wear shaping, two
    subprocess envs, a checkpoint and a periodic evaluation) trained twice: identical."""
    import gymnasium

    from agents.evaluation import load_policy, run_episode

    def once(folder: str) -> tuple[np.ndarray, np.ndarray, dict]:
        config = tiny(
            tmp_path,
            out_dir=str(tmp_path / folder),
            n_envs=2,
            n_steps=64,
            vectorization="subproc",
            use_sde=True,
            sde_sample_freq=16,
            action_log_std=(-1.5, -4.0, -4.0),
            wear_shaping_eur=150.0,
            pretrain_policy="condition_based",
            pretrain_steps=128,
            pretrain_epochs=2,
            eval_every=128,
        )
        model = train(config, progress_bar=False)
        env = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=2.0)
        _, policy = load_policy(str(Run(config.out_dir).model), env)
        kpis = run_episode(env, policy, seed=1000).kpis
        env.close()
        statistics = model.get_env().obs_rms.mean
        return parameters(model), statistics, kpis

    first, second = once("a"), once("b")
    assert np.array_equal(first[0], second[0])
    assert np.array_equal(first[1], second[1])
    assert first[2] == second[2]


def test_bad_configuration_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="env_id 'twinfactory/Nope-v0' is not registered"):
        train(tiny(tmp_path, env_id="twinfactory/Nope-v0"), progress_bar=False)
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(tiny(tmp_path), resume=True, progress_bar=False)
    with pytest.raises(ValueError, match="batch_size"):
        tiny(tmp_path, batch_size=100)
    bad = tmp_path / "bad.toml"
    bad.write_text("learning_rate = 5.0\n")
    with pytest.raises(ConfigError, match=r"bad.toml: 'learning_rate' = 5.0 is outside"):
        TrainConfig.from_toml(bad)
    bad.write_text("learnin_rate = 0.1\n")
    with pytest.raises(ConfigError, match="unknown key 'learnin_rate'"):
        TrainConfig.from_toml(bad)
    train(tiny(tmp_path), progress_bar=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(tiny(tmp_path), progress_bar=False)
    (tmp_path / "run" / "checkpoints" / "model.zip").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="unreadable checkpoint"):
        train(tiny(tmp_path), resume=True, progress_bar=False)


def test_train_script_help_and_errors(tmp_path):
    helped = subprocess.run(
        [sys.executable, "scripts/train.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in (
        "--config",
        "--env",
        "--timesteps",
        "--out",
        "--seed",
        "--set",
        "--resume",
        "--no-progress",
    ):
        assert option in helped.stdout
    assert "Exit status 3" in helped.stdout
    wrong = subprocess.run(
        [sys.executable, "scripts/train.py", "--set", "horizon_h=long"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "expected NAME=NUMBER" in wrong.stderr
    assert TrainConfig.from_toml(ROOT / "configs" / "ppo_production_line.toml").n_envs == 2
    recipe = ROOT / "configs" / "ppo_production_line.toml"
    config, resume, progress = train_script.parse_args(
        ["--config", str(recipe), "--timesteps", "5000", "--set", "horizon_h=24", "--no-progress"]
    )
    assert config.total_timesteps == 5000 and config.env_kwargs == {"horizon_h": 24.0}
    assert config.learning_rate == TrainConfig.from_toml(recipe).learning_rate  # from the file
    assert (resume, progress) == (False, False)
    bad = subprocess.run(
        [sys.executable, "scripts/train.py", "--config", str(recipe), "--seed", "1000"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "'seed' = 1000 is outside" in bad.stderr
    assert "with command-line options" in bad.stderr


def test_state_dependent_exploration_is_configurable(tmp_path):
    model = train(tiny(tmp_path, use_sde=True, sde_sample_freq=16), progress_bar=False)
    assert model.use_sde and model.sde_sample_freq == 16
    assert model.num_timesteps == 256


@pytest.mark.parametrize("use_sde", [False, True])
def test_action_log_std_is_tiled_over_the_actions(tmp_path, use_sde):
    model = train(
        tiny(tmp_path, action_log_std=(-1.0, -3.0, -4.0), use_sde=use_sde, total_timesteps=128),
        progress_bar=False,
    )
    log_std = model.policy.log_std.detach().numpy()
    machines = model.action_space.shape[0] // 3
    assert log_std.shape[-1] == 3 * machines
    assert np.abs(log_std.reshape(-1, machines, 3) - [-1.0, -3.0, -4.0]).max() < 0.05
    with pytest.raises(ConfigError, match="do not tile"):
        train(tiny(tmp_path / "other", action_log_std=(-1.0, -3.0, -4.0, -4.0)))
