"""The synchronisation benchmark across plant seeds: means over the seeds'
:func:`envs.sync.benchmark.benchmark_seed` results (:func:`summarise`) and the tables printed by
``scripts/sync_report.py`` (:func:`format_summary`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from envs.sync.benchmark import KINDS

__all__ = ["format_summary", "summarise"]

Result = dict[str, Any]

_STATS = ("rmse", "nrmse_mean", "nrmse_worst")


def summarise(results: Sequence[Result]) -> dict[str, Any]:
    """Means over seeds: calibration error (%) per parameter by seed and by state replay,
    next-hour errors per twin and signal kind, one-sample-ahead RMSE per synchroniser, and per
    drift event the per-seed intervals to trust < ½ and to a Page-Hinkley flag, false alarms,
    the lowest trust before it and state mismatches per interval."""
    if not results:
        raise ValueError("summarise needs at least one seed's result")
    first = results[0]
    calibration = {
        key: float(np.mean([r["calibration"][key]["error_pct"] for r in results]))
        for key in first["calibration"]
    }
    by_states = {
        key: float(np.mean([r["calibration"][key]["error_pct_state_replay"] for r in results]))
        for key in first["calibration"]
    }
    prediction = {
        label: {
            kind: {
                stat: float(np.mean([r["next_hour"][label][kind][stat] for r in results]))
                for stat in _STATS
            }
            for kind in KINDS
        }
        for label in first["next_hour"]
    }
    one_step = {
        sync: {
            kind: float(np.mean([r["one_sample_ahead"][sync][kind]["rmse"] for r in results]))
            for kind in KINDS
        }
        for sync in first["one_sample_ahead"]
    }
    drift = []
    for index, item in enumerate(first["drift"]):
        items = [r["drift"][index] for r in results]
        drift.append(
            {
                "event": item["event"],
                "trust": [i["intervals_to_trust_below_half"] for i in items],
                "flag": [i["intervals_to_drift_flag"] for i in items],
                "false_alarms": [i["false_alarms_before"] for i in items],
                "min_trust_before": min(i["min_trust_before"] for i in items),
                "state_mismatches_per_interval_before": float(
                    np.mean([i["state_mismatches_per_interval_before"] for i in items])
                ),
            }
        )
    return {
        "calibration_error_pct": calibration,
        "calibration_error_pct_state_replay": by_states,
        "next_hour": prediction,
        "one_sample_ahead_rmse": one_step,
        "drift": drift,
    }


def format_summary(results: Sequence[Result], summary: dict[str, Any], beta: float) -> str:
    """The report's tables (``summary`` from :func:`summarise` of ``results``; ``beta`` is the
    nudging gain, for the labels)."""
    first = results[0]
    lines = [
        "",
        "Calibration from the window (error against the plant's hidden value, mean over seeds;"
        "\n'by states': the machines follow the recorded states, no event seed, as for real data)",
    ]
    calibration = summary["calibration_error_pct"]
    by_states = summary["calibration_error_pct_state_replay"]
    for key, item in first["calibration"].items():
        lines.append(
            f"  {key:36s} fitted {item['fitted']:11.5g} ± {item['std_error']:9.2g}  "
            f"true {item['true']:11.5g}  error {calibration[key]:6.2f} %  "
            f"by states {by_states[key]:6.2f} %"
            + ("" if item["identified"] else "  (not identified: s.e. > 10 % of the value)")
        )
    lines += [
        "",
        "Next-hour prediction vs the plant's noise-free signals (mean over seeds)",
        f"  {'twin':42s} {'T RMSE K':>9s} {'T NRMSE':>8s} {'worst':>6s} "
        f"{'wear RMSE':>9s} {'NRMSE':>7s} {'worst':>6s}",
    ]
    for label, row in summary["next_hour"].items():
        t, w = row["temperature"], row["wear"]
        lines.append(
            f"  {label:42s} {t['rmse']:9.3f} {100 * t['nrmse_mean']:7.2f}% "
            f"{100 * t['nrmse_worst']:5.1f}% {w['rmse']:9.4f} {100 * w['nrmse_mean']:6.2f}% "
            f"{100 * w['nrmse_worst']:5.1f}%"
        )
    lines += [
        "",
        f"One sample ({first['_traces']['interval_s']:g} s) ahead during the window, nominal "
        "twin, after its first sixth (mean over seeds)",
    ]
    for sync, row in summary["one_sample_ahead_rmse"].items():
        name = {"none": "free-running", "nudging": f"nudging beta {beta}"}.get(sync, sync)
        lines.append(
            f"  {name:20s} temperature RMSE {row['temperature']:.3f} K, wear RMSE {row['wear']:.4f}"
        )
    for label in ("nominal", "calibrated"):
        alphas = [r["hybrid_alpha"][label] for r in results]
        lines.append(f"  hybrid alpha on the {label} twin per seed: {alphas}")
    lines += ["", "Drift (decision intervals from the one the drift starts in; 1 = that interval)"]
    for item in summary["drift"]:
        event = item["event"]
        name = f"{event['target']} {event['operation']} {event['value']} {event['machine'] or '*'}"
        lines.append(
            f"  {name:40s} trust < 1/2 after {item['trust']}, Page-Hinkley after {item['flag']}; "
            f"before it ({event['time_h']} h): false alarms {item['false_alarms']}, lowest trust "
            f"{item['min_trust_before']:.2f}, machines in another state than the plant's "
            f"{item['state_mismatches_per_interval_before']:.2f} per interval"
        )
    return "\n".join(lines)
