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
   plant's noise-free signals: NRMSE = RMSE over the horizon / the range of that signal kind over
   every machine in it;
3. for each drift event of the config, runs the plant with that event alone and tracks it with
   the twin calibrated on the window before it, once per decision interval, counting the
   intervals until the trust score falls below ½ and until Page-Hinkley flags the affected
   signal, and the false alarms before it.

``bar`` arguments are progress bars (anything with ``update(n)``, e.g. tqdm).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

KINDS = ("temperature", "wear")
"""Signal kinds the prediction errors are reported for."""


@dataclass(frozen=True)
class SyncBenchmark:
    """Settings of one benchmark run (the plant comes separately)."""

    window_h: float = 1.0
    """Hours of data to learn from."""
    horizon_h: float = 1.0
    """Hours predicted after the window."""
    sync: str = "kalman"
    """State synchroniser: ``kalman`` or ``nudging``."""
    beta: float = 0.8
    """Nudging gain."""
    ph_threshold: float = 0.2
    """Page-Hinkley threshold of the tracker."""
    twin_seed: int | None = None
    """Discrete-event seed the twin replays (None: the plant's)."""
    tracking: str = "events"
    """``events``: the tracked twin runs its own discrete events; ``states``: state replay."""


def record_plant(plant, hours: float, bar, twin_seed: int | None = None):
    """A recording of ``hours`` under nominal setpoints and the plant's noise-free signals at
    the same instants; the recording carries ``twin_seed`` as the discrete-event seed the twin
    replays (None: the plant's own)."""
    from envs.sync import record

    truths = []

    def collect() -> None:
        truths.extend(plant.true_samples)
        bar.update(1)

    recording = record(
        plant, round(hours * 3600.0 / plant.decision_interval_s), on_interval=collect
    )
    if twin_seed is not None:
        recording = dataclasses.replace(recording, seed=twin_seed)
    return recording, truths


def head(recording, samples: int):
    """The first ``samples`` samples of a recording (and their setpoints)."""
    return dataclasses.replace(
        recording, samples=recording.samples[:samples], setpoints=recording.setpoints[:samples]
    )


def make_synchroniser(config: SyncBenchmark, twin, kind: str):
    """``none`` (a scored, free-running twin), ``kalman`` or ``nudging`` (gain ``--beta``)."""
    from envs.sync import KalmanFilter, Nudger

    if kind == "kalman":
        return KalmanFilter(twin)
    return Nudger(twin, config.beta if kind == "nudging" else 0.0)


def predict(calibrator, recording, values, synchroniser_of, window: int):
    """Twin signals at every sample, synchronised on the first ``window`` samples and then
    free-running under the recorded setpoints; and, for the window, the one-sample-ahead
    predictions made before each correction."""
    from envs.plant import machine_signals

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


def hybrid(predictions, recording, window: int):
    """Replace the horizon of ``predictions`` by R = α·y + (1 − α)·S, per signal kind."""
    from envs.sync import HybridPredictor

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


def errors(predictions, truths, start: int) -> dict[str, dict[str, float]]:
    """Per signal kind: RMSE (signal unit), mean and worst NRMSE over machines, from ``start``."""
    result = {}
    for kind in KINDS:
        signals = [k for k in truths[0] if k.endswith(f".{kind}")]
        truth = np.array([[t[s] for s in signals] for t in truths[start:]])
        guess = np.array([[p[s] for s in signals] for p in predictions[start:]])
        span = float(truth.max() - truth.min())
        rmse = np.sqrt(np.mean((guess - truth) ** 2, axis=0))
        result[kind] = {
            "rmse": float(np.mean(rmse)),
            "nrmse_mean": float(np.mean(rmse) / span),
            "nrmse_worst": float(np.max(rmse) / span),
            "span": span,
        }
    return result


def track_drift(config: SyncBenchmark, calibrator, parameters_of, plant_config, event, bar):
    """Run the plant with only ``event``; track it with the twin calibrated on the window
    before it, once per decision interval. Returns the intervals to the first trust < ½ and
    to the first Page-Hinkley flag of an affected signal (1 = the interval the drift starts in),
    false alarms before the event, and the trust trace."""
    from envs.plant import Plant
    from envs.sync import StateReplay, TwinTracker

    hours = event.time_h + 1.0
    with Plant(dataclasses.replace(plant_config, drift=(event,))) as plant:
        recording, _ = record_plant(plant, hours, bar, config.twin_seed)
        window = round(config.window_h * 3600.0 / recording.sample_interval_s)
        values = parameters_of(recording, window)
        per = plant.samples_per_decision
    twin = calibrator.prepare(recording, values)
    replay = None
    if config.tracking == "states":  # cutting-power thresholds from the calibration window
        replay = StateReplay(twin, head(recording, window))
    tracker = TwinTracker(
        twin,
        synchroniser=make_synchroniser(config, twin, config.sync),
        ph_threshold=config.ph_threshold,
        replay=replay,
    )
    kind = "wear" if event.target == "wear_rate_factor" else "temperature"
    affected = [m.name for m in twin.machines if not event.machine or m.name == event.machine]
    trace, healthy, mismatches, trust_at, flag_at, false_alarms = [], [], [], None, None, 0
    first = None
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


def benchmark_seed(config: SyncBenchmark, plant_config, bar) -> dict:
    from envs.plant import Plant
    from envs.sync import Calibrator
    from envs.sync.calibration import default_fit_parameters, true_value

    quiet_config = dataclasses.replace(plant_config, drift=())
    window_h, horizon_h = config.window_h, config.horizon_h
    with Plant(quiet_config) as plant:
        scenario = plant.nominal_scenario
        parameters = default_fit_parameters(scenario)
        recording, truths = record_plant(plant, window_h + horizon_h, bar, config.twin_seed)
        names = {p.name for p in parameters}
        values = plant.fmu_values(names)  # no drift: the same at the start and the end
        state = {"start": values, "end": values}
        truth = {p.key: true_value(p, state, scenario)[0] for p in parameters}
    window = round(window_h * 3600.0 / recording.sample_interval_s)
    calibrator = Calibrator(scenario, parameters)
    by_states = Calibrator(scenario, parameters, replay="states")
    result = calibrator.fit(head(recording, window))
    states_result = by_states.fit(head(recording, window))
    bar.update(1)
    nominal, fitted = calibrator.nominal(recording), list(result.values.values())
    calibration = {
        key: {
            "fitted": value,
            "std_error": result.std_errors[key],
            "initial": result.initial[key],
            "true": truth[key],
            "error_pct": 100.0 * abs(value - truth[key]) / abs(truth[key]),
            "identified": result.std_errors[key] <= 0.1 * abs(value),
            "fitted_by_state_replay": states_result.values[key],
            "error_pct_state_replay": 100.0
            * abs(states_result.values[key] - truth[key])
            / abs(truth[key]),
        }
        for key, value in result.values.items()
    }
    runs, one_step = {}, {}
    for label, values, sync in (
        ("unsynchronised (nominal, free-running)", nominal, "none"),
        ("state sync only (nudging)", nominal, "nudging"),
        ("state sync only (kalman)", nominal, "kalman"),
        ("calibration only", fitted, "none"),
        (f"calibration + {config.sync}", fitted, config.sync),
    ):
        runs[label], steps = predict(
            calibrator,
            recording,
            values,
            lambda twin, s=sync: make_synchroniser(config, twin, s),
            window,
        )
        if values is nominal:
            one_step[sync] = errors(steps, truths[:window], window // 6)
    alphas = {}
    for label in ("nominal", "calibrated"):
        free = runs[
            "unsynchronised (nominal, free-running)" if label == "nominal" else "calibration only"
        ]
        runs[f"hybrid on the {label} twin"], alphas[label] = hybrid(free, recording, window)
    bar.update(1)
    prediction = {label: errors(p, truths, window) for label, p in runs.items()}

    def parameters_of(rec, samples):
        chosen = by_states if config.tracking == "states" else calibrator
        return list(chosen.fit(head(rec, samples)).values.values())

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
