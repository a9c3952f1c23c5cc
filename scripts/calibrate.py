"""Calibrate the twin's hidden parameters to plant data: record a window from the plant emulator
(or load a recorded file), fit by least squares over twin re-simulations, report and plot.

Prints a table of each fitted value ± its standard error (and, for data recorded from the
emulator, the true hidden value and the error in %), and writes into ``--out`` (default
``runs/calibrate``): ``calibration.json`` (recording, parameters, fit, RMSE per signal) and
``temperature.png`` / ``wear.png`` (plant measurements against the twin before and after the
calibration, RMSE in the legends). The data format of ``--data`` is documented in
:mod:`envs.sync.recording`.

    python scripts/calibrate.py --plant configs/plant_example.toml --hours 1
    python scripts/calibrate.py --plant configs/plant_example.toml --hours 1 --excite \\
        --save-recording runs/plant_window.parquet
    python scripts/calibrate.py --data runs/plant_window.parquet \\
        --fit machining:thermal_resistance --fit '*:ambient_temperature'
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PLOTTED = ("temperature", "wear")
POOR = 0.1  # a standard error above 10 % of the value marks a poorly identified parameter


@dataclass(frozen=True)
class CalibrateConfig:
    plant: Path | None = None
    """Plant emulator config (TOML) to record from; exclusive with ``data``."""
    data: Path | None = None
    """Recorded plant data (.csv or .parquet, see envs.sync.recording); exclusive with plant."""
    hours: float = 1.0
    """Hours to record from the plant (a whole number of decision intervals)."""
    excite: bool = False
    """Record under random speed factors (one draw per machine and decision interval)."""
    save_recording: Path | None = None
    """Also write the recording used to this .csv or .parquet file."""
    fit: tuple[str, ...] = ()
    """``TARGET:NAME[=LOW..HIGH]`` specs; empty: the library's ``default_fit_parameters``."""
    max_evaluations: int = 200
    """Bound on the optimiser's iterations (see Calibrator.fit)."""
    replay: str = "events"
    """How the twin re-lives the window: "events" (the recording's seed) or "states"."""
    warm_start: Path | None = None
    """A previous calibration.json: its fitted values start the fit (same keys; others nominal)."""
    out: Path = Path("runs/calibrate")
    """Folder for calibration.json and the plots."""
    plot_machines: tuple[str, ...] = ()
    """Machines to plot; empty: the first machine of each station."""
    progress: bool = True
    """Show progress bars."""


# -- parameters -----------------------------------------------------------------------------


def parse_fit(spec: str, scenario) -> object:
    """One ``--fit`` spec against the scenario: ``TARGET:NAME`` or ``TARGET:NAME=LOW..HIGH``;
    TARGET a station, a machine, or ``*`` for every machine; NAME a settable FMU variable."""
    import fmus
    from envs.sync.calibration import WEAR_BOUNDS, FitParameter
    from envs.sync.recording import machine_names
    from fmus._codegen import read_model_info

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
    machines = machine_names(scenario)
    stations = {s.name: s for s in scenario.stations}
    if target and target not in stations and target not in machines:
        raise ValueError(
            f"--fit {spec!r}: {target!r} is neither a station ({', '.join(stations)}) nor a "
            f"machine ({', '.join(machines)}) of {scenario.name}; '*' = every machine"
        )
    covered = [
        s for s in scenario.stations if target in ("", s.name) or target.rsplit("-", 1)[0] == s.name
    ]
    for station in covered:
        info = read_model_info(fmus.model_dir(station.equipment) / "modelDescription.xml")
        variables = {v.name: v for v in info.variables if v.causality in ("parameter", "input")}
        if name not in variables:
            raise ValueError(
                f"--fit {spec!r}: {station.equipment} ({station.name}) has no parameter or input "
                f"{name!r}; choose one of {', '.join(sorted(variables))}"
            )
    if bounds is None and name == "wear_rate_factor":
        bounds = WEAR_BOUNDS
    return FitParameter(target, name, bounds)


# -- the recording and the truth ------------------------------------------------------------


def excitation(scenario, seed: int):
    """A seeded schedule of random speed factors (uniform in each machine's speed range)."""
    import numpy as np

    rng = np.random.default_rng([seed, 0xE1C17E])
    ranges = np.array([s.speed_range for s in scenario.stations for _ in range(s.machines)])
    count = len(ranges)

    def schedule(k: int):
        speed = rng.uniform(ranges[:, 0], ranges[:, 1])
        return speed, np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)

    return schedule


def record_plant(config: CalibrateConfig, parameters_for):
    """Record from the emulator; returns (recording, scenario, parameters, truth)."""
    from tqdm import tqdm

    from envs.plant import Plant, load_plant_config
    from envs.sync.calibration import record

    plant_config = load_plant_config(config.plant)
    with Plant(plant_config) as plant:
        scenario = plant.nominal_scenario
        parameters = parameters_for(scenario)
        intervals = config.hours * 3600.0 / scenario.decision_interval_s
        if abs(intervals - round(intervals)) > 1e-9 or round(intervals) < 1:
            raise ValueError(
                f"--hours {config.hours:g} is not a whole number (>= 1) of the scenario's "
                f"{scenario.decision_interval_s:g} s decision intervals"
            )
        intervals = round(intervals)
        schedule = excitation(scenario, plant_config.seed) if config.excite else None
        with tqdm(
            total=intervals, desc="recording", unit="interval", disable=not config.progress
        ) as bar:
            recording = record(plant, intervals, schedule, on_interval=lambda: bar.update(1))
        names = {p.name for p in parameters}
        end = plant.fmu_values(names)
        drifted = [
            f"at {time_s / 3600:g} h {event.target} of {event.machine or 'every machine'} "
            f"{event.operation} {event.value:g}"
            for time_s, event in plant.drift_log
        ]
        plant.reset()
        start = plant.fmu_values(names)
    return recording, scenario, parameters, {"start": start, "end": end, "drift": drifted}


# -- the fit, the report and the plots ------------------------------------------------------


def signal_rmse(recording, predictions, kinds=PLOTTED) -> dict[str, float]:
    """RMSE (signal unit) of the twin's predictions per measured signal of the given kinds."""
    import numpy as np

    out = {}
    for key in sorted(predictions[0]):
        if key.rsplit(".", 1)[-1] not in kinds:
            continue
        predicted = np.array([p[key] for p in predictions])
        measured = np.array([s.get(key, math.nan) for s in recording.samples])
        finite = np.isfinite(measured)
        if finite.any():
            out[key] = float(np.sqrt(np.mean((predicted[finite] - measured[finite]) ** 2)))
    return out


def format_table(rows: list[dict], with_truth: bool) -> str:
    header = f"{'parameter':<32} {'nominal':>10} {'fitted':>11} {'± s.e.':>10}"
    if with_truth:
        header += f" {'true':>10} {'error %':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        line = (
            f"{row['parameter']:<32} {row['nominal']:>10.4g} {row['fitted']:>11.5g} "
            f"{row['std_error']:>10.2g}"
        )
        if with_truth:
            true = row.get("true")
            error = row.get("error_percent")
            line += f" {true:>10.4g}" if true is not None else f" {'?':>10}"
            line += f" {error:>+8.2f}" if error is not None else f" {'':>8}"
        notes = row["flags"] + ([row["true_note"]] if row.get("true_note") else [])
        if notes:
            line += "  " + "; ".join(notes)
        lines.append(line)
    return "\n".join(lines)


def plot_traces(recording, before, after, machines, kind, path: Path, unit: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    hours = np.array([s["time_s"] for s in recording.samples]) / 3600.0
    rmse_before = signal_rmse(recording, before, (kind,))
    rmse_after = signal_rmse(recording, after, (kind,))
    fig, axes = plt.subplots(len(machines), 1, figsize=(9, 2.6 * len(machines)), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, machine in zip(axes, machines, strict=True):
        key = f"{machine}.{kind}"
        measured = np.array([s.get(key, math.nan) for s in recording.samples])
        ax.plot(hours, measured, ".", color="0.35", ms=4, label="plant (measured)")
        for predictions, rmse, style, label in (
            (before, rmse_before, "--", "twin, nominal"),
            (after, rmse_after, "-", "twin, calibrated"),
        ):
            text = f"{label} (RMSE {rmse[key]:.3g} {unit})" if key in rmse else label
            ax.plot(hours, [p[key] for p in predictions], style, lw=1.6, label=text)
        ax.set_title(f"{machine} {kind}", fontsize=10)
        ax.set_ylabel(unit)
        ax.legend(fontsize=8, loc="best")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time since the recording's start, h")
    fig.suptitle(f"{kind}: plant vs twin before and after calibration")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_json(path: Path, payload: dict) -> Path:
    """Atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=2)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def warm_start(path: Path | None, parameters, nominal) -> list[float] | None:
    """Start values from a previous ``calibration.json`` (its ``fitted`` per parameter key);
    parameters it lacks start from ``nominal``. None without a file."""
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
    return [previous.get(p.key, float(n)) for p, n in zip(parameters, nominal, strict=True)]


def run(config: CalibrateConfig) -> dict:
    """Record or load, calibrate, report, plot; returns the calibration.json payload."""
    import numpy as np
    from tqdm import tqdm

    from envs.scenario import load_scenario
    from envs.sync.calibration import Calibrator, default_fit_parameters, true_value
    from envs.sync.recording import SUFFIXES, load_recording, machine_names, save_recording

    def parameters_for(scenario) -> list:
        if not config.fit:
            return default_fit_parameters(scenario)
        parameters = [parse_fit(spec, scenario) for spec in config.fit]
        keys = [p.key for p in parameters]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"--fit names {', '.join(twice)} more than once")
        return parameters

    if (config.plant is None) == (config.data is None):
        raise ValueError("give either --plant (record from the emulator) or --data (a recording)")
    if config.save_recording is not None and config.save_recording.suffix not in SUFFIXES:
        raise ValueError(
            f"--save-recording {config.save_recording}: recordings are written as "
            f"{' or '.join(SUFFIXES)} files"
        )
    truth = None
    if config.plant is not None:
        recording, scenario, parameters, truth = record_plant(config, parameters_for)
        source = {"plant": str(config.plant), "hours": config.hours, "excite": config.excite}
    else:
        recording = load_recording(config.data)
        scenario = load_scenario(recording.scenario)
        parameters = parameters_for(scenario)
        source = {"data": str(config.data)}
    names = machine_names(scenario)
    plotted = list(config.plot_machines) or [f"{s.name}-1" for s in scenario.stations]
    unknown = [m for m in plotted if m not in names]
    if unknown:
        raise ValueError(
            f"--plot-machine {', '.join(unknown)}: not a machine of {scenario.name} "
            f"({', '.join(names)})"
        )
    if config.save_recording is not None:
        print(f"wrote {save_recording(recording, config.save_recording)}")
    hours = len(recording.samples) * recording.sample_interval_s / 3600.0
    print(
        f"calibrating {len(parameters)} parameters of {scenario.name} to {len(recording.samples)} "
        f"samples ({hours:g} h every {recording.sample_interval_s:g} s, seed {recording.seed})"
    )

    calibrator = Calibrator(scenario, parameters, replay=config.replay)
    try:
        nominal = calibrator.nominal(recording)
        before = calibrator.simulate(recording, nominal)
        rmse_nominal = float(np.sqrt(np.mean(calibrator.residuals(recording, nominal) ** 2)))
        start = warm_start(config.warm_start, parameters, nominal)
        started = time.perf_counter()
        with tqdm(desc="fitting", unit="sim", disable=not config.progress) as bar:
            result = calibrator.fit(
                recording,
                x0=start,
                max_evaluations=config.max_evaluations,
                on_evaluation=lambda: bar.update(1),
            )
        seconds = time.perf_counter() - started
        fitted = [result.values[p.key] for p in parameters]
        after = calibrator.simulate(recording, fitted)
        low, high = calibrator.bounds()
    finally:
        calibrator.close()

    rows = []
    for index, parameter in enumerate(parameters):
        key = parameter.key
        value, error = result.values[key], result.std_errors[key]
        flags = []
        span = max(abs(value), 1e-12)
        if abs(value - low[index]) <= 1e-6 * span or abs(value - high[index]) <= 1e-6 * span:
            flags.append("at a bound")
        if not math.isfinite(error) or error > POOR * abs(value):
            flags.append("poorly identified by this window")
        row = {
            "parameter": key,
            "target": parameter.target or "*",
            "name": parameter.name,
            "bounds": [float(low[index]), float(high[index])],
            "nominal": float(nominal[index]),
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
    print(
        f"fit {'converged' if result.success else 'stopped'} after {result.evaluations} twin "
        f"re-simulations in {seconds:.1f} s; normalised RMSE {rmse_nominal:.3g} (nominal) -> "
        f"{result.rmse:.3g} (calibrated)"
    )
    table_rows = [{**r, "std_error": r["std_error"] or math.inf} for r in rows]
    print(format_table(table_rows, with_truth=truth is not None))
    if any("poorly identified by this window" in r["flags"] for r in rows):
        print(
            f"poorly identified: standard error above {POOR:.0%} of the value; record longer "
            "(--hours) or under varied speeds (--excite), or leave them out (--fit)"
        )
    if truth is not None and truth["drift"]:
        print("drift during the window (the fit averages over it): " + "; ".join(truth["drift"]))

    out = Path(config.out)
    plots = [
        plot_traces(
            recording, before, after, plotted, "temperature", out / "temperature.png", "°C"
        ),
        plot_traces(
            recording, before, after, plotted, "wear", out / "wear.png", "fraction of limit"
        ),
    ]
    payload = {
        "source": source,
        "recording": {
            "scenario": recording.scenario,
            "seed": recording.seed,
            "start_s": recording.start_s,
            "sample_interval_s": recording.sample_interval_s,
            "samples": len(recording.samples),
        },
        "scales": calibrator.scales,
        "parameters": rows,
        "fit": {
            "success": result.success,
            "replay": config.replay,
            "warm_start": str(config.warm_start) if config.warm_start else None,
            "evaluations": result.evaluations,
            "seconds": seconds,
            "normalised_rmse": {"nominal": rmse_nominal, "calibrated": result.rmse},
        },
        "signal_rmse": {
            "nominal": signal_rmse(recording, before),
            "calibrated": signal_rmse(recording, after),
        },
        "drift": truth["drift"] if truth is not None else None,
    }
    written = write_json(out / "calibration.json", payload)
    print("wrote " + ", ".join(str(p) for p in [written, *plots]))
    return payload


def build_parser() -> argparse.ArgumentParser:
    from envs.sync.calibration import WEAR_BOUNDS

    defaults = CalibrateConfig()
    parser = argparse.ArgumentParser(
        description="Calibrate the digital twin's hidden FMU parameters to plant data by least\n"
        "squares over twin re-simulations: record a window from the plant emulator (--plant)\n"
        "or load recorded data (--data; format in envs/sync/recording.py), fit, print each\n"
        "fitted value ± standard error (and the true value and error for emulator data), and\n"
        "write calibration.json, temperature.png and wear.png (plant vs twin before/after).",
        epilog="examples:\n"
        "  python scripts/calibrate.py --plant configs/plant_example.toml --hours 1\n"
        "  python scripts/calibrate.py --plant configs/plant_example.toml --excite "
        "--save-recording runs/window.parquet\n"
        "  python scripts/calibrate.py --data runs/window.parquet "
        "--fit machining:thermal_resistance --fit '*:ambient_temperature'",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--plant",
        type=Path,
        metavar="TOML",
        help="plant emulator config (TOML, e.g. configs/plant_example.toml) to record from",
    )
    source.add_argument(
        "--data",
        type=Path,
        metavar="PATH",
        help="recorded plant data: a .csv or .parquet file in the format of "
        "envs/sync/recording.py (metadata, time_s, <machine>.<signal>, setpoints)",
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=None,
        help=f"with --plant: hours to record, a whole number of the scenario's decision "
        f"intervals (default {defaults.hours:g})",
    )
    parser.add_argument(
        "--excite",
        action="store_true",
        help="with --plant: record under random speed factors (uniform in each machine's "
        "speed range, redrawn every decision interval, seeded by the plant seed) instead of "
        "nominal speed (default: nominal speed)",
    )
    parser.add_argument(
        "--save-recording",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write the recording used to this .csv or .parquet file (default: none)",
    )
    parser.add_argument(
        "--fit",
        action="append",
        default=None,
        metavar="TARGET:NAME[=LOW..HIGH]",
        help="a parameter to fit (repeatable): TARGET is a station (machining), a machine "
        "(machining-1) or '*' for one value shared by every machine; NAME an FMU parameter or "
        "input (thermal_resistance, thermal_capacity, ambient_temperature, wear_rate_factor, "
        "...); optional search bounds. Default: every station's thermal_resistance, CncMill "
        "stations' thermal_capacity, '*:ambient_temperature' and each machine's "
        f"wear_rate_factor (bounds {WEAR_BOUNDS[0]}..{WEAR_BOUNDS[1]})",
    )
    parser.add_argument(
        "--max-evaluations",
        type=int,
        default=defaults.max_evaluations,
        metavar="N",
        help="bound on the optimiser's iterations; each Jacobian adds one twin "
        f"re-simulation per parameter (default {defaults.max_evaluations})",
    )
    parser.add_argument(
        "--replay",
        choices=("events", "states"),
        default=defaults.replay,
        help="how the twin re-lives the window: 'events' replays the recording's discrete-event\n"
        "seed (exact for emulator data); 'states' makes each machine follow the recorded\n"
        "<machine>.state (mills' cutting phase from their power): use it for real plant data,\n"
        "whose events no seed reproduces; most accurate when sampled every tick (30 s)\n"
        f"(default {defaults.replay})",
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        metavar="JSON",
        help="start the fit from a previous calibration.json's fitted values (re-calibrating a\n"
        "new window after a change: fewer re-simulations); parameters it lacks start nominal",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=defaults.out,
        metavar="DIR",
        help=f"folder for calibration.json, temperature.png and wear.png (default {defaults.out})",
    )
    parser.add_argument(
        "--plot-machine",
        action="append",
        default=None,
        metavar="MACHINE",
        help="machine to plot (repeatable; default: the first machine of each station)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> CalibrateConfig:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is not None and (args.hours is not None or args.excite):
        parser.error("--hours and --excite apply to --plant recordings, not to --data")
    hours = CalibrateConfig.hours if args.hours is None else args.hours
    if not 0 < hours <= 168:
        parser.error(f"--hours {hours:g} must be in (0, 168]")
    if args.max_evaluations < 1:
        parser.error("--max-evaluations must be at least 1")
    return CalibrateConfig(
        plant=args.plant,
        data=args.data,
        hours=hours,
        excite=args.excite,
        save_recording=args.save_recording,
        fit=tuple(args.fit or ()),
        max_evaluations=args.max_evaluations,
        replay=args.replay,
        warm_start=args.warm_start,
        out=args.out,
        plot_machines=tuple(args.plot_machine or ()),
        progress=not args.quiet,
    )


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        run(config)
    except (ValueError, ImportError, OSError) as error:  # ConfigError, RecordingError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
