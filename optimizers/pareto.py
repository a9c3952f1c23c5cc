"""The Pareto set of a factory run on disk (``pareto.json`` and ``pareto.csv``), and reading it
back as a warm start.

``pareto.json`` holds the run (algorithm, seed, budget, timing, evaluations, failures and their
reasons), the problem (scenario, horizon, seeds, constraints, plant changes), the variables with
bounds and units, and one entry per feasible non-dominated plan: its decision vector by name,
``F`` (cost EUR, energy kWh, downtime h over the horizon), ``G`` and the mean KPIs. ``chosen``
is the index of the picked plan. ``pareto.csv`` has the same points, one row each.

A front in memory is a :class:`ParetoFront`, made from a run (:meth:`ParetoFront.of_run`) or
read back from ``pareto.json`` (:func:`load_pareto`, the one reader of that file); a plan is
picked from it by :func:`pick_plan`. Files are written atomically (:mod:`envs.atomic`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic import write_atomic
from optimizers.algorithms import RunResult
from optimizers.config import PICK_RULES
from optimizers.indicators import knee_point, weighted_choice
from optimizers.plan import PlanBoundsError
from optimizers.problems import FactoryProblem

__all__ = [
    "ParetoFileError",
    "ParetoFront",
    "front_order",
    "load_pareto",
    "load_pareto_vectors",
    "pareto_points",
    "pick_plan",
    "run_summary",
    "save_pareto",
]


class ParetoFileError(ValueError):
    """A ``pareto.json`` is missing, malformed, or written for another problem."""


def front_order(result: RunResult) -> np.ndarray:
    """Archive indices of the feasible non-dominated plans, by increasing first objective
    (cost): the order of ``pareto.json`` and ``pareto.csv``."""
    front = result.archive.front_indices()
    return front[np.argsort(result.archive.F[front, 0], kind="stable")]


@dataclass(frozen=True)
class ParetoFront:
    """Feasible non-dominated plans, cheapest first: decision vectors ``X``, objectives ``F``
    and constraints ``G`` (one row per plan, columns in the problem's order), and each plan's
    evaluation number in its run (its archive index)."""

    X: np.ndarray
    F: np.ndarray
    G: np.ndarray
    evaluations: np.ndarray
    source: str = ""
    """Where the front came from (a file path, or '' for a run in memory)."""

    def __len__(self) -> int:
        return len(self.F)

    @classmethod
    def of_run(cls, result: RunResult, problem: FactoryProblem) -> ParetoFront:
        """The front of a run's archive, in :func:`front_order`."""
        order = front_order(result)
        archive = result.archive
        return cls(
            X=archive.X[order],
            F=archive.F[order],
            G=archive.G[order],
            evaluations=order,
        )

    @classmethod
    def from_json(cls, path: str | Path, problem: FactoryProblem) -> ParetoFront:
        """Read a ``pareto.json`` written for ``problem``'s encoding; a
        :class:`ParetoFileError` says what is wrong with a missing or malformed file."""
        path = Path(path)
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ParetoFileError(
                f"{path}: no such file; pass the pareto.json of an earlier run"
            ) from None
        except (OSError, UnicodeDecodeError) as error:
            raise ParetoFileError(f"{path}: cannot be read ({error})") from error
        except json.JSONDecodeError as error:
            raise ParetoFileError(
                f"{path}: not valid JSON ({error}); pass a pareto.json"
            ) from error
        points = payload.get("points") if isinstance(payload, dict) else None
        if not isinstance(points, list):
            raise ParetoFileError(
                f"{path}: has no 'points' list; pass a pareto.json written by optimize"
            )
        if not points:
            raise ParetoFileError(f"{path}: the earlier run found no feasible plan to start from")
        try:
            X = [problem.encoding.from_dict(p["x"], source=str(path)) for p in points]
        except (KeyError, TypeError) as error:
            raise ParetoFileError(
                f"{path}: a point lacks its decision vector 'x' ({error})"
            ) from error
        except PlanBoundsError as error:
            raise ParetoFileError(str(error)) from error
        F = _table(points, "F", problem.obj_names, path)
        G = _table(points, "G", problem.constr_names, path)
        evaluations = [p.get("evaluation", -1) for p in points]
        return cls(
            X=np.array(X),
            F=F,
            G=G,
            evaluations=np.asarray(evaluations, dtype=int),
            source=str(path),
        )


def _table(points: list[Any], key: str, names: Sequence[str], path: Path) -> np.ndarray:
    """The ``key`` values (``F`` or ``G``) of every point, columns in ``names`` order."""
    try:
        rows = [[float(point[key][name]) for name in names] for point in points]
    except (KeyError, TypeError, ValueError) as error:
        raise ParetoFileError(
            f"{path}: a point lacks a number for {key} {error} (needs {list(names)}); pass a "
            "pareto.json written by optimize for this problem"
        ) from error
    return np.array(rows, dtype=float).reshape(len(points), len(names))


def pick_plan(
    front: ParetoFront, rule: str = "knee", weights: Sequence[float] | None = None
) -> int | None:
    """Position in ``front`` of the plan the ``rule`` picks, or None for an empty front:
    ``knee`` — the point closest to the ideal point after normalising the front
    (:func:`~optimizers.indicators.knee_point`); ``weights`` — the smallest w·F
    (``weights`` is then needed, e.g. the scenario's)."""
    if rule not in PICK_RULES:
        raise ValueError(f"unknown pick rule '{rule}'; choose one of {list(PICK_RULES)}")
    if len(front) == 0:
        return None
    if rule == "knee":
        return knee_point(front.F)
    if weights is None or len(weights) != front.F.shape[1]:
        raise ValueError(
            f"pick = 'weights' needs {front.F.shape[1]} weights (one per objective), not "
            f"{weights!r}"
        )
    return weighted_choice(front.F, weights)


def pareto_points(result: RunResult, problem: FactoryProblem) -> list[dict]:
    """One dict per feasible non-dominated evaluation of the run, cheapest first."""
    archive = result.archive
    points = []
    for index in front_order(result):
        points.append(
            {
                "evaluation": int(index),
                "x": problem.encoding.as_dict(archive.X[index]),
                "F": dict(zip(problem.obj_names, map(float, archive.F[index]), strict=True)),
                "G": dict(zip(problem.constr_names, map(float, archive.G[index]), strict=True)),
                "kpis": archive.kpis[index],
            }
        )
    return points


def run_summary(result: RunResult, problem: FactoryProblem) -> dict:
    """The run and problem part of ``pareto.json`` (everything but the points)."""
    archive = result.archive
    spec = problem.spec
    return {
        "algorithm": result.algorithm,
        "seed": result.seed,
        "budget": result.budget,
        "pop_size": result.pop_size,
        "seconds": result.seconds,
        "evaluations": len(archive),
        "evaluations_per_s": result.evaluations_per_s,
        "feasible": int(archive.feasible().sum()),
        "failures": archive.failures,
        "failure_reasons": dict(archive.reasons),
        "problem": {
            **asdict(problem.config),
            "horizon_steps": spec.horizon_steps,
            "start_s": spec.start_s,
            "simulation_seeds": list(spec.seeds),
            "throughput_min_per_h": spec.throughput_min_per_h,
            "peak_max_kw": spec.peak_max_kw,
        },
        "variables": [asdict(v) for v in problem.encoding.variables],
        "objectives": list(problem.obj_names),
        "constraints": list(problem.constr_names),
    }


def save_pareto(
    out_dir: Path,
    result: RunResult,
    problem: FactoryProblem,
    *,
    chosen: int | None = None,
    pick: str = "knee",
) -> tuple[Path, Path]:
    """Write ``pareto.json`` and ``pareto.csv`` into ``out_dir``; ``chosen`` indexes the points."""
    points = pareto_points(result, problem)
    payload = {**run_summary(result, problem), "pick": pick, "chosen": chosen, "points": points}
    json_path = write_atomic(Path(out_dir) / "pareto.json", json.dumps(payload, indent=2))
    kpi_names = sorted({k for p in points for k in p["kpis"]})
    header = [
        "evaluation",
        "chosen",
        *problem.obj_names,
        *problem.constr_names,
        *[f"kpi.{k}" for k in kpi_names],
        *problem.var_names,
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for i, point in enumerate(points):
        writer.writerow(
            [
                point["evaluation"],
                int(i == chosen),
                *point["F"].values(),
                *point["G"].values(),
                *[point["kpis"].get(k, "") for k in kpi_names],
                *point["x"].values(),
            ]
        )
    csv_path = write_atomic(Path(out_dir) / "pareto.csv", buffer.getvalue())
    return json_path, csv_path


def load_pareto(path: str | Path, problem: FactoryProblem) -> ParetoFront:
    """The front of a ``pareto.json`` for ``problem`` (:meth:`ParetoFront.from_json`)."""
    return ParetoFront.from_json(path, problem)


def load_pareto_vectors(path: str | Path, problem: FactoryProblem) -> np.ndarray:
    """The decision vectors of a ``pareto.json`` for ``problem``'s encoding (a warm start);
    a :class:`ParetoFileError` when the file is missing, malformed or written for another
    encoding."""
    return load_pareto(path, problem).X
