"""Exported policies act exactly like the SB3 model and load without the training stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401 - registers the envs
from agents import evaluation
from agents.exported import ExportedPolicy, ExportedPolicyError
from agents.training import Run, TrainConfig, train
from scripts import export_policy

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=[False, True], ids=["gaussian", "gsde"])
def trained(tmp_path_factory, request):
    """A tiny run with plain Gaussian exploration and one with gSDE (as the shipped recipe)."""
    folder = tmp_path_factory.mktemp("export")
    config = TrainConfig(
        use_sde=request.param,
        env_kwargs={"horizon_h": 2.0},
        total_timesteps=256,
        n_envs=1,
        n_steps=128,
        batch_size=64,
        n_epochs=2,
        net_arch=(32, 16),
        checkpoint_every=1000,
        eval_every=1000,
        out_dir=str(folder / "run"),
    )
    train(config, progress_bar=False)
    return Run(config.out_dir)


def observations(count: int = 64) -> np.ndarray:
    env = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=24.0)
    observation, _ = env.reset(seed=5)
    rows = [observation]
    for _ in range(count - 1):
        observation, *_ = env.step(env.action_space.sample())
        rows.append(observation)
    env.close()
    return np.array(rows)


def test_exported_actions_equal_the_sb3_models(trained, tmp_path):
    assert export_policy.main([str(trained.root), "--out", str(tmp_path / "p.npz")]) == 0
    exported = ExportedPolicy.load(tmp_path / "p.npz")
    assert exported.meta["env_id"] == "twinfactory/ProductionLine-v0"
    assert exported.normalize and exported.meta["hidden_layers"] == 2
    env = gymnasium.make("twinfactory/ProductionLine-v0", horizon_h=2.0)
    _, reference = evaluation.load_policy(str(trained.model), env)  # with its vecnormalize.pkl
    label, via_harness = evaluation.load_policy(str(tmp_path / "p.npz"), env)
    env.close()
    assert label == "p" and isinstance(via_harness, ExportedPolicy)
    batch = observations()
    expected, _ = reference.predict(batch, deterministic=True)
    np.testing.assert_allclose(exported.act(batch), expected, rtol=0, atol=1e-5)
    single, _ = exported.predict(batch[3])
    np.testing.assert_allclose(single, expected[3], atol=1e-5)


def test_exported_policy_loads_with_numpy_alone(trained, tmp_path):
    path = tmp_path / "p.npz"
    export_policy.main([str(trained.model), "--out", str(path)])
    script = (
        "import sys\nfrom agents.exported import ExportedPolicy\n"
        "p = ExportedPolicy.load(sys.argv[1])\n"
        "import numpy as np\nprint(p.act(np.zeros(p.observation_size)).shape)\n"
        "heavy = [m for m in ('torch', 'gymnasium', 'stable_baselines3', 'fmpy') "
        "if m in sys.modules]\nprint('heavy:', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "(21,)" in result.stdout and "heavy: []" in result.stdout


def test_bad_files_and_inputs_are_refused(trained, tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    with pytest.raises(ExportedPolicyError, match="not an exported policy file"):
        ExportedPolicy.load(junk)
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ExportedPolicyError, match="no 'meta' entry"):
        ExportedPolicy.load(tmp_path / "other.npz")
    export_policy.main([str(trained.root), "--out", str(tmp_path / "p.npz")])
    policy = ExportedPolicy.load(tmp_path / "p.npz")
    with pytest.raises(ValueError, match="expects 97"):
        policy.act(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        policy.act(np.full(97, np.nan))


def test_export_script_help_and_missing_model(tmp_path):
    helped = subprocess.run(
        [sys.executable, "scripts/export_policy.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--out" in helped.stdout
    missing = subprocess.run(
        [sys.executable, "scripts/export_policy.py", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no such model file" in missing.stderr
