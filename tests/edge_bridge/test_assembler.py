"""Telemetry is assembled into decision intervals; bad samples are refused, silent machines are
stale and do not stall the others."""

from __future__ import annotations

import math

import pytest

from edge_bridge.assembler import IntervalAssembler

SIGNALS = {"m-1": ("temperature", "state"), "m-2": ("temperature", "state")}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def assembler(clock: Clock | None = None, **kwargs) -> IntervalAssembler:
    options = {"decision_interval_s": 300.0, "stale_after_s": 120.0, "wait_s": 2.0}
    options.update(kwargs)
    return IntervalAssembler(SIGNALS, SIGNALS, clock=clock or Clock(), **options)


def feed(assembly: IntervalAssembler, times, machines=("m-1", "m-2"), state=3.0) -> None:
    for t in times:
        for machine in machines:
            assert assembly.add(machine, t, {"temperature": 20.0 + t / 60, "state": state}) is None


def test_an_interval_completes_when_every_machine_reported_its_end():
    assembly = assembler()
    feed(assembly, [60, 120, 180, 240])
    assert not assembly.ready()
    feed(assembly, [300], machines=("m-1",))
    assert not assembly.ready()
    feed(assembly, [300], machines=("m-2",))
    assert assembly.ready()
    interval = assembly.complete()
    assert interval.index == 0 and interval.end_s == 300.0
    assert [s["time_s"] for s in interval.samples] == [60, 120, 180, 240, 300]
    assert interval.samples[-1]["m-2.temperature"] == pytest.approx(25.0)
    assert interval.stale == frozenset()
    assert assembly.index == 1 and assembly.end_s == 600.0


def test_a_silent_machine_is_stale_after_the_wait_and_filled_with_nan_and_its_last_state():
    clock = Clock()
    assembly = assembler(clock)
    feed(assembly, [60, 120])
    feed(assembly, [180, 240, 300], machines=("m-1",))
    assert not assembly.ready()
    clock.now = 1.9
    assert not assembly.ready()
    clock.now = 2.0
    assert assembly.ready()
    interval = assembly.complete()
    assert interval.stale == frozenset({"m-2"})  # last seen at 120 s: 180 s old > 120 s
    last = interval.samples[-1]
    assert math.isnan(last["m-2.temperature"]) and last["m-2.state"] == 3.0
    assert interval.last_seen_s["m-2"] == 120.0


@pytest.mark.parametrize(
    ("machine", "time_s", "reason"),
    [
        ("m-9", 60.0, "unknown machine"),
        ("m-1", math.nan, "invalid time"),
        ("m-1", 60.0, "out of order or replayed sample"),
        ("m-1", 30.0, "out of order or replayed sample"),
    ],
)
def test_unusable_samples_are_refused_counted_and_change_nothing(machine, time_s, reason):
    assembly = assembler()
    feed(assembly, [60])
    before = {t: dict(row) for t, row in assembly._rows.items()}
    assert assembly.add(machine, time_s, {"temperature": 99.0, "state": 4.0}) == reason
    assert assembly.refused[reason] == 1
    assert assembly._rows == before


def test_a_sample_of_an_interval_already_decided_is_refused():
    assembly = assembler()
    feed(assembly, [300])
    assembly.complete()
    assembly2 = assembler(first_index=1)
    assert (
        assembly2.add("m-1", 300.0, {"state": 3.0}) == "sample before the interval being assembled"
    )


def test_samples_past_the_end_start_the_next_interval():
    assembly = assembler()
    feed(assembly, [300, 360])
    interval = assembly.complete()
    assert [s["time_s"] for s in interval.samples] == [300]
    feed(assembly, [600])
    assert assembly.ready()
    assert [s["time_s"] for s in assembly.complete().samples] == [360, 600]


@pytest.mark.parametrize("name", ["decision_interval_s", "stale_after_s", "wait_s"])
def test_non_positive_periods_are_refused(name):
    with pytest.raises(ValueError, match=name):
        assembler(**{name: 0.0})


def test_a_start_mid_run_moves_to_the_interval_of_the_first_sample():
    assembly = assembler()
    feed(assembly, [36_060, 36_120])
    assert assembly.index == 120 and assembly.end_s == 36_300
    feed(assembly, [36_300])
    interval = assembly.complete()
    assert interval.index == 120 and [s["time_s"] for s in interval.samples] == [
        36_060,
        36_120,
        36_300,
    ]


def test_a_fast_feed_is_decimated_to_the_sample_points():
    assembly = assembler(sample_interval_s=60.0)
    for step in range(1, 3001):  # 10 Hz for 300 s
        t = step / 10.0
        for machine in ("m-1", "m-2"):
            assert assembly.add(machine, t, {"temperature": t, "state": 3.0}) is None
    interval = assembly.complete()
    assert [s["time_s"] for s in interval.samples] == [0.0, 60.0, 120.0, 180.0, 240.0, 300.0]
    assert interval.samples[1]["m-1.temperature"] == pytest.approx(60.0)  # first at/after 60 s
    assert assembly.decimated == 2 * 3000 - 2 * 6
    assert assembly.refused == {}
    assert assembly.add("m-1", 300.5, {"temperature": 1.0, "state": 3.0}) is None  # point 300
    assert assembly.add("m-1", 360.0, {"temperature": 2.0, "state": 3.0}) is None
    assert 300.0 not in assembly._rows and 360.0 in assembly._rows
