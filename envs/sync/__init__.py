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
  score in [0, 1].
- :class:`PageHinkley` — drift detection on residual streams.
- :class:`Calibrator` — least-squares fit of hidden FMU parameters to a :class:`Recording`
  of plant data, by twin re-simulation (SciPy), with standard errors.
- :class:`TwinTracker` — the loop: advance the twin, score its prediction, detect, nudge.

The plant they synchronise to is :class:`envs.plant.Plant`; :mod:`envs.sync.benchmark` measures
how well all of it works (``scripts/sync_report.py``).
"""

from envs.sync.calibration import CalibrationResult, Calibrator, FitParameter, Recording, record
from envs.sync.discrete import DiscreteStateSync, StateCorrection
from envs.sync.drift import PageHinkley
from envs.sync.fidelity import FidelityMonitor, SignalFidelity
from envs.sync.hybrid import HybridPredictor
from envs.sync.kalman import KalmanFilter
from envs.sync.nudging import NUDGEABLE, Nudger
from envs.sync.replay import StateReplay
from envs.sync.state import StateEditor, StateLayoutError
from envs.sync.tracking import TrackStep, TwinTracker

__all__ = [
    "NUDGEABLE",
    "CalibrationResult",
    "Calibrator",
    "DiscreteStateSync",
    "FidelityMonitor",
    "FitParameter",
    "HybridPredictor",
    "KalmanFilter",
    "Nudger",
    "PageHinkley",
    "Recording",
    "SignalFidelity",
    "StateCorrection",
    "StateEditor",
    "StateLayoutError",
    "StateReplay",
    "TrackStep",
    "TwinTracker",
    "record",
]
