"""Users, password hashes, sessions and CSRF tokens of the operator console.

Users live in a TOML file written by ``scripts/console.py adduser`` — one table per user with
its ``role`` (``operator``: may act; ``viewer``: reads only) and a password hash, never the
password::

    [users.alice]
    role = "operator"
    password = "scrypt$16384$8$1$<salt hex>$<hash hex>"

Hashes are ``hashlib.scrypt`` (n = 2^14, r = 8, p = 1, 16-byte salt, 32-byte key), compared in
constant time. A session is a random 32-byte token in an HttpOnly, SameSite=Strict cookie; it
ends ``timeout_s`` after its last use (idle timeout) and at logout. Each session has its own
CSRF token (random, 32 bytes) that every state-changing request must send in the
``X-CSRF-Token`` header; a token of an ended session (stale) matches nothing. Sessions are held
in memory: restarting the console logs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envs.atomic import write_atomic

__all__ = [
    "ROLES",
    "Session",
    "Sessions",
    "User",
    "add_user",
    "hash_password",
    "load_users",
    "verify_password",
]

ROLES = ("operator", "viewer")
"""``operator`` may approve, reject, roll back and hand machines to local control; ``viewer``
reads."""
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


@dataclass(frozen=True)
class User:
    """A console user: ``name``, ``role`` (one of :data:`ROLES`) and its password hash."""

    name: str
    role: str
    password_hash: str


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The scrypt hash of ``password`` as ``scrypt$n$r$p$salt$key`` (hex); ValueError for an
    empty password."""
    if not password:
        raise ValueError("the password is empty; choose one of at least 8 characters")
    salt = salt if salt is not None else secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${key.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches the hash ``encoded`` (False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(key)
        actual = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
        raise ValueError(f"user name {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    return name


def load_users(path: str | Path) -> dict[str, User]:
    """The users of the TOML file at ``path``; ValueError naming the file and the user for a
    missing file, an unknown role or a missing hash."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(
            f"{path}: no users file; create one with "
            "`python scripts/console.py adduser --users <file> <name> --role operator`"
        )
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a TOML users file ({error})") from error
    users: dict[str, User] = {}
    for name, entry in dict(data.get("users", {})).items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: users.{name} must be a table with role and password")
        role, encoded = entry.get("role"), entry.get("password")
        if role not in ROLES:
            raise ValueError(f"{path}: users.{name}.role = {role!r}; use one of {ROLES}")
        if not isinstance(encoded, str) or not encoded.startswith("scrypt$"):
            raise ValueError(f"{path}: users.{name}.password is not a scrypt hash")
        users[_check_name(name)] = User(name, role, encoded)
    return users


def add_user(path: str | Path, name: str, role: str, password: str) -> User:
    """Add or replace ``name`` in the users file at ``path`` (created if missing), storing only
    the hash; the file is written atomically with mode 0600."""
    _check_name(name)
    if role not in ROLES:
        raise ValueError(f"role {role!r}: use one of {ROLES}")
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    path = Path(path)
    users = load_users(path) if path.is_file() else {}
    users[name] = User(name, role, hash_password(password))
    lines = ["# console users (scripts/console.py adduser); passwords are scrypt hashes", ""]
    for user in users.values():
        lines += [f'[users."{user.name}"]', f'role = "{user.role}"']
        lines += [f'password = "{user.password_hash}"', ""]
    write_atomic(path, "\n".join(lines))
    path.chmod(0o600)
    return users[name]


@dataclass
class Session:
    """One logged-in browser: the ``user``, its CSRF token and when it was last used (monotonic
    seconds)."""

    token: str
    user: User
    csrf: str
    last_used: float


class Sessions:
    """The console's sessions (module docstring); thread-safe."""

    def __init__(self, timeout_s: float = 900.0, clock: Callable[[], float] = time.monotonic):
        if not timeout_s > 0:
            raise ValueError(f"session timeout {timeout_s!r} must be > 0 seconds")
        self.timeout_s = float(timeout_s)
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, user: User) -> Session:
        """A new session for ``user`` (fresh token and CSRF token)."""
        session = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self.clock())
        with self._lock:
            self._drop_expired()
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of ``token`` (its idle timer restarted), or None if there is none or
        it timed out."""
        if not token:
            return None
        with self._lock:
            self._drop_expired()
            session = self._sessions.get(token)
            if session is not None:
                session.last_used = self.clock()
            return session

    def peek(self, token: str | None) -> Session | None:
        """The live session of ``token`` without restarting its idle timer (the live event
        stream: an open page alone keeps nobody signed in)."""
        with self._lock:
            self._drop_expired()
            return self._sessions.get(token or "")

    def close(self, token: str | None) -> None:
        """End the session of ``token`` (logout); unknown tokens are ignored."""
        with self._lock:
            self._sessions.pop(token or "", None)

    def _drop_expired(self) -> None:
        now = self.clock()
        for token in [t for t, s in self._sessions.items() if now - s.last_used > self.timeout_s]:
            del self._sessions[token]

    @staticmethod
    def csrf_matches(session: Session, token: str | None) -> bool:
        """Whether ``token`` is the session's CSRF token (constant-time)."""
        return bool(token) and hmac.compare_digest(session.csrf, str(token))
