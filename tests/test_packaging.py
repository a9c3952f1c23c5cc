"""The wheel carries every package and the data files the code loads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_holds_every_subpackage_and_the_data_files(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
            "--wheel-dir",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("twinfactory-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {p.parent.relative_to(ROOT).as_posix() for p in ROOT.glob("*/**/__init__.py")}
    # scripts/ are the repository's command-line programs, run from a checkout, not installed
    packages = {p for p in packages if not p.startswith(("tests", "scripts", ".", "build"))}
    missing = {p for p in packages if f"{p}/__init__.py" not in names}
    assert not missing, f"packages left out of the wheel: {sorted(missing)}"
    for data in (
        "envs/scenarios/automotive_components.toml",
        "fmus/runtime/fmu_runtime.c",
        "fmus/CncMill/modelDescription.xml",
        "fmus/CncMill/model.c",
    ):
        assert data in names, data
