"""What the console knows *now*: one MQTT subscriber (role ``operator``) and bounded in-memory
state fed by it, read by the web handlers and the server-sent-event stream.

Subscribed (read-only, the operator role's ACL): every machine's ``telemetry`` and ``twin``
report, the retained ``bridge/state`` (the bridge's will: offline when it dies) and
``bridge/status``. Commands and acks are not readable by operators; the console shows the last
command and its ack from the bridge's store instead (:mod:`edge_bridge.console.queries`).

Memory is bounded whatever the load: per machine the last telemetry sample, a history of at
most :data:`TRACE_POINTS` samples (at least :data:`TRACE_SPACING_S` wall seconds apart) and
the last :data:`TWIN_REPORTS` twin reports. Every change bumps a global version number; the
event stream sends the machines changed since the version it last sent.

Health (:meth:`LiveState.health`) tells the browser whether the numbers are live: the MQTT
connection, the bridge's retained STATE, whether twin reports stopped — more than ``2 ×`` the
usual gap between report batches (or ``twin_stale_s`` before two batches were seen) without
one — and whether telemetry arrives more than ``late_after_s`` after its ``sent_at`` (a
backlog: old numbers arriving now must not look live). The browser greys out what is not live
and shows each machine's data age from ``sent_at``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_bridge import topics
from edge_bridge.mqtt import ConnectionSettings, MqttClient
from edge_bridge.schema import (
    BridgeState,
    BridgeStatus,
    OperatorCommand,
    SchemaError,
    Telemetry,
    TwinReport,
)

__all__ = ["TRACE_POINTS", "TRACE_SPACING_S", "TWIN_REPORTS", "LiveState", "station_of"]

TRACE_POINTS = 600
"""Telemetry samples kept per machine for the machine view's live trace."""
TRACE_SPACING_S = 0.5
"""Wall seconds between two kept samples (a 10 Hz stream keeps 2 per second)."""
TWIN_REPORTS = 288
"""Twin reports kept per machine (one per decision interval: 24 h at 5 min)."""


def station_of(machine: str) -> str:
    """The station of a machine named ``<station>-<k>`` (``envs.scenario`` naming)."""
    return machine.rsplit("-", 1)[0] if "-" in machine else machine


@dataclass
class MachineLive:
    """The live state of one machine (module docstring); ``version``: the global version of
    its last change."""

    name: str
    version: int = 0
    telemetry: dict[str, Any] | None = None
    received_at: float | None = None
    trace: deque[tuple[float, float, Any, Any, Any]] = field(
        default_factory=lambda: deque(maxlen=TRACE_POINTS)
    )
    reports: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=TWIN_REPORTS))

    def summary(self) -> dict[str, Any]:
        """The overview row's live part (JSON-ready)."""
        report = self.reports[-1] if self.reports else None
        return {
            "name": self.name,
            "station": station_of(self.name),
            "version": self.version,
            "telemetry": self.telemetry,
            "received_at": self.received_at,
            "twin": None
            if report is None
            else {k: report[k] for k in ("stage", "assignment", "trust", "drift", "time_s")},
        }


class LiveState:
    """The console's live view of one site (module docstring). ``clock``: unix seconds."""

    def __init__(
        self,
        site: str,
        *,
        twin_stale_s: float = 600.0,
        late_after_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = topics.check_name(site, "site")
        self.twin_stale_s = float(twin_stale_s)
        self.late_after_s = float(late_after_s)
        self.telemetry_delay_s: float | None = None
        self.clock = clock
        self.version = 0
        self.machines: dict[str, MachineLive] = {}
        self.bridge_state: dict[str, Any] | None = None
        self.status: dict[str, Any] | None = None
        self.status_received_at: float | None = None
        self.last_twin_at: float | None = None
        self.client: MqttClient | None = None
        self.invalid = 0
        self._batches: deque[float] = deque(maxlen=20)
        self._lock = threading.Lock()

    # -- MQTT ------------------------------------------------------------------------------
    def connect(self, settings: ConnectionSettings, timeout_s: float = 0.0) -> MqttClient:
        """Subscribe with ``settings`` (a clean session) and connect in the background (waiting
        up to ``timeout_s`` for the first connection; the client keeps reconnecting)."""
        client = MqttClient(settings, on_invalid=self._invalid)
        for kind in ("telemetry", "twin", "state", "status"):
            client.subscribe(topics.filter_for(kind, self.site), self.receive, qos=0)
        client.start()
        if timeout_s:
            client.wait_connected(timeout_s)
        self.client = client
        return client

    def publish_operator(self, command: OperatorCommand) -> None:
        """Send an operator command to the bridge (QoS 1); RuntimeError when not connected."""
        client = self.client
        if client is None or not client.connected:
            raise RuntimeError("the console is not connected to the broker; try again later")
        client.publish(topics.operator_command_topic(self.site), command)

    def close(self) -> None:
        """Disconnect."""
        if self.client is not None:
            self.client.stop()

    def _invalid(self, topic: str, payload: bytes, error: SchemaError) -> None:
        self.invalid += 1

    # -- intake (paho's thread) ------------------------------------------------------------
    def receive(self, topic: str, message: Any) -> None:
        """Take one decoded message (telemetry, twin report, bridge state or status)."""
        now = self.clock()
        with self._lock:
            self.version += 1
            if isinstance(message, Telemetry):
                self._telemetry(message, now)
            elif isinstance(message, TwinReport):
                self._twin(message, now)
            elif isinstance(message, BridgeState):
                self.bridge_state = {"online": message.online, "since": message.since}
            elif isinstance(message, BridgeStatus):
                self.status = message.to_fields()
                self.status_received_at = now

    def _machine(self, name: str) -> MachineLive:
        machine = self.machines.get(name)
        if machine is None:
            machine = self.machines[name] = MachineLive(name)
        machine.version = self.version
        return machine

    def _telemetry(self, message: Telemetry, now: float) -> None:
        machine = self._machine(message.machine)
        signals = dict(message.signals)
        machine.telemetry = {
            "seq": message.seq,
            "time_s": message.time_s,
            "sent_at": message.sent_at,
            "signals": signals,
            "setpoints": dict(message.setpoints),
        }
        machine.received_at = now
        self.telemetry_delay_s = now - message.sent_at
        trace = machine.trace
        if not trace or now - trace[-1][0] >= TRACE_SPACING_S:
            trace.append(
                (
                    now,
                    message.time_s,
                    signals.get("temperature"),
                    signals.get("wear"),
                    signals.get("power"),
                )
            )

    def _twin(self, report: TwinReport, now: float) -> None:
        machine = self._machine(report.machine)
        machine.reports.append(report.to_fields())
        if self.last_twin_at is None or now - self.last_twin_at > 0.5:
            self._batches.append(now)  # reports of one decision arrive together
        self.last_twin_at = now

    # -- reading ---------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """Whether what the console shows is live (module docstring): ``mqtt``, ``bridge``
        (online | offline | unknown), ``twin_age_s``, ``twin_stale``, ``live`` (all good) and a
        human ``problems`` list."""
        now = self.clock()
        with self._lock:
            state = self.bridge_state
            last_twin = self.last_twin_at
            delay = self.telemetry_delay_s
            gaps = [b - a for a, b in zip(self._batches, list(self._batches)[1:], strict=False)]
        connected = self.client is not None and self.client.connected
        bridge = "unknown" if state is None else ("online" if state["online"] else "offline")
        limit = 2 * statistics.median(gaps) if len(gaps) >= 2 else self.twin_stale_s
        limit = max(limit, 2.0)
        age = None if last_twin is None else now - last_twin
        twin_stale = age is not None and age > limit
        problems = []
        if not connected:
            problems.append("broker connection lost: the console receives nothing")
        if bridge == "offline":
            problems.append("the bridge is offline (its last will or a clean stop)")
        if twin_stale:
            problems.append(f"no twin report for {age:.0f} s (expected every {limit / 2:.0f} s)")
        late = delay is not None and delay > self.late_after_s
        if late:
            problems.append(
                f"telemetry arrives {delay:.0f} s after it was sent (the console or the broker "
                "falls behind, or the clocks differ)"
            )
        return {
            "mqtt": connected,
            "bridge": bridge,
            "bridge_since": None if state is None else state["since"],
            "twin_age_s": age,
            "twin_stale_after_s": limit,
            "twin_stale": twin_stale,
            "telemetry_delay_s": delay,
            "live": connected and bridge == "online" and not twin_stale and not late,
            "problems": problems,
            "now": now,
        }

    def changed_since(self, version: int) -> tuple[int, list[dict[str, Any]]]:
        """The current version and the summaries of machines changed after ``version``."""
        with self._lock:
            rows = [m.summary() for m in self.machines.values() if m.version > version]
            return self.version, rows

    def status_view(self) -> dict[str, Any] | None:
        """The last bridge status with ``received_at``."""
        with self._lock:
            if self.status is None:
                return None
            return {**self.status, "received_at": self.status_received_at}

    def machine_detail(self, name: str) -> dict[str, Any] | None:
        """Everything the machine view draws, or None for a machine never heard of."""
        with self._lock:
            machine = self.machines.get(name)
            if machine is None:
                return None
            return {
                **machine.summary(),
                "trace": [list(point) for point in machine.trace],
                "reports": list(machine.reports),
            }
