"""The benchmark and baseline scripts: --help and a tiny real run each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from scripts import line_baselines

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("script", "options"),
    [
        (
            "bench_envs.py",
            (
                "--fmu",
                "--step-size",
                "--steps",
                "--resets",
                "--vector-steps",
                "--line-steps",
                "--rounds",
                "--json",
            ),
        ),
        ("line_baselines.py", ("--scenario", "--seeds", "--horizon-h", "--json")),
    ],
)
def test_help_explains_every_option(script, options):
    result = subprocess.run(
        [sys.executable, f"scripts/{script}", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    for option in options:
        assert option in result.stdout


def test_baselines_table_on_a_short_horizon(tmp_path, capsys):
    assert (
        line_baselines.main(
            ["--seeds", "2", "--horizon-h", "1", "--json", str(tmp_path / "b.json")]
        )
        == 0
    )
    printed = capsys.readouterr().out
    for name in ("naive", "fixed_interval", "condition_based", "change against naive"):
        assert name in printed
    assert (tmp_path / "b.json").stat().st_size > 100


def test_bench_rejects_bad_options():
    result = subprocess.run(
        [sys.executable, "scripts/bench_envs.py", "--steps", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "--steps is too small" in result.stderr
