"""From a stream of per-machine telemetry to decision intervals.

Equipment publishes one telemetry message per machine per sample (``time_s`` = plant time). The
bridge decides once per decision interval ``k`` (plant time ``(k·I, (k+1)·I]`` for the decision
interval ``I``), from every sample of that interval in :class:`envs.plant.Plant`'s format
(``{"time_s": t, "<machine>.<signal>": value}``, NaN for a dropped value).

:class:`IntervalAssembler` collects samples and says when an interval is complete: when every
machine has reported a sample at or after its end, or — once at least one has — when
``wait_s`` of wall time has passed (a silent machine must not stall the others). A machine whose
newest sample is older than ``stale_after_s`` of plant time at the interval's end is *stale*: the
watchdog's signal (the gate hands it to its fallback). The decision index follows plant time:
when a sample arrives for a later interval and nothing of the current one has, the assembler
moves on to the sample's interval (a bridge started or restarted while the plant runs).
With ``sample_interval_s`` (the twin's sampling period) a faster feed — 10 Hz telemetry, say —
is decimated: each machine's first sample at or after every multiple of ``sample_interval_s``
is taken for that point, the others only count for freshness (:attr:`decimated`).
Samples of a stale machine are filled with NaN (its state with the last one reported, so a
twin can keep following it).

Everything that is not a usable sample is refused and counted by reason, never merged:
an unknown machine, a sample older than one already taken from that machine (out of order or a
replay), a time at or before the start of the interval being assembled (interval 0 also takes
the sample at time 0, the plant's state at its start).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CompletedInterval:
    """One decision interval's data, ready for the twin."""

    index: int
    """Decision index k: the interval ends at plant time (k + 1)·I."""
    end_s: float
    """Plant time at the interval's end, s."""
    samples: list[dict[str, float]]
    """Every sample time of the interval, ascending, in ``Plant.samples`` format."""
    stale: frozenset[str]
    """Machines whose newest sample is older than ``stale_after_s`` at ``end_s``."""
    last_seen_s: dict[str, float] = field(default_factory=dict)
    """Plant time of each machine's newest sample (NaN: never reported)."""


class IntervalAssembler:
    """Collects telemetry of ``machines`` into decision intervals (module docstring)."""

    def __init__(
        self,
        machines: Iterable[str],
        signals: Mapping[str, Iterable[str]],
        *,
        decision_interval_s: float,
        stale_after_s: float,
        wait_s: float = 2.0,
        clock: Callable[[], float] | None = None,
        first_index: int = 0,
        sample_interval_s: float | None = None,
    ) -> None:
        import time

        self.machines = tuple(machines)
        self.signals = {name: tuple(signals[name]) for name in self.machines}
        for name, value in (
            ("decision_interval_s", decision_interval_s),
            ("stale_after_s", stale_after_s),
            ("wait_s", wait_s),
        ):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
        self.interval_s = float(decision_interval_s)
        self.stale_after_s = float(stale_after_s)
        self.wait_s = float(wait_s)
        if sample_interval_s is not None and not (
            math.isfinite(sample_interval_s) and 0 < sample_interval_s <= decision_interval_s
        ):
            raise ValueError(
                f"sample_interval_s must be a positive number of seconds up to the decision "
                f"interval ({decision_interval_s}), not {sample_interval_s!r}"
            )
        self.sample_s = None if sample_interval_s is None else float(sample_interval_s)
        self.decimated = 0
        """Samples that fell between two sample points (used for freshness only)."""
        self.clock = clock or time.monotonic
        self.index = first_index
        self.refused: Counter[str] = Counter()
        self._rows: dict[float, dict[str, float]] = {}
        self._last_seen = dict.fromkeys(self.machines, math.nan)
        self._last_state = dict.fromkeys(self.machines, math.nan)
        self._first_at_end: float | None = None

    @property
    def end_s(self) -> float:
        """Plant time at which the interval being assembled ends."""
        return (self.index + 1) * self.interval_s

    def add(self, machine: str, time_s: float, values: Mapping[str, float | None]) -> str | None:
        """Take one sample; returns None, or the reason it was refused (also counted in
        :attr:`refused`)."""
        reason = self._check(machine, time_s)
        if reason == "sample before the interval being assembled" and self.sample_s is not None:
            self._seen(machine, time_s, values)  # a fast feed between points already decided
            return None
        if reason is not None:
            self.refused[reason] += 1
            return reason
        point = self._point(time_s)
        if point > self.end_s + 1e-9 and not any(t <= self.end_s + 1e-9 for t in self._rows):
            # nothing of the current interval arrived (a start or restart mid-run, or a silent
            # plant): move on to the interval this sample belongs to
            self.index = max(self.index, math.ceil(point / self.interval_s - 1e-9) - 1)
        row = self._rows.setdefault(point, {"time_s": point})
        if f"{machine}.{self.signals[machine][0]}" in row:  # this point has this machine
            self._seen(machine, time_s, values)
            return None
        for signal in self.signals[machine]:
            value = values.get(signal)
            row[f"{machine}.{signal}"] = (
                float(value) if value is not None and math.isfinite(value) else math.nan
            )
        self._last_seen[machine] = float(time_s)
        state = values.get("state")
        if state is not None and math.isfinite(state):
            self._last_state[machine] = float(state)
        if time_s >= self.end_s - 1e-9 and self._first_at_end is None:
            self._first_at_end = self.clock()
        return None

    def _point(self, time_s: float) -> float:
        """The sample point a sample is taken for: itself, or with ``sample_interval_s`` the
        last point of that grid at or before it."""
        if self.sample_s is None:
            return float(time_s)
        return math.floor(time_s / self.sample_s + 1e-9) * self.sample_s

    def _seen(self, machine: str, time_s: float, values: Mapping[str, float | None]) -> None:
        self.decimated += 1
        self._last_seen[machine] = float(time_s)
        state = values.get("state")
        if state is not None and math.isfinite(state):
            self._last_state[machine] = float(state)

    def _check(self, machine: str, time_s: float) -> str | None:
        if machine not in self.signals:
            return "unknown machine"
        if not math.isfinite(time_s) or time_s < 0:
            return "invalid time"
        last = self._last_seen[machine]
        if math.isfinite(last) and time_s <= last:
            return "out of order or replayed sample"
        if self.index > 0 and self._point(time_s) <= self.index * self.interval_s + 1e-9:
            return "sample before the interval being assembled"
        return None

    def ready(self) -> bool:
        """True when the interval can be completed (module docstring)."""
        if self._first_at_end is None:
            return False
        if all(self._last_seen[m] >= self.end_s - 1e-9 for m in self.machines):
            return True
        return self.clock() - self._first_at_end >= self.wait_s

    def complete(self) -> CompletedInterval:
        """The interval assembled so far (call when :meth:`ready`); the next one starts."""
        end = self.end_s
        times = sorted(t for t in self._rows if t <= end + 1e-9)
        stale = frozenset(
            m
            for m in self.machines
            if not (
                math.isfinite(self._last_seen[m]) and end - self._last_seen[m] <= self.stale_after_s
            )
        )
        samples = []
        for t in times:
            row = self._rows.pop(t)
            for machine in self.machines:
                for signal in self.signals[machine]:
                    key = f"{machine}.{signal}"
                    if key not in row:
                        row[key] = self._last_state[machine] if signal == "state" else math.nan
            samples.append(row)
        completed = CompletedInterval(self.index, end, samples, stale, dict(self._last_seen))
        self.index += 1
        self._first_at_end = None
        if any(t >= self.end_s - 1e-9 for t in self._rows):
            self._first_at_end = self.clock()
        return completed
