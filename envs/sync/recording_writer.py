"""Writing a :class:`~envs.sync.recording.Recording` as CSV or Parquet in the v1 format of
:mod:`envs.sync.recording`, atomically (:mod:`envs.atomic`); what
:func:`envs.sync.recording_reader.load_recording` reads back is equal, bit for bit (floats as
their shortest exact repr, NaN kept).
"""

from __future__ import annotations

import csv
import math
import shlex
from pathlib import Path

import numpy as np

from envs.atomic import atomic_path
from envs.sync.recording import (
    FORMAT,
    MEASURED_KINDS,
    SETPOINT_KINDS,
    VERSION,
    Recording,
    RecordingError,
    check_suffix,
    pyarrow_modules,
    resolve_scenario,
)

__all__ = ["save_recording"]


def save_recording(recording: Recording, path: str | Path) -> Path:
    """Write ``recording`` to ``path`` (``.csv`` or ``.parquet``), atomically; returns the path."""
    path = Path(path)
    suffix = check_suffix(path)
    scenario, _ = resolve_scenario(recording.scenario, path)
    names = scenario.machine_names
    if len(recording.samples) != len(recording.setpoints) or not recording.samples:
        raise RecordingError(
            f"cannot save to {path}: a Recording needs samples and one setpoint triple per sample"
        )
    for speed, maintenance, standby in recording.setpoints:
        if not len(speed) == len(maintenance) == len(standby) == len(names):
            raise RecordingError(
                f"cannot save to {path}: setpoints need one value per machine of "
                f"{scenario.name} ({len(names)})"
            )
    present = set().union(*(s.keys() for s in recording.samples)) - {"time_s"}
    measured = [f"{m}.{k}" for m in names for k in MEASURED_KINDS if f"{m}.{k}" in present]
    unknown = sorted(present - set(measured))
    if unknown:
        raise RecordingError(
            f"cannot save to {path}: samples hold signals that are not "
            f"'<machine>.<kind>' of {scenario.name}: {', '.join(unknown)}"
        )
    columns: dict[str, np.ndarray] = {
        "time_s": np.array([s["time_s"] for s in recording.samples], dtype=float)
    }
    for key in measured:
        columns[key] = np.array([s.get(key, math.nan) for s in recording.samples], dtype=float)
    for index, machine in enumerate(names):
        for position, kind in enumerate(SETPOINT_KINDS):
            values = [triple[position][index] for triple in recording.setpoints]
            dtype = float if kind == "speed_factor" else np.int8
            columns[f"{machine}.{kind}"] = np.array(values, dtype=float).astype(dtype)
    metadata = {
        "scenario": str(recording.scenario),
        "seed": str(int(recording.seed)),
        "start_s": repr(float(recording.start_s)),
        "sample_interval_s": repr(float(recording.sample_interval_s)),
    }
    with atomic_path(path) as temporary:
        if suffix == ".csv":
            _write_csv(temporary, columns, metadata)
        else:
            _write_parquet(temporary, columns, metadata)
    return path


def _cell(value: float, kind: str) -> str:
    if kind in ("maintenance", "standby", "state"):
        return str(int(value))
    return "" if math.isnan(value) else repr(float(value))


def _write_csv(path: Path, columns: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    pairs = " ".join(f"{key}={shlex.quote(value)}" for key, value in metadata.items())
    kinds = [name.rsplit(".", 1)[-1] for name in columns]
    with open(path, "w", newline="", encoding="utf-8") as stream:
        stream.write(f"# {FORMAT} {VERSION} {pairs}\n")
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(columns)
        for row in zip(*columns.values(), strict=True):
            writer.writerow(_cell(v, k) for v, k in zip(row, kinds, strict=True))


def _write_parquet(path: Path, columns: dict[str, np.ndarray], metadata: dict[str, str]) -> None:
    pa, pq = pyarrow_modules()
    arrays = []
    for name, values in columns.items():
        if name.endswith(".state"):
            values = values.astype(np.int8)
        arrays.append(pa.array(values, from_pandas=values.dtype.kind == "f"))  # NaN -> null
    table = pa.Table.from_arrays(arrays, names=list(columns))
    table = table.replace_schema_metadata({FORMAT: VERSION, **metadata})
    pq.write_table(table, path)
