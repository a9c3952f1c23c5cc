"""The console's configuration (a TOML file read by :func:`envs.config.load_config`, or built in
code by tests and ``scripts/console.py demo``), and its refusal log.

The console reaches the broker as a user of the ``operator`` role (it may publish only
``operator/command`` and read telemetry, twin reports and the bridge's state and status), reads
the bridge's store read-only and, if ``gate`` names the bridge's gate TOML, offers a rollback
per cohort. It binds to ``host`` = 127.0.0.1 unless configured otherwise; for a plant network
run it behind TLS (uvicorn's ``--ssl-keyfile``/``--ssl-certfile``, passed by
``scripts/console.py serve --ssl-keyfile ... --ssl-certfile ...``).

Refused requests (no session, wrong role, stale or missing CSRF token, replayed nonce, failed
login) are appended to the console's own JSON-lines log ``refusal_log`` (:class:`RefusalLog`),
not to the bridge's store: the store has one writer, the bridge, whose durable
(synchronous=FULL) writes must never wait on a web request's lock, and a console that can write
there could corrupt the bridge's record. The bridge audits every operator command it receives,
with the operator's name, in its own store.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.config import setting

__all__ = ["ConsoleSettings", "RefusalLog"]


@dataclass(frozen=True)
class ConsoleSettings:
    """Everything the console needs (module docstring)."""

    site: str = setting("plant-1", doc="site name in every topic (the bridge's mqtt.site)")
    store: str = setting("runs/bridge/bridge.sqlite", doc="the bridge's SQLite store (read-only)")
    gate: str = setting("", doc="the bridge's gate TOML, for the cohort names (empty: none)")
    runs: str = setting("runs", doc="folder of the scripts' results shown in the Runs view")
    users: str = setting(
        "configs/console/users.toml", doc="users file (scripts/console.py adduser)"
    )
    refusal_log: str = setting("runs/console/refused.jsonl", doc="refused requests, JSON lines")
    host: str = setting("127.0.0.1", doc="address to bind (0.0.0.0 only behind TLS)")
    port: int = setting(8080, low=0, high=65_535, doc="HTTP(S) port (0: any free port)")
    session_timeout_s: float = setting(900.0, low=10.0, high=86_400.0, doc="idle session end, s")
    push_interval_s: float = setting(0.2, low=0.05, high=10.0, doc="live update period, s")
    twin_stale_s: float = setting(
        660.0,
        low=1.0,
        high=86_400.0,
        doc="no twin report this long = stale (until the gap is known)",
    )
    mqtt_host: str = setting("127.0.0.1", doc="broker host")
    mqtt_port: int = setting(1883, low=1, high=65_535, doc="broker port")
    mqtt_username: str = setting("operator", doc="the console's broker user (operator role)")
    mqtt_password_file: str = setting("", doc="file holding that user's password")
    mqtt_ca_file: str = setting("", doc="CA certificate for TLS to the broker (empty: no TLS)")


class RefusalLog:
    """Append-only JSON lines of refused requests (module docstring); thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.count = 0

    def write(self, reason: str, **detail: Any) -> None:
        """Append one refusal: unix time, ``kind`` = console_refused, ``reason`` and details."""
        entry = {"time": time.time(), "kind": "console_refused", "reason": reason, **detail}
        line = json.dumps(entry, default=str) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                handle.write(line)
            self.count += 1

    def entries(self) -> list[dict[str, Any]]:
        """Every refusal written so far ([] without a file)."""
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
