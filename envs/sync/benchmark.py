"""The synchronisation benchmark behind ``scripts/sync_report.py``: how well a twin follows an
emulated plant.

For one plant config (:class:`envs.plant.PlantConfig`) :func:`benchmark_seed` records a window of
noisy data (``window_h``) and the hour(s) after it under nominal setpoints, then

1. calibrates the hidden parameters on the window twice — replaying the plant's event seed and by
   state replay (no seed) — and compares them with the plant's true values;
2. predicts the horizon (the plant's setpoints are known, its sensors are not) with twins that
   differ in what they learned from the window: nothing (the nominal twin, free-running), state
   synchronisation only (Kalman filter or nudging during the window), calibration only, both,
   and the hybrid R = α·y + (1 − α)·S on the nominal and on the calibrated twin (y fitted on the
   window's first two thirds, α per signal kind on its last third). Errors are against the
   plant's noise-free signals: per machine the one NRMSE of :mod:`envs.sync.metrics` (RMSE over
   the horizon / the kind's fixed span, :data:`envs.sync.metrics.SPANS`), mean and worst over
   the machines;
3. for each drift event of the config, runs the plant with that event alone and tracks it with
   the twin calibrated on the window before it, once per decision interval, counting the
   intervals until the trust score falls below ½ and until Page-Hinkley flags the affected
   signal, and the false alarms before it.

The settings are a :class:`SyncBenchmark` (validated by :func:`envs.config.from_mapping` /
:func:`envs.config.load_config`); :func:`benchmark_seeds` runs consecutive plant seeds and
:mod:`envs.sync.summary` averages them. ``bar`` arguments are progress bars (anything with
``update(n)``, e.g. tqdm).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from envs.config import setting
from envs.line import ProductionLine
from envs.plant import DriftEvent, Plant, PlantConfig
from envs.plant_signals import machine_signals
from envs.sync.calibration import Calibrator, default_fit_parameters
from envs.sync.calibration_report import true_value
from envs.sync.hybrid import HybridPredictor
from envs.sync.kalman import KalmanFilter
from envs.sync.metrics import SPANS, nrmse, rmse
from envs.sync.nudging import Nudger
from envs.sync.recorder import WindowTruth, record_with_signals
from envs.sync.recording import Recording
from envs.sync.replay import StateReplay
from envs.sync.state import SYNCED_KINDS
from envs.sync.tracking import TwinTracker

__all__ = [
    "KINDS",
    "SYNCHRONISERS",
    "TRACKINGS",
    "ProgressBar",
    "SyncBenchmark",
    "benchmark_seed",
    "benchmark_seeds",
    "errors",
    "hybrid",
    "make_synchroniser",
    "predict",
    "progress_steps",
    "track_drift",
]

KINDS = SYNCED_KINDS
"""Signal kinds the prediction errors are reported for."""
SYNCHRONISERS = ("kalman", "nudging")
TRACKINGS = ("events", "states")

Signals = dict[str, float]
Synchroniser = Nudger | KalmanFilter


class ProgressBar(Protocol):
    """Anything with ``update(n)`` (tqdm)."""

    def update(self, n: float = 1) -> object: ...


@dataclass(frozen=True, kw_only=True)
class SyncBenchmark:
    """Settings of one benchmark run (the plant comes separately)."""

    window_h: float = setting(1.0, low=0.25, high=8.0, doc="hours of data to learn from")
    horizon_h: float = setting(1.0, low=0.25, high=8.0, doc="hours predicted after the window")
    sync: str = setting("kalman", choices=SYNCHRONISERS, doc="state synchroniser")
    beta: float = setting(0.8, low=0.0, high=1.0, doc="nudging gain (sync = nudging)")
    ph_threshold: float = setting(
        0.2, low=1e-6, high=100.0, doc="Page-Hinkley threshold of the tracker, residual / span"
    )
    twin_seed: int | None = setting(
        None, low=0, high=2**63 - 1, doc="discrete-event seed the twin replays; None: the plant's"
    )
    tracking: str = setting(
        "events",
        choices=TRACKINGS,
        doc="events: the tracked twin runs its own discrete events; states: state replay",
    )


def progress_steps(
    config: SyncBenchmark, plant_config: PlantConfig, decision_interval_s: float
) -> int:
    """How many ``bar.update(1)`` one :func:`benchmark_seed` makes: one per recorded decision
    interval (``decision_interval_s``, the scenario's), and two for the fits."""
    drift_hours = sum(e.time_h + 1.0 for e in plant_config.drift if e.time_h >= config.window_h)
    hours = config.window_h + config.horizon_h + drift_hours
    return round(hours * 3600.0 / decision_interval_s) + 2


def make_synchroniser(config: SyncBenchmark, twin: ProductionLine, kind: str) -> Synchroniser:
    """``none`` (a scored, free-running twin), ``kalman`` or ``nudging`` (gain ``beta``)."""
    if kind == "kalman":
        return KalmanFilter(twin)
    return Nudger(twin, config.beta if kind == "nudging" else 0.0)


def predict(
    calibrator: Calibrator,
    recording: Recording,
    values: ArrayLike,
    synchroniser_of: Callable[[ProductionLine], Synchroniser],
    window: int,
) -> tuple[list[Signals], list[Signals]]:
    """Twin signals at every sample, synchronised on the first ``window`` samples and then
    free-running under the recorded setpoints; and, for the window, the one-sample-ahead
    predictions made before each correction."""
    twin = calibrator.prepare(recording, values)
    synchroniser = synchroniser_of(twin)
    out, one_step = [], []
    for index, setpoint in enumerate(recording.setpoints):
        if index < window:
            synchroniser.begin()
        twin.advance(*setpoint)
        if index < window:
            one_step.append(synchroniser.predict())
            synchroniser.correct(recording.samples[index])
        out.append({k: v for m in twin.machines for k, v in machine_signals(m).items()})
    return out, one_step


def hybrid(
    predictions: Sequence[Signals], recording: Recording, window: int
) -> tuple[list[Signals], dict[str, float]]:
    """Replace the horizon of ``predictions`` by R = α·y + (1 − α)·S, per signal kind."""
    train, validate = int(window * 2 / 3), window
    blended = [dict(p) for p in predictions]
    alphas = {}
    for kind in KINDS:
        signals = [k for k in predictions[0] if k.endswith(f".{kind}")]
        model = HybridPredictor(signals, ridge=1.0)
        model.fit(predictions[:train], recording.samples[:train])
        alphas[kind] = model.choose_alpha(
            predictions[train:validate], recording.samples[train:validate]
        )
        result = model.predict(predictions[validate:])
        for offset, sample in enumerate(blended[validate:]):
            for signal in signals:
                sample[signal] = float(result[signal][offset])
    return blended, alphas


def errors(
    predictions: Sequence[Signals], truths: Sequence[Signals], start: int
) -> dict[str, dict[str, float]]:
    """Per signal kind, from sample ``start`` on: RMSE (signal unit, mean over machines) and
    the mean and worst NRMSE over machines (:func:`envs.sync.metrics.nrmse`, the kind's span
    ``scale``)."""
    result = {}
    for kind in KINDS:
        signals = [k for k in truths[0] if k.endswith(f".{kind}")]
        span = SPANS[kind]
        truth = [[t[s] for t in truths[start:]] for s in signals]
        guess = [[p[s] for p in predictions[start:]] for s in signals]
        per_signal = [rmse(g, t) for g, t in zip(guess, truth, strict=True)]
        fits = [nrmse(g, t, span) for g, t in zip(guess, truth, strict=True)]
        result[kind] = {
            "rmse": float(np.mean(per_signal)),
            "nrmse_mean": float(np.mean(fits)),
            "nrmse_worst": float(np.max(fits)),
            "scale": span,
        }
    return result


def track_drift(
    config: SyncBenchmark,
    calibrator: Calibrator,
    parameters_of: Callable[[Recording, int], list[float]],
    plant_config: PlantConfig,
    event: DriftEvent,
    bar: ProgressBar,
) -> dict[str, Any]:
    """Run the plant with only ``event``; track it with the twin calibrated on the window
    before it, once per decision interval. Returns the intervals to the first trust < ½ and
    to the first Page-Hinkley flag of an affected signal (1 = the interval the drift starts in),
    false alarms before the event, and the trust trace."""
    hours = event.time_h + 1.0
    with Plant(dataclasses.replace(plant_config, drift=(event,))) as plant:
        recording, _ = record_with_signals(plant, hours, lambda: bar.update(1), config.twin_seed)
        window = round(config.window_h * 3600.0 / recording.sample_interval_s)
        values = parameters_of(recording, window)
        per = plant.samples_per_decision
    twin = calibrator.prepare(recording, values)
    replay = None
    if config.tracking == "states":  # cutting-power thresholds from the calibration window
        replay = StateReplay(twin, recording.head(window))
    tracker = TwinTracker(
        twin,
        synchroniser=make_synchroniser(config, twin, config.sync),
        ph_threshold=config.ph_threshold,
        replay=replay,
    )
    kind = "wear" if event.target == "wear_rate_factor" else "temperature"
    affected = [m.name for m in twin.machines if not event.machine or m.name == event.machine]
    trace: list[dict[str, Any]] = []
    healthy: list[float] = []
    mismatches: list[int] = []
    trust_at: int | None = None
    flag_at: int | None = None
    false_alarms = 0
    first: int | None = None
    for j in range(len(recording.samples) // per):
        end = (j + 1) * per - 1
        if replay is not None:
            interval = recording.samples[j * per : end + 1]
            step = tracker.step(recording.samples[end], *recording.setpoints[end], samples=interval)
        else:
            step = tracker.step(recording.samples[end], *recording.setpoints[end], substeps=per)
        time_h = recording.samples[end]["time_s"] / 3600.0
        trace.append({"time_h": time_h, "trust": step.trust, "flags": list(step.drifted)})
        if time_h < event.time_h:
            false_alarms += bool(step.drifted) or (j >= 3 and step.trust < 0.5)
            if j >= 3:
                healthy.append(step.trust)
            mismatches.append(len(step.state_mismatch))
            continue
        first = j if first is None else first
        hit = any(f"{name}.{kind}" in step.drifted for name in affected)
        if flag_at is None and hit:
            flag_at = j - first + 1
        if trust_at is None and step.trust < 0.5:
            trust_at = j - first + 1
    return {
        "event": dataclasses.asdict(event),
        "intervals_to_trust_below_half": trust_at,
        "intervals_to_drift_flag": flag_at,
        "false_alarms_before": int(false_alarms),
        "min_trust_before": min(healthy) if healthy else math.nan,
        "state_mismatches_per_interval_before": float(np.mean(mismatches)) if mismatches else 0.0,
        "trace": trace,
    }


def _error_pct(value: float, true: float | None) -> float:
    return math.nan if true is None else 100.0 * abs(value - true) / abs(true)


def benchmark_seed(
    config: SyncBenchmark, plant_config: PlantConfig, bar: ProgressBar
) -> dict[str, Any]:
    """The benchmark (module docstring) on one plant config; the result's ``_traces`` hold the
    signals behind the figures (:func:`envs.sync.plots.plot_next_hour`)."""
    quiet_config = dataclasses.replace(plant_config, drift=())
    window_h, horizon_h = config.window_h, config.horizon_h
    with Plant(quiet_config) as plant:
        scenario = plant.nominal_scenario
        parameters = default_fit_parameters(scenario)
        recording, truths = record_with_signals(
            plant, window_h + horizon_h, lambda: bar.update(1), config.twin_seed
        )
        values = plant.fmu_values({p.name for p in parameters})
        state = WindowTruth(start=values, end=values)  # no drift: the same at start and end
        truth = {p.key: true_value(p, state, scenario)[0] for p in parameters}
    window = round(window_h * 3600.0 / recording.sample_interval_s)
    calibrator = Calibrator(scenario, parameters)
    by_states = Calibrator(scenario, parameters, replay="states")
    result = calibrator.fit(recording.head(window))
    states_result = by_states.fit(recording.head(window))
    bar.update(1)
    nominal, fitted = calibrator.nominal(recording), list(result.values.values())
    calibration = {
        key: {
            "fitted": value,
            "std_error": result.std_errors[key],
            "initial": result.initial[key],
            "true": truth[key],
            "error_pct": _error_pct(value, truth[key]),
            "identified": result.std_errors[key] <= 0.1 * abs(value),
            "fitted_by_state_replay": states_result.values[key],
            "error_pct_state_replay": _error_pct(states_result.values[key], truth[key]),
        }
        for key, value in result.values.items()
    }
    runs: dict[str, list[Signals]] = {}
    one_step: dict[str, dict[str, dict[str, float]]] = {}

    def synchroniser(kind: str) -> Callable[[ProductionLine], Synchroniser]:
        return lambda twin: make_synchroniser(config, twin, kind)

    for label, start, sync in (
        ("unsynchronised (nominal, free-running)", nominal, "none"),
        ("state sync only (nudging)", nominal, "nudging"),
        ("state sync only (kalman)", nominal, "kalman"),
        ("calibration only", fitted, "none"),
        (f"calibration + {config.sync}", fitted, config.sync),
    ):
        runs[label], steps = predict(calibrator, recording, start, synchroniser(sync), window)
        if start is nominal:
            one_step[sync] = errors(steps, truths[:window], window // 6)
    alphas = {}
    for label in ("nominal", "calibrated"):
        free = runs[
            "unsynchronised (nominal, free-running)" if label == "nominal" else "calibration only"
        ]
        runs[f"hybrid on the {label} twin"], alphas[label] = hybrid(free, recording, window)
    bar.update(1)
    prediction = {label: errors(p, truths, window) for label, p in runs.items()}

    def parameters_of(rec: Recording, samples: int) -> list[float]:
        chosen = by_states if config.tracking == "states" else calibrator
        return list(chosen.fit(rec.head(samples)).values.values())

    drift = [
        track_drift(config, calibrator, parameters_of, plant_config, event, bar)
        for event in plant_config.drift
        if event.time_h >= window_h
    ]
    calibrator.close()
    by_states.close()
    return {
        "seed": plant_config.seed,
        "calibration": calibration,
        "calibration_rmse": result.rmse,
        "calibration_evaluations": result.evaluations,
        "next_hour": prediction,
        "one_sample_ahead": one_step,
        "hybrid_alpha": alphas,
        "drift": drift,
        "_traces": {
            "runs": runs,
            "truths": truths,
            "samples": recording.samples,
            "window": window,
            "interval_s": recording.sample_interval_s,
        },
    }


def benchmark_seeds(
    config: SyncBenchmark, plant_config: PlantConfig, seeds: int, bar: ProgressBar
) -> list[dict[str, Any]]:
    """:func:`benchmark_seed` for ``seeds`` consecutive plant seeds from the config's."""
    return [
        benchmark_seed(config, dataclasses.replace(plant_config, seed=plant_config.seed + k), bar)
        for k in range(seeds)
    ]
