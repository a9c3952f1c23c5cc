"""optuna tuning: two tiny trials on SQLite and on a real PostgreSQL server, resumed, with plots;
--help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from agents import tuning
from agents.training import TrainingDiverged
from scripts import tune as tune_script
from tests.postgres import server_binaries, temporary_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path):
    """None (the default SQLite file under the output folder) or a PostgreSQL URL."""
    if request.param == "sqlite":
        yield None
        return
    if server_binaries() is None:
        pytest.skip("PostgreSQL is not installed: apt-get install postgresql (make test does)")
    with temporary_server() as url:
        yield url


def test_two_tiny_trials_then_resume(tmp_path, capsys, storage):
    arguments = [
        "--timesteps",
        "128",
        "--chunks",
        "2",
        "--eval-seeds",
        "1",
        "--set",
        "horizon_h=1",
        "--out",
        str(tmp_path),
        "--study-name",
        "tiny",
        *(["--storage", storage] if storage else []),
    ]
    assert tune_script.main([*arguments, "--trials", "2"]) == 0
    printed = capsys.readouterr().out
    assert "best trial #" in printed and "learning_rate = " in printed
    storage = storage or f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name="tiny", storage=storage)
    assert len(study.trials) == 2
    assert all(len(t.intermediate_values) >= 1 for t in study.trials)
    assert (tmp_path / "plots" / "optimization_history.png").is_file()
    assert tune_script.main([*arguments, "--trials", "3"]) == 0  # continues the same study
    assert len(optuna.load_study(study_name="tiny", storage=storage).trials) == 3


def test_tune_help():
    result = subprocess.run(
        [sys.executable, "scripts/tune.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in (
        "--config",
        "--trials",
        "--chunks",
        "--timesteps",
        "--eval-seeds",
        "--storage",
        "--study-name",
        "--out",
        "--set",
    ):
        assert option in result.stdout


def test_a_diverging_trial_is_pruned_and_the_study_goes_on(tmp_path, monkeypatch, capsys):
    real_train = tuning.train

    def first_trial_diverges(config, **options):
        if config.out_dir.endswith("trial_0"):
            raise TrainingDiverged(64, None, None)
        return real_train(config, **options)

    monkeypatch.setattr(tuning, "train", first_trial_diverges)
    arguments = ["--timesteps", "128", "--chunks", "1", "--eval-seeds", "1", "--trials", "2"]
    arguments += ["--set", "horizon_h=1", "--out", str(tmp_path), "--study-name", "div"]
    assert tune_script.main(arguments) == 0
    assert "1 pruned on divergence" in capsys.readouterr().out
    study = optuna.load_study(study_name="div", storage=f"sqlite:///{tmp_path / 'study.db'}")
    first, second = study.trials
    assert first.state == optuna.trial.TrialState.PRUNED
    assert "training diverged at 64 steps" in first.user_attrs["diverged"]
    assert second.state == optuna.trial.TrialState.COMPLETE


def test_tune_options_override_the_config_file(tmp_path):
    file = tmp_path / "base.toml"
    file.write_text("n_envs = 1\nn_steps = 64\nbatch_size = 64\nenv_kwargs = { horizon_h = 2.0 }\n")
    config = tune_script.parse_args(
        ["--config", str(file), "--timesteps", "256", "--set", "warmup_h=1", "--trials", "4"]
    )
    assert config.trials == 4 and config.chunks == tuning.TuneConfig().chunks
    assert config.base.n_envs == 1 and config.base.total_timesteps == 256
    assert config.base.env_kwargs == {"horizon_h": 2.0, "warmup_h": 1.0}
