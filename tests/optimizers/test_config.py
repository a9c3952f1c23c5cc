"""Optimiser configuration: the shipped TOML files load; bad files are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from envs.config import ConfigError
from envs.config import given_options as given
from optimizers.config import load_benchmark_config, load_optimize_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_shipped_configs_load():
    optimize = load_optimize_config(CONFIGS / "optimize.toml")
    assert optimize.algorithm == "nsga2" and optimize.problem.horizon_h == 24.0
    benchmark = load_benchmark_config(CONFIGS / "optimize_benchmark.toml")
    assert benchmark.seeds >= 5 and benchmark.factory.seeds == 1
    from optimizers.registry import ALGORITHMS

    assert benchmark.algorithms == ALGORITHMS  # the shipped benchmark runs every algorithm
    ladder = load_benchmark_config(CONFIGS / "optimize_ladder.toml")
    assert {"small_line", "factory", "large_line"} <= set(ladder.problems)
    assert ladder.seed_heuristics and ladder.seeds >= 5 and ladder.budget_for("large_line") < 100


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
    config = load_optimize_config(path, {"problem": {"horizon_h": 2.0}})
    assert (config.budget, config.problem.seeds, config.problem.horizon_h) == (50, 1, 2.0)
    assert config.problem.start_hour == 6.0  # a key neither gives keeps its default
    with pytest.raises(ConfigError, match=rf"{path} \(with command-line options\).*'workers'"):
        load_optimize_config(path, {"workers": 0})
    with pytest.raises(ConfigError, match="no such file"):
        load_optimize_config(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match=r"command line.*'budget' = 0 is outside"):
        load_optimize_config(None, {"budget": 0})


def test_benchmark_command_line_keeps_the_factory_defaults_it_does_not_give(tmp_path):
    path = tmp_path / "bench.toml"
    path.write_text("seeds = 2\n[factory]\nhorizon_h = 4.0\n")
    config = load_benchmark_config(path, {"factory": {"seeds": 3}})
    assert (config.seeds, config.factory.horizon_h, config.factory.seeds) == (2, 4.0, 3)
    assert load_benchmark_config().factory.horizon_h == 8.0  # no file: the benchmark's default


def test_only_given_options_override():
    options = {"budget": 10, "seed": None, "problem": {"seeds": None}, "factory": {"seeds": 2}}
    assert given(options) == {"budget": 10, "factory": {"seeds": 2}}
    assert given({"weights": [1.0, 2.0, 3.0], "plant_changes": None}) == {
        "weights": [1.0, 2.0, 3.0]
    }
    # load_config itself leaves out what was not given: the file's value stays
    config = load_optimize_config(None, {"budget": 10, "seed": None, "problem": {"seeds": None}})
    assert config.budget == 10 and config.problem.seeds == load_optimize_config().problem.seeds


def test_package_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, optimizers; "
        "assert 'pymoo' not in sys.modules and 'fmpy' not in sys.modules, sorted(sys.modules); "
        "assert callable(optimizers.run_algorithm) and 'run_algorithm' in optimizers.__all__"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=CONFIGS.parent)
