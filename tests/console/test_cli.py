"""scripts/console.py: adduser stores only a hash; bad input exits 2 with a message."""

from __future__ import annotations

import io

import pytest

from edge_bridge.console.auth import load_users, verify_password
from scripts import console


def test_adduser_from_stdin_writes_a_hash(tmp_path, monkeypatch, capsys):
    users = tmp_path / "users.toml"
    monkeypatch.setattr("sys.stdin", io.StringIO("a long password\n"))
    assert (
        console.main(
            ["adduser", "--users", str(users), "alice", "--role", "operator", "--password-stdin"]
        )
        == 0
    )
    assert "scrypt hash only" in capsys.readouterr().out
    assert verify_password("a long password", load_users(users)["alice"].password_hash)
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert (
        console.main(
            ["adduser", "--users", str(users), "bob", "--role", "viewer", "--password-stdin"]
        )
        == 2
    )
    assert "8 characters" in capsys.readouterr().err


def test_bad_options_and_unusable_configs_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        console.main(["adduser", "--users", "x.toml", "eve", "--role", "admin"])
    assert exit_.value.code == 2
    assert console.main(["serve", "--users", str(tmp_path / "none.toml"), "--port", "0"]) == 2
    assert "no users file" in capsys.readouterr().err
    bad = tmp_path / "console.toml"
    bad.write_text("port = 99999\n")
    assert console.main(["serve", "--config", str(bad)]) == 2
    assert "port" in capsys.readouterr().err
    assert console.main(["demo", "--realtime-factor", "0"]) == 2
