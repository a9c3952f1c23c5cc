# ruff: noqa: F811  (pytest fixtures imported from broker_fixtures are parameters here)
"""scripts/emulate_plant.py: --help documents every option, a short lock-step run against the
real broker prints its progress, bad options and refused connections exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_bridge import topics
from edge_bridge.schema import LineKpi, NodeBirth
from scripts import emulate_plant
from tests.edge_bridge.broker_fixtures import module_broker, mqtt_clients, wait_until  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]


def test_help_explains_every_option():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "emulate_plant.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    for option in (
        "--host",
        "--port",
        "--username",
        "--password-file",
        "--tls-ca",
        "--site",
        "--node",
        "--plant-config",
        "--lockstep",
        "--realtime-factor",
        "--intervals",
        "--command-timeout",
        "--drop",
        "--ack-delay",
        "--offline",
        "--buffer-offline",
        "--drift",
        "MACHINE:FROM:COUNT",
        "HOUR:MACHINE:TARGET:OP:VALUE",
    ):
        assert option in done.stdout


def _broker_args(broker, tmp_path, password=None) -> list[str]:
    account = broker.account("equipment")
    secret = tmp_path / "equipment.pass"
    secret.write_text((password or account.password) + "\n")
    return [
        "--port",
        str(broker.port),
        "--username",
        account.username,
        "--password-file",
        str(secret),
    ]


def test_short_lockstep_run_with_faults(module_broker, mqtt_clients, tmp_path, capsys):
    seen = []
    mqtt_clients(
        module_broker,
        "bridge",
        "bridge-cli",
        subscribe={
            topics.filter_for(kind, "cli"): lambda _t, m: seen.append(m)
            for kind in ("birth", "kpi")
        },
    )
    code = emulate_plant.main(
        [
            *_broker_args(module_broker, tmp_path),
            "--site",
            "cli",
            "--node",
            "gw-cli",
            "--intervals",
            "3",
            "--command-timeout",
            "0.05",
            "--drop",
            "welding-1:1:1",
            "--offline",
            "2:1",
            "--drift",
            "0.1::ambient_temperature:add:3",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    lines = [line for line in out.splitlines() if line.startswith("interval")]
    assert len(lines) == 3 and "plant 00:05:00" in lines[0] and "OFFLINE" in lines[2]
    assert "missing  7" in lines[1]  # no bridge answers: every machine kept its setpoints
    assert "telemetry   30" in lines[1]  # welding-1 dropped in interval 1
    assert "births 2" in out
    assert wait_until(lambda: sum(isinstance(m, NodeBirth) for m in seen) == 2, 5)
    assert sum(isinstance(m, LineKpi) for m in seen) == 2  # the offline interval's is lost


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--drop", "welding-1:x:1"], "FROM"),
        (["--drift", "1:machining-1:speed:add:1"], "target"),
        (["--offline", "3"], "FROM:COUNT"),
        (["--intervals", "0"], "--intervals"),
        (["--realtime-factor", "0"], "--realtime-factor"),
        (["--lockstep", "--realtime-factor", "60"], "not allowed"),
    ],
)
def test_bad_options_exit_2(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        emulate_plant.main(options)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--drift", "1:milling-9:wear_rate_factor:multiply:2"], "milling-9"),
        (["--drop", "milling-9:0:1"], "milling-9"),
        (["--plant-config", "nope.toml"], "nope.toml"),
        (["--site", "a/b"], "site"),
    ],
)
def test_bad_input_exits_2_before_connecting(options, message, capsys):
    assert emulate_plant.main(["--port", "1", *options]) == 2
    assert message in capsys.readouterr().err


def test_wrong_password_exits_2(module_broker, tmp_path, capsys):
    code = emulate_plant.main([*_broker_args(module_broker, tmp_path, "wrong"), "--site", "pw"])
    assert code == 2
    assert "refused" in capsys.readouterr().err
