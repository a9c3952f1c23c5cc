"""Optimiser configuration: the shipped TOML files load; bad files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.config import ConfigError
from optimizers.config import (
    OptimizeConfig,
    build_config,
    load_benchmark_config,
    load_optimize_config,
)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_shipped_configs_load():
    optimize = load_optimize_config(CONFIGS / "optimize.toml")
    assert optimize.algorithm == "nsga2" and optimize.problem.horizon_h == 24.0
    benchmark = load_benchmark_config(CONFIGS / "optimize_benchmark.toml")
    assert benchmark.seeds >= 5 and benchmark.factory.seeds == 1


def test_partial_factory_table_keeps_the_benchmark_defaults(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text('[factory]\nscenario = "automotive_components"\n')
    factory = load_benchmark_config(path).factory
    assert (factory.horizon_h, factory.seeds) == (8.0, 1)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("budget = [", "not valid TOML"),
        ('algorithm = "nsga4"', r"'algorithm' = 'nsga4' is not one of \['nsga2'"),
        ("budget = 0", r"'budget' = 0 is outside the allowed range \[1,"),
        ("bugdet = 10", "unknown key 'bugdet'; allowed keys here"),
        ("[problem]\nhorizon_h = -1.0", r"'problem.horizon_h' = -1.0 is outside"),
        ("[problem]\nseeds = 10\nfirst_seed = 995", "reaches the held-out seeds"),
        ("weights = [1.0, 2.0]", "weights needs 3 values"),
        ('[[problem.plant_changes]]\nmachine = "machining-1"', "missing key 'problem.plant_"),
    ],
)
def test_malformed_config_names_file_and_key(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as raised:
        load_optimize_config(path)
    assert str(path) in str(raised.value)


def test_command_line_overrides_are_validated_with_the_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("budget = 50\n[problem]\nseeds = 1\n")
    config = build_config(OptimizeConfig, path, {"problem": {"horizon_h": 2.0}})
    assert (config.budget, config.problem.seeds, config.problem.horizon_h) == (50, 1, 2.0)
    with pytest.raises(ConfigError, match="command-line overrides"):
        build_config(OptimizeConfig, path, {"workers": 0})
    with pytest.raises(ConfigError, match="no such file"):
        build_config(OptimizeConfig, tmp_path / "missing.toml", {})


def test_package_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, optimizers; "
        "assert 'pymoo' not in sys.modules and 'fmpy' not in sys.modules, sorted(sys.modules); "
        "assert callable(optimizers.run_algorithm) and 'run_algorithm' in optimizers.__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CONFIGS.parent)
