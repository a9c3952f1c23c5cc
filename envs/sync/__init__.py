"""Twin synchronisation from plant data.

- :class:`Nudger` — the FECO nudging rule S ← S + β·(measured − S) on the twin's FMU states,
  written through FMI state serialisation (:class:`StateEditor`; see :mod:`envs.sync.state`
  for why outputs cannot simply be set).
- :class:`KalmanFilter` — an extended Kalman filter on the same states, its Jacobian from FMU
  snapshot replays; interchangeable with :class:`Nudger` (``begin``/``predict``/``correct``).
- :class:`StateReplay` — machines follow a recording's reported states (calibrating data whose
  discrete events no seed reproduces).
- :class:`HybridPredictor` — the FECO hybrid R = α·y + (1 − α)·S with a learned y and α chosen
  on validation data.
- :class:`DiscreteStateSync` — the twin adopts the plant's reported machine failures and repairs.
- :class:`FidelityMonitor` — NRMSE and bias per signal over a rolling window and a trust
  score in [0, 1]; :func:`nrmse` and :data:`SPANS` (:mod:`envs.sync.metrics`) are the one
  NRMSE every figure uses.
- :class:`PageHinkley` — drift detection on residual streams.
- :class:`Recording` — a window of plant data (:mod:`envs.sync.recording`: the v1 CSV/Parquet
  format), read by :func:`load_recording`, written by :func:`save_recording`, taken from the
  emulator by :func:`record`.
- :class:`Calibrator` — least-squares fit of hidden FMU parameters to a :class:`Recording`
  by twin re-simulation (SciPy), with standard errors; :func:`calibrate_recording` runs it end
  to end with the report (:mod:`envs.sync.calibration_report`).
- :class:`TwinTracker` — the loop: advance the twin, score its prediction, detect, nudge.
- :class:`SyncBenchmark` — how well all of it works on the emulated plant
  (:mod:`envs.sync.benchmark`, :mod:`envs.sync.summary`; ``scripts/sync_report.py``).

The plant they synchronise to is :class:`envs.plant.Plant`.
"""

from envs.sync.benchmark import SyncBenchmark, benchmark_seed, benchmark_seeds
from envs.sync.calibration import (
    CalibrationResult,
    Calibrator,
    FitParameter,
    default_fit_parameters,
)
from envs.sync.calibration_report import CalibrationRun, calibrate_recording, parse_fit
from envs.sync.discrete import DiscreteStateSync, StateCorrection
from envs.sync.drift import PageHinkley
from envs.sync.fidelity import FidelityMonitor, SignalFidelity
from envs.sync.hybrid import HybridPredictor
from envs.sync.kalman import KalmanFilter
from envs.sync.metrics import FIT_SCALES, SPANS, nrmse
from envs.sync.nudging import NUDGEABLE, Nudger
from envs.sync.recorder import WindowTruth, excitation, record, record_with_truth
from envs.sync.recording import Recording, RecordingError
from envs.sync.recording_reader import load_recording
from envs.sync.recording_writer import save_recording
from envs.sync.replay import StateReplay
from envs.sync.state import SYNCED_KINDS, StateEditor, StateLayoutError
from envs.sync.summary import format_summary, summarise
from envs.sync.tracking import TrackStep, TwinTracker

__all__ = [
    "FIT_SCALES",
    "NUDGEABLE",
    "SPANS",
    "SYNCED_KINDS",
    "CalibrationResult",
    "CalibrationRun",
    "Calibrator",
    "DiscreteStateSync",
    "FidelityMonitor",
    "FitParameter",
    "HybridPredictor",
    "KalmanFilter",
    "Nudger",
    "PageHinkley",
    "Recording",
    "RecordingError",
    "SignalFidelity",
    "StateCorrection",
    "StateEditor",
    "StateLayoutError",
    "StateReplay",
    "SyncBenchmark",
    "TrackStep",
    "TwinTracker",
    "WindowTruth",
    "benchmark_seed",
    "benchmark_seeds",
    "calibrate_recording",
    "default_fit_parameters",
    "excitation",
    "format_summary",
    "load_recording",
    "nrmse",
    "parse_fit",
    "record",
    "record_with_truth",
    "save_recording",
    "summarise",
]
