"""Synthetic equipment for load tests of the bridge (``scripts/bench_bridge.py``).

The scenario it hosts is usually :func:`envs.scaling.scaled_scenario` (re-exported here with
:data:`~envs.scaling.MAX_PER_STATION`): the shipped line grown to N machines.

:class:`SyntheticEquipment` is one edge node (one MQTT 5 connection, role ``equipment``,
persistent session) hosting every machine of such a scenario. It publishes schema-valid
:class:`~edge_bridge.schema.Telemetry` for all machines at ``rate_hz`` (wall clock): each
*tick* is one scenario tick of plant time (``time_s = tick · tick_s``), all machines sampled at
the same instant and published in one burst (as a gateway polling its PLCs), so plant time runs
``tick_s × rate_hz`` faster than real time and a decision interval completes every
``decision_interval_s / tick_s`` ticks. With ``plant_step_s`` (e.g. ``1 / rate_hz``: plant
time = wall time) each tick is that many seconds of plant time instead, and a decision interval
takes ``decision_interval_s / plant_step_s`` ticks; the signal dynamics below are scaled to the
step (per-tick probabilities and relaxation compounded, noise by its square root).
Signals are plausible, not physical: states mostly busy (a two-state busy/idle chain),
temperature relaxing toward a busy or idle level with noise, wear slowly rising while busy,
power by state (a mill alternates cutting and handling), vibration for mills.
Every message carries ``sent_at``.

Commands are answered at once on the network thread: applied (or ``duplicate`` for a key seen
before, ``expired`` past ``expires_at``) with the read-back of what is now in force, so the
bridge's ledger settles; a maintenance request puts the machine into maintenance for the
scenario's ``maintenance_h`` and renews its tool. Each command's arrival time is recorded.
:meth:`SyntheticEquipment.run` returns a :class:`LoadReport`: the ``sent_at`` of each tick's last
message (the one that completes a decision interval at a boundary tick), the messages sent, and
every command received with its arrival time.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_bridge import topics
from edge_bridge.commands import DedupWindow
from edge_bridge.mqtt import ConnectionSettings, MqttClient
from edge_bridge.schema import SETPOINT_TAGS, Ack, Command, Message, NodeBirth, NodeDeath, Telemetry
from envs.machines import MachineState
from envs.scaling import MAX_PER_STATION, scaled_scenario
from envs.scenario import Scenario

__all__ = [
    "MAX_PER_STATION",
    "LoadReport",
    "ReceivedCommand",
    "SyntheticEquipment",
    "scaled_scenario",
]

_BUSY, _IDLE, _MAINTENANCE = (
    int(MachineState.BUSY),
    int(MachineState.IDLE),
    int(MachineState.MAINTENANCE),
)


@dataclass(frozen=True)
class ReceivedCommand:
    """A command as it reached the equipment: ``arrived_at`` unix s, ``status`` of its ack."""

    command_id: str
    idempotency_key: str
    machine: str
    decision_index: int
    issued_at: float
    arrived_at: float
    status: str


@dataclass
class LoadReport:
    """What :meth:`SyntheticEquipment.run` did (times unix s)."""

    machines: int
    rate_hz: float
    ticks_per_decision: int
    started_at: float = 0.0
    ended_at: float = 0.0
    tick_sent_at: list[float] = field(default_factory=list)
    """Per tick, ``sent_at`` of its last telemetry message."""
    telemetry_sent: int = 0
    late_ticks: int = 0
    """Ticks that started more than one period behind schedule (the generator fell behind)."""
    max_lateness_s: float = 0.0
    acks_sent: int = 0
    commands: list[ReceivedCommand] = field(default_factory=list)

    def boundary_sent_at(self, decision_index: int) -> float:
        """``sent_at`` of the message that completed decision interval ``decision_index``
        (NaN if that tick was not sent)."""
        tick = (decision_index + 1) * self.ticks_per_decision
        return self.tick_sent_at[tick] if tick < len(self.tick_sent_at) else math.nan

    @property
    def decisions_expected(self) -> int:
        """Decision intervals whose boundary tick was sent."""
        return max(0, (len(self.tick_sent_at) - 1) // self.ticks_per_decision)


class SyntheticEquipment:
    """One edge node publishing telemetry of every machine of ``scenario`` (module docstring).
    ``settings`` must ask for a persistent session (``session_expiry_s > 0``)."""

    def __init__(
        self,
        scenario: Scenario,
        settings: ConnectionSettings,
        *,
        site: str,
        node: str = "load-1",
        rate_hz: float = 10.0,
        plant_step_s: float | None = None,
        seed: int = 0,
    ) -> None:
        if settings.session_expiry_s <= 0:
            raise ValueError("SyntheticEquipment needs a persistent session: session_expiry_s > 0")
        if not (math.isfinite(rate_hz) and 0 < rate_hz <= 1000):
            raise ValueError(f"rate_hz must be in (0, 1000], not {rate_hz!r}")
        self.scenario = scenario
        self.site = topics.check_name(site, "site")
        self.node = topics.check_name(node, "node")
        self.rate_hz = float(rate_hz)
        self.machines = tuple(scenario.machine_names)
        self.step_s = float(scenario.tick_s if plant_step_s is None else plant_step_s)
        per = scenario.decision_interval_s / self.step_s
        if not (math.isfinite(per) and per >= 1 and abs(per - round(per)) < 1e-6):
            raise ValueError(
                f"plant_step_s must divide the decision interval "
                f"({scenario.decision_interval_s} s) into whole samples, not {plant_step_s!r}"
            )
        self.ticks_per_decision = round(per)
        self._per_tick = self.step_s / scenario.tick_s  # the signal dynamics are per tick
        equipment = scenario.machine_equipment
        self._mill = np.array([equipment[m] == "CncMill" for m in self.machines])
        self._index = {name: k for k, name in enumerate(self.machines)}
        count = len(self.machines)
        self._rng = np.random.default_rng(seed)
        self._state = np.full(count, _BUSY)
        self._temperature = np.full(count, 30.0)
        self._wear = self._rng.uniform(0.0, 0.3, count)
        self._maintenance_left = np.zeros(count, dtype=int)
        self._speed = np.ones(count)
        self._standby = np.zeros(count, dtype=bool)
        self._maintenance_ticks = max(
            1, round(scenario.reliability.maintenance_h * 3600 / self.step_s)
        )
        self._lock = threading.Lock()
        self._dedup = DedupWindow(capacity=max(10_000, 20 * count))
        self.report = LoadReport(count, self.rate_hz, self.ticks_per_decision)
        self._client = MqttClient(
            settings, will=(topics.death_topic(site, node), NodeDeath(node, 0))
        )
        # one wildcard subscription: 500 per-machine filters in one SUBSCRIBE exceed the
        # broker's max_packet_size and the broker drops the connection
        self._client.subscribe(topics.filter_for("command", site), self._on_command)

    def start(self, timeout_s: float = 10.0) -> SyntheticEquipment:
        """Connect and publish the node's birth."""
        self._client.connect(timeout_s)
        birth = NodeBirth(
            node=self.node,
            bd_seq=0,
            machines=self.machines,
            sent_at=time.time(),
            setpoints={tag: kind.__name__ for tag, kind in SETPOINT_TAGS.items()},
        )
        self._send(topics.birth_topic(self.site, self.node), birth)
        return self

    def close(self) -> None:
        """Disconnect cleanly (no death message)."""
        self._client.stop()

    def _send(self, topic: str, message: Message) -> None:
        self._client.publish(topic, message)

    # --- telemetry --------------------------------------------------------------------------
    def run(
        self,
        seconds: float,
        *,
        progress: Callable[[LoadReport], None] | None = None,
        progress_every_s: float = 10.0,
    ) -> LoadReport:
        """Publish for ``seconds`` of wall time (rounded up so the last tick ends a decision
        interval) and return the report (commands keep arriving into it until :meth:`close`)."""
        per = self.ticks_per_decision
        ticks = math.ceil(seconds * self.rate_hz / per) * per + 1  # ticks 0 .. a boundary
        period = 1.0 / self.rate_hz
        report = self.report
        report.started_at = start = time.time()
        next_progress = start + progress_every_s
        for tick in range(ticks):
            due = start + tick * period
            now = time.time()
            if due > now:
                time.sleep(due - now)
            elif now - due > period:
                report.late_ticks += 1
                report.max_lateness_s = max(report.max_lateness_s, now - due)
            self._publish_tick(tick)
            if progress is not None and time.time() >= next_progress:
                next_progress += progress_every_s
                progress(report)
        report.ended_at = time.time()
        return report

    def _advance_signals(self) -> None:
        rng, count = self._rng, len(self.machines)
        with self._lock:
            serving = self._maintenance_left > 0
            self._maintenance_left[serving] -= 1
            done = serving & (self._maintenance_left == 0)
            self._wear[done] = 0.0
            flip = rng.random(count)
            busy = self._state == _BUSY
            to_idle, to_busy = (1.0 - (1.0 - p) ** self._per_tick for p in (0.03, 0.3))
            state = np.where(
                busy,
                np.where(flip < to_idle, _IDLE, _BUSY),
                np.where(flip < to_busy, _BUSY, _IDLE),
            )
            self._state = np.where(self._maintenance_left > 0, _MAINTENANCE, state)
        busy = self._state == _BUSY
        tick_h = self.step_s / 3600.0
        target = np.where(busy, 38.0 + 6.0 * self._speed, 26.0)
        relax = 1.0 - 0.8**self._per_tick
        noise = rng.normal(0.0, 0.3 * math.sqrt(self._per_tick), count)
        self._temperature += relax * (target - self._temperature) + noise
        self._wear = np.minimum(1.0, self._wear + busy * self._speed * tick_h / 8.0)

    def _signals(self) -> list[dict[str, float | int | None]]:
        count = len(self.machines)
        busy = self._state == _BUSY
        idle = self._state == _IDLE
        cutting = self._rng.random(count) < 0.6
        mill_power = np.where(
            busy, np.where(cutting, 10.5, 5.0) * self._speed, np.where(idle, 2.0, 0.4)
        )
        robot_power = np.where(busy, 2.5 * self._speed, np.where(idle, 0.9, 0.2))
        power = np.where(self._mill, mill_power, robot_power) + self._rng.normal(0.0, 0.1, count)
        vibration = np.where(busy, 1.8 * self._speed, 0.3) + self._rng.normal(0.0, 0.05, count)
        rows: list[dict[str, float | int | None]] = []
        for k in range(count):
            row: dict[str, float | int | None] = {
                "temperature": float(self._temperature[k]),
                "wear": float(self._wear[k]),
                "power": float(max(0.0, power[k])),
                "state": int(self._state[k]),
            }
            if self._mill[k]:
                row["vibration"] = float(max(0.0, vibration[k]))
            rows.append(row)
        return rows

    def _publish_tick(self, tick: int) -> None:
        self._advance_signals()
        rows = self._signals()
        time_s = tick * self.step_s
        with self._lock:
            setpoints = [
                {"speed_factor": float(self._speed[k]), "standby": bool(self._standby[k])}
                for k in range(len(self.machines))
            ]
        sent_at = math.nan
        for k, machine in enumerate(self.machines):
            sent_at = time.time()
            message = Telemetry(
                machine=machine,
                seq=tick,
                time_s=time_s,
                sent_at=sent_at,
                signals=rows[k],
                setpoints=setpoints[k],
            )
            self._send(topics.telemetry_topic(self.site, machine), message)
        self.report.telemetry_sent += len(self.machines)
        self.report.tick_sent_at.append(sent_at)

    # --- commands (paho's network thread) ----------------------------------------------------
    def _on_command(self, topic: str, message: Message) -> None:
        arrived = time.time()
        if not isinstance(message, Command) or message.machine not in self._index:
            return
        k = self._index[message.machine]
        if self._dedup.seen(message.command_id, message.idempotency_key):
            status = "duplicate"
        elif message.expired(arrived):
            status = "expired"
        else:
            status = "applied"
            self._dedup.remember(message.command_id, message.idempotency_key)
            setpoints = message.setpoints
            with self._lock:
                self._speed[k] = float(setpoints["speed_factor"])
                self._standby[k] = bool(setpoints["standby"])
                if setpoints["maintenance"] and self._maintenance_left[k] == 0:
                    self._maintenance_left[k] = self._maintenance_ticks
        with self._lock:
            readback: dict[str, float | bool] = {
                "speed_factor": float(self._speed[k]),
                "standby": bool(self._standby[k]),
                "maintenance": bool(message.setpoints["maintenance"]) and status == "applied",
            }
        ack = Ack(
            command_id=message.command_id,
            idempotency_key=message.idempotency_key,
            machine=message.machine,
            status=status,
            acked_at=time.time(),
            readback=readback,
        )
        self._send(topics.ack_topic(self.site, message.machine), ack)
        self.report.acks_sent += 1
        self.report.commands.append(
            ReceivedCommand(
                message.command_id,
                message.idempotency_key,
                message.machine,
                message.decision_index,
                message.issued_at,
                arrived,
                status,
            )
        )
