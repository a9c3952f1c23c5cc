"""Running the console: its MQTT subscriber plus uvicorn, in this process.

:class:`ConsoleServer` is what ``scripts/console.py serve``/``demo``, the tests and the bench
use: ``start()`` connects the live state to the broker (in the background; it keeps
reconnecting) and serves the app on ``settings.host``:``settings.port`` (0 = a free port) on a
background thread; ``url`` is where it listens; ``stop()`` ends both.
:func:`deployment_console_settings` points a console at a :class:`LocalDeployment`.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from edge_bridge.console.app import Console, create_app
from edge_bridge.console.auth import User
from edge_bridge.console.config import ConsoleSettings
from edge_bridge.console.live import LiveState
from edge_bridge.mqtt import ConnectionSettings, TlsSettings

__all__ = ["ConsoleServer", "deployment_console_settings", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def deployment_console_settings(
    deployment: Any, folder: str | Path, **changes: Any
) -> ConsoleSettings:
    """Console settings for a :class:`edge_bridge.deployment.LocalDeployment`: its site, store,
    gate and broker (the generated ``operator`` account), users and refusal log in ``folder``."""
    folder = Path(folder)
    account = deployment.broker.account("operator")
    password_file = folder / "mqtt-operator.password"
    folder.mkdir(parents=True, exist_ok=True)
    password_file.write_text(account.password + "\n")
    password_file.chmod(0o600)
    settings = deployment.settings
    base = ConsoleSettings(
        site=settings.mqtt.site,
        store=str(deployment.store_path),
        gate=settings.gate,
        users=str(folder / "users.toml"),
        refusal_log=str(folder / "refused.jsonl"),
        port=0,
        mqtt_host=deployment.broker.host,
        mqtt_port=deployment.broker.port,
        mqtt_username=account.username,
        mqtt_password_file=str(password_file),
    )
    return dataclasses.replace(base, **changes)


class ConsoleServer:
    """The console in this process (module docstring). ``users``: instead of the users file."""

    def __init__(
        self,
        settings: ConsoleSettings,
        *,
        users: dict[str, User] | None = None,
        ssl_keyfile: str | None = None,
        ssl_certfile: str | None = None,
        client_id: str = "twinfactory-console",
    ) -> None:
        port = settings.port or free_port(settings.host)
        self.settings = dataclasses.replace(settings, port=port)
        self.live = LiveState(settings.site, twin_stale_s=settings.twin_stale_s)
        self.console = Console(self.settings, self.live, users)
        self.app = create_app(self.console)
        self.client_id = client_id
        scheme = "https" if ssl_certfile else "http"
        self.url = f"{scheme}://{self.settings.host}:{port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host=self.settings.host,
                port=port,
                log_level="warning",
                ssl_keyfile=ssl_keyfile,
                ssl_certfile=ssl_certfile,
                timeout_graceful_shutdown=1,
                ws="none",
            )
        )
        self._thread: threading.Thread | None = None

    def mqtt_settings(self) -> ConnectionSettings:
        """The broker connection of the console's subscriber (clean session)."""
        s = self.settings
        password = None
        if s.mqtt_password_file:
            path = Path(s.mqtt_password_file)
            if not path.is_file():
                raise FileNotFoundError(
                    f"mqtt_password_file {path} does not exist; write the operator user's "
                    "broker password into it (one line)"
                )
            password = path.read_text().strip()
        return ConnectionSettings(
            host=s.mqtt_host,
            port=s.mqtt_port,
            client_id=self.client_id,
            username=s.mqtt_username,
            password=password,
            tls=TlsSettings(s.mqtt_ca_file) if s.mqtt_ca_file else None,
        )

    def start(self, timeout_s: float = 10.0) -> ConsoleServer:
        """Connect the subscriber (waits up to ``timeout_s`` for the broker, then carries on
        reconnecting in the background) and serve on a background thread."""
        self.live.connect(self.mqtt_settings(), timeout_s)
        self._thread = threading.Thread(target=self._server.run, name="console", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"the console did not start on {self.url}")
            time.sleep(0.02)
        return self

    def serve_forever(self) -> None:
        """Connect and serve on this thread until Ctrl-C."""
        self.live.connect(self.mqtt_settings())
        try:
            self._server.run()
        finally:
            self.live.close()

    def stop(self) -> None:
        """Stop serving and disconnect."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
        self.live.close()

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
