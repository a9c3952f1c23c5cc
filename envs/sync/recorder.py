"""Recording a window of plant data from the emulator (:class:`envs.plant.Plant`), optionally
under an exciting schedule of speed factors, with the ground truth a real plant cannot give:
its noise-free signals and its hidden parameter values at the window's start and end.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from envs.plant import Plant
from envs.scenario import Scenario
from envs.sync.recording import Recording, Setpoints

__all__ = [
    "Schedule",
    "WindowTruth",
    "excitation",
    "intervals_in",
    "record",
    "record_with_signals",
    "record_with_truth",
]

Schedule = Callable[[int], Setpoints]
"""Setpoints (speed factors, maintenance, standby) for decision interval ``k`` (from 0)."""

_EXCITATION_STREAM = 0xE1C17E  # mixes into the plant seed for the excitation generator


def record(
    plant: Plant,
    intervals: int,
    schedule: Schedule | None = None,
    *,
    on_interval: Callable[[], None] | None = None,
) -> Recording:
    """Reset ``plant`` and record ``intervals`` decision intervals under nominal setpoints
    (speed 1, no maintenance, no standby), or under ``schedule(k)`` for decision interval
    ``k`` (e.g. varied speed factors that excite the machines' dynamics). ``on_interval`` is
    called after each decision interval (progress bars)."""
    plant.reset()
    count = len(plant.machine_names)
    speed, off = np.ones(count), np.zeros(count, dtype=bool)
    samples: list[dict[str, float]] = []
    setpoints: list[Setpoints] = []
    for k in range(intervals):
        if schedule is not None:
            speed, maintenance, standby = (np.asarray(a) for a in schedule(k))
            speed = speed.astype(float)
            maintenance, standby = maintenance.astype(bool), standby.astype(bool)
        else:
            maintenance = standby = off
        plant.apply(speed_factors=speed, maintenance=maintenance, standby=standby)
        plant.advance()
        # a maintenance request acts at the start of the decision interval only
        setpoints.append((speed, maintenance, standby))
        setpoints += [(speed, np.zeros(count, dtype=bool), standby)] * (len(plant.samples) - 1)
        samples += plant.samples
        if on_interval is not None:
            on_interval()
    return Recording(
        start_s=plant.config.start_h * 3600.0,
        seed=plant.config.seed,
        sample_interval_s=plant.config.sample_interval_s,
        samples=tuple(samples),
        setpoints=tuple(setpoints),
        scenario=plant.config.scenario,
    )


def excitation(scenario: Scenario, seed: int) -> Schedule:
    """A seeded schedule of random speed factors, uniform in each machine's speed range and
    redrawn every decision interval (no maintenance, no standby)."""
    rng = np.random.default_rng([seed, _EXCITATION_STREAM])
    ranges = np.array([station.speed_range for _, station in scenario.machines()])
    count = len(ranges)

    def schedule(k: int) -> Setpoints:
        speed = rng.uniform(ranges[:, 0], ranges[:, 1])
        return speed, np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)

    return schedule


@dataclass(frozen=True)
class WindowTruth:
    """The emulated plant's hidden values over a recorded window (tests and evaluation)."""

    start: dict[str, dict[str, float]]
    """:meth:`envs.plant.Plant.fmu_values` at the window's start, per machine."""
    end: dict[str, dict[str, float]]
    """The same at its end (differs where a drift event changed a value)."""
    drift: tuple[str, ...] = ()
    """The drift events that happened in the window, in words."""


def intervals_in(hours: float, decision_interval_s: float, *, option: str = "hours") -> int:
    """``hours`` as a whole number (>= 1) of decision intervals; ``ValueError`` otherwise
    (``option`` names the input in the message)."""
    intervals = hours * 3600.0 / decision_interval_s
    if abs(intervals - round(intervals)) > 1e-9 or round(intervals) < 1:
        raise ValueError(
            f"{option} {hours:g} is not a whole number (>= 1) of the scenario's "
            f"{decision_interval_s:g} s decision intervals"
        )
    return round(intervals)


def record_with_truth(
    plant: Plant,
    intervals: int,
    names: Iterable[str],
    schedule: Schedule | None = None,
    *,
    on_interval: Callable[[], None] | None = None,
) -> tuple[Recording, WindowTruth]:
    """:func:`record`, and the plant's values of the FMU variables ``names`` at the start and
    the end of the window with the drift it went through. Leaves the plant reset."""
    names = sorted(set(names))
    recording = record(plant, intervals, schedule, on_interval=on_interval)
    end = plant.fmu_values(names)
    drift = tuple(
        f"at {time_s / 3600:g} h {event.target} of {event.machine or 'every machine'} "
        f"{event.operation} {event.value:g}"
        for time_s, event in plant.drift_log
    )
    plant.reset()
    return recording, WindowTruth(start=plant.fmu_values(names), end=end, drift=drift)


def record_with_signals(
    plant: Plant,
    hours: float,
    on_interval: Callable[[], object] | None = None,
    twin_seed: int | None = None,
) -> tuple[Recording, list[dict[str, float]]]:
    """A recording of ``hours`` under nominal setpoints and the plant's noise-free signals at
    the same instants; the recording carries ``twin_seed`` as the discrete-event seed the twin
    replays (None: the plant's own)."""
    truths: list[dict[str, float]] = []

    def collect() -> None:
        truths.extend(plant.true_samples)
        if on_interval is not None:
            on_interval()

    recording = record(
        plant, round(hours * 3600.0 / plant.decision_interval_s), on_interval=collect
    )
    if twin_seed is not None:
        recording = dataclasses.replace(recording, seed=twin_seed)
    return recording, truths
