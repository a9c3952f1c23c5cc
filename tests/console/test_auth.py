"""Users file, password hashes and sessions of the console."""

from __future__ import annotations

import pytest

from edge_bridge.console.auth import Sessions, User, add_user, load_users, verify_password


def test_adduser_writes_only_a_hash_and_the_password_verifies(tmp_path):
    path = tmp_path / "users.toml"
    add_user(path, "alice", "operator", "correct horse")
    add_user(path, "victor", "viewer", "battery staple")
    text = path.read_text()
    assert "correct horse" not in text and "battery staple" not in text
    assert path.stat().st_mode & 0o777 == 0o600
    users = load_users(path)
    assert {u.role for u in users.values()} == {"operator", "viewer"}
    assert verify_password("correct horse", users["alice"].password_hash)
    assert not verify_password("correct hors", users["alice"].password_hash)
    assert not verify_password("x", "scrypt$not$a$hash")
    add_user(path, "alice", "viewer", "new password")  # replaced, victor kept
    assert load_users(path)["alice"].role == "viewer" and "victor" in load_users(path)


def test_bad_users_and_files_are_refused_with_what_to_do(tmp_path):
    path = tmp_path / "users.toml"
    with pytest.raises(ValueError, match="adduser"):
        load_users(path)
    with pytest.raises(ValueError, match="role"):
        add_user(path, "bob", "admin", "long enough")
    with pytest.raises(ValueError, match="8 characters"):
        add_user(path, "bob", "viewer", "short")
    with pytest.raises(ValueError, match="user name"):
        add_user(path, "bob smith", "viewer", "long enough")
    assert not path.exists()  # nothing written
    path.write_text('[users.bob]\nrole = "viewer"\npassword = "plain text"\n')
    with pytest.raises(ValueError, match="not a scrypt hash"):
        load_users(path)
    path.write_text("not toml [")
    with pytest.raises(ValueError, match="TOML"):
        load_users(path)


def test_sessions_time_out_when_idle_and_end_at_logout():
    now = [0.0]
    sessions = Sessions(timeout_s=60, clock=lambda: now[0])
    session = sessions.open(User("alice", "operator", "scrypt$"))
    assert sessions.get(session.token) is session
    now[0] = 50.0
    assert sessions.get(session.token) is session  # use restarts the idle timer
    now[0] = 100.0
    assert sessions.peek(session.token) is session  # peeking does not
    now[0] = 111.0
    assert sessions.get(session.token) is None
    other = sessions.open(User("victor", "viewer", "scrypt$"))
    assert not Sessions.csrf_matches(other, session.csrf)  # a stale token matches nothing
    assert not Sessions.csrf_matches(other, None)
    sessions.close(other.token)
    assert sessions.get(other.token) is None
    with pytest.raises(ValueError, match="timeout"):
        Sessions(timeout_s=0)
