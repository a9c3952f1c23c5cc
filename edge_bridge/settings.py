"""The bridge's configuration (``configs/bridge/bridge.toml``), loaded by
:func:`envs.config.load_config` like every other twinfactory config.

The bridge knows the plant's *scenario* (machines, stations, speed ranges, calendar), its
sampling period and the calendar time of its clock's zero — never an emulator's hidden
parameters or seed. The envelope and gate files are named here and loaded by their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge_bridge.commands import LedgerConfig
from envs.config import setting


@dataclass(frozen=True)
class MqttSettings:
    """How the bridge reaches the broker (the ``[mqtt]`` table)."""

    site: str = setting("plant-1", doc="site name in every topic (Sparkplug group)")
    host: str = setting("127.0.0.1", doc="broker host")
    port: int = setting(1883, low=1, high=65_535, doc="broker port")
    username: str = setting("bridge", doc="the bridge role's user name")
    password_file: str = setting("", doc="file holding the password (empty: no password)")
    ca_file: str = setting("", doc="CA certificate for TLS (empty: no TLS)")
    client_id: str = setting("twinfactory-bridge", doc="MQTT client id (persistent session)")
    session_expiry_s: int = setting(
        3_600, low=0, high=86_400 * 7, doc="persistent session kept this long after a drop, s"
    )

    def password(self) -> str | None:
        """The password read from ``password_file`` (None without one)."""
        if not self.password_file:
            return None
        path = Path(self.password_file)
        if not path.is_file():
            raise FileNotFoundError(
                f"mqtt.password_file {path} does not exist; write the bridge user's password "
                "into it (one line)"
            )
        return path.read_text().strip()


@dataclass(frozen=True)
class BridgeSettings:
    """Everything the bridge service needs (see ``configs/bridge/bridge.toml``)."""

    scenario: str = setting("automotive_components", doc="the plant's scenario (name or path)")
    sample_interval_s: float = setting(
        60.0, low=1.0, high=3_600.0, doc="the plant's sampling period, s (a whole number of ticks)"
    )
    start_h: float = setting(
        6.0, low=0.0, high=168.0, doc="hours into the week at the plant's time_s = 0"
    )
    incumbent: str = setting(
        "condition_based", doc="what runs today: heuristic, .npz/.zip policy or pareto.json#i"
    )
    candidate: str = setting("", doc="what is being rolled out (same forms); empty: none")
    envelope: str = setting("configs/bridge/envelope.toml", doc="safety envelope TOML")
    gate: str = setting("configs/bridge/gate.toml", doc="gray-scale gate TOML")
    store: str = setting("runs/bridge/bridge.sqlite", doc="SQLite file: audit, gate, commands")
    stale_after_s: float = setting(
        180.0, low=1.0, high=86_400.0, doc="plant seconds without telemetry before fallback"
    )
    interval_wait_s: float = setting(
        2.0, low=0.01, high=600.0, doc="wall seconds to wait for late machines at an interval end"
    )
    shadow_seed: int = setting(
        0, low=0, high=2**31 - 1, doc="seed of the twin A/B comparison's discrete events"
    )
    shadow_pairs: int = setting(
        4, low=1, high=64, doc="seeds the twin A/B comparison runs side by side"
    )
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    commands: LedgerConfig = field(default_factory=LedgerConfig)
