"""Figures of twin synchronisation (matplotlib, imported when a figure is drawn), each written
atomically (:func:`envs.atomic.atomic_path`):

- :func:`plot_calibration`: plant measurements against the twin before and after calibration
  (``scripts/calibrate.py``: ``temperature.png``, ``wear.png``);
- :func:`plot_next_hour`: the benchmark's window and predicted horizon, twin vs plant
  (``scripts/sync_report.py``: ``next_hour.png``);
- :func:`plot_tracking`: trust and Page-Hinkley flags around each drift (``tracking.png``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.atomic import atomic_path
from envs.sync.metrics import rmse
from envs.sync.recording import Recording

__all__ = ["plot_calibration", "plot_next_hour", "plot_tracking"]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format=path.suffix.lstrip(".") or "png")
    return path


def plot_calibration(
    recording: Recording,
    before: Sequence[dict[str, float]],
    after: Sequence[dict[str, float]],
    machines: Sequence[str],
    kind: str,
    path: str | Path,
    unit: str,
) -> Path:
    """One panel per machine: the measured ``kind`` and the twin's before and after the
    calibration, RMSE (``unit``) in the legends; returns the path written."""
    plt = _pyplot()
    hours = np.array([s["time_s"] for s in recording.samples]) / 3600.0
    fig, axes = plt.subplots(len(machines), 1, figsize=(9, 2.6 * len(machines)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, machine in zip(axes, machines, strict=True):
        key = f"{machine}.{kind}"
        measured = np.array([s.get(key, math.nan) for s in recording.samples])
        ax.plot(hours, measured, ".", color="0.35", ms=4, label="plant (measured)")
        for predictions, style, label in (
            (before, "--", "twin, nominal"),
            (after, "-", "twin, calibrated"),
        ):
            trace = [p[key] for p in predictions]
            error = rmse(trace, measured)
            text = f"{label} (RMSE {error:.3g} {unit})" if math.isfinite(error) else label
            ax.plot(hours, trace, style, lw=1.6, label=text)
        ax.set_title(f"{machine} {kind}", fontsize=10)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time since the recording's start, h")
    fig.suptitle(f"{kind}: plant vs twin before and after calibration")
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_next_hour(
    seed_result: dict[str, Any], path: str | Path, sync: str, machines: Sequence[str]
) -> Path:
    """Temperature and wear of each of ``machines`` (one row each) over the benchmark's window
    and horizon: measured, true, the free-running, the synchronised and the hybrid twin."""
    plt = _pyplot()
    traces = seed_result["_traces"]
    runs, truths, samples, window = (
        traces["runs"],
        traces["truths"],
        traces["samples"],
        traces["window"],
    )
    shown = {
        "unsynchronised (nominal, free-running)": ("tab:red", "--"),
        f"calibration + {sync}": ("tab:blue", "-"),
        "hybrid on the nominal twin": ("tab:orange", ":"),
    }
    minutes = np.array([s["time_s"] for s in samples]) / 60.0
    figure, axes = plt.subplots(
        len(machines), 2, figsize=(12, 3.5 * len(machines)), sharex=True, squeeze=False
    )
    for row, machine in zip(axes, machines, strict=True):
        for axis, kind in zip(row, ("temperature", "wear"), strict=True):
            signal = f"{machine}.{kind}"
            axis.plot(
                minutes, [s[signal] for s in samples], ".", color="0.6", ms=3, label="measured"
            )
            axis.plot(minutes, [t[signal] for t in truths], color="k", lw=1, label="plant (true)")
            for label, (colour, style) in shown.items():
                axis.plot(
                    minutes, [p[signal] for p in runs[label]], style, color=colour, label=label
                )
            axis.axvline(minutes[window - 1], color="0.3", lw=0.8)
            axis.set_title(signal)
    axes[-1, 0].set_xlabel("minutes since reset (left of the line: learned from; right: predicted)")
    axes[-1, 1].set_xlabel("minutes since reset")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"Next-hour prediction, plant seed {seed_result['seed']}")
    figure.tight_layout()
    try:
        return _save(figure, path)
    finally:
        plt.close(figure)


def plot_tracking(seed_result: dict[str, Any], path: str | Path) -> Path:
    """Trust and Page-Hinkley flags of the tracked twin around each drift event (one panel
    per event of ``seed_result["drift"]``, at least one)."""
    plt = _pyplot()
    drift = seed_result["drift"]
    figure, axes = plt.subplots(len(drift), 1, figsize=(10, 2.6 * len(drift)), squeeze=False)
    for axis, item in zip(axes[:, 0], drift, strict=True):
        hours = [row["time_h"] for row in item["trace"]]
        axis.step(hours, [row["trust"] for row in item["trace"]], where="post", label="trust")
        flagged = [row["time_h"] for row in item["trace"] if row["flags"]]
        axis.plot(flagged, [0.05] * len(flagged), "v", color="tab:red", label="Page-Hinkley flag")
        axis.axvline(item["event"]["time_h"], color="tab:red", lw=0.8, label="drift event")
        axis.axhline(0.5, color="0.5", lw=0.6, ls=":")
        event = item["event"]
        axis.set_title(
            f"{event['target']} {event['operation']} {event['value']} "
            f"{event['machine'] or 'all machines'} at {event['time_h']} h",
            fontsize=9,
        )
        axis.set_ylim(0, 1.02)
        axis.set_ylabel("trust")
    axes[-1, 0].set_xlabel("hours since reset")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    try:
        return _save(figure, path)
    finally:
        plt.close(figure)
