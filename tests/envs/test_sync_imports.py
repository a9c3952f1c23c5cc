"""The synchronisation package and the plant emulator: no module imports the package back, and
the modules that used to import each other import on their own in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_architecture import import_graph

ROOT = Path(__file__).resolve().parents[2]


def test_no_module_imports_the_sync_package_back():
    # the package's entry point imports its modules; a module importing the package would
    # tie it to every other module (circles over the whole tree: tests/test_architecture.py)
    graph = import_graph()
    sync_modules = [m for m in graph if m.startswith("envs.sync.") or m.startswith("envs.plant")]
    assert {"envs.sync.recording", "envs.sync.calibration", "envs.plant"} <= set(sync_modules)
    assert [m for m in sync_modules if "envs.sync" in graph[m]] == []


@pytest.mark.parametrize(
    "module",
    [
        "envs.sync.recording",
        "envs.sync.calibration",
        "envs.sync.metrics",
        "envs.plant_config",
        "envs.plant",
    ],
)
def test_module_imports_alone_in_a_fresh_interpreter(module):
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
