"""optuna tuning: two tiny trials on SQLite and on a real PostgreSQL server, resumed, with plots;
--help."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest

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
