"""Shared fixtures: the shipped FMUs, built once per session and extracted once."""

from __future__ import annotations

import fmpy
import pytest

import fmus


@pytest.fixture(scope="session")
def fmu_files() -> dict[str, str]:
    return {name: str(fmus.path(name)) for name in fmus.names()}


@pytest.fixture(scope="session")
def unzipped(fmu_files, tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fmus")
    return {name: fmpy.extract(path, unzipdir=str(root / name)) for name, path in fmu_files.items()}


@pytest.fixture
def make_slave(unzipped):
    """Factory: make_slave("CncMill") -> an instantiated (not yet initialised) Slave."""
    from tests.fmus.slave import Slave

    created = []

    def factory(name: str, instance_name: str = "instance"):
        slave = Slave(unzipped[name], instance_name)
        created.append(slave)
        return slave

    yield factory
    for slave in created:
        slave.close()


@pytest.fixture(scope="session")
def test_fmus(tmp_path_factory) -> dict[str, str]:
    """The test-fixture Decay FMUs (FMI 2.0/3.0, CS/ME, broken variants), built once."""
    from tests.fixtures.fmu_factory import build_all

    built = build_all(tmp_path_factory.mktemp("fixture_fmus"))
    return {name: str(path) for name, path in built.items()}


_CWD_CHANGES: list[str] = []


@pytest.fixture(autouse=True)
def _keep_the_working_directory(request):
    """Every test starts in the directory the suite started in: relative paths such as
    configs/... must not depend on what an earlier test on the same worker did (a library that
    changes directory and does not change back — fmpy does while loading a shared library)."""
    import os

    start = os.getcwd()
    yield
    if os.getcwd() != start:
        _CWD_CHANGES.append(f"{request.node.nodeid} left the working directory in {os.getcwd()}")
        os.chdir(start)


def pytest_terminal_summary(terminalreporter):
    for line in _CWD_CHANGES:
        terminalreporter.write_line(f"restored the working directory: {line}")
