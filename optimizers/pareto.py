"""The Pareto set of a factory run on disk (``pareto.json`` and ``pareto.csv``), and reading it
back as a warm start.

``pareto.json`` holds the run (algorithm, seed, budget, timing, evaluations, failures and their
reasons), the problem (scenario, horizon, seeds, constraints, plant changes), the variables with
bounds and units, and one entry per feasible non-dominated plan: its decision vector by name,
``F`` (cost EUR, energy kWh, downtime h over the horizon), ``G`` and the mean KPIs. ``chosen``
is the index of the picked plan. ``pareto.csv`` has the same points, one row each.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from optimizers.algorithms import RunResult
from optimizers.plan import PlanBoundsError
from optimizers.problems import FactoryProblem


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (no torn files)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def front_order(result: RunResult) -> np.ndarray:
    """Archive indices of the feasible non-dominated plans, by increasing first objective
    (cost): the order of ``pareto.json`` and ``pareto.csv``."""
    front = result.archive.front_indices()
    return front[np.argsort(result.archive.F[front, 0], kind="stable")]


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


def load_pareto_vectors(path: str | Path, problem: FactoryProblem) -> np.ndarray:
    """The decision vectors of a ``pareto.json`` for ``problem``'s encoding (a warm start);
    a clear error when the file is missing, malformed or written for another encoding."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file; pass the pareto.json of an earlier run") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); pass a pareto.json") from error
    points = payload.get("points") if isinstance(payload, dict) else None
    if not isinstance(points, list):
        raise ValueError(f"{path}: has no 'points' list; pass a pareto.json written by optimize")
    if not points:
        raise ValueError(f"{path}: the earlier run found no feasible plan to start from")
    try:
        rows = [problem.encoding.from_dict(p["x"], source=str(path)) for p in points]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path}: a point lacks its decision vector 'x' ({error})") from error
    except PlanBoundsError as error:
        raise ValueError(str(error)) from error
    return np.array(rows)
