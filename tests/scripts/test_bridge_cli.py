"""scripts/bridge.py: help for every subcommand, status of a store (read-only), run's errors
(bad config, no broker), a short local deployment."""

from __future__ import annotations

import pytest

from edge_bridge.audit import AuditLog, AuditRecord
from edge_bridge.gate import RolloutGate, load_gate_config
from edge_bridge.store import Store
from envs.scenario import load_scenario
from federation.daemons import free_port
from scripts import bridge as cli


@pytest.mark.parametrize("command", [[], ["run"], ["local"], ["status"]])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    if not command:
        assert "scripts/audit.py" in text and "run" in text and "status" in text
    parser = cli.build_parser()
    actions = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in actions.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings} has no help"


def make_store(path) -> None:
    with Store(path) as store:
        machines = load_scenario("automotive_components").machine_names
        gate = RolloutGate(load_gate_config("configs/bridge/gate.toml"), machines)
        gate.set_fallback("machining-1", "no telemetry for 200 s of plant time")
        gate.save(store)
        log = AuditLog(store)
        for index in range(5):
            log.record(
                AuditRecord(
                    time_s=300.0 * (index + 1),
                    decision_index=index,
                    machine="machining-1",
                    stage="shadow",
                    assignment="incumbent",
                    applied={"speed_factor": 1.0, "standby": False, "maintenance": False},
                    trust=0.9,
                    reason=f"decision {index}",
                )
            )


def test_status_shows_stage_overrides_and_the_last_decisions(tmp_path, capsys):
    db = tmp_path / "bridge.sqlite"
    make_store(db)
    assert cli.main(["status", "--db", str(db), "--last", "2"]) == 0
    out = capsys.readouterr().out
    assert "stage shadow" in out and "pending approval: none" in out
    assert "override machining-1: no telemetry" in out
    assert "decision 4" in out and "decision 3" in out and "decision 2" not in out


def test_status_of_a_missing_store_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["status", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no such store file" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_run_refuses_a_bad_config_naming_the_key(tmp_path, capsys):
    config = tmp_path / "bridge.toml"
    config.write_text('scenario = "automotive_components"\ncandiate = "naive"\n')
    assert cli.main(["run", "--config", str(config)]) == 2
    assert "candiate" in capsys.readouterr().err
    assert cli.main(["run", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["run", "--config", "configs/bridge/bridge.toml", "--port", "0"]) == 2
    assert "port" in capsys.readouterr().err


def test_run_without_a_broker_exits_2(tmp_path, capsys):
    code = cli.main(
        [
            "run",
            "--config",
            "configs/bridge/bridge.toml",
            "--port",
            str(free_port("127.0.0.1")),
            "--password-file",
            "",
            "--ca-file",
            "",
            "--store",
            str(tmp_path / "bridge.sqlite"),
            "--connect-timeout",
            "1",
        ]
    )
    assert code == 2
    assert "bridge: error:" in capsys.readouterr().err


def test_local_runs_a_short_deployment_and_prints_its_timeline(tmp_path, capsys):
    code = cli.main(
        ["local", "--hours", "0.25", "--no-plant-drift", "--out", str(tmp_path / "local")]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "local deployment in" in out and "done: stage shadow" in out
    assert (tmp_path / "local" / "bridge.sqlite").is_file()
    assert cli.main(["status", "--db", str(tmp_path / "local" / "bridge.sqlite")]) == 0
