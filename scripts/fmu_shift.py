"""Simulate one shift of every shipped FMU under a realistic input profile.

The mill machines engine brackets part after part (cutting, then handling),
gets a planned tool change every ``parts_per_tool`` parts, and stands by
through the two breaks; the conveyor carries each finished part to the robot
cell and stops during breaks; the robot cell welds in cycles while the line
runs. The shop warms up over the shift. Each FMU is simulated with FMPy on
these inputs; the script prints a summary table and writes the trajectories
(CSV) and a plot (PNG) under ``--out``.

    python scripts/fmu_shift.py               # one 8 h shift, 10 s steps, into runs/demo
    python scripts/fmu_shift.py --hours 2 --step 5 --out runs/short
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # allow running from a checkout without installing
    sys.path.insert(0, str(REPO))

import fmus  # noqa: E402

MILL_OFF, MILL_STANDBY, MILL_IDLE, MILL_CUTTING = 0, 1, 2, 3
ROBOT_STANDBY, ROBOT_IDLE, ROBOT_RUNNING = 1, 2, 3


@dataclass(frozen=True)
class DemoConfig:
    hours: float = 8.0
    """Length of the shift in hours; breaks at 2 h and 4 h fall inside a long enough shift."""
    step: float = 10.0
    """Communication step in seconds; every input is held constant over a step."""
    out: Path = Path("runs/fmu_shift")
    """Folder for the CSV trajectories and the PNG plot."""
    parts_per_tool: int = 40
    """Planned tool change on the mill after this many parts."""
    part_mass: float = 12.0
    """Mass of one part on the conveyor, kg (tote included)."""
    seed: int = 0
    """Seed of the small random variation in handling times."""

    def __post_init__(self) -> None:
        if not 0.1 <= self.hours <= 24.0:
            raise ValueError(f"--hours {self.hours} must be between 0.1 and 24")
        if not 0.1 <= self.step <= 60.0:
            raise ValueError(f"--step {self.step} must be between 0.1 and 60 seconds")
        if self.parts_per_tool < 1:
            raise ValueError(f"--parts-per-tool {self.parts_per_tool} must be at least 1")
        if not 0.0 < self.part_mass <= 100.0:
            raise ValueError(f"--part-mass {self.part_mass} must be in (0, 100] kg")


# (start hour, end hour) of the breaks, relative to the start of the shift
BREAKS = ((2.0, 2.25), (4.0, 4.5))
WARM_UP_S = 900.0


def shift_inputs(
    config: DemoConfig, cycle_time_s: float, cutting_time_s: float, transport_time_s: float
) -> dict[str, dict[str, np.ndarray]]:
    """Per-step input values for each FMU (arrays of length n_steps)."""
    n_steps = round(config.hours * 3600.0 / config.step)
    t = np.arange(n_steps) * config.step  # start of each step
    rng = np.random.default_rng(config.seed)
    on_break = np.zeros(n_steps, dtype=bool)
    for start, end in BREAKS:
        on_break |= (t >= start * 3600.0) & (t < end * 3600.0)
    producing = (t >= WARM_UP_S) & ~on_break & (t < n_steps * config.step - 600.0)

    mill_mode = np.where(on_break, MILL_STANDBY, MILL_IDLE)
    tool_change = np.zeros(n_steps, dtype=bool)
    finished: list[float] = []
    clock, parts = WARM_UP_S, 0
    handling = cycle_time_s - cutting_time_s
    while clock < t[-1]:
        end_cut = clock + cutting_time_s
        window = (t >= clock - config.step) & (t < end_cut)
        if not producing[window].all() or end_cut > t[-1]:  # start only parts that fit
            clock += config.step
            continue
        mill_mode[(t >= clock) & (t < end_cut)] = MILL_CUTTING
        parts += 1
        finished.append(end_cut)
        clock = end_cut + handling * rng.uniform(0.9, 1.3)
        if parts % config.parts_per_tool == 0:
            tool_change[(t >= clock) & (t < clock + 180.0)] = True  # 3 min tool change
            clock += 180.0
    mill_mode[t >= n_steps * config.step - 600.0] = MILL_OFF

    on_belt = np.zeros(n_steps)
    for done in finished:
        on_belt[(t >= done) & (t < done + transport_time_s)] += 1
    ambient = 18.0 + 8.0 * np.clip(t / (8 * 3600.0), 0.0, 1.0)  # the hall warms up
    robot_mode = np.where(producing, ROBOT_RUNNING, np.where(on_break, ROBOT_STANDBY, ROBOT_IDLE))
    return {
        "CncMill": {
            "mode": mill_mode,
            "spindle_speed": np.full(n_steps, 1300.0),
            "feed_per_tooth": np.full(n_steps, 0.15),
            "tool_change": tool_change,
            "ambient_temperature": ambient,
        },
        "Conveyor": {
            "running": producing,
            "belt_speed": np.full(n_steps, 0.3),
            "load_mass": on_belt * config.part_mass,
            "ambient_temperature": ambient,
        },
        "RobotCell": {
            "mode": robot_mode,
            "speed_override": np.full(n_steps, 0.8),
            "payload": np.full(n_steps, config.part_mass),
            "gripper_service": np.zeros(n_steps, dtype=bool),
            "ambient_temperature": ambient,
        },
    }


def input_signal(values: dict[str, np.ndarray], step: float) -> np.ndarray:
    """FMPy input array that holds each value constant over its step."""
    n_steps = len(next(iter(values.values())))
    times = np.repeat(np.arange(n_steps + 1) * step, 2)[1:-1]  # duplicate times: step changes
    dtype = [("time", np.float64)] + [
        (
            name,
            np.bool_
            if column.dtype == bool
            else np.int32
            if np.issubdtype(column.dtype, np.integer)
            else np.float64,
        )
        for name, column in values.items()
    ]
    signal = np.zeros(len(times), dtype=dtype)
    signal["time"] = times
    for name, column in values.items():
        signal[name] = np.repeat(column, 2)
    return signal


OUTPUTS = {
    "CncMill": [
        "power",
        "energy",
        "spindle_temperature",
        "tool_wear",
        "vibration_rms",
        "hazard_rate",
        "defect_probability",
        "parts_machined",
    ],
    "Conveyor": ["power", "energy", "motor_temperature", "hazard_rate", "tractive_force"],
    "RobotCell": [
        "power",
        "energy",
        "joint_temperature",
        "wear",
        "hazard_rate",
        "cycles_completed",
    ],
}
TEMPERATURE = {
    "CncMill": "spindle_temperature",
    "Conveyor": "motor_temperature",
    "RobotCell": "joint_temperature",
}
WEAR = {"CncMill": ("tool_wear", "mm"), "Conveyor": None, "RobotCell": ("wear", "")}
PRODUCTIVE = {
    "CncMill": ("mode", MILL_CUTTING),
    "Conveyor": ("running", True),
    "RobotCell": ("mode", ROBOT_RUNNING),
}


def simulate(
    fmu_file: Path, values: dict[str, np.ndarray], outputs: list[str], step: float, progress
) -> np.ndarray:
    import fmpy

    n_steps = len(next(iter(values.values())))

    def advance(_time, _recorder) -> bool:
        progress.update(1)
        return True

    return fmpy.simulate_fmu(
        str(fmu_file),
        stop_time=n_steps * step,
        step_size=step,
        output_interval=step,
        input=input_signal(values, step),
        output=outputs,
        step_finished=advance,
    )


def summarise(name: str, result: np.ndarray, values: dict[str, np.ndarray], step: float) -> dict:
    power = result["power"][1:]  # power over each step (inputs are held over the step)
    column, productive_value = PRODUCTIVE[name]
    productive = values[column] == productive_value
    energy = float(result["energy"][-1])
    wear = WEAR[name]
    summary = {
        "model": name,
        "energy_kwh": energy,
        "peak_kw": float(power.max()),
        "mean_kw": float(power.mean()),
        "non_productive_share": float(power[~productive].sum() * step / 3600.0 / energy)
        if energy > 0
        else 0.0,
        "final_temp_c": float(result[TEMPERATURE[name]][-1]),
        "max_temp_c": float(result[TEMPERATURE[name]].max()),
        "max_wear": f"{result[wear[0]].max():.3f} {wear[1]}".strip() if wear else "-",
        "max_hazard_per_h": float(result["hazard_rate"].max()),
    }
    if name == "CncMill":
        summary["output"] = f"{result['parts_machined'][-1]:.1f} parts"
    elif name == "RobotCell":
        summary["output"] = f"{result['cycles_completed'][-1]:.0f} cycles"
    else:
        summary["output"] = f"{result['tractive_force'].max():.0f} N peak force"
    return summary


def format_table(rows: list[dict]) -> str:
    columns = [
        ("model", "model", "{}"),
        ("energy_kwh", "energy kWh", "{:.2f}"),
        ("peak_kw", "peak kW", "{:.2f}"),
        ("mean_kw", "mean kW", "{:.2f}"),
        ("non_productive_share", "idle energy", "{:.0%}"),
        ("final_temp_c", "final °C", "{:.1f}"),
        ("max_temp_c", "max °C", "{:.1f}"),
        ("max_wear", "max wear", "{}"),
        ("max_hazard_per_h", "max hazard 1/h", "{:.2e}"),
        ("output", "output", "{}"),
    ]
    cells = [[title for _, title, _ in columns]]
    cells += [[fmt.format(row[key]) for key, _, fmt in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def plot(results: dict[str, np.ndarray], destination: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, len(results), figsize=(5 * len(results), 9), sharex=True)
    for column, (name, result) in enumerate(results.items()):
        hours = result["time"] / 3600.0
        axes[0, column].plot(hours, result["power"], lw=0.8)
        axes[0, column].set_title(name)
        axes[0, column].set_ylabel("power [kW]")
        axes[1, column].plot(hours, result[TEMPERATURE[name]], color="tab:red")
        axes[1, column].set_ylabel(f"{TEMPERATURE[name].replace('_', ' ')} [°C]")
        if WEAR[name]:
            wear, unit = WEAR[name]
            axes[2, column].plot(hours, result[wear], color="tab:brown")
            axes[2, column].set_ylabel(f"{wear.replace('_', ' ')} [{unit or '1'}]")
        else:
            axes[2, column].plot(hours, result["tractive_force"], color="tab:green", lw=0.8)
            axes[2, column].set_ylabel("tractive force [N]")
        axes[2, column].set_xlabel("time in shift [h]")
        for row in range(3):
            for start, end in BREAKS:
                axes[row, column].axvspan(start, end, color="0.9", zorder=0)
    figure.suptitle("One shift of each shipped FMU (grey: breaks)")
    figure.tight_layout()
    figure.savefig(destination, dpi=110)
    plt.close(figure)


def write_csv(result: np.ndarray, destination: Path) -> None:
    header = ",".join(result.dtype.names)
    np.savetxt(
        destination,
        np.column_stack([result[n] for n in result.dtype.names]),
        delimiter=",",
        header=header,
        comments="",
        fmt="%.9g",
    )


def run(config: DemoConfig) -> list[dict]:
    import fmpy
    from tqdm import tqdm

    started = time.perf_counter()
    files = {name: fmus.path(name) for name in fmus.names()}
    mill = fmpy.simulate_fmu(
        str(files["CncMill"]),
        stop_time=config.step,
        step_size=config.step,
        output=["cycle_time", "cutting_time"],
    )
    conveyor = fmpy.simulate_fmu(
        str(files["Conveyor"]),
        stop_time=config.step,
        step_size=config.step,
        output=["transport_time"],
    )
    inputs = shift_inputs(
        config,
        float(mill["cycle_time"][0]),
        float(mill["cutting_time"][0]),
        float(conveyor["transport_time"][0]),
    )
    n_steps = round(config.hours * 3600.0 / config.step)
    config.out.mkdir(parents=True, exist_ok=True)
    results, rows = {}, []
    with tqdm(total=n_steps * len(files), desc="simulating", unit="step") as progress:
        for name, fmu_file in files.items():
            progress.set_postfix_str(name)
            results[name] = simulate(fmu_file, inputs[name], OUTPUTS[name], config.step, progress)
            rows.append(summarise(name, results[name], inputs[name], config.step))
            write_csv(results[name], config.out / f"{name}.csv")
    plot(results, config.out / "shift_trajectories.png")
    print()
    print(f"One shift: {config.hours:g} h in {config.step:g} s steps")
    print(format_table(rows))
    print(
        f"\nWrote {config.out / 'shift_trajectories.png'} and one CSV per model "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return rows


def parse_args(argv: list[str] | None = None) -> DemoConfig:
    defaults = DemoConfig()
    parser = argparse.ArgumentParser(
        description="Simulate one shift of every shipped FMU (CNC mill, conveyor, robot cell) "
        "under a realistic production profile; print a KPI summary and write CSV + PNG.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--hours",
        type=float,
        default=defaults.hours,
        help="shift length in hours (0.1-24); breaks at 2 h and 4 h",
    )
    parser.add_argument(
        "--step", type=float, default=defaults.step, help="communication step in seconds (0.1-60)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=defaults.out,
        help="folder for the CSV trajectories and shift_trajectories.png",
    )
    parser.add_argument(
        "--parts-per-tool",
        type=int,
        default=defaults.parts_per_tool,
        help="planned tool change on the mill after this many parts",
    )
    parser.add_argument(
        "--part-mass",
        type=float,
        default=defaults.part_mass,
        help="mass of one part on the conveyor in kg",
    )
    parser.add_argument(
        "--seed", type=int, default=defaults.seed, help="seed for the variation of handling times"
    )
    args = parser.parse_args(argv)
    try:
        return DemoConfig(
            hours=args.hours,
            step=args.step,
            out=args.out,
            parts_per_tool=args.parts_per_tool,
            part_mass=args.part_mass,
            seed=args.seed,
        )
    except ValueError as error:
        parser.error(str(error))


def main(argv: list[str] | None = None) -> int:
    try:
        run(parse_args(argv))
    except fmus.FmuBuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
