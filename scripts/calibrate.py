"""Calibrate the twin's hidden parameters to plant data: record a window from the plant emulator
(or load a recorded file), fit by least squares over twin re-simulations, report and plot.

Prints a table of each fitted value ± its standard error (and, for data recorded from the
emulator, the true hidden value and the error in %), and writes into ``--out`` (default
``runs/calibrate``): ``calibration.json`` (recording, parameters, fit, RMSE per signal, NRMSE
per signal kind) and ``temperature.png`` / ``wear.png`` (plant measurements against the twin
before and after the calibration, RMSE in the legends), each atomically. The data format of
``--data`` is documented in :mod:`envs.sync.recording`; the work is done by
:mod:`envs.sync.calibration_report` (fit, report) and :mod:`envs.sync.plots`.

    python scripts/calibrate.py --plant configs/plant_example.toml --hours 1
    python scripts/calibrate.py --plant configs/plant_example.toml --hours 1 --excite \\
        --save-recording runs/plant_window.parquet
    python scripts/calibrate.py --data runs/plant_window.parquet \\
        --fit machining:thermal_resistance --fit '*:ambient_temperature'
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from envs.config import setting  # noqa: E402


@dataclass(frozen=True, kw_only=True)
class CalibrateConfig:
    """What to calibrate and where to write; built by :func:`parse_args` through
    :func:`envs.config.load_config` (the command-line options over these defaults)."""

    plant: str | None = setting(None, doc="plant emulator config (TOML) to record from")
    data: str | None = setting(None, doc="recorded plant data (.csv or .parquet)")
    hours: float = setting(1.0, low=0.0, high=168.0, doc="hours to record from the plant")
    excite: bool = setting(False, doc="record under random speed factors")
    save_recording: str | None = setting(None, doc="also write the recording (.csv/.parquet)")
    fit: tuple[str, ...] = setting((), doc="TARGET:NAME[=LOW..HIGH]; empty: the defaults")
    max_evaluations: int = setting(200, low=1, high=100_000, doc="optimiser iterations bound")
    replay: str = setting("events", choices=("events", "states"), doc="events or states")
    warm_start: str | None = setting(None, doc="a previous calibration.json to start from")
    out: str = setting("runs/calibrate", doc="folder for calibration.json and the plots")
    plot_machines: tuple[str, ...] = setting((), doc="machines to plot; empty: first of each")
    progress: bool = setting(True, doc="show progress bars")


def _recorded(config: CalibrateConfig, specs: tuple[str, ...]) -> tuple[Any, ...]:
    """Record from the emulator: (recording, scenario, parameters, truth)."""
    from tqdm import tqdm

    from envs.plant import Plant, load_plant_config
    from envs.sync.calibration_report import fit_parameters
    from envs.sync.recorder import excitation, intervals_in, record_with_truth

    assert config.plant is not None
    plant_config = load_plant_config(config.plant)
    with Plant(plant_config) as plant:
        scenario = plant.nominal_scenario
        parameters = fit_parameters(specs, scenario)
        intervals = intervals_in(config.hours, scenario.decision_interval_s, option="--hours")
        schedule = excitation(scenario, plant_config.seed) if config.excite else None
        with tqdm(
            total=intervals, desc="recording", unit="interval", disable=not config.progress
        ) as bar:
            recording, truth = record_with_truth(
                plant,
                intervals,
                {p.name for p in parameters},
                schedule,
                on_interval=lambda: bar.update(1),
            )
    return recording, scenario, parameters, truth


def run(config: CalibrateConfig) -> dict[str, Any]:
    """Record or load, calibrate, report, plot; returns the calibration.json payload."""
    from tqdm import tqdm

    from envs.atomic import write_atomic
    from envs.scenario import load_scenario
    from envs.sync.calibration_report import (
        calibrate_recording,
        calibration_payload,
        fit_parameters,
        parameter_rows,
        summary_lines,
    )
    from envs.sync.plots import plot_calibration
    from envs.sync.recording import SUFFIXES
    from envs.sync.recording_reader import load_recording
    from envs.sync.recording_writer import save_recording

    if (config.plant is None) == (config.data is None):
        raise ValueError("give either --plant (record from the emulator) or --data (a recording)")
    save_to = None if config.save_recording is None else Path(config.save_recording)
    if save_to is not None and save_to.suffix not in SUFFIXES:
        raise ValueError(
            f"--save-recording {save_to}: recordings are written as {' or '.join(SUFFIXES)} files"
        )
    truth = None
    source: dict[str, Any]
    if config.plant is not None:
        recording, scenario, parameters, truth = _recorded(config, config.fit)
        source = {"plant": config.plant, "hours": config.hours, "excite": config.excite}
    else:
        assert config.data is not None
        recording = load_recording(config.data)
        scenario = load_scenario(recording.scenario)
        parameters = fit_parameters(config.fit, scenario)
        source = {"data": config.data}
    names = scenario.machine_names
    plotted = list(config.plot_machines) or [f"{s.name}-1" for s in scenario.stations]
    unknown = [m for m in plotted if m not in names]
    if unknown:
        raise ValueError(
            f"--plot-machine {', '.join(unknown)}: not a machine of {scenario.name} "
            f"({', '.join(names)})"
        )
    if save_to is not None:
        print(f"wrote {save_recording(recording, save_to)}")
    hours = len(recording.samples) * recording.sample_interval_s / 3600.0
    print(
        f"calibrating {len(parameters)} parameters of {scenario.name} to {len(recording.samples)} "
        f"samples ({hours:g} h every {recording.sample_interval_s:g} s, seed {recording.seed})"
    )
    with tqdm(desc="fitting", unit="sim", disable=not config.progress) as bar:
        calibration = calibrate_recording(
            recording,
            scenario,
            parameters,
            replay=config.replay,
            warm_start_path=config.warm_start,
            max_evaluations=config.max_evaluations,
            on_evaluation=lambda: bar.update(1),
        )
    rows = parameter_rows(calibration, scenario, truth)
    print("\n".join(summary_lines(calibration, rows, truth)))

    out = Path(config.out)
    plots = [
        plot_calibration(
            recording,
            calibration.before,
            calibration.after,
            plotted,
            kind,
            out / f"{kind}.png",
            unit,
        )
        for kind, unit in (("temperature", "°C"), ("wear", "fraction of limit"))
    ]
    payload = calibration_payload(
        calibration, rows, source, warm_start_path=config.warm_start, truth=truth
    )
    written = write_atomic(out / "calibration.json", json.dumps(payload, indent=2))
    print("wrote " + ", ".join(str(p) for p in [written, *plots]))
    return payload


def build_parser() -> argparse.ArgumentParser:
    from envs.sync.calibration import REPLAYS, WEAR_BOUNDS

    defaults = CalibrateConfig()
    # every option defaults to None (not given): load_config layers the given ones over
    # CalibrateConfig's defaults, which the help texts quote
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
        default=None,
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
        "stations' thermal_capacity and specific_cutting_energy, '*:ambient_temperature' and "
        "each machine's "
        f"wear_rate_factor (bounds {WEAR_BOUNDS[0]}..{WEAR_BOUNDS[1]})",
    )
    parser.add_argument(
        "--max-evaluations",
        type=int,
        default=None,
        metavar="N",
        help="bound on the optimiser's iterations; each Jacobian adds one twin "
        f"re-simulation per parameter (default {defaults.max_evaluations})",
    )
    parser.add_argument(
        "--replay",
        choices=REPLAYS,
        default=None,
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
        default=None,
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
    parser.add_argument("--quiet", action="store_true", default=None, help="no progress bars")
    return parser


def parse_args(argv: list[str] | None = None) -> CalibrateConfig:
    """The command line as a validated :class:`CalibrateConfig` (``envs.config.load_config``:
    the options given, over the defaults); a ConfigError names the option's key."""
    from envs.config import load_config

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data is not None and (args.hours is not None or args.excite):
        parser.error("--hours and --excite apply to --plant recordings, not to --data")
    given = {
        "plant": args.plant,
        "data": args.data,
        "hours": args.hours,
        "excite": args.excite,
        "save_recording": args.save_recording,
        "fit": args.fit,
        "max_evaluations": args.max_evaluations,
        "replay": args.replay,
        "warm_start": args.warm_start,
        "out": args.out,
        "plot_machines": args.plot_machine,
        "progress": None if args.quiet is None else not args.quiet,
    }
    overrides = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in given.items()
        if value is not None
    }
    return load_config(CalibrateConfig, overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse_args(argv))
    except (ValueError, ImportError, OSError) as error:  # ConfigError, RecordingError included
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
