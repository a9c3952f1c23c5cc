"""Where a production-line env step's time goes, measured with ``time.perf_counter`` accumulators,
and what a line of N machines costs (:class:`LineCost`: env steps, optimiser evaluations, memory;
``scripts/bench_scaling.py`` measures 7, 30 and 100 machines).

:func:`profile_steps` runs seeded steps of a :class:`envs.line_env.ProductionLineEnv` twice: once
bare (the step time a user sees) and once instrumented, with timers wrapped around

- every C call into an FMU: the ctypes prototypes of :mod:`envs.fmu.fast_io` (set/get Float64,
  set Integer/Boolean, doStep) and FMPy's table of bound C functions (anything that still goes
  through FMPy) — **FMU calls**, the time spent inside the FMUs'
  functions (with ctypes' argument conversion, which is part of any call);
- the line's FMU exchange methods (each machine's ``send_inputs``/``pull_outputs`` and
  ``push_inputs``/``write_speed``, each conveyor's ``push_inputs``/``pull_energy``) and the
  co-simulation's ``step`` — minus the FMU calls inside them, **FMU layer (Python)**: the
  Python around the C calls (RealIO, ``FmuUnit.step``, the co-simulation clock, the mode and
  edge logic of the inputs);
- ``ProductionLine.advance`` — minus the two above, **discrete-event logic** (orders, buffers,
  conveyors' parts, failures, repairs, the interval sums);
- ``env.step`` — minus ``advance``, **env: action, observation, KPIs** (decoding the action, the
  KPI ledger, the info dicts, the observation vector).

Each timer costs a little; that cost is measured on the spot (:func:`timer_overhead_s`: a timed
call of a trivial C function against a bare one) and subtracted: the part inside a timer's own
window from the timed part, the rest from the part that encloses the timer, so the parts add up
to the instrumented step minus the timers' cost (compare with the bare ``step_s``). The
policy's own time is not part of a step. Wrappers are set on the env's instances only and
removed afterwards; the simulation is the same with and without them (they return what they
wrap).
"""

from __future__ import annotations

import ctypes
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from envs.line_env import ProductionLineEnv

__all__ = [
    "PARTS",
    "LineCost",
    "StepProfile",
    "TimerCost",
    "format_table",
    "peak_rss_mb",
    "plot_cost_per_machine",
    "profile_steps",
    "rss_mb",
    "time_steps",
    "timer_overhead_s",
]

PARTS = ("fmu_calls", "fmu_layer", "discrete_event", "env")
"""The parts of a step, in the order of the module docstring."""
PART_LABELS = {
    "fmu_calls": "FMU calls (C)",
    "fmu_layer": "FMU layer (Python)",
    "discrete_event": "discrete-event logic",
    "env": "env: action, observation, KPIs",
}
Policy = Callable[[np.ndarray], np.ndarray]
"""Observation → action."""
_FMPY_C_PREFIXES = ("fmi2Set", "fmi2Get", "fmi3Set", "fmi3Get")


@dataclass(frozen=True)
class StepProfile:
    """Cost of one env step of a line (times in seconds per step)."""

    machines: int
    steps: int
    step_s: float
    """Mean wall time of a bare ``env.step`` (no timers)."""
    step_cpu_s: float
    """Mean process CPU time of a bare ``env.step`` (less sensitive to other processes)."""
    parts_s: dict[str, float]
    """Per step, from the instrumented run with the timers' cost subtracted (:data:`PARTS`)."""
    instrumented_step_s: float
    """Mean wall time of an instrumented step, timers included."""
    fmu_calls_per_step: float
    timer_cost_s: float
    """Cost of one timer, subtracted per timed call."""

    @property
    def shares(self) -> dict[str, float]:
        """Each part over the sum of the parts."""
        total = sum(self.parts_s.values())
        return {part: seconds / total for part, seconds in self.parts_s.items()}

    @property
    def steps_per_s(self) -> float:
        return 1.0 / self.step_s

    @property
    def step_s_per_machine(self) -> float:
        return self.step_s / self.machines

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "shares": self.shares,
            "steps_per_s": self.steps_per_s,
            "step_s_per_machine": self.step_s_per_machine,
        }


class _Accumulator:
    """Seconds and calls summed over timed calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        clock = time.perf_counter

        def timed(*args: Any) -> Any:
            start = clock()
            result = function(*args)
            self.seconds += clock() - start
            self.calls += 1
            return result

        for name in ("argnames", "argtypes", "restype"):  # FMPy's _call reads these
            if hasattr(function, name):
                setattr(timed, name, getattr(function, name))
        return timed


@dataclass(frozen=True)
class TimerCost:
    """What one timer adds to a timed call, seconds: in all, and inside its own window."""

    total_s: float
    inside_s: float


def timer_overhead_s(calls: int = 20_000) -> TimerCost:
    """The cost of one :class:`_Accumulator` timer: a timed ``labs`` of libc against a bare one,
    median of 5 rounds (``inside_s``: the part of it that the timer's own window measures)."""
    libc = ctypes.CDLL(None)
    bare = libc.labs
    bare.restype, bare.argtypes = ctypes.c_long, [ctypes.c_long]
    totals, insides = [], []
    for _ in range(5):
        timer = _Accumulator()
        timed = timer.wrap(bare)
        start = time.perf_counter()
        for _ in range(calls):
            bare(3)
        middle = time.perf_counter()
        for _ in range(calls):
            timed(3)
        bare_s = (middle - start) / calls
        totals.append((time.perf_counter() - middle) / calls - bare_s)
        insides.append(timer.seconds / calls - bare_s)
    total = max(0.0, float(np.median(totals)))
    return TimerCost(total, min(total, max(0.0, float(np.median(insides)))))


_MISSING = object()


@contextmanager
def _patched(patches: list[tuple[Any, str, Any]]) -> Iterator[None]:
    """Set ``(owner, key, value)`` (an instance attribute, or an item of a dict owner) for the
    duration; everything set is put back afterwards, also when setting fails half-way."""
    saved: list[tuple[Any, str, Any]] = []
    try:
        for owner, key, value in patches:
            if isinstance(owner, dict):
                saved.append((owner, key, owner[key]))
                owner[key] = value
            else:
                saved.append((owner, key, vars(owner).get(key, _MISSING)))
                setattr(owner, key, value)
        yield
    finally:
        for owner, key, value in reversed(saved):
            if isinstance(owner, dict):
                owner[key] = value
            elif value is _MISSING:
                delattr(owner, key)
            else:
                setattr(owner, key, value)


def _timers(env: ProductionLineEnv) -> tuple[dict[str, _Accumulator], list[tuple[Any, str, Any]]]:
    line = env.line
    timers = {name: _Accumulator() for name in ("fmu", "exchange", "advance", "step")}
    patches: list[tuple[Any, str, Any]] = []
    units = [m.unit for m in line.machines] + [c.unit for c in line.conveyors if c is not None]
    for unit in units:
        fast = unit._fast
        for name in ("set_real", "get_real", "do_step_c", "set_integer", "set_boolean"):
            if getattr(fast, name, None) is not None:
                patches.append((fast, name, timers["fmu"].wrap(getattr(fast, name))))
        functions = unit._fmu._functions
        for name in functions:
            if name.startswith(_FMPY_C_PREFIXES):
                patches.append((functions, name, timers["fmu"].wrap(functions[name])))
    exchange = timers["exchange"]
    for machine in line.machines:
        for name in ("send_inputs", "push_inputs", "write_speed", "pull_outputs"):
            if hasattr(machine, name):
                patches.append((machine, name, exchange.wrap(getattr(machine, name))))
    for conveyor in line.conveyors:
        if conveyor is not None:
            for name in ("push_inputs", "pull_energy"):
                patches.append((conveyor, name, exchange.wrap(getattr(conveyor, name))))
    patches.append((line.system, "step", exchange.wrap(line.system.step)))
    patches.append((line, "advance", timers["advance"].wrap(line.advance)))
    return timers, patches


def _start(env: ProductionLineEnv, policy: Policy, seed: int, skip: int) -> np.ndarray:
    """``reset(seed)``, then ``skip`` untimed steps; returns the observation."""
    observation, _ = env.reset(seed=seed)
    for _ in range(skip):
        observation, *_ = env.step(policy(observation))
    return observation


def time_steps(
    env: ProductionLineEnv, policy: Policy, steps: int, *, seed: int = 0, skip: int = 0
) -> tuple[float, float]:
    """Mean (wall, process CPU) seconds per bare ``env.step`` over ``steps`` steps after
    ``reset(seed)`` and ``skip`` untimed steps (the policy's time excluded)."""
    observation = _start(env, policy, seed, skip)
    wall = cpu = 0.0
    clock, cpu_clock = time.perf_counter, time.process_time
    for _ in range(steps):
        action = policy(observation)
        start, cpu_start = clock(), cpu_clock()
        observation, *_ = env.step(action)
        wall += clock() - start
        cpu += cpu_clock() - cpu_start
    return wall / steps, cpu / steps


def profile_steps(
    env: ProductionLineEnv, policy: Policy, steps: int, *, seed: int = 0, skip: int = 0
) -> StepProfile:
    """Time ``steps`` bare steps, then the same seeded steps instrumented (module docstring);
    each run starts with ``reset(seed)`` and ``skip`` untimed steps (e.g. 72: to Monday 06:00,
    the first shift, when the default line starts work)."""
    if not (steps >= 1 and skip >= 0 and steps + skip <= env.horizon_steps):
        raise ValueError(
            f"steps ({steps}) >= 1 plus skip ({skip}) >= 0 must fit in one episode of this env "
            f"({env.horizon_steps} steps)"
        )
    bare, bare_cpu = time_steps(env, policy, steps, seed=seed, skip=skip)
    cost = timer_overhead_s()
    timers, patches = _timers(env)
    step_timer = timers["step"]
    timed_step = step_timer.wrap(env.step)
    observation = _start(env, policy, seed, skip)
    with _patched(patches):
        for _ in range(steps):
            observation, *_ = timed_step(policy(observation))
    fmu, exchange, advance = timers["fmu"], timers["exchange"], timers["advance"]
    outside = cost.total_s - cost.inside_s  # what a timer costs its caller's window
    fmu_calls = fmu.seconds - fmu.calls * cost.inside_s
    fmu_layer = exchange.seconds - fmu.seconds - fmu.calls * outside
    fmu_layer -= exchange.calls * cost.inside_s
    discrete = advance.seconds - exchange.seconds - exchange.calls * outside
    discrete -= advance.calls * cost.inside_s
    env_part = step_timer.seconds - advance.seconds - advance.calls * outside
    env_part -= step_timer.calls * cost.inside_s
    parts = {
        "fmu_calls": fmu_calls / steps,
        "fmu_layer": fmu_layer / steps,
        "discrete_event": discrete / steps,
        "env": env_part / steps,
    }
    return StepProfile(
        machines=len(env.line.machines),
        steps=steps,
        step_s=bare,
        step_cpu_s=bare_cpu,
        parts_s={part: max(0.0, seconds) for part, seconds in parts.items()},
        instrumented_step_s=step_timer.seconds / steps,
        fmu_calls_per_step=fmu.calls / steps,
        timer_cost_s=cost.total_s,
    )


def rss_mb() -> float:
    """Resident memory of this process now, MiB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (``getrusage``: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- cost of a line of N machines: one record, a table, a picture -------------------------------


@dataclass(frozen=True)
class LineCost:
    """What a line of ``machines`` machines costs: an env step (:class:`StepProfile`), an
    optimiser evaluation, and memory."""

    profile: StepProfile
    evaluations_per_s: float
    """Plans simulated per second (one seed, ``evaluation_horizon_h`` each), serial."""
    evaluation_horizon_h: float
    line_rss_mb: float
    """Resident memory the env added when it was built and stepped, MiB."""
    peak_rss_mb: float
    """Peak resident memory of the measuring process, MiB."""

    @property
    def machines(self) -> int:
        return self.profile.machines

    def as_dict(self) -> dict[str, Any]:
        return {
            "machines": self.machines,
            "profile": self.profile.as_dict(),
            "evaluations_per_s": self.evaluations_per_s,
            "evaluation_horizon_h": self.evaluation_horizon_h,
            "evaluation_s_per_machine": 1.0 / self.evaluations_per_s / self.machines,
            "line_rss_mb": self.line_rss_mb,
            "peak_rss_mb": self.peak_rss_mb,
        }


def format_table(costs: list[LineCost]) -> str:
    """One row per line: steps/s, wall and process-CPU ms per step, µs per machine per step
    (bare, wall), the parts' shares, optimiser evaluations/s and ms per machine, memory."""
    header = (
        f"{'machines':>8} {'steps/s':>8} {'ms/step':>8} {'cpu ms':>7} {'µs/mach':>8} "
        + " ".join(f"{label.split(':')[0][:14]:>14}" for label in PART_LABELS.values())
        + f" {'evals/s':>8} {'ms/eval/mach':>12} {'line MiB':>9} {'peak MiB':>9}"
    )
    rows = [header]
    for cost in costs:
        profile = cost.profile
        shares = profile.shares
        rows.append(
            f"{cost.machines:>8} {profile.steps_per_s:>8.1f} {profile.step_s * 1e3:>8.2f} "
            f"{profile.step_cpu_s * 1e3:>7.2f} "
            f"{profile.step_s_per_machine * 1e6:>8.0f} "
            + " ".join(f"{shares[part]:>14.0%}" for part in PARTS)
            + f" {cost.evaluations_per_s:>8.2f} "
            f"{1e3 / cost.evaluations_per_s / cost.machines:>12.1f} "
            f"{cost.line_rss_mb:>9.1f} {cost.peak_rss_mb:>9.1f}"
        )
    return "\n".join(rows)


def plot_cost_per_machine(costs: list[LineCost], path: Any) -> None:
    """A PNG: µs per machine per env step against the machine count, stacked by part (the
    instrumented parts scaled to the bare step time), with the evaluation cost per machine."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from envs.atomic import atomic_path

    labels = [str(cost.machines) for cost in costs]
    figure, (steps, evaluations) = plt.subplots(1, 2, figsize=(10, 4))
    bottom = np.zeros(len(costs))
    for part in PARTS:
        heights = np.array(
            [c.profile.shares[part] * c.profile.step_s_per_machine * 1e6 for c in costs]
        )
        steps.bar(labels, heights, bottom=bottom, label=PART_LABELS[part])
        bottom += heights
    steps.set_xlabel("machines in the line")
    steps.set_ylabel("µs per machine per env step")
    steps.set_title("env step (heuristic policy excluded)")
    steps.legend(fontsize=8)
    evaluations.bar(labels, [1e3 / c.evaluations_per_s / c.machines for c in costs])
    evaluations.set_xlabel("machines in the line")
    evaluations.set_ylabel("ms per machine per evaluation")
    evaluations.set_title(f"optimiser evaluation ({costs[0].evaluation_horizon_h:g} h, 1 seed)")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
