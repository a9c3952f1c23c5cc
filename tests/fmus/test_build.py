"""Building the shipped FMUs: validation, caching, concurrency, errors, portability."""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import fmpy
import pytest
from fmpy.validation import validate_fmu

import fmus
from fmus._codegen import ModelDescriptionError, read_model_info

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_models():
    assert fmus.names() == ["CncMill", "Conveyor", "RobotCell"]


@pytest.mark.parametrize("name", fmus.names())
def test_fmpy_validation_reports_no_problems(fmu_files, name):
    assert validate_fmu(fmu_files[name]) == []


@pytest.mark.parametrize("name", fmus.names())
def test_fmpy_simulate_fmu_runs_the_default_experiment(fmu_files, name):
    result = fmpy.simulate_fmu(fmu_files[name], output_interval=600.0)
    assert result["time"][-1] == pytest.approx(28800.0)  # DefaultExperiment: one 8 h shift
    assert result["energy"][-1] > 0.0


@pytest.mark.parametrize("name", fmus.names())
def test_archive_carries_sources_build_configuration_and_docs(fmu_files, name):
    with zipfile.ZipFile(fmu_files[name]) as archive:
        files = set(archive.namelist())
    description = fmpy.read_model_description(fmu_files[name])
    source_files = description.buildConfigurations[0].sourceFileSets[0].sourceFiles
    assert {f"sources/{file}" for file in source_files} <= files
    assert {
        "sources/model_variables.h",
        "sources/fmu_runtime.h",
        "sources/fmi2Functions.h",
        "documentation/README.md",
        f"binaries/{fmpy.platform}/{name}.so",
    } <= files


@pytest.mark.parametrize("name", fmus.names())
def test_readme_documents_every_variable(name):
    readme = (fmus.model_dir(name) / "README.md").read_text()
    info = read_model_info(fmus.model_dir(name) / "modelDescription.xml")
    missing = [v.name for v in info.variables if f"`{v.name}`" not in readme]
    assert missing == []


def test_path_is_cached_by_source_hash(fmu_files):
    again = fmus.path("CncMill")
    assert str(again) == fmu_files["CncMill"]
    assert fmus.source_hash("CncMill")[:16] in again.name
    assert fmus.source_hash("CncMill") != fmus.source_hash("Conveyor")


def test_build_is_reproducible(tmp_path):
    first = fmus.build("Conveyor", tmp_path / "a.fmu").read_bytes()
    second = fmus.build("Conveyor", tmp_path / "b.fmu").read_bytes()
    assert first == second


def _build_in_cache(cache: str) -> str:
    import os

    os.environ["TWINFACTORY_FMU_CACHE"] = cache
    return str(fmus.path("RobotCell"))


def test_concurrent_builds_share_one_archive(tmp_path):
    cache = str(tmp_path / "cache")
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        paths = pool.map(_build_in_cache, [cache] * 4)
    assert len(set(paths)) == 1
    built = sorted(p.name for p in Path(cache).iterdir() if not p.name.endswith(".lock"))
    assert built == [Path(paths[0]).name]  # no temporary files left behind
    assert validate_fmu(paths[0]) == []


def test_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINFACTORY_FMU_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-compiler")
    with pytest.raises(fmus.CompilerNotFoundError, match="apt-get install gcc"):
        fmus.path("Conveyor")
    assert list(tmp_path.glob("*.fmu")) == []


def test_compiler_failure_shows_the_compiler_output(tmp_path, monkeypatch):
    fake = tmp_path / "broken-cc"
    fake.write_text("#!/bin/sh\necho 'model.c:1: error: something broke' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CC", str(fake))
    with pytest.raises(fmus.FmuBuildError, match="something broke"):
        fmus.build("Conveyor", tmp_path / "out.fmu")
    assert not (tmp_path / "out.fmu").exists()


def test_unknown_model_lists_the_shipped_ones():
    with pytest.raises(fmus.UnknownModelError, match="CncMill, Conveyor, RobotCell"):
        fmus.path("Lathe")


def test_malformed_model_description_names_the_file(tmp_path):
    broken = tmp_path / "modelDescription.xml"
    broken.write_text("<fmiModelDescription fmiVersion='2.0'><CoSimulation")
    with pytest.raises(ModelDescriptionError, match=re.escape(str(broken))):
        read_model_info(broken)
    broken.write_text("<fmiModelDescription fmiVersion='3.0'/>")
    with pytest.raises(ModelDescriptionError, match=r"FMI 2\.0 co-simulation"):
        read_model_info(broken)


def test_duplicate_value_references_are_rejected(tmp_path):
    source = fmus.model_dir("Conveyor") / "modelDescription.xml"
    tree = ET.parse(source)
    variables = list(tree.getroot().iter("ScalarVariable"))
    variables[1].set("valueReference", variables[0].get("valueReference"))
    tree.write(tmp_path / "modelDescription.xml")
    with pytest.raises(ModelDescriptionError, match="unique"):
        read_model_info(tmp_path / "modelDescription.xml")


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake (make test installs it)")
def test_another_platform_can_rebuild_from_the_carried_sources(fmu_files, tmp_path):
    """FMPy's CMake build, reading only the archive, produces a binary that behaves the same."""
    from fmpy.build import build_platform_binary

    unzipdir = Path(fmpy.extract(fmu_files["CncMill"], unzipdir=str(tmp_path / "fmu")))
    shutil.rmtree(unzipdir / "binaries")
    (tmp_path / "build").mkdir()
    build_platform_binary(unzipdir, build_dir=tmp_path / "build")
    rebuilt = fmpy.simulate_fmu(
        str(unzipdir), stop_time=3600.0, output_interval=600.0, start_values={"mode": 3}
    )
    original = fmpy.simulate_fmu(
        fmu_files["CncMill"], stop_time=3600.0, output_interval=600.0, start_values={"mode": 3}
    )
    for name in original.dtype.names:
        assert rebuilt[name] == pytest.approx(original[name], rel=1e-12)


def test_command_line_lists_and_builds(tmp_path):
    run = [sys.executable, "-m", "fmus"]
    listed = subprocess.run([*run, "list"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert listed.stdout.split() == fmus.names()
    built = subprocess.run(
        [*run, "build", "Conveyor", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert (tmp_path / "Conveyor.fmu").is_file() and "Conveyor:" in built.stdout
    failed = subprocess.run([*run, "build", "Lathe"], capture_output=True, text=True, cwd=ROOT)
    assert failed.returncode == 1 and "not a shipped model" in failed.stderr
    helped = subprocess.run([*run, "build", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert "--rebuild" in helped.stdout and "--out" in helped.stdout


@pytest.mark.parametrize("name", fmus.names())
def test_variables_carry_unit_range_and_nominal(name):
    """Inputs and parameters have min/max; every Real has a nominal; dimensional ones a unit."""
    description = fmpy.read_model_description(str(fmus.model_dir(name)))
    dimensionless = {
        "mode",
        "tooth_count",
        "defect_probability",
        "parts_machined",
        "wear",
        "cycles_completed",
        "speed_override",
        "initial_wear",
    }
    for variable in description.modelVariables:
        if variable.causality in ("input", "parameter") and variable.type != "Boolean":
            assert variable.min is not None and variable.max is not None, variable.name
        if variable.type == "Real":
            assert variable.nominal is not None, variable.name
            if variable.unit is None:
                assert variable.name in dimensionless or not variable.name.endswith(
                    ("power", "energy", "temperature", "time", "speed")
                ), variable.name
