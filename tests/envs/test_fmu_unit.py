"""FmuUnit: loading, variables, stepping, reset ladder, snapshots, failures."""

from __future__ import annotations

import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

from envs.fmu import (
    FmuCallError,
    FmuDiscardError,
    FmuLoadError,
    FmuStateError,
    FmuStoppedError,
    FmuUnit,
    FmuVariableError,
    _archive,
)
from tests.fixtures.fmu_factory import STOP_TIME, decay_solution

RESET_RUNGS = ("snapshot", "fmi_reset", "reinstantiate")


@pytest.fixture
def mill(fmu_files):
    with FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as unit:
        yield unit


def run(unit, steps: int, dt: float = 10.0, name: str = "tool_wear") -> list[float]:
    values = []
    for _ in range(steps):
        unit.step(dt)
        values.append(unit.get(name))
    return values


def test_variables_by_name_with_type_causality_bounds_and_unit(mill):
    speed = mill.variable("spindle_speed")
    assert (speed.kind, speed.causality, speed.min, speed.max, speed.unit) == (
        "Real",
        "input",
        100.0,
        2600.0,
        "rpm",
    )
    assert mill.variable("mode").kind == "Integer"
    assert mill.variable("tool_change").kind == "Boolean"
    assert mill.names("input") == [
        "mode",
        "spindle_speed",
        "feed_per_tooth",
        "ambient_temperature",
        "tool_change",
    ]
    assert mill.capabilities.can_get_set_state and mill.capabilities.interface == "co_simulation"


def test_set_get_step(mill):
    mill.set("spindle_speed", 1600.0)
    mill.set({"feed_per_tooth": 0.2, "tool_change": False})
    assert mill.get("spindle_speed") == 1600.0
    assert mill.step(10.0) == 10.0
    assert mill.get("tool_wear") > 0.0 and mill.get("energy") > 0.0


def test_bad_values_are_refused_before_the_fmu_sees_them(mill):
    with pytest.raises(FmuVariableError, match="no variable 'spindle'; similar: spindle_speed"):
        mill.get("spindle")
    for bad, message in ((math.nan, "not a finite number"), (1e6, r"outside its range \[100.0")):
        with pytest.raises(FmuVariableError, match=message):
            mill.set({"feed_per_tooth": 0.3, "spindle_speed": bad})
    assert mill.get("feed_per_tooth") == 0.15  # the valid value in the same call was not set
    with pytest.raises(FmuVariableError, match="causality output"):
        mill.set("power", 3.0)
    with pytest.raises(ValueError, match="positive finite"):
        mill.step(-1.0)


def test_fmu_errors_carry_the_fmu_log(mill):
    with pytest.raises(FmuCallError, match="fixed") as raised:
        mill.set("thermal_capacity", 1000.0)  # a fixed parameter after initialisation
    assert raised.value.status == "error"
    assert any("thermal_capacity" in message for message in raised.value.messages)


def test_reset_by_snapshot_restores_the_initial_state(mill):
    initial = mill.get("spindle_temperature")
    first = run(mill, 20)
    assert mill.reset() == "snapshot"
    assert mill.time == 0.0 and mill.get("spindle_temperature") == initial
    assert run(mill, 20) == first
    assert mill.get("mode") == 3  # the constructor's start values hold after a reset


def test_reset_with_a_fixed_parameter_reinitialises(mill):
    constructed = mill.get("wear_limit")
    assert mill.reset({"wear_limit": 0.6}) == "fmi_reset"
    assert mill.get("wear_limit") == 0.6 != constructed
    assert mill.reset() == "snapshot"
    assert mill.get("wear_limit") == constructed


# Each case forces one rung for the reset with a fixed parameter (x0) and says which rung
# the plain reset after it takes; the plain reset must return to the constructor's values.
@pytest.mark.parametrize(
    ("variant", "ladder", "override_rung", "plain_rung"),
    [
        ("Decay2CS", ("snapshot", "fmi_reset", "reinstantiate"), "fmi_reset", "snapshot"),
        ("Decay2CS", ("snapshot", "reinstantiate"), "reinstantiate", "reinstantiate"),
        ("Decay2CS", ("fmi_reset",), "fmi_reset", "fmi_reset"),
        ("Decay2CS", ("reinstantiate",), "reinstantiate", "reinstantiate"),
        ("Decay2CSNoState", ("snapshot", "fmi_reset", "reinstantiate"), "fmi_reset", "fmi_reset"),
        ("Decay2CSNoReset", RESET_RUNGS, "reinstantiate", "reinstantiate"),
        ("Decay3", ("snapshot", "reinstantiate"), "reinstantiate", "reinstantiate"),
    ],
)
def test_plain_reset_after_overrides_returns_to_the_constructor_values(
    test_fmus, variant, ladder, override_rung, plain_rung
):
    with FmuUnit(test_fmus[variant], start_values={"k": 0.8}, reset_ladder=ladder) as unit:
        first = run(unit, 4, dt=0.5, name="y")
        assert unit.reset({"x0": 5.0, "k": 0.2}) == override_rung
        assert unit.get("y") == 5.0 and unit.get("k") == 0.2
        assert unit.reset() == plain_rung
        assert (unit.get("x0"), unit.get("k"), unit.get("y")) == (1.0, 0.8, 1.0)
        assert run(unit, 4, dt=0.5, name="y") == first
        # and again, now that the plain reset has (re)captured the initial state
        unit.reset({"x0": 5.0})
        assert unit.reset() == plain_rung
        assert (unit.get("x0"), unit.get("k"), unit.get("y")) == (1.0, 0.8, 1.0)
        assert run(unit, 4, dt=0.5, name="y") == first


def test_a_snapshot_from_before_a_reinstantiation_is_refused(test_fmus):
    with FmuUnit(test_fmus["Decay2CS"], reset_ladder=("snapshot", "reinstantiate")) as unit:
        unit.step(0.5)
        old = unit.snapshot()
        assert unit.reset({"x0": 3.0}) == "reinstantiate"
        with pytest.raises(FmuStateError, match="earlier instance.*reinstantiate"):
            unit.restore(old)
        assert unit.get("y") == 3.0  # nothing was restored
        del old  # freeing a state of the freed instance must not touch the new one
        import gc

        gc.collect()
        unit.step(0.5)
        fresh = unit.snapshot()
        unit.step(0.5)
        unit.restore(fresh)
        assert unit.time == 0.5


@pytest.mark.parametrize(
    ("variant", "rung"),
    [
        ("Decay2CS", "snapshot"),
        ("Decay2CSNoState", "fmi_reset"),
        ("Decay2CSNoReset", "reinstantiate"),
        ("Decay3", "snapshot"),
    ],
)
def test_reset_ladder_falls_back_by_capability(test_fmus, variant, rung):
    with FmuUnit(test_fmus[variant], start_values={"u": 0.3}) as unit:
        first = run(unit, 10, dt=0.5, name="y")
        assert unit.reset() == rung
        assert unit.time == 0.0 and unit.get("y") == 1.0
        assert run(unit, 10, dt=0.5, name="y") == first
        assert unit.reset() == rung  # the ladder remembers a failed fmiReset


def test_one_extraction_per_process_removed_on_close(fmu_files):
    before = _archive.extraction_count()
    first = FmuUnit(fmu_files["Conveyor"])
    second = FmuUnit(fmu_files["Conveyor"])
    assert first._unzipdir == second._unzipdir
    assert _archive.extraction_count() == before + 1
    directory = Path(first._unzipdir)
    first.reset()
    first.close()
    assert directory.is_dir()  # still used by the second unit
    second.close()
    assert not directory.exists() and _archive.extraction_count() == before
    first.close()  # closing twice is harmless


def test_snapshot_branches_bit_identically(mill):
    run(mill, 10)
    snap = mill.snapshot()
    branch_a = run(mill, 10, name="spindle_temperature")
    mill.restore(snap)
    assert mill.time == 100.0
    assert run(mill, 10, name="spindle_temperature") == branch_a


def test_serialised_snapshot_moves_between_units(fmu_files):
    with (
        FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as a,
        FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as b,
    ):
        run(a, 10)
        data = a.serialize(a.snapshot())
        expected = run(a, 5)
        b.restore(b.deserialize(data, time=100.0))
        assert run(b, 5) == expected


def test_snapshot_needs_state_support(test_fmus):
    with FmuUnit(test_fmus["Decay2CSNoState"]) as unit:
        with pytest.raises(FmuStateError, match="canGetAndSetFMUstate=false"):
            unit.snapshot()


def test_snapshot_of_another_unit_is_refused(fmu_files):
    with FmuUnit(fmu_files["Conveyor"]) as a, FmuUnit(fmu_files["Conveyor"]) as b:
        with pytest.raises(FmuStateError, match="another unit"):
            b.restore(a.snapshot())


def test_missing_binary_is_built_from_the_carried_sources(fmu_files, tmp_path):
    source_only = tmp_path / "CncMillSources.fmu"
    with (
        zipfile.ZipFile(fmu_files["CncMill"]) as original,
        zipfile.ZipFile(source_only, "w") as stripped,
    ):
        for item in original.infolist():
            if not item.filename.startswith("binaries/"):
                stripped.writestr(item, original.read(item))
    with (
        FmuUnit(source_only, start_values={"mode": 3}) as built,
        FmuUnit(fmu_files["CncMill"], start_values={"mode": 3}) as shipped,
    ):
        assert run(built, 30) == run(shipped, 30)


def test_missing_binary_without_sources_is_a_clear_error(test_fmus, tmp_path):
    unpacked = tmp_path / "fmu"
    with zipfile.ZipFile(test_fmus["Decay2CS"]) as archive:
        archive.extractall(unpacked)
    shutil.rmtree(unpacked / "binaries")
    shutil.rmtree(unpacked / "sources")
    text = (unpacked / "modelDescription.xml").read_text()
    start, end = text.index("<SourceFiles>"), text.index("</SourceFiles>") + len("</SourceFiles>")
    (unpacked / "modelDescription.xml").write_text(text[:start] + text[end:])
    with pytest.raises(FmuLoadError, match="no binary for this platform.*no sources"):
        FmuUnit(unpacked)


def test_missing_shared_library_dependency_is_named(test_fmus):
    with pytest.raises(FmuLoadError, match="needs libtwinfactory_absent.so"):
        FmuUnit(test_fmus["Decay2MissingDep"])


def test_not_an_fmu(tmp_path):
    with pytest.raises(FmuLoadError, match="no such file"):
        FmuUnit(tmp_path / "missing.fmu")
    junk = tmp_path / "junk.fmu"
    junk.write_text("not a zip")
    with pytest.raises(FmuLoadError, match="not an FMU"):
        FmuUnit(junk)
    with pytest.raises(FmuLoadError, match="no modelDescription.xml"):
        FmuUnit(tmp_path)


def test_interface_choice_is_checked(test_fmus):
    with pytest.raises(FmuLoadError, match="'co_simulation' is not offered"):
        FmuUnit(test_fmus["Decay2ME"], interface="co_simulation")
    with pytest.raises(ValueError, match="interface must be one of"):
        FmuUnit(test_fmus["Decay2CS"], interface="hybrid")


@pytest.mark.parametrize(
    ("variant", "interface", "solver", "tolerance"),
    [
        ("Decay3", "co_simulation", "cvode", 1e-12),
        ("Decay3", "model_exchange", "cvode", 1e-5),
        ("Decay3", "model_exchange", "euler", 5e-3),
        ("Decay2ME", "model_exchange", "cvode", 1e-5),
        ("Decay2ME", "model_exchange", "euler", 5e-3),
    ],
)
def test_fmi3_and_model_exchange_follow_the_analytic_solution(
    test_fmus, variant, interface, solver, tolerance
):
    with FmuUnit(
        test_fmus[variant],
        interface=interface,
        solver=solver,
        solver_step=0.01,
        start_values={"u": 0.3, "k": 0.8},
    ) as unit:
        assert unit.capabilities.interface == interface
        for _ in range(40):
            unit.step(0.25)
        assert unit.get("y") == pytest.approx(decay_solution(10.0, k=0.8, u=0.3), abs=tolerance)
        unit.set("u", -1.0)  # an input change restarts the solver from the new state
        y10 = unit.get("y")
        for _ in range(8):
            unit.step(0.25)
        expected = -1.0 + (y10 + 1.0) * math.exp(-0.8 * 2.0)
        assert unit.get("y") == pytest.approx(expected, abs=tolerance * 2)
        unit.reset()
        assert unit.get("y") == 1.0


def test_model_exchange_snapshot_restore(test_fmus):
    with FmuUnit(test_fmus["Decay2ME"], start_values={"u": 0.5}) as unit:
        for _ in range(4):
            unit.step(0.5)
        snap = unit.snapshot()
        a = [unit.step(0.5) and unit.get("y") for _ in range(4)]
        unit.restore(snap)
        b = [unit.step(0.5) and unit.get("y") for _ in range(4)]
        assert a == b  # a snapshot restarts the solver, so both branches integrate alike


def test_real_io_exchanges_vectors(mill):
    io = mill.real_io(["spindle_speed", "feed_per_tooth"], ["cutting_speed", "power"])
    out = io.exchange(np.array([1000.0, 0.1]), 10.0)
    assert out[0] == pytest.approx(math.pi * 50.0 * 1000.0 / 1000.0)
    with pytest.raises(FmuVariableError, match="not a finite number"):
        io.write(np.array([np.nan, 0.1]))
    with pytest.raises(FmuVariableError, match="Real/Float64"):
        mill.real_io(["mode"], [])


def test_log_messages_reach_their_own_unit_and_survive_closed_units(fmu_files, tmp_path):
    import subprocess
    import sys

    with (
        FmuUnit(fmu_files["Conveyor"], name="a") as a,
        FmuUnit(fmu_files["Conveyor"], name="b") as b,
    ):
        with pytest.raises(FmuCallError):
            a.set("thermal_capacity", 5000.0)
        assert a.log and "thermal_capacity" in a.log[-1] and b.log == []
    # a closed, collected unit must not leave FMI logging pointing at freed memory
    script = (
        "import gc, sys, fmpy\n"
        "from envs.fmu import FmuUnit\n"
        "u = FmuUnit(sys.argv[1]); u.close(); del u; gc.collect()\n"
        "try:\n"
        "    fmpy.simulate_fmu(sys.argv[1], stop_time=1.0, start_values={'belt_speed': 99.0})\n"
        "except Exception:\n"
        "    print('refused')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, fmu_files["Conveyor"]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0 and "refused" in result.stdout


def test_extractions_are_removed_at_interpreter_exit(fmu_files, tmp_path):
    import subprocess
    import sys

    script = (
        "import sys\nfrom envs.fmu import FmuUnit\nu = FmuUnit(sys.argv[1])\nprint(u._unzipdir)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, fmu_files["RobotCell"]],
        capture_output=True,
        text=True,
        check=True,
    )
    directory = Path(result.stdout.strip())
    assert directory.name.startswith("twinfactory-RobotCell") and not directory.exists()


# -- an FMU that asks to stop --------------------------------------------------------------
@pytest.mark.parametrize("variant", ["Decay2Stop", "Decay3Stop"])
@pytest.mark.parametrize("path", ["step", "real_io"])
def test_an_fmu_that_asks_to_stop_ends_the_run_cleanly(test_fmus, variant, path):
    with FmuUnit(test_fmus[variant]) as unit:
        io = unit.real_io(["u"], ["y"])
        times = []
        while not unit.terminated:
            if path == "step":
                times.append(unit.step(0.3))
            else:
                io.exchange(np.array([0.0]), 0.3)
                times.append(unit.time)
        # the step from 1.8 s reaches stop_time = 2 s: the FMU stops there, not at 2.1 s
        assert times[-1] == STOP_TIME and len(times) == 7
        request = unit.stop_request
        assert request is not None and request.unit == variant and request.time == STOP_TIME
        assert request.function == ("fmi2DoStep" if variant == "Decay2Stop" else "fmi3DoStep")
        assert any("asks to terminate" in message for message in request.messages)
        assert unit.get("y") == pytest.approx(decay_solution(STOP_TIME))
        with pytest.raises(FmuStoppedError, match=f"'{variant}' asked to stop at t = 2 s.*reset"):
            unit.step(0.3)
        with pytest.raises(FmuStoppedError, match="reset"):
            io.exchange(np.array([0.0]), 0.3)
        assert unit.reset() == "snapshot" and not unit.terminated and unit.time == 0.0
        assert unit.step(0.5) == 0.5


def test_a_stop_exactly_at_a_step_end_and_snapshots_across_it(test_fmus):
    with FmuUnit(test_fmus["Decay2Stop"], start_values={"stop_time": 1.0}) as unit:
        unit.step(0.5)
        before = unit.snapshot()
        assert unit.step(0.5) == 1.0 and unit.terminated
        unit.restore(before)  # a branch from before the stop runs again
        assert not unit.terminated and unit.time == 0.5
        unit.set("stop_time", 5.0)
        assert unit.step(0.5) == 1.0 and not unit.terminated


@pytest.mark.parametrize(
    ("variant", "function"), [("Decay2Discard", "fmi2DoStep"), ("Decay3Discard", "fmi3DoStep")]
)
def test_a_discard_without_a_stop_request_is_an_error_that_says_so(test_fmus, variant, function):
    with FmuUnit(test_fmus[variant]) as unit:
        for _ in range(6):
            unit.step(0.3)
        with pytest.raises(FmuDiscardError, match="discard.*not terminated") as raised:
            unit.step(0.3)  # 1.8 s -> 2.1 s crosses fail_time = 2 s
        error = raised.value
        assert (error.function, error.status) == (function, "discard")
        assert any("no solution past fail_time" in message for message in error.messages)
        assert isinstance(error, FmuCallError) and not unit.terminated
        assert unit.time == pytest.approx(1.8)
        assert unit.step(0.2) == pytest.approx(2.0)  # a step the FMU can take still works


# -- FMI 3 array variables ------------------------------------------------------------------
def test_fmi3_array_variables_are_read_and_written_whole(test_fmus):
    with FmuUnit(test_fmus["Decay3Array"], start_values={"k": 0.5}) as unit:
        u, y, stats = unit.variable("u"), unit.variable("y"), unit.variable("stats")
        assert (u.shape, y.shape, stats.shape) == ((3,), (3,), (2,))
        assert u.causality == "input" and u.min == -10.0 and u.is_array and u.size == 3
        np.testing.assert_array_equal(unit.get("y"), [1.0, 2.0, 3.0])
        np.testing.assert_array_equal(unit.get("stats"), [2.0, 3.0])
        target = np.array([0.5, -1.0, 2.0])
        unit.set("u", target)
        np.testing.assert_array_equal(unit.get("u"), target)
        unit.step(1.0)
        start = np.array([1.0, 2.0, 3.0])
        expected = target + (start - target) * math.exp(-0.5)
        np.testing.assert_allclose(unit.get("y"), expected, rtol=1e-14)
        io = unit.real_io(["u"], ["y", "stats"])
        assert io.output_sizes == [3, 2]
        out = io.exchange(target, 1.0)
        expected = target + (expected - target) * math.exp(-0.5)
        np.testing.assert_allclose(out, [*expected, expected.mean(), expected.max()], rtol=1e-14)
        for bad, message in (
            (np.zeros(2), r"shape \(3,\); got a value of shape \(2,\)"),
            (np.array([0.0, 99.0, 0.0]), r"'u\[1\]' = 99.0 is outside its range"),
        ):
            with pytest.raises(FmuVariableError, match=message):
                unit.set("u", bad)
        with pytest.raises(FmuVariableError, match=r"'u\[2\]' = nan is not a finite number"):
            io.write(np.array([0.0, 0.0, np.nan]))
        snap = unit.snapshot()
        branch = io.exchange(target, 1.0)
        unit.restore(snap)
        np.testing.assert_array_equal(io.exchange(target, 1.0), branch)
        assert unit.reset() == "snapshot"
        np.testing.assert_array_equal(unit.get("y"), [1.0, 2.0, 3.0])


def test_array_shapes_follow_the_structural_parameter(test_fmus):
    with FmuUnit(test_fmus["Decay3Array"], start_values={"n": 5}) as unit:
        assert unit.variable("u").shape == (5,) and unit.get("n") == 5
        np.testing.assert_array_equal(unit.get("y"), [1.0, 2.0, 3.0, 4.0, 5.0])
        unit.set("u", np.full(5, 0.5))
        unit.step(0.5)
        assert unit.get("y").shape == (5,) and unit.get("stats").shape == (2,)
        with pytest.raises(FmuVariableError, match="structural parameters.*cannot change"):
            unit.reset({"n": 2})
