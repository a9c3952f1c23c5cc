"""Calibrating a recorded window end to end, and reporting it: what ``scripts/calibrate.py``
runs, as a library.

- :func:`parse_fit` / :func:`fit_parameters`: ``TARGET:NAME[=LOW..HIGH]`` specs into
  :class:`~envs.sync.calibration.FitParameter` values, checked against the scenario's
  equipment (:mod:`envs.equipment`);
- :func:`warm_start`: start values from a previous ``calibration.json``;
- :func:`calibrate_recording`: the twin at nominal values, the fit, the twin at the fitted
  values (:class:`CalibrationRun`);
- :func:`true_value`, :func:`parameter_rows`, :func:`format_table`, :func:`summary_lines`,
  :func:`calibration_payload`: each fitted value against its bounds, its standard error and,
  for emulator data, the plant's true value; the printed table and ``calibration.json``.

Fidelity figures are the one NRMSE of :mod:`envs.sync.metrics` (RMSE / the kind's span), the
fit's own objective the RMS of its weighted residuals (:func:`envs.sync.metrics.residual_rms`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from envs.equipment import equipment_variables
from envs.scenario import Scenario
from envs.sync.calibration import (
    WEAR_BOUNDS,
    CalibrationResult,
    Calibrator,
    FitParameter,
    default_fit_parameters,
)
from envs.sync.metrics import SPANS, nrmse, rmse
from envs.sync.recorder import WindowTruth
from envs.sync.recording import Recording

__all__ = [
    "PLOTTED",
    "POOR",
    "CalibrationRun",
    "calibrate_recording",
    "calibration_payload",
    "fit_parameters",
    "format_table",
    "kind_nrmse",
    "parameter_rows",
    "parse_fit",
    "signal_rmse",
    "summary_lines",
    "true_value",
    "warm_start",
]

PLOTTED = ("temperature", "wear")
"""Signal kinds the report's RMSE and NRMSE figures (and the plots) cover."""
POOR = 0.1
"""A standard error above this fraction of the value marks a poorly identified parameter."""


# -- parameters -----------------------------------------------------------------------------


def parse_fit(spec: str, scenario: Scenario) -> FitParameter:
    """One ``--fit`` spec against the scenario: ``TARGET:NAME`` or ``TARGET:NAME=LOW..HIGH``;
    TARGET a station, a machine, or ``*`` for every machine; NAME a settable FMU variable (a
    parameter or an input of every covered station's equipment). ``ValueError`` otherwise."""
    target, colon, rest = spec.partition(":")
    name, equals, bounds_text = rest.partition("=")
    target, name = target.strip(), name.strip()
    if not colon or not name:
        raise ValueError(
            f"--fit {spec!r} is not TARGET:NAME (e.g. machining:thermal_resistance, "
            "machining-1:wear_rate_factor, '*:ambient_temperature')"
        )
    bounds = None
    if equals:
        low, dots, high = bounds_text.partition("..")
        try:
            bounds = (float(low), float(high))
        except ValueError:
            bounds = None
        if not dots or bounds is None or not bounds[0] < bounds[1]:
            raise ValueError(f"--fit {spec!r}: bounds are LOW..HIGH with LOW < HIGH, e.g. =0.2..5")
    target = "" if target == "*" else target
    machines = dict(scenario.machines())
    stations = {s.name: s for s in scenario.stations}
    if target and target not in stations and target not in machines:
        raise ValueError(
            f"--fit {spec!r}: {target!r} is neither a station ({', '.join(stations)}) nor a "
            f"machine ({', '.join(machines)}) of {scenario.name}; '*' = every machine"
        )
    covered = [s for s in scenario.stations if target in ("", s.name) or machines.get(target) is s]
    for station in covered:
        variables = {
            v.name
            for v in equipment_variables(station.equipment).values()
            if v.causality in ("parameter", "input")
        }
        if name not in variables:
            raise ValueError(
                f"--fit {spec!r}: {station.equipment} ({station.name}) has no parameter or input "
                f"{name!r}; choose one of {', '.join(sorted(variables))}"
            )
    if bounds is None and name == "wear_rate_factor":
        bounds = WEAR_BOUNDS
    return FitParameter(target, name, bounds)


def fit_parameters(specs: Sequence[str], scenario: Scenario) -> list[FitParameter]:
    """The parameters ``specs`` name (:func:`parse_fit`), or the library's
    :func:`~envs.sync.calibration.default_fit_parameters` for no specs; a parameter named twice
    is a ``ValueError``."""
    if not specs:
        return default_fit_parameters(scenario)
    parameters = [parse_fit(spec, scenario) for spec in specs]
    keys = [p.key for p in parameters]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"--fit names {', '.join(twice)} more than once")
    return parameters


def warm_start(
    path: str | Path | None, parameters: Sequence[FitParameter], nominal: ArrayLike
) -> list[float] | None:
    """Start values from a previous ``calibration.json`` (its ``fitted`` per parameter key);
    parameters it lacks start from ``nominal``. None without a file; ``ValueError`` for a file
    that is not a calibration or shares no parameter."""
    if path is None:
        return None
    try:
        rows = json.loads(Path(path).read_text())["parameters"]
        previous = {row["parameter"]: float(row["fitted"]) for row in rows}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"--warm-start {path}: not a calibration.json written by this script ({error!r})"
        ) from None
    if not any(p.key in previous for p in parameters):
        raise ValueError(
            f"--warm-start {path}: none of its parameters ({', '.join(sorted(previous))}) is "
            "fitted now; check --fit"
        )
    start = np.asarray(nominal, dtype=float)
    return [previous.get(p.key, float(n)) for p, n in zip(parameters, start, strict=True)]


# -- the fit --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRun:
    """One calibrated window: the fit and the twin's signals before and after it."""

    recording: Recording
    parameters: tuple[FitParameter, ...]
    result: CalibrationResult
    nominal: np.ndarray
    """The twin's own values of the parameters (before calibration)."""
    low: np.ndarray
    """Search bounds per parameter, in the parameter's unit."""
    high: np.ndarray
    before: list[dict[str, float]]
    """The twin's signals per sample at the nominal values."""
    after: list[dict[str, float]]
    """The same at the fitted values."""
    residual_rms_nominal: float
    """The fit's objective (RMS of weighted residuals) at the nominal values."""
    seconds: float
    """Wall-clock time of the fit."""
    scales: dict[str, float]
    """The calibrator's residual scales (see :data:`envs.sync.metrics.FIT_SCALES`)."""
    replay: str
    """How the twin re-lived the window (``events`` or ``states``)."""


def calibrate_recording(
    recording: Recording,
    scenario: Scenario,
    parameters: Sequence[FitParameter],
    *,
    replay: str = "events",
    warm_start_path: str | Path | None = None,
    max_evaluations: int = 200,
    on_evaluation: Callable[[], None] | None = None,
) -> CalibrationRun:
    """Fit ``parameters`` of ``scenario``'s twin to ``recording`` (optionally warm-started from
    a previous ``calibration.json``) and re-simulate the window before and after."""
    calibrator = Calibrator(scenario, parameters, replay=replay)
    try:
        nominal = calibrator.nominal(recording)
        before = calibrator.simulate(recording, nominal)
        residual_nominal = calibrator.residual_rms(recording, nominal)
        start = warm_start(warm_start_path, parameters, nominal)
        started = time.perf_counter()
        result = calibrator.fit(
            recording, x0=start, max_evaluations=max_evaluations, on_evaluation=on_evaluation
        )
        seconds = time.perf_counter() - started
        after = calibrator.simulate(recording, [result.values[p.key] for p in parameters])
        low, high = calibrator.bounds()
    finally:
        calibrator.close()
    return CalibrationRun(
        recording=recording,
        parameters=tuple(parameters),
        result=result,
        nominal=nominal,
        low=low,
        high=high,
        before=before,
        after=after,
        residual_rms_nominal=residual_nominal,
        seconds=seconds,
        scales=dict(calibrator.scales),
        replay=replay,
    )


# -- figures --------------------------------------------------------------------------------


def signal_rmse(
    recording: Recording, predictions: Sequence[dict[str, float]], kinds: Sequence[str] = PLOTTED
) -> dict[str, float]:
    """RMSE (signal unit) of the twin's predictions per measured signal of the given kinds
    (:func:`envs.sync.metrics.rmse`; signals never measured are left out)."""
    out = {}
    for key in sorted(predictions[0]):
        if key.rsplit(".", 1)[-1] not in kinds:
            continue
        measured = np.array([s.get(key, math.nan) for s in recording.samples])
        if np.isfinite(measured).any():
            out[key] = rmse([p[key] for p in predictions], measured)
    return out


def kind_nrmse(
    recording: Recording, predictions: Sequence[dict[str, float]], kinds: Sequence[str] = PLOTTED
) -> dict[str, float]:
    """Per signal kind: the mean over its measured signals of the one NRMSE
    (:func:`envs.sync.metrics.nrmse` with the kind's :data:`~envs.sync.metrics.SPANS`)."""
    out = {}
    for kind in kinds:
        values = [
            nrmse(
                [p[key] for p in predictions],
                [s.get(key, math.nan) for s in recording.samples],
                SPANS[kind],
            )
            for key in sorted(predictions[0])
            if key.rsplit(".", 1)[-1] == kind
        ]
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            out[kind] = float(np.mean(finite))
    return out


def true_value(
    parameter: FitParameter, truth: WindowTruth, scenario: Scenario
) -> tuple[float | None, str]:
    """The plant's value of a fitted parameter, averaged over its target's machines (None when
    unknown), and a note on spread or drift during the window."""
    machines = [
        m for m, station in scenario.machines() if parameter.target in ("", m, station.name)
    ]
    start = [truth.start.get(m, {}).get(parameter.name) for m in machines]
    end = [truth.end.get(m, {}).get(parameter.name) for m in machines]
    first = [v for v in start if v is not None]
    last = [v for v in end if v is not None]
    if not first or len(first) < len(start) or len(last) < len(end):
        return None, ""
    notes = []
    if max(first) - min(first) > 1e-12 * max(1.0, abs(max(first))):
        notes.append(f"differs across machines ({min(first):.4g}..{max(first):.4g}), mean")
    if any(abs(a - b) > 1e-12 * max(1.0, abs(a)) for a, b in zip(first, last, strict=True)):
        notes.append(f"drifted to {sum(last) / len(last):.4g} in the window")
    return sum(first) / len(first), "; ".join(notes)


def parameter_rows(
    run: CalibrationRun, scenario: Scenario, truth: WindowTruth | None = None
) -> list[dict[str, Any]]:
    """One row per parameter: key, bounds, nominal, fitted, standard error (None if not
    finite), flags (at a bound, poorly identified) and, with ``truth``, the true value, the
    error in % and a note."""
    rows = []
    for index, parameter in enumerate(run.parameters):
        key = parameter.key
        value, error = run.result.values[key], run.result.std_errors[key]
        low, high = float(run.low[index]), float(run.high[index])
        flags = []
        span = max(abs(value), 1e-12)
        if abs(value - low) <= 1e-6 * span or abs(value - high) <= 1e-6 * span:
            flags.append("at a bound")
        if not math.isfinite(error) or error > POOR * abs(value):
            flags.append("poorly identified by this window")
        row: dict[str, Any] = {
            "parameter": key,
            "target": parameter.target or "*",
            "name": parameter.name,
            "bounds": [low, high],
            "nominal": float(run.nominal[index]),
            "fitted": value,
            "std_error": error if math.isfinite(error) else None,
            "flags": flags,
        }
        if truth is not None:
            true, note = true_value(parameter, truth, scenario)
            row["true"] = true
            row["error_percent"] = 100.0 * (value - true) / true if true else None
            row["true_note"] = note
        rows.append(row)
    return rows


def format_table(rows: Sequence[dict[str, Any]], with_truth: bool) -> str:
    """The rows of :func:`parameter_rows` as a text table."""
    header = f"{'parameter':<32} {'nominal':>10} {'fitted':>11} {'± s.e.':>10}"
    if with_truth:
        header += f" {'true':>10} {'error %':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        error = math.inf if row["std_error"] is None else row["std_error"]
        line = (
            f"{row['parameter']:<32} {row['nominal']:>10.4g} {row['fitted']:>11.5g} {error:>10.2g}"
        )
        if with_truth:
            true = row.get("true")
            percent = row.get("error_percent")
            line += f" {true:>10.4g}" if true is not None else f" {'?':>10}"
            line += f" {percent:>+8.2f}" if percent is not None else f" {'':>8}"
        notes = row["flags"] + ([row["true_note"]] if row.get("true_note") else [])
        if notes:
            line += "  " + "; ".join(notes)
        lines.append(line)
    return "\n".join(lines)


def summary_lines(
    run: CalibrationRun, rows: Sequence[dict[str, Any]], truth: WindowTruth | None = None
) -> list[str]:
    """What the calibration found, in words: convergence, the objective and NRMSE before and
    after, the table, advice on poorly identified parameters, drift during the window."""
    result = run.result
    before = kind_nrmse(run.recording, run.before)
    after = kind_nrmse(run.recording, run.after)
    fidelity = ", ".join(
        f"{kind} {100 * before[kind]:.3g} % -> {100 * after[kind]:.3g} %"
        for kind in before
        if kind in after
    )
    lines = [
        f"fit {'converged' if result.success else 'stopped'} after {result.evaluations} twin "
        f"re-simulations in {run.seconds:.1f} s; residual RMS {run.residual_rms_nominal:.3g} "
        f"(nominal) -> {result.rmse:.3g} (calibrated)",
        f"NRMSE against the measurements (RMSE / span, mean over machines): {fidelity}",
        format_table(rows, with_truth=truth is not None),
    ]
    if any("poorly identified by this window" in r["flags"] for r in rows):
        lines.append(
            f"poorly identified: standard error above {POOR:.0%} of the value; record longer "
            "(--hours) or under varied speeds (--excite), or leave them out (--fit)"
        )
    if truth is not None and truth.drift:
        lines.append(
            "drift during the window (the fit averages over it): " + "; ".join(truth.drift)
        )
    return lines


def calibration_payload(
    run: CalibrationRun,
    rows: Sequence[dict[str, Any]],
    source: dict[str, Any],
    *,
    warm_start_path: str | Path | None = None,
    truth: WindowTruth | None = None,
) -> dict[str, Any]:
    """The content of ``calibration.json``: source, recording, scales, parameter rows, the fit,
    RMSE per signal and NRMSE per kind before and after, drift during the window."""
    recording, result = run.recording, run.result
    return {
        "source": source,
        "recording": {
            "scenario": recording.scenario,
            "seed": recording.seed,
            "start_s": recording.start_s,
            "sample_interval_s": recording.sample_interval_s,
            "samples": len(recording.samples),
        },
        "scales": run.scales,
        "parameters": list(rows),
        "fit": {
            "success": result.success,
            "replay": run.replay,
            "warm_start": str(warm_start_path) if warm_start_path else None,
            "evaluations": result.evaluations,
            "seconds": run.seconds,
            "residual_rms": {"nominal": run.residual_rms_nominal, "calibrated": result.rmse},
        },
        "signal_rmse": {
            "nominal": signal_rmse(recording, run.before),
            "calibrated": signal_rmse(recording, run.after),
        },
        "nrmse": {
            "nominal": kind_nrmse(recording, run.before),
            "calibrated": kind_nrmse(recording, run.after),
        },
        "drift": list(truth.drift) if truth is not None else None,
    }
