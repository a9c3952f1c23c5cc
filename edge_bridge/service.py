"""The edge bridge service: MQTT in and out around the :class:`DecisionLoop`.

Everything the bridge does happens on one thread (:meth:`BridgeService.run_forever`, or
:meth:`start` for a background thread): paho's network thread only validates a message
(:mod:`edge_bridge.mqtt`) and puts it on a queue. The loop

- feeds telemetry to the :class:`IntervalAssembler` and, when an interval is complete, runs the
  :class:`DecisionLoop` and publishes its commands (QoS 1, MQTT 5 expiry = the command's life);
- records acknowledgements in the ledger (read-back compared within tolerance) and the audit row;
- re-sends unacknowledged commands (same id and key: the equipment's dedup makes a re-send
  idempotent), expires and escalates them (:meth:`CommandLedger.poll`);
- takes operator commands (approve, reject, rollback, local_control, resume), each written to
  the audit log with the operator's name; a request id seen before is refused (a replay);
- publishes the retained ``bridge/state`` (Sparkplug primary-host STATE: online, and offline as
  the last will) and ``bridge/status`` (stage, trust and mode per machine; for a plant too large
  for one payload only the stage and version — the per-machine values are in every machine's
  retained ``twin`` report) after every interval, and the twin reports themselves.

A node's death (its last will) marks its machines stale at once; its birth clears that.
Invalid messages are counted by the client and written to the audit log as events; they never
reach the loop. Restarting the service on the same store resumes the gate, the ledger (pending
commands are re-sent at start) and the decision index.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from edge_bridge import topics
from edge_bridge.assembler import IntervalAssembler
from edge_bridge.audit import AuditLog
from edge_bridge.commands import TrackedCommand
from edge_bridge.decision import Decision, DecisionLoop
from edge_bridge.mqtt import ConnectionSettings, MqttClient, TlsSettings
from edge_bridge.schema import (
    Ack,
    BridgeState,
    BridgeStatus,
    LineKpi,
    NodeBirth,
    NodeDeath,
    OperatorCommand,
    SchemaError,
    Telemetry,
)
from edge_bridge.settings import BridgeSettings
from edge_bridge.store import Store
from envs.plant_signals import SIGNAL_KINDS

logger = logging.getLogger(__name__)
_BATCH = 5_000  # messages handled per transaction before the loop looks at intervals again


class BridgeService:
    """The bridge of one plant (module docstring). ``password``: the broker password of the
    bridge user (default: ``settings.mqtt.password()``); ``clock``: unix time (tests)."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        password: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store(settings.store)
        self.audit = AuditLog(self.store)
        try:
            self.loop = DecisionLoop.from_settings(settings, self.audit, clock=clock)
        except Exception:
            self.store.close()
            raise
        self.scenario = self.loop.scenario
        self.machines = list(self.loop.machines)
        twin, gate, scenario = self.loop.twin, self.loop.gate, self.scenario
        signals = {
            machine.name: (
                *(
                    kind
                    for kind in SIGNAL_KINDS
                    if kind != "vibration" or machine.equipment.vibration_output
                ),
                "state",
            )
            for machine in twin.line.machines
        }
        decided = [c.decision_index for c in self.loop.ledger.commands()]
        if gate.last_decision_index is not None:
            decided.append(gate.last_decision_index)
        first = max(decided) + 1 if decided else 0  # a restart never decides an interval twice
        self.assembler = IntervalAssembler(
            self.machines,
            signals,
            decision_interval_s=scenario.decision_interval_s,
            stale_after_s=settings.stale_after_s,
            wait_s=settings.interval_wait_s,
            first_index=first,
            sample_interval_s=settings.sample_interval_s,
        )
        self.site = settings.mqtt.site
        self.node_machines: dict[str, tuple[str, ...]] = {}
        self.dead_nodes: set[str] = set()
        self.operator_requests: set[str] = set()
        self.counts: Counter[str] = Counter()
        self.decisions: list[Decision] = []
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        mqtt = settings.mqtt
        self.client = MqttClient(
            ConnectionSettings(
                host=mqtt.host,
                port=mqtt.port,
                client_id=mqtt.client_id,
                username=mqtt.username,
                password=password if password is not None else mqtt.password(),
                tls=TlsSettings(mqtt.ca_file) if mqtt.ca_file else None,
                session_expiry_s=mqtt.session_expiry_s,
            ),
            will=(topics.bridge_state_topic(self.site), BridgeState(online=False, since=clock())),
            on_invalid=self._invalid,
        )
        for kind in ("telemetry", "ack", "kpi", "birth", "death", "operator"):
            self.client.subscribe(topics.filter_for(kind, self.site), self._enqueue)

    # -- network thread -----------------------------------------------------------------
    def _enqueue(self, topic: str, message: Any) -> None:
        self._inbox.put(("message", message))

    def _invalid(self, topic: str, payload: bytes, error: SchemaError) -> None:
        self._inbox.put(("invalid", (topic, len(payload), str(error))))

    # -- lifecycle ----------------------------------------------------------------------
    def connect(self, timeout_s: float = 10.0) -> None:
        """Connect to the broker, announce the bridge online and re-send pending commands."""
        self.client.connect(timeout_s)
        self.client.publish(
            topics.bridge_state_topic(self.site), BridgeState(online=True, since=self.clock())
        )
        for command in self.loop.ledger.pending():
            self._send(command.command_id)
        self._publish_status()

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and run the loop on a background thread."""
        self.connect(timeout_s)
        self._thread = threading.Thread(target=self.run_forever, name="bridge", daemon=True)
        self._thread.start()

    def run_forever(self) -> None:
        """Process messages until :meth:`stop`."""
        while not self._stop.is_set():
            self.run_once(0.05)

    def run_once(self, timeout_s: float = 0.0) -> None:
        """Handle what has arrived (waiting up to ``timeout_s`` for the first message), complete
        a ready interval, and poll the ledger."""
        try:
            kind, item = (
                self._inbox.get(timeout=timeout_s) if timeout_s else self._inbox.get_nowait()
            )
        except queue.Empty:
            kind, item = "", None
        with self.store.transaction():  # one disk flush for the whole batch
            handled = 0
            while kind:
                self._guarded(self._handle, kind, item)
                handled += 1
                if handled >= _BATCH:
                    break
                try:
                    kind, item = self._inbox.get_nowait()
                except queue.Empty:
                    kind = ""
            self._guarded(self._poll_ledger)
        if self.assembler.ready():
            self._guarded(self._decide)

    def _guarded(self, action: Callable[..., None], *args: Any) -> None:
        """Run one step of the loop; an unexpected error is logged, counted and audited
        instead of stopping the bridge."""
        try:
            action(*args)
        except Exception as error:
            self.counts["loop_errors"] += 1
            logger.exception("bridge loop: %s failed", getattr(action, "__name__", action))
            try:
                self.audit.event("bridge_error", f"{type(error).__name__}: {error}"[:1000])
            except Exception:
                logger.exception("bridge loop: cannot audit the error")

    def stop(self) -> None:
        """Stop the loop, announce offline, disconnect cleanly, close the store (a second call
        does nothing)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            if self.client.connected:
                info = self.client.publish(
                    topics.bridge_state_topic(self.site),
                    BridgeState(online=False, since=self.clock()),
                )
                info.wait_for_publish(2.0)
        finally:
            self.client.stop()
            self.loop.close()
            self.store.close()

    # -- handling -----------------------------------------------------------------------
    def _handle(self, kind: str, item: Any) -> None:
        if kind == "invalid":
            topic, size, reason = item
            self.counts["invalid"] += 1
            self.audit.event("rejected_message", reason, detail={"topic": topic, "bytes": size})
            return
        handlers: dict[type, Callable[[Any], None]] = {
            Telemetry: self._telemetry,
            Ack: self._ack,
            LineKpi: self._kpi,
            NodeBirth: self._birth,
            NodeDeath: self._death,
            OperatorCommand: self._operator,
        }
        handler = handlers.get(type(item))
        if handler is not None:
            handler(item)

    def _telemetry(self, message: Telemetry) -> None:
        refused = self.assembler.add(message.machine, message.time_s, message.signals)
        if refused is not None:
            self.counts["telemetry_refused"] += 1
            self.audit.event(
                "rejected_message",
                f"telemetry from {message.machine} at {message.time_s} s: {refused}",
                machine=message.machine,
                time_s=message.time_s,
            )
            return
        self.counts["telemetry"] += 1
        self.loop.reported[message.machine] = dict(message.setpoints)

    def _ack(self, message: Ack) -> None:
        ledger = self.loop.ledger
        try:
            command = ledger.get(message.command_id)
        except KeyError:
            self.counts["ack_unknown"] += 1
            self.audit.event(
                "rejected_message",
                f"ack for unknown command {message.command_id}",
                machine=message.machine,
            )
            return
        if command.idempotency_key != message.idempotency_key or command.machine != message.machine:
            self.counts["ack_mismatch"] += 1
            self.audit.event(
                "rejected_message",
                f"ack for {message.command_id} names another key or machine than the command",
                machine=message.machine,
            )
            return
        settled = ledger.record_ack(
            message.command_id, message.status, message.reason, dict(message.readback) or None
        )
        self.counts[f"ack_{settled.status}"] += 1
        self.loop.acknowledged(settled)

    def _kpi(self, message: LineKpi) -> None:
        objective = self.scenario.objective
        record = message.record
        self.audit.event(
            "line_kpi",
            f"plant interval ending at {message.time_s:.0f} s",
            time_s=message.time_s,
            detail={
                "energy_kwh": record.energy_kwh,
                "good_parts": record.good_parts,
                "downtime_h": record.downtime_h,
                "w_energy": objective.w_energy,
            },
        )

    def _birth(self, message: NodeBirth) -> None:
        self.node_machines[message.node] = tuple(message.machines)
        self.dead_nodes.discard(message.node)
        self.audit.event("node_birth", f"{message.node} online (bd_seq {message.bd_seq})")

    def _death(self, message: NodeDeath) -> None:
        self.dead_nodes.add(message.node)
        machines = self.node_machines.get(message.node, ())
        events = []
        for machine in machines:
            if machine in self.machines and machine not in self.loop.gate.fallback:
                events += self.loop.gate.set_fallback(machine, f"node {message.node} died")
        self.audit.event(
            "node_death",
            f"{message.node} offline (bd_seq {message.bd_seq}); fallback for {list(machines)}",
        )
        for event in events:
            self.audit.event(event.kind, event.reason, detail=event.to_dict())

    def _operator(self, message: OperatorCommand) -> None:
        gate = self.loop.gate
        name = message.operator
        if message.request_id in self.operator_requests or self._seen_request(message.request_id):
            self.counts["operator_replayed"] += 1
            self.audit.event(
                "operator_refused",
                f"request {message.request_id} was already handled (a replay)",
                operator=name,
            )
            return
        self.operator_requests.add(message.request_id)
        actions: dict[str, Callable[[], list[Any]]] = {
            "approve": lambda: gate.approve(name),
            "reject": lambda: gate.reject(name),
            "rollback": lambda: gate.rollback(name, message.machine or None),
            "local_control": lambda: gate.set_local_control(str(message.machine), name),
            "resume": lambda: gate.resume(str(message.machine), name),
        }
        try:
            if message.action in ("local_control", "resume") and message.machine not in (
                self.machines
            ):
                raise ValueError(f"{message.action} needs one of the machines {self.machines}")
            events = actions[message.action]()
        except (ValueError, KeyError) as error:
            self.counts["operator_refused"] += 1
            self.audit.event(
                "operator_refused",
                f"{message.action}: {error}",
                operator=name,
                detail={"request_id": message.request_id},
            )
            return
        self.counts["operator"] += 1
        for event in events:  # the promotion or rollback itself, beside who asked for it
            self.audit.event(
                event.kind, event.reason, operator=name, machine=message.machine,
                detail=event.to_dict(),
            )  # fmt: skip
        self.audit.event(
            "operator",
            f"{message.action} by {name}" + (f": {message.reason}" if message.reason else ""),
            operator=name,
            machine=message.machine,
            detail={"request_id": message.request_id, "events": [e.to_dict() for e in events]},
        )
        gate.save(self.store)
        self._publish_status()

    def _seen_request(self, request_id: str) -> bool:
        rows = self.store.select(
            "SELECT COUNT(*) AS n FROM events WHERE kind = 'operator' AND detail LIKE ?",
            (f'%"request_id": "{request_id}"%',),
        )
        return bool(rows[0]["n"])

    # -- deciding and sending -----------------------------------------------------------
    def _decide(self) -> None:
        interval = self.assembler.complete()
        with self.store.transaction():  # the decision's rows, one flush, before any send
            decision = self.loop.decide(interval)
            self.decisions.append(decision)
            sendable = [self._mark_sent(c.command_id) for c in decision.commands]
        for command in sendable:
            if command is not None:
                self._publish_command(command)
        for report in decision.reports:
            self.client.publish(topics.topic_for("twin", self.site, report.machine), report)
        self._publish_status()

    def _send(self, command_id: str) -> None:
        command = self._mark_sent(command_id)
        if command is not None:
            self._publish_command(command)

    def _mark_sent(self, command_id: str) -> TrackedCommand | None:
        try:
            return self.loop.ledger.mark_sent(command_id)
        except ValueError as error:  # expired before it could go out
            self.counts["command_expired_unsent"] += 1
            self.audit.event("command_expired", str(error))
            return None

    def _publish_command(self, command: TrackedCommand) -> None:
        try:
            self.client.publish(topics.command_topic(self.site, command.machine), command.message())
        except ValueError as error:  # expired between the ledger and the wire
            self.counts["command_expired_unsent"] += 1
            self.audit.event("command_expired", str(error))
            return
        self.counts["commands_sent"] += 1

    def _poll_ledger(self) -> None:
        poll = self.loop.ledger.poll()
        for command in poll.resend:
            self.counts["commands_resent"] += 1
            self._send(command.command_id)
        for command in poll.expired:
            self.loop.acknowledged(command)
            self.audit.event("command_expired", command.ack_reason, machine=command.machine)
        for command in poll.escalated:
            self.loop.acknowledged(command)
            self.audit.event("command_escalated", command.ack_reason, machine=command.machine)

    def _publish_status(self) -> None:
        gate = self.loop.gate
        update = self.loop.last_update
        modes = gate.assignments(self.assembler.end_s - self.scenario.decision_interval_s)
        status = BridgeStatus(
            stage=gate.stage_label,
            policy_version=(self.loop.candidate or self.loop.incumbent).version,
            updated_at=self.clock(),
            cohort=tuple(m for m, mode in modes.items() if mode == "candidate"),
            trust={} if update is None else dict(update.trust),
            modes=modes,
        )
        try:
            status.to_payload()
        except SchemaError as error:
            if error.code != "too_large":
                raise
            # a large plant: the per-machine maps are in each machine's twin report
            self.counts["status_trimmed"] += 1
            status = dataclasses.replace(status, cohort=(), trust={}, modes={})
        self.client.publish(topics.bridge_status_topic(self.site), status)
