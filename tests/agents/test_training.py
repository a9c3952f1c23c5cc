"""PPO training: smoke runs, resume after kill -9, divergence guard, bad configuration."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from agents.training import Run, TrainConfig, _callbacks, train
from envs.config import ConfigError

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


def test_divergence_stops_training_and_keeps_the_checkpoint(tmp_path):
    config = tiny(tmp_path)
    model = train(config, progress_bar=False)
    callback = _callbacks(config, Run(config.out_dir), model.get_env())
    callback.init_callback(model)
    assert callback._healthy()
    first = next(iter(model.policy.parameters()))
    first.data[...] = np.nan
    assert not callback._healthy()
    assert Run(config.out_dir).checkpoint.is_file()


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
    wrong = subprocess.run(
        [sys.executable, "scripts/train.py", "--set", "horizon_h=long"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 2 and "expected NAME=NUMBER" in wrong.stderr
    assert TrainConfig.from_toml(ROOT / "configs" / "ppo_production_line.toml").n_envs == 2


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
