"""The package's shape: leaf modules that stay leaves, a light configuration, one registry of
names, one penalised objective, and a SciPy spelling chosen in one place."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.test_architecture import import_graph

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "optimizers"
MODULES = sorted(f"optimizers.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def optimizers_graph() -> dict[str, set[str]]:
    """The project's import graph (tests/test_architecture.py, where circles are checked for
    the whole tree) restricted to the modules of this package."""
    graph = import_graph()
    return {m: {t for t in graph[m] if t in MODULES} for m in MODULES}


def test_the_leaf_and_the_algorithm_modules_do_not_reach_back():
    graph = optimizers_graph()
    assert graph["optimizers.population"] == set()
    for module in ("optimizers.weighted_sum", "optimizers.optuna_mo"):
        assert graph[module] == {"optimizers.population"}, module
    assert "optimizers.algorithms" not in graph["optimizers.registry"]
    assert "optimizers.config" not in graph["optimizers.registry"]


@pytest.mark.parametrize("module", MODULES)
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, cwd=REPO)


def test_configuration_takes_its_algorithm_names_from_the_registry_without_pymoo():
    code = (
        "import sys; from optimizers.config import ALGORITHMS, BenchmarkConfig; "
        "from optimizers.registry import REGISTRY; "
        "assert ALGORITHMS == tuple(REGISTRY) == BenchmarkConfig().algorithms; "
        "heavy = [m for m in ('pymoo', 'optuna', 'scipy.optimize', 'fmpy') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_registered_name_is_a_valid_configuration_choice_and_nothing_else_is(tmp_path):
    from envs.config import ConfigError
    from optimizers.config import load_optimize_config
    from optimizers.registry import REGISTRY

    for name in REGISTRY:
        assert load_optimize_config(None, {"algorithm": name}).algorithm == name
    with pytest.raises(ConfigError, match="is not one of"):
        load_optimize_config(None, {"algorithm": "cmaes"})


def test_one_penalty_for_constraint_violations():
    from envs.kpi import CONSTRAINT_VIOLATION_PENALTY, penalised_objective
    from optimizers.population import penalised
    from optimizers.problems import BaseProblem, FactoryProblem, StandardProblem
    from optimizers.weighted_sum import scalarise

    assert BaseProblem.violation_penalty == CONSTRAINT_VIOLATION_PENALTY
    assert StandardProblem.violation_penalty == FactoryProblem.violation_penalty
    F = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    G = np.array([[-1.0, 0.5], [2.0, 3.0]])
    weights = (1.0, 0.5, 2.0)
    Z = scalarise(F, G, weights, 1000.0)
    assert np.allclose(Z, [1 + 1 + 6 + 500, 4 + 2.5 + 12 + 5000])
    assert np.allclose(Z, penalised_objective(F @ np.array(weights), G, 1000.0))
    assert np.allclose(penalised(F, G, 1000.0), F + np.array([[500.0], [5000.0]]))
    assert np.array_equal(scalarise(F, np.zeros((2, 0)), weights, 1000.0), F @ weights)


def test_moead_sees_the_constraints_as_a_penalty_on_every_objective(tiny_problem, serial):
    from optimizers.population import initial_population
    from optimizers.problems import Evaluator
    from optimizers.registry import pymoo_adapter

    X = initial_population(tiny_problem, 4, seed=0)
    penalised = pymoo_adapter(tiny_problem, Evaluator(tiny_problem, serial, 4), penalise=True)
    plain = pymoo_adapter(tiny_problem, Evaluator(tiny_problem, serial, 4))
    out_penalised: dict = {}
    out_plain: dict = {}
    penalised._evaluate(X, out_penalised)
    plain._evaluate(X, out_plain)
    assert "G" not in out_penalised and penalised.n_ieq_constr == 0
    violation = np.maximum(out_plain["G"], 0.0).sum(axis=1, keepdims=True)
    expected = out_plain["F"] + tiny_problem.violation_penalty * violation
    assert np.allclose(out_penalised["F"], expected)


@pytest.mark.parametrize(
    ("version", "keyword"),
    [
        ("1.11.4", "seed"),
        ("1.14.1", "seed"),
        ("1.15.0", "rng"),
        ("1.17.1", "rng"),
        ("2.0.0", "rng"),
    ],
)
def test_scipy_generator_keyword_follows_the_installed_version(monkeypatch, version, keyword):
    import scipy

    from optimizers import weighted_sum

    monkeypatch.setattr(scipy, "__version__", version)
    weighted_sum.scipy_rng_keyword.cache_clear()
    try:
        assert weighted_sum.scipy_rng_keyword() == keyword
    finally:
        weighted_sum.scipy_rng_keyword.cache_clear()


def test_weighted_sum_is_the_same_run_by_either_scipy_spelling_without_warnings(monkeypatch):
    from optimizers import weighted_sum
    from optimizers.algorithms import run_algorithm
    from optimizers.problems import StandardProblem

    problem = StandardProblem("dtlz2")
    # both spellings where this SciPy takes both (>= 1.15); only ``seed`` below (make test-min)
    spellings = ("rng", "seed") if weighted_sum.scipy_rng_keyword() == "rng" else ("seed",)
    runs = {}
    for keyword in spellings:
        monkeypatch.setattr(weighted_sum, "scipy_rng_keyword", lambda keyword=keyword: keyword)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            runs[keyword] = run_algorithm("weighted_sum", problem, budget=40, seed=3, pop_size=5)
    assert np.array_equal(runs[spellings[0]].archive.X, runs["seed"].archive.X)
    assert len(runs["seed"].archive) == 40  # several generations: the generator was used


def test_plan_encoding_uses_the_scenario_machine_names(tiny_problem):
    scenario = tiny_problem.scenario
    assert tiny_problem.encoding.machine_names == scenario.machine_names
    speeds = [n.partition(":")[2] for n in tiny_problem.var_names if n.startswith("speed:")]
    assert speeds == scenario.machine_names


def test_each_simulation_seed_draws_its_events_from_event_rng(tiny_problem, monkeypatch):
    import optimizers.simulate as simulate
    from envs.seeding import event_rng

    seen: list[int] = []

    def spy(seed: int) -> np.random.Generator:
        seen.append(seed)
        return event_rng(seed)

    monkeypatch.setattr(simulate, "event_rng", spy)
    spec = simulate.SimulationSpec(
        **{**vars(tiny_problem.spec), "seeds": (3, 4), "horizon_steps": 1}
    )
    assert simulate.evaluate_plan((spec, tiny_problem.encoding.vector())).ok
    assert seen == [3, 4]


def test_every_export_resolves_to_the_module_that_defines_it():
    import optimizers

    assert optimizers.__all__ == sorted(optimizers._EXPORTS)
    for name, module in optimizers._EXPORTS.items():
        value = getattr(optimizers, name)
        owner = getattr(value, "__module__", module)
        assert owner == module or name in ("ALGORITHMS", "REGISTRY"), (name, owner)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        optimizers.nothing  # noqa: B018
