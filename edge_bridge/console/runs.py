"""The Runs view: what the project's scripts already wrote under ``runs/``, in one place.

:func:`list_runs` lists the files the console can show, by kind: ``pareto`` (an optimiser's
``pareto.json``: every plan's objectives and decision vector), ``training`` (TensorBoard event
files of ``scripts/train.py``: the training curves), ``table`` (CSV: evaluation KPI tables,
``pareto.csv``), ``json`` (evaluation, sync, rollout and bench reports, ``progress.json``) and
``image`` (the PNG plots the scripts draw). :func:`load_run_file` reads one of them for the
browser. A missing, unreadable, corrupt or oversized file gives a ``{"kind": "error",
"message": ...}`` result instead of an exception, so the page always renders; a path outside
the runs folder is a ValueError (the web layer answers 400).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["MAX_BYTES", "MAX_FILES", "list_runs", "load_run_file", "resolve"]

MAX_FILES = 500
"""Files listed at most (the newest first)."""
MAX_BYTES = 5_000_000
"""Files larger than this are listed but not parsed."""
MAX_ROWS = 2_000
_SKIP_DIRS = {"mosquitto", "__pycache__", "checkpoints", "best"}


def _kind(path: Path) -> str | None:
    name = path.name
    if name == "pareto.json":
        return "pareto"
    if name.startswith("events.out.tfevents"):
        return "training"
    return {".csv": "table", ".json": "json", ".png": "image"}.get(path.suffix.lower())


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """The showable files under ``root`` (``path`` relative to it, ``kind``, ``bytes``,
    ``modified`` unix s), newest first; [] if ``root`` does not exist."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[dict[str, Any]] = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in relative.parts[:-1]) or not path.is_file():
            continue
        kind = _kind(path)
        if kind is None:
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        found.append(
            {
                "path": relative.as_posix(),
                "kind": kind,
                "bytes": stat.st_size,
                "modified": stat.st_mtime,
            }
        )
    found.sort(key=lambda entry: -float(entry["modified"]))
    return found[:MAX_FILES]


def resolve(root: str | Path, relative: str) -> Path:
    """``root / relative``, refusing (ValueError) a path that leaves ``root`` or is absolute."""
    base = Path(root).resolve()
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        raise ValueError(f"path {relative!r} must be a relative path inside the runs folder")
    target = (base / relative).resolve()
    if base != target and base not in target.parents:
        raise ValueError(f"path {relative!r} leaves the runs folder")
    return target


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _clean(value: Any) -> Any:
    """JSON-ready data: NaN and infinities (Python's json reads them) become None."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _finite(value)


def _pareto(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ValueError("no 'points' list (not a pareto.json written by scripts/optimize.py)")
    points = []
    for point in data["points"]:
        if not isinstance(point, dict) or not isinstance(point.get("F"), dict):
            raise ValueError("a point without its objectives 'F'")
        points.append(
            {
                "evaluation": point.get("evaluation"),
                "F": {k: _finite(v) for k, v in point["F"].items()},
                "x": point.get("x", {}),
                "kpis": point.get("kpis", {}),
            }
        )
    objectives = data.get("objectives") or (list(points[0]["F"]) if points else [])
    return {
        "objectives": objectives,
        "chosen": data.get("chosen"),
        "algorithm": data.get("algorithm"),
        "points": points,
    }


def _table(path: Path) -> dict[str, Any]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        rows = [row for _, row in zip(range(MAX_ROWS), reader, strict=False)]
    numeric = []
    for index, name in enumerate(header):
        try:
            [float(row[index]) for row in rows if index < len(row) and row[index] != ""]
        except ValueError:
            continue
        numeric.append(name)
    return {"header": header, "rows": rows, "numeric": numeric}


def _training(path: Path) -> dict[str, Any]:
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError as error:
        raise ValueError("reading TensorBoard files needs the tensorboard package") from error
    accumulator = EventAccumulator(str(path), size_guidance={"scalars": MAX_ROWS})
    accumulator.Reload()
    scalars = {
        tag: [[event.step, _finite(float(event.value))] for event in accumulator.Scalars(tag)]
        for tag in accumulator.Tags().get("scalars", [])
    }
    return {"scalars": scalars}


def load_run_file(root: str | Path, relative: str) -> dict[str, Any]:
    """One file for the browser: ``{"path", "kind", "data"}``, or ``kind = "error"`` with a
    ``message`` for a file that cannot be shown (module docstring). ValueError for a path
    outside ``root``."""
    path = resolve(root, relative)
    kind = _kind(path)
    result: dict[str, Any] = {"path": relative, "kind": kind}
    if kind is None:
        return {**result, "kind": "error", "message": f"{relative}: not a kind the console shows"}
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ValueError(f"{size} bytes, over the {MAX_BYTES} the console reads")
        if kind == "image":
            result["data"] = {"url": f"/api/runs/raw?path={relative}"}
        elif kind == "table":
            result["data"] = _table(path)
        elif kind == "training":
            result["data"] = _training(path)
        else:
            data = _clean(json.loads(path.read_text()))
            result["data"] = _pareto(data) if kind == "pareto" else data
    except (OSError, ValueError, UnicodeDecodeError, csv.Error) as error:
        return {**result, "kind": "error", "message": f"{relative}: cannot be shown ({error})"}
    return result
