"""The Pareto set on disk and back, picking a plan from it, and the comparison's changes."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from optimizers.algorithms import run_algorithm
from optimizers.pareto import (
    ParetoFileError,
    ParetoFront,
    load_pareto,
    load_pareto_vectors,
    pick_plan,
    save_pareto,
)


@pytest.fixture(scope="module")
def saved(tiny_problem, tmp_path_factory):
    from optimizers.engines import SerialEngine

    with SerialEngine() as engine:
        result = run_algorithm("random", tiny_problem, budget=8, seed=1, pop_size=4, engine=engine)
    front = ParetoFront.of_run(result, tiny_problem)
    out = tmp_path_factory.mktemp("pareto")
    json_path, _ = save_pareto(out, result, tiny_problem, chosen=0)
    return result, front, json_path


def front_of(F: list[list[float]]) -> ParetoFront:
    F_ = np.array(F, dtype=float)
    return ParetoFront(
        X=np.zeros((len(F_), 1)), F=F_, G=np.zeros((len(F_), 0)), evaluations=np.arange(len(F_))
    )


def test_front_of_a_run_is_its_feasible_non_dominated_plans_cheapest_first(saved, tiny_problem):
    result, front, _ = saved
    archive = result.archive
    assert len(front) > 0
    assert sorted(front.evaluations.tolist()) == sorted(archive.front_indices().tolist())
    assert np.all(np.diff(front.F[:, 0]) >= 0)
    assert np.array_equal(front.X, archive.X[front.evaluations])
    assert np.all(front.G <= 0)


def test_pareto_json_reads_back_to_the_same_front(saved, tiny_problem):
    _, front, json_path = saved
    again = load_pareto(json_path, tiny_problem)
    assert np.allclose(again.X, front.X) and np.array_equal(again.F, front.F)
    assert np.array_equal(again.G, front.G)
    assert np.array_equal(again.evaluations, front.evaluations)
    assert again.source == str(json_path)
    assert np.allclose(load_pareto_vectors(json_path, tiny_problem), front.X)
    assert not list(json_path.parent.glob(".*")), "a temporary file was left behind"


def test_pick_plan_by_knee_and_by_weights():
    front = front_of([[0.0, 10.0], [4.0, 4.0], [10.0, 0.0]])
    assert pick_plan(front, "knee") == 1
    assert pick_plan(front, "weights", (1.0, 0.0)) == 0
    assert pick_plan(front, "weights", (0.0, 1.0)) == 2
    assert pick_plan(front_of([]), "knee") is None
    with pytest.raises(ValueError, match=r"unknown pick rule 'best'; choose one of \['knee'"):
        pick_plan(front, "best")
    with pytest.raises(ValueError, match="needs 2 weights"):
        pick_plan(front, "weights")


def test_the_picked_plan_is_the_same_from_a_run_and_from_its_file(saved, tiny_problem):
    _, front, json_path = saved
    weights = tiny_problem.default_weights
    again = load_pareto(json_path, tiny_problem)
    for rule in ("knee", "weights"):
        assert pick_plan(front, rule, weights) == pick_plan(again, rule, weights)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file; pass the pareto.json of an earlier run"),
        ("{not json", "not valid JSON"),
        ('{"algorithm": "nsga2"}', "has no 'points' list"),
        ('{"points": []}', "found no feasible plan"),
        ('{"points": [{"F": {}}]}', "lacks its decision vector 'x'"),
        ('{"points": [{"x": {"speed:machining-1": 1.0}}]}', "missing decision variables"),
    ],
)
def test_a_malformed_pareto_json_is_a_clear_error(tmp_path, tiny_problem, content, message):
    path = tmp_path / "pareto.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ParetoFileError, match=message) as raised:
        load_pareto(path, tiny_problem)
    assert str(path) in str(raised.value)


def test_a_point_without_its_objectives_is_a_clear_error(saved, tiny_problem, tmp_path):
    _, _, json_path = saved
    payload = json.loads(json_path.read_text())
    del payload["points"][0]["F"]["energy_kwh"]
    path = tmp_path / "pareto.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(ParetoFileError, match=r"lacks a number for F 'energy_kwh'"):
        load_pareto(path, tiny_problem)


def test_plan_changes_are_relative_changes_left_out_where_the_baseline_is_zero():
    from optimizers.compare import plan_changes

    def estimates(**values: float) -> dict:
        return {key: SimpleNamespace(value=value) for key, value in values.items()}

    kpis = ("cost", "energy_kwh", "downtime_h", "throughput_per_h", "peak_kw")
    summary = {
        "plan": estimates(**dict(zip(kpis, (90.0, 50.0, 1.0, 30.0, 40.0), strict=True))),
        "naive": estimates(**dict(zip(kpis, (100.0, 100.0, 0.0, 25.0, 40.0), strict=True))),
    }
    changes = plan_changes(summary, "naive")
    assert changes == pytest.approx(
        {"cost": -0.1, "energy": -0.5, "throughput": 0.2, "peak_power": 0.0}
    )
    assert "downtime" not in changes and not any(math.isnan(v) for v in changes.values())


def test_the_comparison_refuses_seeds_that_are_not_held_out(tiny_problem):
    from optimizers.compare import compare_with_heuristics

    plan = tiny_problem.encoding.decode(tiny_problem.encoding.vector())
    with pytest.raises(ValueError, match=r"must be held out \(>= 1000\); got \[0\]"):
        compare_with_heuristics(tiny_problem.scenario, plan, [0, 1000])


def test_plots_are_written_atomically(saved, tmp_path, tiny_problem):
    from optimizers.plots import plot_pareto

    result, _, _ = saved
    path = plot_pareto(result.archive, tiny_problem.obj_names, tmp_path / "front.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["front.png"]
