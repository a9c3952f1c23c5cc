"""The one atomic-write helper: every output that must survive a crash is written to a
temporary file in the destination's folder and renamed over it (``os.replace`` is atomic on
POSIX and Windows), so a reader sees the old file or the new one, never half of one.

    write_atomic("runs/x/report.json", json.dumps(report))
    with atomic_path("runs/x/model.zip") as temporary:   # for writers that want a path
        model.save(temporary)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_atomic"]


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit it is renamed over ``path``, on
    an exception it is removed and ``path`` is left as it was. Parent folders are created."""
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=destination.suffix
    )
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if temporary.exists():  # mkstemp makes it 0600; give it the mode a plain open() would
            temporary.chmod(0o666 & ~_umask())
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns ``path``."""
    destination = Path(path)
    with atomic_path(destination) as temporary:
        if isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data, encoding="utf-8")
    return destination
