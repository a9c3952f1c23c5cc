"""A throwaway PostgreSQL server for tests: its own data directory, a Unix socket in that
directory (no TCP port), trust authentication, stopped and deleted afterwards.

PostgreSQL refuses to run as root; as root the server runs as the ``postgres`` system user that
Debian's package creates. ``make test`` installs the package (``make system-deps``).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl (newest installed major version), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4])
    )
    return Path(candidates[-1]).parent if candidates else None


@contextmanager
def temporary_server(port: int = 5433) -> Iterator[str]:
    """Start a server and yield a SQLAlchemy URL (psycopg 3 driver) for its ``postgres``
    database."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries not found; install them with "
            "'apt-get install postgresql' (make system-deps does)"
        )
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="twinfactory-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    data = root / "data"
    run = lambda *command: subprocess.run(  # noqa: E731
        [*as_user, *command], check=True, capture_output=True, text=True
    )
    try:
        run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )
        options = f"-k {root} -p {port} -c listen_addresses='' -c fsync=off"
        run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-l",
            str(root / "server.log"),
            "start",
        )
        try:
            yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
