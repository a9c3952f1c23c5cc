"""Simulate one shift of every shipped FMU under a realistic input profile.

The mill machines engine brackets part after part (cutting, then handling),
gets a planned tool change every ``parts_per_tool`` parts, and stands by
through the two breaks; the conveyor carries each finished part to the robot
cell and stops during breaks; the robot cell welds in cycles while the line
runs. The shop warms up over the shift. Each FMU is simulated with FMPy on
these inputs, the three stepped together as one :class:`envs.CoSimulation` of
:class:`envs.fmu.FmuUnit` s; the energy figures come from :mod:`envs.kpi`. The
script prints a summary table and writes the trajectories (CSV) and a plot (PNG)
under ``--out``.

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
from envs.atomic import atomic_path  # noqa: E402
from envs.cosim import CoSimulation  # noqa: E402
from envs.fmu import FmuUnit  # noqa: E402
from envs.kpi import CostRates, IntervalRecord, KpiLedger, Kpis  # noqa: E402
from envs.machines import FmuMode  # noqa: E402

# the operating modes of both shipped machine models (0 off, 1 standby, 2 idle, 3 working)
OFF, STANDBY, IDLE, WORKING = FmuMode.OFF, FmuMode.STANDBY, FmuMode.IDLE, FmuMode.WORKING


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

    mill_mode = np.where(on_break, STANDBY, IDLE)
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
        mill_mode[(t >= clock) & (t < end_cut)] = WORKING
        parts += 1
        finished.append(end_cut)
        clock = end_cut + handling * rng.uniform(0.9, 1.3)
        if parts % config.parts_per_tool == 0:
            tool_change[(t >= clock) & (t < clock + 180.0)] = True  # 3 min tool change
            clock += 180.0
    mill_mode[t >= n_steps * config.step - 600.0] = OFF

    on_belt = np.zeros(n_steps)
    for done in finished:
        on_belt[(t >= done) & (t < done + transport_time_s)] += 1
    ambient = 18.0 + 8.0 * np.clip(t / (8 * 3600.0), 0.0, 1.0)  # the hall warms up
    robot_mode = np.where(producing, WORKING, np.where(on_break, STANDBY, IDLE))
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
    "Conveyor": ["power", "energy", "tractive_force", "motor_temperature", "hazard_rate"],
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
    "CncMill": ("mode", WORKING),
    "Conveyor": ("running", True),
    "RobotCell": ("mode", WORKING),
}


def simulate(
    files: dict[str, Path], inputs: dict[str, dict[str, np.ndarray]], step: float, progress
) -> dict[str, np.ndarray]:
    """Step every model through its input profile, the three as one co-simulation (no
    connections: the profiles already couple them); each input is held over its step.
    Returns, per model, a structured array of ``time`` and its outputs at every step end
    (and at the start)."""
    n_steps = len(next(iter(next(iter(inputs.values())).values())))
    units = {
        # the first step's inputs are start values, so the t = 0 outputs already see them
        name: FmuUnit(path, start_values={k: v[0].item() for k, v in inputs[name].items()})
        for name, path in files.items()
    }
    system = CoSimulation(units, tick=str(step))
    records = {
        name: np.zeros(
            n_steps + 1, dtype=[("time", np.float64)] + [(o, np.float64) for o in OUTPUTS[name]]
        )
        for name in units
    }

    def record(k: int) -> None:
        for name, unit in units.items():
            row = records[name][k]
            row["time"] = system.time
            for output, value in unit.get_many(OUTPUTS[name]).items():
                row[output] = value

    try:
        record(0)
        for k in range(n_steps):
            for name, unit in units.items():
                unit.set({key: column[k].item() for key, column in inputs[name].items()})
            system.step(step)
            record(k + 1)
            progress.update(1)
    finally:
        system.close()
    return records


def shift_kpis(result: np.ndarray, productive: np.ndarray, step: float) -> Kpis:
    """Energy KPIs of one model over the shift: each step is an interval whose energy is the
    increase of the model's own energy meter, counted as idle energy where the machine is not
    producing (no tariff: the shift reports energy, not cost)."""
    ledger = KpiLedger(CostRates(scrap_per_part=0.0, backlog_per_part_hour=0.0))
    energy = np.diff(result["energy"])
    for used, working in zip(energy.tolist(), productive.tolist(), strict=True):
        used = max(used, 0.0)
        ledger.record(
            IntervalRecord(
                duration_h=step / 3600.0,
                energy_kwh=used,
                energy_price=0.0,
                idle_energy_kwh=0.0 if working else used,
            )
        )
    return ledger.totals


def summarise(name: str, result: np.ndarray, values: dict[str, np.ndarray], step: float) -> dict:
    column, productive_value = PRODUCTIVE[name]
    kpis = shift_kpis(result, values[column] == productive_value, step)
    wear = WEAR[name]
    summary = {
        "model": name,
        "energy_kwh": kpis.energy_kwh,
        "peak_kw": kpis.peak_kw,
        "mean_kw": kpis.energy_kwh / kpis.hours,
        "non_productive_share": kpis.idle_energy_share,
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
    with atomic_path(destination) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)


def write_csv(result: np.ndarray, destination: Path) -> None:
    header = ",".join(result.dtype.names)
    with atomic_path(destination) as temporary:
        np.savetxt(
            temporary,
            np.column_stack([result[n] for n in result.dtype.names]),
            delimiter=",",
            header=header,
            comments="",
            fmt="%.9g",
        )


def run(config: DemoConfig) -> list[dict]:
    from tqdm import tqdm

    started = time.perf_counter()
    files = {name: fmus.path(name) for name in fmus.names()}
    with FmuUnit(files["CncMill"]) as mill, FmuUnit(files["Conveyor"]) as conveyor:
        inputs = shift_inputs(
            config,
            float(mill.get("cycle_time")),
            float(mill.get("cutting_time")),
            float(conveyor.get("transport_time")),
        )
    n_steps = round(config.hours * 3600.0 / config.step)
    config.out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=n_steps, desc="simulating", unit="step") as progress:
        results = simulate(files, inputs, config.step, progress)
    rows = []
    for name, result in results.items():
        rows.append(summarise(name, result, inputs[name], config.step))
        write_csv(result, config.out / f"{name}.csv")
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
