"""Reading and validating recorded plant data (CSV or Parquet) into a
:class:`~envs.sync.recording.Recording`; the format is documented in :mod:`envs.sync.recording`.

:func:`load_recording` checks everything the format promises and raises
:class:`~envs.sync.recording.RecordingError` naming the file, the line (CSV) or row (Parquet),
the column and the fix; nothing partial is returned.
"""

from __future__ import annotations

import csv
import io
import math
import shlex
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from envs.machines import MachineState
from envs.sync.recording import (
    FORMAT,
    MEASURED_KINDS,
    METADATA_KEYS,
    SETPOINT_KINDS,
    VERSION,
    WEEK_S,
    Recording,
    RecordingError,
    check_suffix,
    pyarrow_modules,
    resolve_scenario,
)

__all__ = ["load_recording"]

Rows = Sequence[Sequence[float]] | np.ndarray
Where = Callable[[int], str]
"""How an error names data row ``index`` (from 0): ``line 7`` (CSV) or ``row 5`` (Parquet)."""


def load_recording(path: str | Path) -> Recording:
    """Read and fully validate a recording (``.csv`` or ``.parquet``; format in the module
    docstring). Raises :class:`RecordingError` naming the file, line/row, column and fix."""
    path = Path(path)
    suffix = check_suffix(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such file; give the path of a recorded .csv or .parquet")
    if suffix == ".csv":
        metadata, header, rows, where = _read_csv(path)
    else:
        metadata, header, rows, where = _read_parquet(path)
    return _build(path, metadata, header, rows, where)


def _read_csv(path: Path) -> tuple[dict[str, str], list[str], Rows, Where]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise RecordingError(f"{path}: not a UTF-8 text CSV file ({error})") from error
    if not text.strip():
        raise RecordingError(
            f"{path}: the file is empty; a recording starts with a line "
            f"'# {FORMAT} {VERSION} scenario=... seed=... start_s=... sample_interval_s=...'"
        )
    first, _, rest = text.partition("\n")
    metadata = _parse_metadata_line(path, first.rstrip("\r"))
    reader = csv.reader(io.StringIO(rest))
    header = next(reader, None)
    if not header or not any(cell.strip() for cell in header):
        raise RecordingError(
            f"{path}, line 2: no header line; line 2 names the columns (time_s, "
            "<machine>.<kind>, ...)"
        )
    header = [cell.strip() for cell in header]
    rows: list[tuple[int, list[float]]] = []
    for number, cells in enumerate(reader, start=3):
        if not cells:
            continue  # a blank line (e.g. at the end)
        if len(cells) != len(header):
            raise RecordingError(
                f"{path}, line {number}: {len(cells)} cells but the header has {len(header)} "
                "columns; every line needs one cell per column (empty for a lost sample)"
            )
        values: list[float] = []
        for column, cell in zip(header, cells, strict=True):
            cell = cell.strip()
            if not cell:
                values.append(math.nan)
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise RecordingError(
                    f"{path}, line {number}, column '{column}': {cell!r} is not a number; "
                    "write a decimal number, or leave the cell empty for a lost sample"
                ) from None
        rows.append((number, values))
    lines = {index: number for index, (number, _) in enumerate(rows)}
    data = [values for _, values in rows]
    return metadata, header, data, lambda index: f"line {lines[index]}"


def _parse_metadata_line(path: Path, line: str) -> dict[str, str]:
    example = (
        f"'# {FORMAT} {VERSION} scenario=automotive_components seed=0 start_s=21600.0 "
        "sample_interval_s=60.0'"
    )
    if not line.startswith("#"):
        raise RecordingError(
            f"{path}, line 1: the metadata line is missing; the first line must be {example}"
        )
    try:
        tokens = shlex.split(line[1:])
    except ValueError as error:
        raise RecordingError(
            f"{path}, line 1: garbled metadata line ({error}); write {example}"
        ) from None
    if not tokens or tokens[0] != FORMAT:
        raise RecordingError(
            f"{path}, line 1: not a {FORMAT} metadata line; the first line must be {example}"
        )
    if len(tokens) < 2 or "=" in tokens[1]:
        raise RecordingError(
            f"{path}, line 1: the format version is missing after '{FORMAT}'; write {example}"
        )
    metadata = {FORMAT: tokens[1]}
    for token in tokens[2:]:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise RecordingError(
                f"{path}, line 1: garbled metadata {token!r}; write key=value pairs as in {example}"
            )
        metadata[key] = value
    return metadata


def _read_parquet(path: Path) -> tuple[dict[str, str], list[str], Rows, Where]:
    pa, pq = pyarrow_modules()
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise RecordingError(
            f"{path}: not a readable Parquet file ({error}); write it with pyarrow or pandas "
            "(DataFrame.to_parquet), or use the CSV format"
        ) from error
    raw = table.schema.metadata or {}
    metadata = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace") for k, v in raw.items()}
    metadata = {k: v for k, v in metadata.items() if k != "pandas"}  # pandas' own block
    header = list(table.column_names)
    columns = []
    for name, column in zip(header, table.columns, strict=True):
        kind = column.type
        if not (
            pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)
        ):
            raise RecordingError(
                f"{path}, column '{name}': type {kind} is not numeric; store numbers (float, "
                "integer or boolean), with nulls or NaN for lost samples"
            )
        values = column.cast(pa.float64()).to_numpy(zero_copy_only=False)
        columns.append(np.asarray(values, dtype=float))
    rows: Rows = np.column_stack(columns) if columns and table.num_rows else []
    return metadata, header, rows, lambda index: f"row {index + 1}"


def _build(
    path: Path,
    metadata: dict[str, str],
    header: Sequence[str],
    rows: Rows,
    where: Where,
) -> Recording:
    version = metadata.get(FORMAT)
    if version is None:
        raise RecordingError(
            f"{path}: no '{FORMAT}' format version in the metadata; this is not a twinfactory "
            f"recording (write the file with save_recording, or add the metadata: "
            f"{FORMAT}={VERSION} and {', '.join(METADATA_KEYS)})"
        )
    if version != VERSION:
        raise RecordingError(
            f"{path}: unknown format version {version!r}; this twinfactory reads {VERSION}"
        )
    unknown = sorted(set(metadata) - {FORMAT, *METADATA_KEYS})
    if unknown:
        raise RecordingError(
            f"{path}: unknown metadata key(s) {', '.join(unknown)}; the keys are "
            f"{', '.join(METADATA_KEYS)}"
        )
    missing = [key for key in METADATA_KEYS if key not in metadata]
    if missing:
        raise RecordingError(
            f"{path}: metadata lacks {', '.join(missing)}; every recording states "
            f"{', '.join(METADATA_KEYS)}"
        )
    scenario, scenario_name = resolve_scenario(metadata["scenario"], path)
    try:
        seed = int(metadata["seed"])
        if seed < 0:
            raise ValueError
    except ValueError:
        raise RecordingError(
            f"{path}: metadata seed={metadata['seed']!r} must be an integer >= 0"
        ) from None
    start_s = _number(path, metadata, "start_s", "seconds into the week, 0 <= start_s < 604800")
    if not 0.0 <= start_s < WEEK_S:
        raise RecordingError(
            f"{path}: metadata start_s={start_s} is outside [0, {WEEK_S:.0f}) s; give the "
            "calendar time of time_s = 0 in seconds after Monday 00:00"
        )
    interval = _number(path, metadata, "sample_interval_s", f"a multiple of {scenario.tick_s} s")
    ticks = interval / scenario.tick_s
    if interval <= 0 or abs(ticks - round(ticks)) > 1e-9 * max(ticks, 1.0):
        raise RecordingError(
            f"{path}: metadata sample_interval_s={interval} must be a positive whole multiple "
            f"of the scenario's tick_s ({scenario.tick_s} s); resample the data"
        )

    names = scenario.machine_names
    positions: dict[str, int] = {}
    for index, column in enumerate(header):
        if column in positions:
            raise RecordingError(f"{path}: column '{column}' appears twice; keep one")
        positions[column] = index
    if "time_s" not in positions:
        raise RecordingError(
            f"{path}: no 'time_s' column; add the sample times in seconds since start_s"
        )
    vibrating = {m for m, equipment in scenario.machine_equipment.items() if equipment == "CncMill"}
    measured = []
    for column in header:
        if column == "time_s":
            continue
        machine, dot, kind = column.rpartition(".")
        if not dot or kind not in MEASURED_KINDS + SETPOINT_KINDS:
            raise RecordingError(
                f"{path}, column '{column}': not a known column; columns are time_s and "
                f"<machine>.<kind> with kind in {', '.join(MEASURED_KINDS + SETPOINT_KINDS)}"
            )
        if machine not in names:
            raise RecordingError(
                f"{path}, column '{column}': machine {machine!r} is not in the line of scenario "
                f"{scenario.name} ({', '.join(names)}); rename the column or choose the scenario"
            )
        if kind == "vibration" and machine not in vibrating:
            raise RecordingError(
                f"{path}, column '{column}': only CncMill machines measure vibration "
                f"({', '.join(sorted(vibrating)) or 'none in this line'}); drop the column"
            )
        if kind in MEASURED_KINDS:
            measured.append(column)
    missing = [f"{m}.{k}" for m in names for k in SETPOINT_KINDS if f"{m}.{k}" not in positions]
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        raise RecordingError(
            f"{path}: setpoint column(s) missing: {shown}; every machine needs speed_factor, "
            "maintenance (0/1) and standby (0/1) on every row"
        )
    if len(rows) == 0:
        raise RecordingError(f"{path}: no samples after the header; a recording needs data rows")

    data = np.asarray(rows, dtype=float)
    time = data[:, positions["time_s"]]
    bad = _first(~np.isfinite(time))
    if bad is not None:
        raise RecordingError(
            f"{path}, {where(bad)}, column 'time_s': missing or not finite; every row needs "
            "its sample time"
        )
    if abs(time[0] - interval) > 1e-6 * interval:
        raise RecordingError(
            f"{path}, {where(0)}, column 'time_s': the first sample is at {time[0]:g} s, "
            f"expected sample_interval_s = {interval:g} s (a sample ends its interval; time 0 "
            "is start_s); shift start_s and time_s by the difference"
        )
    steps = np.diff(time)
    bad = _first(steps <= 0)
    if bad is not None:
        raise RecordingError(
            f"{path}, {where(bad + 1)}, column 'time_s': {time[bad + 1]:g} does not increase "
            f"(previous row {time[bad]:g}); sort the rows by time and drop duplicates"
        )
    bad = _first(np.abs(steps - interval) > 1e-6 * interval)
    if bad is not None:
        raise RecordingError(
            f"{path}, {where(bad + 1)}, column 'time_s': step {steps[bad]:g} s from the "
            f"previous row, expected sample_interval_s = {interval:g} s; resample to a uniform "
            "grid (a lost sample is a row with empty signal cells)"
        )
    states = np.array([int(s) for s in MachineState], dtype=float)
    codes = ", ".join(f"{int(s)} {s.name}" for s in MachineState)
    for column in measured:
        values = data[:, positions[column]]
        bad = _first(np.isinf(values))
        if bad is not None:
            raise RecordingError(
                f"{path}, {where(bad)}, column '{column}': infinite value; write a finite number "
                "or leave the cell empty for a lost sample"
            )
        if column.endswith(".state"):
            bad = _first(~np.isin(values, states))
            if bad is not None:
                raise RecordingError(
                    f"{path}, {where(bad)}, column '{column}': {values[bad]} is not a "
                    f"MachineState code ({codes}); state cells cannot be empty (drop the column "
                    "if the state is not measured)"
                )
    speed_ranges = [station.speed_range for _, station in scenario.machines()]
    for machine, (low, high) in zip(names, speed_ranges, strict=True):
        for kind in SETPOINT_KINDS:
            column = f"{machine}.{kind}"
            values = data[:, positions[column]]
            bad = _first(~np.isfinite(values))
            if bad is not None:
                raise RecordingError(
                    f"{path}, {where(bad)}, column '{column}': setpoints cannot be empty or NaN; "
                    "give the value in force during the interval"
                )
            if kind == "speed_factor":
                bad = _first((values < low) | (values > high))
                if bad is not None:
                    raise RecordingError(
                        f"{path}, {where(bad)}, column '{column}': speed factor {values[bad]} is "
                        f"outside the machine's speed range [{low}, {high}] in {scenario.name}"
                    )
            else:
                bad = _first((values != 0.0) & (values != 1.0))
                if bad is not None:
                    raise RecordingError(
                        f"{path}, {where(bad)}, column '{column}': {values[bad]} is not 0 or 1"
                    )
    samples = []
    setpoints = []
    speed_columns = [positions[f"{m}.speed_factor"] for m in names]
    maintenance_columns = [positions[f"{m}.maintenance"] for m in names]
    standby_columns = [positions[f"{m}.standby"] for m in names]
    for row in data:
        sample = {"time_s": float(row[positions["time_s"]])}
        sample.update({column: float(row[positions[column]]) for column in measured})
        samples.append(sample)
        setpoints.append(
            (
                row[speed_columns].astype(float),
                row[maintenance_columns] == 1.0,
                row[standby_columns] == 1.0,
            )
        )
    return Recording(
        start_s=start_s,
        seed=seed,
        sample_interval_s=interval,
        samples=tuple(samples),
        setpoints=tuple(setpoints),
        scenario=scenario_name,
    )


def _first(mask: np.ndarray) -> int | None:
    """Index of the first True in ``mask``, or None."""
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _number(path: Path, metadata: dict[str, str], key: str, hint: str) -> float:
    try:
        value = float(metadata[key])
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise RecordingError(f"{path}: metadata {key}={metadata[key]!r} is not a number; {hint}")
    return value
