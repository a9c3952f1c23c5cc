"""The benchmark harness: known hypervolumes, anytime curves, statistics and the run cache."""

from __future__ import annotations

import json

import numpy as np
import pytest

from optimizers.algorithms import run_algorithm
from optimizers.archive import Archive, non_dominated
from optimizers.benchmark import run_benchmark
from optimizers.config import BenchmarkConfig, ProblemConfig
from optimizers.indicators import Normalisation, hypervolume, igd, knee_point, weighted_choice
from optimizers.problems import StandardProblem
from optimizers.scores import anytime_hv, holm, normalisation_for

ZDT1_HV = 0.1 + 2.0 / 3.0 + 0.1 * 1.1  # ∫0..1 (1.1 - (1 - √f1)) df1 + 0.1 × 1.1 = 0.8767


def test_non_dominated_mask():
    F = np.array([[1, 2], [2, 1], [2, 2], [1, 2], [0.5, 3]])
    assert non_dominated(F).tolist() == [True, True, False, True, True]


def test_true_zdt1_front_has_the_known_hypervolume():
    problem = StandardProblem("zdt1")
    normalisation = normalisation_for(problem, [])
    assert np.allclose(normalisation.ideal, 0) and np.allclose(normalisation.nadir, 1)
    assert hypervolume(problem.true_front(1000), normalisation, 1.1) == pytest.approx(
        ZDT1_HV, abs=1e-3
    )
    assert igd(problem.true_front(1000), problem.true_front(1000)) == pytest.approx(0, abs=1e-12)


def test_nsga2_through_the_harness_approaches_the_zdt1_front():
    problem = StandardProblem("zdt1")
    result = run_algorithm("nsga2", problem, budget=5000, seed=0, pop_size=40)
    archive = result.archive
    grid = np.array([1000, 3000, 5000])
    curve = anytime_hv(archive, grid, normalisation_for(problem, [result]), 1.1)
    assert np.all(np.diff(curve) >= 0)  # the archive's HV never decreases
    assert curve[-1] == pytest.approx(ZDT1_HV, abs=0.1)
    front = archive.F[archive.front_indices()]
    assert igd(front, problem.true_front()) < 0.05


def test_hypervolume_ignores_points_beyond_the_reference():
    normalisation = Normalisation(np.zeros(2), np.ones(2))
    assert hypervolume(np.array([[2.0, 2.0]]), normalisation) == 0.0
    assert hypervolume(np.array([[0.0, 0.0]]), normalisation) == pytest.approx(1.21)


def test_choices_on_a_front():
    F = np.array([[0.0, 10.0], [1.0, 1.0], [10.0, 0.0]])
    assert knee_point(F) == 1
    assert weighted_choice(F, (1.0, 0.0)) == 0
    with pytest.raises(ValueError, match="no feasible plan"):
        knee_point(np.zeros((0, 2)))


def test_holm_adjustment():
    adjusted = holm({"a": 0.01, "b": 0.04, "c": 0.03})
    assert adjusted == pytest.approx({"a": 0.03, "c": 0.06, "b": 0.06})


def test_archive_round_trips_through_json():
    archive = Archive(2, 2, 1)
    archive.add([0.1, 0.2], [1.0, 2.0], [-1.0])
    archive.add([0.3, 0.4], [1e12, 1e12], [1e12], ok=False, reason="FmuCallError: boom")
    again = Archive.from_dict(json.loads(json.dumps(archive.to_dict())))
    assert np.array_equal(again.F, archive.F) and again.reasons == archive.reasons
    assert again.feasible().tolist() == [True, False]


def test_benchmark_caches_runs_and_recomputes_only_what_changed(tmp_path):
    config = BenchmarkConfig(
        problems=("dtlz2", "factory"),
        algorithms=("nsga2", "random"),
        seeds=2,
        standard_budget=60,
        standard_pop_size=10,
        factory_budget=4,
        factory_pop_size=4,
        factory=ProblemConfig(horizon_h=0.5, seeds=1),
        checkpoints=4,
        engine="serial",
        out_dir=str(tmp_path),
    )
    lines: list[str] = []
    first = run_benchmark(config, progress=False, echo=lines.append)
    assert lines[0].startswith("8 runs computed, 0 loaded")
    rows = {
        (r["problem"], r["algorithm"]): r for p in first["problems"].values() for r in p["summary"]
    }
    assert rows[("dtlz2", "random")]["x_random"] == pytest.approx(1.0)
    assert "igd_median" in rows[("dtlz2", "nsga2")]
    assert len(first["problems"]["dtlz2"]["wilcoxon"]) == 1
    assert (tmp_path / "anytime_factory.png").stat().st_size > 0
    # two summary rows and nsga2's goal test against random search
    assert (tmp_path / "table.md").read_text().count("| factory |") == 3
    goals = {(t["problem"], t["algorithm"]) for t in first["goal_tests"]}
    assert goals == {("dtlz2", "nsga2"), ("factory", "nsga2")}

    lines.clear()
    again = run_benchmark(config, progress=False, echo=lines.append)
    assert lines[0].startswith("0 runs computed, 8 loaded")
    assert again["problems"]["dtlz2"]["hv"] == first["problems"]["dtlz2"]["hv"]
    assert again["problems"]["factory"]["hv"] == first["problems"]["factory"]["hv"]

    lines.clear()
    import dataclasses

    more = dataclasses.replace(config, problems=("dtlz2",), algorithms=("nsga2", "moead"))
    run_benchmark(more, progress=False, echo=lines.append)
    assert lines[0].startswith("2 runs computed, 2 loaded")  # only moead's two seeds
