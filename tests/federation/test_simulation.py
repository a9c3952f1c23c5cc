"""Flower's simulation engine running the repository's ServerApp and ClientApp
(federation/simulation.py, ``scripts/federate.py simulate``): 2 simulated nodes × 1 tiny round
change the global weights and every node reports; bad input fails before Ray starts."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from federation import simulation
from federation.app_config import AppConfig
from federation.records import load_checkpoint
from federation.task import initial_weights
from scripts import federate

TINY = {
    "num-rounds": 1,
    "local-steps": 64,
    "n-steps": 64,
    "batch-size": 32,
    "n-epochs": 1,
    "horizon-h": 2.0,
    "eval-seeds": 1,
    "held-out": "",
    "tensorboard": False,
    "resume": False,
}


@pytest.mark.slow
@pytest.mark.skipif(not simulation.ray_available(), reason="needs the simulation extra (ray)")
def test_two_simulated_nodes_train_one_round(tmp_path):
    config = {**TINY, "out-dir": str(tmp_path)}
    summary = simulation.simulate(["node-1", "node-2"], config, num_cpus=2)
    assert summary["rounds"] == 1
    assert summary["nodes"] == ["node-1", "node-2"]
    with (tmp_path / "rounds.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    reported = {row["node"]: row for row in rows if row["round"] == "1"}
    assert set(reported) == {"node-1", "node-2"}
    for row in reported.values():
        assert np.isfinite(float(row["return"])) and row["accepted"] == "1"
        assert float(row["train_num_steps"]) == 64
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.server_round == 1
    before = initial_weights(AppConfig.from_run_config(config).local_config())
    change = sum(
        float(np.sum((a - b) ** 2)) for a, b in zip(checkpoint.weights, before, strict=True)
    )
    assert change > 0.0
    assert (tmp_path / "policy.npz").is_file()


def test_a_run_config_key_not_in_pyproject_is_an_error():
    with pytest.raises(ValueError, match="no-such-key"):
        simulation.fused_run_config({"no-such-key": 1})


def test_without_ray_simulate_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(simulation, "ray_available", lambda: False)
    with pytest.raises(simulation.SimulationUnavailable, match=r"\.\[simulation\]"):
        simulation.simulate(["node-1"], TINY)


def test_script_without_ray_exits_2_naming_the_extra(monkeypatch, capsys):
    monkeypatch.setattr(federate, "ray_available", lambda: False)
    assert federate.main(["simulate", "--nodes", "node-1"]) == 2
    assert 'pip install -e ".[simulation]"' in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--nodes", "node-1", "node-1"], "repeats"),
        (["--nodes", "node-1", "held-out"], "held-out node"),
        (["--nodes", "node-9"], "no shipped node profile"),
        (["--set", "no-such-key=1"], "no-such-key"),
        (["--set", "n-steps=100", "--set", "batch-size=64"], "batch_size"),
        (["--num-cpus", "0"], "--num-cpus"),
    ],
)
def test_script_bad_input_exits_2_before_starting(argv, message, tmp_path, capsys):
    assert federate.main(["simulate", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "rounds.csv").exists()
