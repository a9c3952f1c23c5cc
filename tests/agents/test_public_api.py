"""The package's public face: names resolve lazily, and importing it loads no heavy stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import agents

ROOT = Path(__file__).resolve().parents[2]


def test_every_exported_name_resolves_to_its_module():
    from agents.config import TrainConfig
    from agents.exported import ExportedPolicy
    from agents.training import TrainingDiverged, train

    assert agents.train is train and agents.TrainConfig is TrainConfig
    assert agents.TrainingDiverged is TrainingDiverged and agents.ExportedPolicy is ExportedPolicy
    for name in agents.__all__:
        assert getattr(agents, name) is not None, name
    assert set(agents.__all__) <= set(dir(agents))


def test_importing_agents_and_exported_loads_neither_torch_nor_gymnasium():
    script = (
        "import sys\nimport agents\nimport agents.exported\nfrom agents import ExportedPolicy\n"
        "print([m for m in ('torch', 'gymnasium', 'stable_baselines3') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_unknown_names_are_attribute_errors():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = agents.nope
