"""Fixtures of the console tests: users (scrypt hashes made once per session) and the
``browser`` marker (tests in a real headless Chromium; they run in ``make test`` too)."""

from __future__ import annotations

import pytest

from edge_bridge.console.auth import User, hash_password

PASSWORDS = {"alice": "alice-secret", "victor": "victor-secret"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives a real headless Chromium (chromium + chromium-driver)"
    )


@pytest.fixture(scope="session")
def users() -> dict[str, User]:
    """alice (operator) and victor (viewer); passwords in :data:`PASSWORDS`."""
    return {
        "alice": User("alice", "operator", hash_password(PASSWORDS["alice"])),
        "victor": User("victor", "viewer", hash_password(PASSWORDS["victor"])),
    }
