"""The plant emulator's MQTT front: :class:`envs.plant.Plant` as an equipment gateway (one
Sparkplug-style edge node hosting every machine of the line), so the whole loop runs on one
machine. See ``edge_bridge/PROTOCOL.md`` for the topics and payloads.

    emulator = PlantEmulator(plant, broker.settings("equipment", "gw-1", session_expiry_s=3600),
                             EmulatorConfig(site="plant-a", node="gw-1"))
    with emulator:                      # connect (persistent session, will = death), birth
        emulator.reset()                # the t = 0 sample
        for _ in range(288):
            result = emulator.step()    # lock-step: wait for the last interval's commands,
                                        # apply them, advance 5 min, publish samples + KPI

**Connection**: role ``equipment``, a persistent session (commands queued while away reach it),
last will = ``NodeDeath(bd_seq)``. It subscribes to its machines' command topics and
``bridge/state`` and publishes its ``NodeBirth`` on connect and again whenever the bridge's state
turns online or the client reconnected (Sparkplug rebirth); each birth restarts every machine's
``seq`` at 0. The will is fixed per connection, so a reconnect by paho itself (broker restart)
re-births with the same ``bd_seq``; :meth:`PlantEmulator.go_offline` reconnects as a new
connection with ``bd_seq + 1``.

**Time**: decision interval ``k`` (0, 1, ...) runs plant time ``[k, k+1] × 300 s``; its
telemetry and KPI are published at the end of :meth:`~PlantEmulator.step`, and the commands it
produces carry ``decision_index == k`` and hold during interval ``k + 1``. In lock-step mode the
next ``step()`` first waits until every machine has a command with that index (or
``command_timeout_s`` wall seconds: machines without one keep their setpoints; counted in
``counters.missing`` and ``missing_per_interval``, logged). :meth:`~PlantEmulator.run` with a
``realtime_factor`` free-runs on a wall-clock schedule instead and applies whatever arrived.

**Commands** are received on paho's network thread and handed to the stepping thread through a
queue; the stepping thread (in ``step``, ``run`` and ``process_commands``) answers each one:
seen before by the :class:`edge_bridge.commands.DedupWindow` (id or idempotency key) →
``duplicate``, not applied again; ``now >= expires_at`` → ``expired``, never applied; refused by
``Plant.apply`` (speed outside the station's range) → ``rejected`` with the plant's reason,
nothing changed; otherwise applied (speed and standby sticky, maintenance one-shot for the next
interval) → ``applied``. Every ack carries ``readback``: the values in force read from the plant
afterwards (speed_factor, standby, maintenance pending).

**Threads**: call ``reset``, ``step``, ``run``, ``process_commands`` from one thread (the
stepping thread). ``close``, the fault methods and ``inject_drift`` may be called from any thread
(they take the emulator's locks). Publishing (births, telemetry, acks) is serialised by one lock,
so a rebirth from the network thread never interleaves with a step's ``seq`` numbers.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edge_bridge.commands import DedupWindow
from edge_bridge.equipment_config import (
    CommandCounters,
    DropFault,
    EmulatorConfig,
    OfflineFault,
    StepResult,
    check_at_least,
)
from edge_bridge.mqtt import ConnectionSettings, MqttClient
from edge_bridge.schema import (
    SETPOINT_TAGS,
    Ack,
    BridgeState,
    Command,
    LineKpi,
    Message,
    NodeBirth,
    NodeDeath,
    Telemetry,
)
from edge_bridge.topics import (
    ack_topic,
    birth_topic,
    bridge_state_topic,
    command_topic,
    death_topic,
    kpi_topic,
    telemetry_topic,
)
from envs.kpi import combine_records
from envs.plant import SIGNAL_KINDS, DriftEvent, Plant

__all__ = [
    "SIGNAL_UNITS",
    "CommandCounters",
    "DropFault",
    "EmulatorConfig",
    "OfflineFault",
    "PlantEmulator",
    "StepResult",
]

logger = logging.getLogger(__name__)

SIGNAL_UNITS: dict[str, str] = {
    "temperature": "degC",
    "wear": "1",
    "power": "kW",
    "vibration": "mm/s",
    "state": "MachineState",
}
"""Units of the telemetry signals as the birth announces them (envs.plant_signals' table)."""


@dataclass
class _Buffered:
    """Messages of one offline interval kept for after the reconnect (buffer_offline)."""

    interval: int
    messages: list[tuple[str, Message]] = field(default_factory=list)


class PlantEmulator:
    """``plant`` on the broker as edge node ``config.node`` (see the module docstring).
    ``settings`` must ask for a persistent session (``session_expiry_s > 0``) so commands sent
    while it is offline reach it. The emulator does not close ``plant``."""

    def __init__(
        self,
        plant: Plant,
        settings: ConnectionSettings,
        config: EmulatorConfig | None = None,
        *,
        dedup: DedupWindow | None = None,
    ) -> None:
        if settings.session_expiry_s <= 0:
            raise ValueError(
                "the emulator needs a persistent session so commands survive a disconnect: "
                "pass ConnectionSettings with session_expiry_s > 0 (e.g. 3600)"
            )
        self.plant = plant
        self.settings = settings
        self.config = config or EmulatorConfig()
        self.machines: tuple[str, ...] = tuple(plant.machine_names)
        for fault in self.config.drops:
            self._check_machine(fault.machine)
        self.dedup = DedupWindow() if dedup is None else dedup
        self.counters = CommandCounters()
        self.missing_per_interval: dict[int, tuple[str, ...]] = {}
        """Decision interval → machines without a command for it (lock-step timeouts)."""
        self.lost_samples = 0
        """Samples (one machine, one instant) not published: dropped fault or offline."""
        self.births = 0
        self.bd_seq = self.config.bd_seq
        self.ack_delay_s = self.config.ack_delay_s
        self._index = {name: k for k, name in enumerate(self.machines)}
        self._seq = dict.fromkeys(self.machines, 0)
        self._commands: queue.Queue[Command] = queue.Queue()
        self._answered: dict[int, set[str]] = {}
        self._publish_lock = threading.RLock()
        self._plant_lock = threading.Lock()
        self._client = self._make_client()
        self._birth_connects = -1
        self._bridge_online: bool | None = None
        self._drop_left = dict.fromkeys(self.machines, 0)
        self._offline_left = 0
        self._link_down = False
        self._buffer: list[_Buffered] = []
        self._held_acks: list[Ack] = []
        self._timers: set[threading.Timer] = set()
        self._stop = threading.Event()
        self._interval = 0
        self._awaiting: int | None = None
        self._started = False
        self._reset_done = False

    # --- connection, birth ------------------------------------------------------------------

    def _make_client(self) -> MqttClient:
        death = (
            death_topic(self.config.site, self.config.node),
            NodeDeath(self.config.node, self.bd_seq),
        )
        client = MqttClient(self.settings, will=death)
        for machine in self.machines:
            client.subscribe(command_topic(self.config.site, machine), self._on_command)
        client.subscribe(bridge_state_topic(self.config.site), self._on_bridge_state)
        return client

    @property
    def online(self) -> bool:
        """Whether the gateway's connection is up and its birth published."""
        return not self._link_down and self._client.connected

    def start(self) -> PlantEmulator:
        """Connect (ConnectionRefusedError / TimeoutError from ``MqttClient.connect``) and
        publish the birth."""
        if self._stop.is_set():
            raise RuntimeError("the emulator is closed; make a new one")
        if not self._started:
            self._client.connect(self.config.connect_timeout_s)
            self._started = True
            self._rebirth_if_reconnected()
        return self

    def _publish_birth(self) -> None:
        """Publish the birth and restart every ``seq`` (caller holds the publish lock)."""
        birth = NodeBirth(
            node=self.config.node,
            bd_seq=self.bd_seq,
            machines=self.machines,
            sent_at=time.time(),
            signals=dict(SIGNAL_UNITS),
            setpoints={tag: kind.__name__ for tag, kind in SETPOINT_TAGS.items()},
        )
        self._send(birth_topic(self.config.site, self.config.node), birth)
        self._seq = dict.fromkeys(self.machines, 0)
        self._birth_connects = self._client.connects
        self.births += 1
        logger.info("%s: birth bd_seq=%d", self.config.node, self.bd_seq)

    def _send(self, topic: str, message: Message) -> None:
        """Publish through the current connection (caller holds the publish lock)."""
        self._client.publish(topic, message)

    def _rebirth_if_reconnected(self) -> None:
        with self._publish_lock:
            if self._link_down or not self._client.connected:
                return
            if self._client.connects != self._birth_connects:
                self._publish_birth()

    def _on_bridge_state(self, topic: str, message: Message) -> None:
        """Network thread: the bridge's STATE; a bridge turning online gets a fresh birth."""
        if not isinstance(message, BridgeState):
            return
        with self._publish_lock:
            turned_online = message.online and self._bridge_online is False
            self._bridge_online = message.online
            if self._link_down or not self._client.connected:
                return
            if turned_online or self._client.connects != self._birth_connects:
                self._publish_birth()

    # --- faults -----------------------------------------------------------------------------

    def _check_machine(self, machine: str) -> None:
        if machine not in self.plant.machine_names:
            raise ValueError(
                f"machine {machine!r} is not on this line; the machines are "
                f"{', '.join(self.plant.machine_names)}"
            )

    def drop_telemetry(self, machine: str, intervals: int) -> None:
        """Publish no telemetry from ``machine`` for the next ``intervals`` steps."""
        self._check_machine(machine)
        check_at_least("intervals", intervals, 1)
        with self._publish_lock:
            self._drop_left[machine] = max(self._drop_left[machine], int(intervals))

    def delay_acks(self, seconds: float) -> None:
        """Hold every ack back ``seconds`` wall seconds from now on (0 = send at once)."""
        check_at_least("ack delay", seconds, 0.0)
        self.ack_delay_s = float(seconds)

    def go_offline(self, intervals: int) -> None:
        """Drop the connection now without a DISCONNECT (the broker publishes the death) and
        reconnect, as a new connection with ``bd_seq + 1`` and a new birth, after the next
        ``intervals`` steps. Their samples are lost unless ``config.buffer_offline``."""
        check_at_least("intervals", intervals, 1)
        with self._publish_lock:
            if self._link_down:
                self._offline_left = max(self._offline_left, int(intervals))
                return
            self._link_down = True  # from here on nothing is published on this client
            self._offline_left = int(intervals)
            client = self._client
        # outside the lock: abort() joins paho's thread, which may be waiting for it
        client.abort()
        logger.info("%s: offline for %d intervals", self.config.node, intervals)

    def inject_drift(self, event: DriftEvent) -> None:
        """Schedule a drift of the plant (``Plant.inject_drift``: validated, ConfigError)."""
        with self._plant_lock:
            self.plant.inject_drift(event)

    def _reconnect(self) -> None:
        """After go_offline: a new connection with the next bd_seq (will = its death)."""
        with self._publish_lock:
            self.bd_seq += 1
            self._client = self._make_client()
            self._birth_connects = -1
            self._client.start()
        if not self._client.wait_connected(self.config.connect_timeout_s):
            logger.warning("%s: not reconnected yet; retrying in the background", self.config.node)
        self._finish_reconnect()

    def _finish_reconnect(self) -> None:
        with self._publish_lock:
            if not self._link_down or self._offline_left > 0 or not self._client.connected:
                return
            self._link_down = False
            self._publish_birth()
            for held in self._buffer:
                for topic, message in held.messages:
                    self._send(topic, self._renumbered(message))
                if held.interval >= 0:
                    self._awaiting = held.interval  # the bridge has its data now
            self._buffer = []
            acks, self._held_acks = self._held_acks, []
        for ack in acks:
            self._send_ack(ack)

    def _renumbered(self, message: Message) -> Message:
        """A buffered sample gets the next ``seq`` of the new birth."""
        if not isinstance(message, Telemetry):
            return message
        seq = self._seq[message.machine]
        self._seq[message.machine] = seq + 1
        return dataclasses.replace(message, seq=seq)

    # --- commands ---------------------------------------------------------------------------

    def _on_command(self, topic: str, message: Message) -> None:
        """Network thread: hand the command to the stepping thread."""
        if isinstance(message, Command):
            self._commands.put(message)

    def process_commands(self, timeout_s: float = 0.0) -> int:
        """Answer the commands received so far, waiting up to ``timeout_s`` for the first
        one; returns how many were applied."""
        applied = 0
        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, deadline - time.monotonic())
            try:
                command = (
                    self._commands.get(timeout=wait) if wait > 0 else self._commands.get_nowait()
                )
            except queue.Empty:
                return applied
            applied += self._handle(command)
            deadline = time.monotonic()  # then drain without waiting

    def _wait_for_commands(self, decision: int) -> tuple[int, tuple[str, ...]]:
        """Lock-step: answer commands until every machine has one for ``decision`` or the
        timeout passed; returns (applied, machines still without one)."""
        applied = 0
        deadline = time.monotonic() + self.config.command_timeout_s
        answered = self._answered.setdefault(decision, set())
        while len(answered) < len(self.machines) and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                command = self._commands.get(timeout=min(left, 0.05))
            except queue.Empty:
                self._rebirth_if_reconnected()
                continue
            applied += self._handle(command)
        applied += self.process_commands()
        missing = tuple(m for m in self.machines if m not in answered)
        if missing:
            self.counters.missing += len(missing)
            self.missing_per_interval[decision] = missing
            logger.warning(
                "%s: no command for decision %d within %.1f s for %s; they keep their setpoints",
                self.config.node,
                decision,
                self.config.command_timeout_s,
                ", ".join(missing),
            )
        return applied, missing

    def readback(self, machine: str) -> dict[str, float | bool]:
        """The setpoints in force for ``machine``, read from the plant: speed_factor, standby,
        maintenance (a one-shot request pending for the next interval)."""
        speed, standby, maintenance = self._in_force()
        k = self._index[machine]
        return {
            "speed_factor": float(speed[k]),
            "standby": bool(standby[k]),
            "maintenance": bool(maintenance[k]),
        }

    def _in_force(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plant's setpoints for its next advance (speed, standby, maintenance; copies).
        Only the stepping thread changes them (``_apply``), so no lock is needed."""
        return self.plant.setpoints()

    def _handle(self, command: Command) -> int:
        """Answer one command on the stepping thread; 1 if it was applied."""
        if command.machine not in self._index:
            logger.warning("%s: command for unknown machine %s", self.config.node, command.machine)
            return 0
        self._answered.setdefault(command.decision_index, set()).add(command.machine)
        reason = ""
        applied = 0
        if self.dedup.seen(command.command_id, command.idempotency_key):
            status = "duplicate"
        elif command.expired(time.time()):
            status = "expired"
            reason = f"received after expires_at {command.expires_at}; not applied"
        else:
            try:
                self._apply(command)
            except ValueError as error:
                status, reason = "rejected", str(error)
            else:
                status, applied = "applied", 1
                self.dedup.remember(command.command_id, command.idempotency_key)
        setattr(self.counters, status, getattr(self.counters, status) + 1)
        if status != "applied":
            logger.info("%s: command %s %s %s", command.machine, command.command_id, status, reason)
        ack = Ack(
            command_id=command.command_id,
            idempotency_key=command.idempotency_key,
            machine=command.machine,
            status=status,
            acked_at=time.time(),
            readback=self.readback(command.machine),
            reason=reason,
        )
        self._send_ack(ack)
        return applied

    def _apply(self, command: Command) -> None:
        """Write one machine's setpoints into the plant; ValueError (nothing changed) if the
        plant refuses them."""
        k = self._index[command.machine]
        speed, standby, maintenance = self._in_force()
        speed[k] = float(command.setpoints["speed_factor"])
        standby[k] = bool(command.setpoints["standby"])
        maintenance[k] = bool(command.setpoints["maintenance"])
        with self._plant_lock:
            self.plant.apply(speed_factors=speed, standby=standby, maintenance=maintenance)

    def _send_ack(self, ack: Ack) -> None:
        if self.ack_delay_s > 0:
            timer = threading.Timer(self.ack_delay_s, self._publish_ack, (ack,))
            timer.daemon = True
            self._timers.add(timer)
            timer.start()
        else:
            self._publish_ack(ack)

    def _publish_ack(self, ack: Ack) -> None:
        with self._publish_lock:
            self._timers = {t for t in self._timers if t.is_alive()}
            if self._stop.is_set():
                return
            if self._link_down:
                self._held_acks.append(ack)  # sent after the reconnect
                return
            self._send(ack_topic(self.config.site, ack.machine), ack)

    # --- time -------------------------------------------------------------------------------

    def reset(self) -> Telemetry | None:
        """Restart the plant and publish its t = 0 sample (None while offline)."""
        self._require_started()
        with self._plant_lock:
            self.plant.reset()
        self._interval = 0
        self._awaiting = None
        self._answered = {}
        self._reset_done = True
        published = self._publish_samples(-1, self.plant.samples[-1:])
        return published[0] if published else None

    def step(self, *, wait: bool | None = None) -> StepResult:
        """Advance one decision interval (see the module docstring) and return what was
        published. ``wait`` overrides ``config.lockstep`` for this step."""
        self._require_started()
        if not self._reset_done:
            raise RuntimeError("call reset() before step()")
        began = time.perf_counter()
        k = self._interval
        self._finish_reconnect()
        self._rebirth_if_reconnected()
        lockstep = self.config.lockstep if wait is None else wait
        missing: tuple[str, ...] = ()
        if lockstep and self._awaiting is not None and not self._link_down:
            applied, missing = self._wait_for_commands(self._awaiting)
        else:
            applied = self.process_commands()
        self._awaiting = None
        self._answered = {d: m for d, m in self._answered.items() if d >= k - 1}
        self._start_scheduled_faults(k)
        with self._plant_lock:
            records, events = self.plant.advance()
            samples = list(self.plant.samples)
            time_s = self.plant.elapsed_s
        telemetry = self._publish_samples(k, samples)
        kpi = LineKpi(time_s=time_s, record=combine_records(records))
        live_kpi = self._publish(k, kpi_topic(self.config.site), kpi)
        if live_kpi:
            self._awaiting = k
        with self._publish_lock:
            for machine, left in self._drop_left.items():
                self._drop_left[machine] = max(0, left - 1)
            ends_offline = self._offline_left == 1
            self._offline_left = max(0, self._offline_left - 1)
        if ends_offline:
            self._reconnect()
        self._interval = k + 1
        return StepResult(
            interval=k,
            time_s=time_s,
            telemetry=tuple(telemetry),
            kpi=kpi if live_kpi else None,
            records=tuple(records),
            events=dict(events),
            applied=applied,
            missing=missing,
            online=live_kpi,
            wall_s=time.perf_counter() - began,
        )

    def _start_scheduled_faults(self, k: int) -> None:
        for drop in self.config.drops:
            if drop.start == k:
                self.drop_telemetry(drop.machine, drop.count)
        for offline in self.config.offline:
            if offline.start == k:
                self.go_offline(offline.count)

    def _setpoints_now(self) -> dict[str, dict[str, float | bool]]:
        speed, standby, _maintenance = self._in_force()
        return {
            m: {"speed_factor": float(speed[k]), "standby": bool(standby[k])}
            for m, k in self._index.items()
        }

    def _publish_samples(self, k: int, samples: list[dict[str, float]]) -> list[Telemetry]:
        """Per-machine telemetry of ``samples``; returns the messages published live."""
        setpoints = self._setpoints_now()
        live: list[Telemetry] = []
        with self._publish_lock:
            for sample in samples:
                for machine in self.machines:
                    if self._drop_left[machine] > 0:
                        self.lost_samples += 1
                        continue
                    signals = {
                        kind: sample[f"{machine}.{kind}"]
                        for kind in (*SIGNAL_KINDS, "state")
                        if f"{machine}.{kind}" in sample
                    }
                    message = Telemetry(
                        machine=machine,
                        seq=0 if self._link_down else self._seq[machine],  # renumbered on flush
                        time_s=sample["time_s"],
                        sent_at=time.time(),
                        signals=signals,
                        setpoints=setpoints[machine],
                    )
                    if self._publish(k, telemetry_topic(self.config.site, machine), message):
                        self._seq[machine] += 1
                        live.append(message)
        return live

    def _publish(self, k: int, topic: str, message: Message) -> bool:
        """Publish now unless offline by ``go_offline`` (True; while paho reconnects by itself
        QoS 1 messages wait in its queue); offline, buffer it (buffer_offline) or lose it."""
        with self._publish_lock:
            if not self._link_down:
                self._send(topic, message)
                return True
            if self.config.buffer_offline:
                if not self._buffer or self._buffer[-1].interval != k:
                    self._buffer.append(_Buffered(k))
                self._buffer[-1].messages.append((topic, message))
            elif isinstance(message, Telemetry):
                self.lost_samples += 1
            return False

    def run(
        self,
        intervals: int | None = None,
        *,
        realtime_factor: float | None = None,
        progress: Callable[[StepResult], None] | None = None,
    ) -> list[StepResult]:
        """Step ``intervals`` times (None: until ``close``), resetting first if needed.
        ``realtime_factor`` None: as fast as lock-step allows; a number: free-running, one
        interval every ``decision_interval_s / realtime_factor`` wall seconds, answering
        commands as they arrive in between (no lock-step wait). ``progress`` gets each
        result."""
        if realtime_factor is not None:
            check_at_least("realtime_factor", realtime_factor, 1e-6)
        if not self._reset_done:
            self.reset()
        results: list[StepResult] = []
        period = (
            None if realtime_factor is None else self.plant.decision_interval_s / realtime_factor
        )
        next_at = time.monotonic()
        while not self._stop.is_set() and (intervals is None or len(results) < intervals):
            if period is not None:
                next_at += period
                while not self._stop.is_set() and time.monotonic() < next_at:
                    self.process_commands(min(0.05, max(0.0, next_at - time.monotonic())))
                if self._stop.is_set():
                    break
            result = self.step(wait=False if period is not None else None)
            results.append(result)
            if progress is not None:
                progress(result)
        return results

    # --- lifecycle --------------------------------------------------------------------------

    def _require_started(self) -> None:
        if self._stop.is_set():
            raise RuntimeError("the emulator is closed; make a new one")
        if not self._started:
            raise RuntimeError("call start() (or use the emulator as a context manager) first")

    def close(self) -> None:
        """Stop cleanly: pending delayed acks are dropped, the connection closes with a
        DISCONNECT (the broker does not publish the death), ``run`` returns."""
        self._stop.set()  # from here on no ack is published
        with self._publish_lock:
            for timer in self._timers:
                timer.cancel()
            self._timers.clear()
            client = self._client
        # outside the lock: stop() waits for the broker's acks, read on paho's thread, whose
        # handlers may need the lock
        client.stop()  # after abort() it has nothing left to stop

    def __enter__(self) -> PlantEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
