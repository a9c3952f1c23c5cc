"""Recorded plant data on disk: a :class:`~envs.sync.calibration.Recording` as CSV or Parquet.

This is the format in which plant data must be given to the calibration
(``scripts/calibrate.py --data``). One row per sample; a sample is taken at the end of each
sample interval, and the setpoints on its row are the ones in force during that interval.

Metadata (every key required)
    ================== ==========================================================================
    format version     ``v1``
    ``scenario``       the twin's scenario: a shipped name (``automotive_components``) or the
                       path of a scenario TOML (a relative path is looked up next to the file
                       first, then in the working directory)
    ``seed``           the plant line's discrete-event seed, an integer >= 0; the twin replays
                       it (see :mod:`envs.plant`); for a real plant, any fixed seed
    ``start_s``        calendar time of ``time_s = 0``, s into the week (Monday 00:00 = 0,
                       0 <= start_s < 604800): the instant the first sample interval begins
    ``sample_interval_s`` seconds between samples, > 0, a whole multiple of the scenario's
                       ``tick_s``
    ================== ==========================================================================

    CSV: the first line is ``# twinfactory-recording v1 key=value key=value ...`` (values with
    spaces in shell quotes), e.g.
    ``# twinfactory-recording v1 scenario=automotive_components seed=11 start_s=21600.0
    sample_interval_s=60.0``; the second line is the header, then one line per sample, comma
    separated. Parquet: the same keys in the Arrow schema metadata, the version under the key
    ``twinfactory-recording``.

Columns (any order; machine names ``<station>-<k>`` of the scenario's line, e.g.
``machining-1`` .. ``machining-4``, ``welding-1``, ``welding-2``, ``inspection-1``)
    ============================ ====== ======================================================
    ``time_s``                   s      since ``start_s``; row ``k`` (from 0) at
                                        ``(k + 1) * sample_interval_s`` (1e-6 relative)
    ``<machine>.temperature``    degC   spindle (CncMill) / joint (RobotCell) temperature
    ``<machine>.wear``           1      tool / gripper wear as a fraction of its limit
    ``<machine>.power``          kW     electrical power at the sample instant
    ``<machine>.vibration``      mm/s   RMS housing vibration (CncMill machines only)
    ``<machine>.state``          1      :class:`envs.machines.MachineState` integer code
    ``<machine>.speed_factor``   1      speed factor on the station's nominal speed, in its
                                        ``speed_range``
    ``<machine>.maintenance``    0/1    1: preventive maintenance requested at the start of
                                        this interval
    ``<machine>.standby``        0/1    1: standby allowed during this interval
    ============================ ====== ======================================================

    Measured signals (temperature, wear, power, vibration, state) are optional per machine
    (a missing column = not measured); an empty cell or NaN is a lost sample, except in
    ``state``. The three setpoint columns are required for every machine of the line, with no
    empty cells. Parquet columns are numeric (float, integer or boolean); nulls count as NaN.

:func:`load_recording` validates all of this and raises :class:`RecordingError` naming the file,
the line or row, the column and the fix; nothing partial is returned. :func:`save_recording`
writes atomically and round-trips exactly (floats as their shortest exact repr, NaN kept).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shlex
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from envs.config import ConfigError
from envs.machines import MachineState
from envs.scenario import Scenario, load_scenario
from envs.sync.calibration import Recording

FORMAT = "twinfactory-recording"
VERSION = "v1"
METADATA_KEYS = ("scenario", "seed", "start_s", "sample_interval_s")
MEASURED_KINDS = ("temperature", "wear", "power", "vibration", "state")
SETPOINT_KINDS = ("speed_factor", "maintenance", "standby")
SUFFIXES = (".csv", ".parquet")
WEEK_S = 7 * 24 * 3600.0


class RecordingError(ValueError):
    """A recording file is not valid; the message names the file, where and how to fix it."""


def machine_names(scenario: Scenario) -> list[str]:
    """The line's machine names in line order, ``<station>-<k>`` (k from 1)."""
    return [f"{s.name}-{k + 1}" for s in scenario.stations for k in range(s.machines)]


# -- saving ---------------------------------------------------------------------------------


def save_recording(recording: Recording, path: str | Path) -> Path:
    """Write ``recording`` to ``path`` (``.csv`` or ``.parquet``), atomically; returns the path."""
    path = Path(path)
    suffix = _suffix(path)
    scenario, _ = _scenario(recording.scenario, path, RecordingError)
    names = machine_names(scenario)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(handle)
    try:
        if suffix == ".csv":
            _write_csv(Path(temporary), columns, metadata)
        else:
            _write_parquet(Path(temporary), columns, metadata)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
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
    pa, pq = _pyarrow()
    arrays = []
    for name, values in columns.items():
        if name.endswith(".state"):
            values = values.astype(np.int8)
        arrays.append(pa.array(values, from_pandas=values.dtype.kind == "f"))  # NaN -> null
    table = pa.Table.from_arrays(arrays, names=list(columns))
    table = table.replace_schema_metadata({FORMAT: VERSION, **metadata})
    pq.write_table(table, path)


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # a core dependency; only a broken install lacks it
        raise ImportError(
            "Parquet recordings need pyarrow: pip install 'pyarrow>=15,<27' "
            "(or save the recording as .csv)"
        ) from error
    return pa, pq


# -- loading --------------------------------------------------------------------------------


def load_recording(path: str | Path) -> Recording:
    """Read and fully validate a recording (``.csv`` or ``.parquet``; format in the module
    docstring). Raises :class:`RecordingError` naming the file, line/row, column and fix."""
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise RecordingError(f"{path}: no such file; give the path of a recorded .csv or .parquet")
    if suffix == ".csv":
        metadata, header, rows, where = _read_csv(path)
    else:
        metadata, header, rows, where = _read_parquet(path)
    return _build(path, metadata, header, rows, where)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RecordingError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; recordings are "
            "'.csv' or '.parquet' files"
        )
    return suffix


def _read_csv(path: Path):
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
    rows: list[list[float]] = []
    for number, cells in enumerate(reader, start=3):
        if not cells:
            continue  # a blank line (e.g. at the end)
        if len(cells) != len(header):
            raise RecordingError(
                f"{path}, line {number}: {len(cells)} cells but the header has {len(header)} "
                "columns; every line needs one cell per column (empty for a lost sample)"
            )
        values = []
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


def _read_parquet(path: Path):
    pa, pq = _pyarrow()
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
    rows = np.column_stack(columns) if columns and table.num_rows else []
    return metadata, header, rows, lambda index: f"row {index + 1}"


def _scenario(name: str, path: Path, error: Callable[[str], Exception]) -> tuple[Scenario, str]:
    """The scenario named in a recording and the name to keep (a .toml path found next to the
    recording becomes that path)."""
    candidates = [name]
    if name.endswith(".toml") and not Path(name).is_absolute():
        candidates.insert(0, str(path.parent / name))
    for candidate in candidates:
        if candidate.endswith(".toml") and not Path(candidate).is_file():
            continue
        try:
            return load_scenario(candidate), candidate
        except ConfigError as problem:
            raise error(f"{path}: metadata scenario={name!r}: {problem}") from problem
    raise error(
        f"{path}: metadata scenario={name!r}: no such scenario file (looked next to the "
        "recording and in the working directory); give a shipped scenario name or a valid path"
    )


def _build(
    path: Path,
    metadata: dict[str, str],
    header: Sequence[str],
    rows: Sequence[Sequence[float]],
    where: Callable[[int], str],
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
    scenario, scenario_name = _scenario(metadata["scenario"], path, RecordingError)
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

    names = machine_names(scenario)
    positions: dict[str, int] = {}
    for index, column in enumerate(header):
        if column in positions:
            raise RecordingError(f"{path}: column '{column}' appears twice; keep one")
        positions[column] = index
    if "time_s" not in positions:
        raise RecordingError(
            f"{path}: no 'time_s' column; add the sample times in seconds since start_s"
        )
    vibrating = {
        f"{s.name}-{k + 1}"
        for s in scenario.stations
        if s.equipment == "CncMill"
        for k in range(s.machines)
    }
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
    speed_ranges = [s.speed_range for s in scenario.stations for _ in range(s.machines)]
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
