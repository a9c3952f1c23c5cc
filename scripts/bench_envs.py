"""Benchmark the FMU env against a hand-written FMPy loop (the floor), in one run.

Prints steps/s and reset cost of:
  floor       one FMPy FMU2Slave: setReal / doStep / getReal, reset = setFMUstate
  unit        envs.FmuUnit with RealIO.exchange (the layer under the env)
  env         gymnasium.make("twinfactory/Fmu-v0") with Gymnasium's default wrappers
  worker      the env with isolated=True (FMU in a child process; timed on a tenth)
  vector      gymnasium.make_vec(..., "async") with 1 and 2 workers (total steps/s)
and the reset cost of each rung of the reset ladder (snapshot, fmiReset, new instance), then
twinfactory/ProductionLine-v0's steps/s with a profile of where a step's time goes.
The single-env variants run in interleaved rounds and each figure is the median over rounds,
so that noise from the machine hits every variant alike.

    python scripts/bench_envs.py                      # CncMill, 1 s steps
    python scripts/bench_envs.py --fmu Conveyor --steps 50000 --json runs/bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import fmus  # noqa: E402
from envs.atomic import write_atomic  # noqa: E402

# inputs and outputs exchanged each step, per shipped model
SIGNALS = {
    "CncMill": (["spindle_speed", "feed_per_tooth"], ["power", "spindle_temperature", "tool_wear"]),
    "Conveyor": (["belt_speed", "load_mass"], ["power", "motor_temperature"]),
    "RobotCell": (["speed_override", "payload"], ["power", "joint_temperature", "wear"]),
}


@dataclass(frozen=True)
class BenchConfig:
    fmu: str = "CncMill"
    """Shipped model to benchmark (CncMill, Conveyor or RobotCell)."""
    step_size: float = 1.0
    """Communication step in seconds."""
    steps: int = 20_000
    """Steps timed per single-env variant."""
    resets: int = 2_000
    """Resets timed per reset variant."""
    vector_steps: int = 2_000
    """Vector steps timed per async variant."""
    rounds: int = 5
    """Interleaved rounds; each figure is the median over rounds."""
    line_steps: int = 600
    """ProductionLine-v0 steps timed bare, then as many profiled (from Monday 06:00)."""
    json: Path | None = None
    """Also write the figures to this JSON file."""


def _action(name: str, inputs: list[str]) -> np.ndarray:
    import fmpy

    description = fmpy.read_model_description(str(fmus.path(name)))
    starts = {v.name: float(v.start) for v in description.modelVariables if v.name in inputs}
    return np.array([starts[n] for n in inputs])


class FloorLoop:
    """The minimal FMPy loop: what a user writes by hand following FMPy's efficient_loops."""

    name = "floor"

    def __init__(self, config: BenchConfig, inputs, outputs, action) -> None:
        import fmpy
        from fmpy.fmi2 import FMU2Slave

        path = str(fmus.path(config.fmu))
        description = fmpy.read_model_description(path)
        self.unzipdir = fmpy.extract(path)
        refs = {v.name: v.valueReference for v in description.modelVariables}
        self.vr_in, self.vr_out = [refs[n] for n in inputs], [refs[n] for n in outputs]
        self.fmu = FMU2Slave(
            guid=description.guid,
            unzipDirectory=self.unzipdir,
            modelIdentifier=description.coSimulation.modelIdentifier,
        )
        self.fmu.instantiate()
        self.fmu.setupExperiment(startTime=0.0)
        self.fmu.enterInitializationMode()
        self.fmu.exitInitializationMode()
        self.initial = self.fmu.getFMUstate()
        self.values, self.dt, self.k = action.tolist(), config.step_size, 0

    def steps(self, count: int) -> None:
        fmu, vr_in, vr_out, values, dt = self.fmu, self.vr_in, self.vr_out, self.values, self.dt
        for _ in range(count):
            fmu.setReal(vr_in, values)
            fmu.doStep(currentCommunicationPoint=self.k * dt, communicationStepSize=dt)
            fmu.getReal(vr_out)
            self.k += 1

    def resets(self, count: int) -> None:
        for _ in range(count):
            self.fmu.setFMUstate(self.initial)
            self.fmu.getReal(self.vr_out)
        self.k = 0

    def close(self) -> None:
        import shutil

        self.fmu.freeFMUstate(self.initial)
        self.fmu.terminate()
        self.fmu.freeInstance()
        shutil.rmtree(self.unzipdir, ignore_errors=True)


class UnitLoop:
    """envs.FmuUnit with RealIO.exchange: the layer under the env."""

    name = "unit"

    def __init__(self, config: BenchConfig, inputs, outputs, action) -> None:
        from envs.fmu import FmuUnit

        self.unit = FmuUnit(fmus.path(config.fmu))
        self.io = self.unit.real_io(inputs, outputs)
        self.action, self.dt, self.k = action, config.step_size, 0

    def steps(self, count: int) -> None:
        io, action, dt = self.io, self.action, self.dt
        for _ in range(count):
            io.exchange(action, dt, self.k * dt)
            self.k += 1

    def resets(self, count: int) -> None:
        for _ in range(count):
            self.unit.reset()
            self.io.read()
        self.k = 0

    def close(self) -> None:
        self.unit.close()


class EnvLoop:
    """gymnasium.make("twinfactory/Fmu-v0") with Gymnasium's default wrappers."""

    name = "env"

    def __init__(self, config: BenchConfig, inputs, outputs, action, isolated=False) -> None:
        import gymnasium

        import envs  # noqa: F401 - registers the envs

        self.env = gymnasium.make(
            "twinfactory/Fmu-v0",
            fmu=fmus.path(config.fmu),
            step_size=config.step_size,
            inputs=inputs,
            outputs=outputs,
            isolated=isolated,
        )
        self.env.reset(seed=0)
        self.action = action
        if isolated:
            self.name = "worker"

    def steps(self, count: int) -> None:
        env, action = self.env, self.action
        for _ in range(count):
            env.step(action)

    def resets(self, count: int) -> None:
        for _ in range(count):
            self.env.reset()

    def close(self) -> None:
        self.env.close()


def timed(operation, count: int) -> float:
    """Seconds per operation."""
    start = time.perf_counter()
    operation(count)
    return (time.perf_counter() - start) / count


def bench_interleaved(loops, steps: int, resets: int, rounds: int, progress) -> dict:
    """Rounds of every loop in turn, so that machine noise hits all alike; median per loop."""
    per_step = {loop.name: [] for loop in loops}
    per_reset = {loop.name: [] for loop in loops}
    for _ in range(rounds):
        for loop in loops:
            scale = 10 if loop.name == "worker" else 1  # a worker round trip is ~1000x slower
            per_step[loop.name].append(timed(loop.steps, max(10, steps // rounds // scale)))
            per_reset[loop.name].append(timed(loop.resets, max(10, resets // rounds // scale)))
            progress.update(1)
    return {
        name: {
            "steps_per_s": 1.0 / float(np.median(per_step[name])),
            "reset_us": float(np.median(per_reset[name])) * 1e6,
        }
        for name in per_step
    }


def bench_ladder(config: BenchConfig, progress) -> dict:
    """Cost of each rung of FmuUnit's reset ladder."""
    from envs.fmu import FmuUnit

    ladder = {}
    with FmuUnit(fmus.path(config.fmu)) as unit:
        # a fixed parameter in the reset values needs re-initialisation: the fmiReset rung
        for rung, values in (("snapshot", {}), ("fmi_reset", {"base_hazard_rate": 1e-3})):
            ladder[rung] = (
                timed(lambda n, v=values: [unit.reset(v) for _ in range(n)], config.resets) * 1e6
            )
            assert unit.last_reset == rung, (unit.last_reset, rung)
            progress.update(1)
    with FmuUnit(fmus.path(config.fmu), reset_ladder=("reinstantiate",)) as unit:
        ladder["reinstantiate"] = (
            timed(lambda n: [unit.reset() for _ in range(n)], max(10, config.resets // 20)) * 1e6
        )
        progress.update(1)
    return ladder


def bench_vector(config: BenchConfig, inputs, outputs, action, workers: int, progress) -> dict:
    import gymnasium

    import envs  # noqa: F401 - registers the envs

    vector = gymnasium.make_vec(
        "twinfactory/Fmu-v0",
        num_envs=workers,
        vectorization_mode="async",
        fmu=str(fmus.path(config.fmu)),
        step_size=config.step_size,
        inputs=inputs,
        outputs=outputs,
    )
    vector.reset(seed=0)
    actions = np.tile(action, (workers, 1))
    seconds = timed(lambda n: [vector.step(actions) for _ in range(n)], config.vector_steps)
    vector.close()
    progress.update(1)
    return {"steps_per_s": workers / seconds}


def bench_line(config: BenchConfig, progress) -> dict:
    """Steps/s of ProductionLine-v0 under the naive policy from Monday 06:00, and where a step's
    time goes (:func:`envs.profiling.profile_steps`: perf_counter accumulators)."""
    import gymnasium

    import envs  # noqa: F401 - registers the envs
    from agents import make_heuristic
    from envs.profiling import PART_LABELS, profile_steps

    env = gymnasium.make("twinfactory/ProductionLine-v0")
    policy = make_heuristic("naive", env)
    try:
        profile = profile_steps(
            env.unwrapped, lambda o: policy.predict(o)[0], config.line_steps, seed=0, skip=72
        )
    finally:
        env.close()
    progress.update(2)
    shares = {PART_LABELS[part]: share for part, share in profile.shares.items()}
    return {"steps_per_s": profile.steps_per_s, "profile_share": shares}


def run(config: BenchConfig) -> dict:
    from tqdm import tqdm

    inputs, outputs = SIGNALS[config.fmu]
    action = _action(config.fmu, inputs)
    rounds = config.rounds
    with tqdm(total=4 * rounds + 7, desc="benchmarking", unit="round") as progress:
        loops = [
            FloorLoop(config, inputs, outputs, action),
            UnitLoop(config, inputs, outputs, action),
            EnvLoop(config, inputs, outputs, action),
            EnvLoop(config, inputs, outputs, action, isolated=True),
        ]
        try:
            results = bench_interleaved(loops, config.steps, config.resets, rounds, progress)
        finally:
            for loop in loops:
                loop.close()
        results["unit"]["ladder_us"] = bench_ladder(config, progress)
        for workers in (1, 2):
            results[f"vector_async_{workers}"] = bench_vector(
                config, inputs, outputs, action, workers, progress
            )
        line = bench_line(config, progress)
    floor = results["floor"]["steps_per_s"]
    print(
        f"\n{config.fmu}, step {config.step_size:g} s, {len(inputs)} inputs, "
        f"{len(outputs)} outputs per step"
    )
    print(f"{'variant':<18}{'steps/s':>12}{'x floor':>9}{'reset µs':>11}")
    for name, figures in results.items():
        reset = figures.get("reset_us")
        print(
            f"{name:<18}{figures['steps_per_s']:>12,.0f}{figures['steps_per_s'] / floor:>9.2f}"
            f"{'' if reset is None else f'{reset:>11.1f}'}"
        )
    print(
        "reset ladder (FmuUnit): "
        + ", ".join(f"{rung} {us:,.1f} µs" for rung, us in results["unit"]["ladder_us"].items())
    )
    print(
        f"\nProductionLine-v0 (default scenario, naive policy): {line['steps_per_s']:,.0f} "
        f"steps/s = {line['steps_per_s'] * 300 / 3600:,.0f} simulated hours per second"
    )
    print("where a step's time goes (envs.profiling, perf_counter accumulators):")
    for group, share in line["profile_share"].items():
        print(f"  {group:<32}{share:>6.0%}")
    results["production_line"] = line
    if config.json:
        payload = {"config": {k: str(v) for k, v in asdict(config).items()}, "results": results}
        write_atomic(config.json, json.dumps(payload, indent=2))
        print(f"wrote {config.json}")
    return results


def parse_args(argv: list[str] | None = None) -> BenchConfig:
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        description="Steps/s and reset cost of twinfactory/Fmu-v0 against a minimal FMPy loop "
        "(the floor), the FmuUnit layer, an isolated worker and async vector envs, in one run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--fmu", choices=sorted(SIGNALS), default=defaults.fmu, help="shipped model to benchmark"
    )
    parser.add_argument(
        "--step-size", type=float, default=defaults.step_size, help="communication step in seconds"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=defaults.steps,
        help="steps timed per single-env variant (the worker runs a tenth)",
    )
    parser.add_argument(
        "--resets", type=int, default=defaults.resets, help="resets timed per reset variant"
    )
    parser.add_argument(
        "--vector-steps",
        type=int,
        default=defaults.vector_steps,
        help="vector steps timed per async variant",
    )
    parser.add_argument(
        "--line-steps",
        type=int,
        default=defaults.line_steps,
        help="ProductionLine-v0 steps timed bare, then as many profiled (from Monday 06:00)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=defaults.rounds,
        help="interleaved rounds of all variants; figures are medians",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this JSON file"
    )
    args = parser.parse_args(argv)
    for option in ("steps", "resets", "vector_steps", "rounds", "line_steps"):
        if getattr(args, option) < (1 if option == "rounds" else 10):
            parser.error(f"--{option.replace('_', '-')} is too small")
    if args.line_steps > 2016 - 72:
        parser.error("--line-steps must be at most 1944 (the week after Monday 06:00)")
    if not args.step_size > 0:
        parser.error("--step-size must be positive")
    return BenchConfig(
        fmu=args.fmu,
        step_size=args.step_size,
        steps=args.steps,
        resets=args.resets,
        vector_steps=args.vector_steps,
        rounds=args.rounds,
        line_steps=args.line_steps,
        json=args.json,
    )


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
