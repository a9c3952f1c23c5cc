"""Recorded plant data: the :class:`Recording` type and its file format (v1), CSV or Parquet.

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

Columns (any order; machine names are the scenario's :attr:`~envs.scenario.Scenario.machine_names`,
``<station>-<k>``, e.g. ``machining-1`` .. ``machining-4``, ``welding-1``, ``welding-2``,
``inspection-1``)
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

:func:`envs.sync.recording_reader.load_recording` validates all of this and raises
:class:`RecordingError` naming the file, the line or row, the column and the fix; nothing partial
is returned. :func:`envs.sync.recording_writer.save_recording` writes atomically and round-trips
exactly (floats as their shortest exact repr, NaN kept). Both are exported by :mod:`envs.sync`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from envs.config import ConfigError
from envs.scenario import Scenario, load_scenario

__all__ = [
    "FORMAT",
    "MEASURED_KINDS",
    "METADATA_KEYS",
    "SETPOINT_KINDS",
    "SUFFIXES",
    "VERSION",
    "Recording",
    "RecordingError",
    "Setpoints",
    "check_suffix",
    "pyarrow_modules",
    "resolve_scenario",
]

FORMAT = "twinfactory-recording"
VERSION = "v1"
METADATA_KEYS = ("scenario", "seed", "start_s", "sample_interval_s")
MEASURED_KINDS = ("temperature", "wear", "power", "vibration", "state")
SETPOINT_KINDS = ("speed_factor", "maintenance", "standby")
SUFFIXES = (".csv", ".parquet")
WEEK_S = 7 * 24 * 3600.0

Setpoints = tuple[np.ndarray, np.ndarray, np.ndarray]
"""(speed factors, maintenance requests, standby permissions), one value per machine."""


@dataclass(frozen=True)
class Recording:
    """A window of plant data: one measurement per sample interval and the setpoints in force
    during that interval (maintenance requests only where one started)."""

    start_s: float
    """Calendar time of ``time_s = 0``, s into the week: the start of the first sample
    interval (the first sample is taken at ``time_s = sample_interval_s``)."""
    seed: int
    """The plant line's discrete-event seed (see :mod:`envs.plant`)."""
    sample_interval_s: float
    samples: tuple[dict[str, float], ...]
    """Measurements at the end of each sample interval (``time_s`` and signals; NaN = lost)."""
    setpoints: tuple[Setpoints, ...]
    """(speed factors, maintenance, standby) per sample interval."""
    scenario: str = "automotive_components"
    """The twin's scenario: a shipped scenario name or the path of a scenario TOML."""

    def head(self, samples: int) -> Recording:
        """The first ``samples`` samples of this recording (and their setpoints)."""
        return Recording(
            start_s=self.start_s,
            seed=self.seed,
            sample_interval_s=self.sample_interval_s,
            samples=self.samples[:samples],
            setpoints=self.setpoints[:samples],
            scenario=self.scenario,
        )


class RecordingError(ValueError):
    """A recording file is not valid; the message names the file, where and how to fix it."""


def check_suffix(path: Path) -> str:
    """The lower-case suffix of a recording path; :class:`RecordingError` if unsupported."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise RecordingError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; recordings are "
            "'.csv' or '.parquet' files"
        )
    return suffix


def resolve_scenario(
    name: str, path: Path, error: Callable[[str], Exception] = RecordingError
) -> tuple[Scenario, str]:
    """The scenario named in the recording at ``path`` and the name to keep (a .toml path found
    next to the recording becomes that path)."""
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


def pyarrow_modules() -> tuple[ModuleType, ModuleType]:
    """``pyarrow`` and ``pyarrow.parquet``, or an ImportError naming the install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:  # a core dependency; only a broken install lacks it
        raise ImportError(
            "Parquet recordings need pyarrow: pip install 'pyarrow>=15,<27' "
            "(or save the recording as .csv)"
        ) from error
    return pa, pq
