"""One decision interval of the bridge, without the network: twin → proposals → gate →
envelope → commands → audit.

:class:`DecisionLoop` holds the bridge's state (twin, proposers, gate, envelope, command ledger,
audit log, the last known good setpoints) and turns one :class:`CompletedInterval` into the
commands to publish. :mod:`edge_bridge.service` puts it on MQTT; tests and the emulator run
call it directly as well.

Order within an interval (data of interval k, commands for interval k + 1):

1. the twin consumes the interval's samples (per-machine trust, drift flags);
2. the paired twin comparison advances (the KPI evidence, :mod:`edge_bridge.comparison`);
3. the watchdog: a stale machine goes to ``fallback`` (its last known good setpoints), a
   machine fresh again leaves it;
4. the gate takes the evidence (may promote, ask for approval or roll back);
5. incumbent and candidate propose; the gate's assignment picks per machine; while the twin is
   still warming up (after a start or restart) a candidate machine is *held* on the incumbent
   (the stage is kept; no rollback for want of evidence);
6. the envelope clamps or rejects; a command goes through the ledger (idempotent per machine,
   interval and policy version); one audit row per machine says what was proposed, applied and
   why;
7. the gate's state is saved (a restart resumes it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_bridge.assembler import CompletedInterval
from edge_bridge.audit import AuditLog, AuditRecord
from edge_bridge.commands import CommandLedger, TrackedCommand
from edge_bridge.comparison import TwinComparison
from edge_bridge.envelope import SafetyEnvelope
from edge_bridge.gate import GateEvent, IntervalEvidence, RolloutGate, load_gate_config
from edge_bridge.proposers import Proposer, Setpoints, load_proposer
from edge_bridge.schema import TwinReport
from edge_bridge.settings import BridgeSettings
from edge_bridge.twin import BridgeTwin, TwinUpdate
from envs.config import ConfigError
from envs.scenario import Scenario, load_scenario


@dataclass(frozen=True)
class Decision:
    """What one interval decided."""

    index: int
    time_s: float
    stage: str
    commands: list[TrackedCommand]
    """New commands to publish (one per machine that gets one)."""
    events: list[GateEvent]
    trust: dict[str, float]
    assignments: dict[str, str]
    reports: list[TwinReport] = field(default_factory=list)
    """One per machine: what the twin saw and what was decided (published for consoles)."""


class DecisionLoop:
    """The bridge's per-interval logic (module docstring)."""

    def __init__(
        self,
        *,
        twin: BridgeTwin,
        incumbent: Proposer,
        candidate: Proposer | None,
        comparison: TwinComparison | None,
        gate: RolloutGate,
        envelope: SafetyEnvelope,
        ledger: CommandLedger,
        audit: AuditLog,
        clock: Callable[[], float],
    ) -> None:
        self.twin = twin
        self.incumbent = incumbent
        self.candidate = candidate
        self.comparison = comparison
        self.gate = gate
        self.envelope = envelope
        self.ledger = ledger
        self.audit = audit
        self.clock = clock
        self.machines = list(twin.machine_names)
        self.reported: dict[str, Mapping[str, Any]] = {}
        """Setpoints in force as the equipment last reported them (telemetry)."""
        self.last_good: dict[str, Setpoints] = self._last_confirmed()
        """Per machine, the setpoints of its newest confirmed command (the fallback)."""
        self.last_update: TwinUpdate | None = None

    @classmethod
    def from_settings(
        cls, settings: BridgeSettings, audit: AuditLog, *, clock: Callable[[], float]
    ) -> DecisionLoop:
        """Everything the bridge's settings name, loaded and checked against the scenario
        (errors name the file and key); the gate and the ledger resume from ``audit.store``."""
        scenario = load_scenario(settings.scenario)
        machines = list(scenario.machine_names)
        gate_config = load_gate_config(settings.gate)
        if abs(gate_config.start_h - settings.start_h) > 1e-9:
            raise ConfigError(
                f"{settings.gate}: start_h = {gate_config.start_h} but the bridge's start_h is "
                f"{settings.start_h}; both give the plant's calendar, make them equal"
            )
        envelope = SafetyEnvelope.load(settings.envelope, scenario)
        envelope.check_machines(machines)
        store = audit.store
        gate = RolloutGate.load_or_new(gate_config, machines, store, scenario.objective)
        ledger = CommandLedger.from_config(settings.commands, now=clock, store=store)
        twin = BridgeTwin(
            scenario, sample_interval_s=settings.sample_interval_s, start_s=settings.start_h * 3600
        )
        try:
            incumbent = load_proposer(settings.incumbent, twin.env)
            candidate = load_proposer(settings.candidate, twin.env) if settings.candidate else None
            comparison = None
            if settings.candidate:
                comparison = TwinComparison.from_settings(settings, scenario)
        except ValueError:
            twin.close()
            raise
        return cls(
            twin=twin,
            incumbent=incumbent,
            candidate=candidate,
            comparison=comparison,
            gate=gate,
            envelope=envelope,
            ledger=ledger,
            audit=audit,
            clock=clock,
        )

    @property
    def scenario(self) -> Scenario:
        return self.twin.env.scenario

    def close(self) -> None:
        """Release the twins' FMUs."""
        self.twin.close()
        if self.comparison is not None:
            self.comparison.close()

    def _last_confirmed(self) -> dict[str, Setpoints]:
        good: dict[str, Setpoints] = {}
        for command in sorted(self.ledger.commands(), key=lambda c: c.issued_at):
            if command.status == "confirmed":
                good[command.machine] = {**command.setpoints, "maintenance": False}
        return good

    # -- acknowledgements ---------------------------------------------------------------
    def acknowledged(self, command: TrackedCommand) -> None:
        """A command settled (the ledger's status): write it into the audit row; a confirmed
        one becomes its machine's last known good setpoints (without the one-shot maintenance)."""
        self.audit.update_ack(command.command_id, command.status, command.readback)
        if command.status == "confirmed":
            self.last_good[command.machine] = {**command.setpoints, "maintenance": False}

    # -- one interval -------------------------------------------------------------------
    def decide(self, interval: CompletedInterval) -> Decision:
        """Run one completed interval (module docstring); returns the commands to publish."""
        index, end_s = interval.index, interval.end_s
        update = self._update_twin(interval)
        paired = self.comparison.step() if self.comparison is not None else None
        events: list[GateEvent] = []
        for machine in self.machines:
            if machine in interval.stale:
                if machine not in self.gate.fallback:
                    age = end_s - interval.last_seen_s.get(machine, math.nan)
                    events += self.gate.set_fallback(
                        machine, f"no telemetry for {age:.0f} s of plant time"
                    )
            elif machine in self.gate.fallback:
                events += self.gate.clear_fallback(machine)
        trust = update.trust if update is not None else dict.fromkeys(self.machines, 0.0)
        drift = update.drifted if update is not None else {}
        ready = update is not None and update.ready
        if ready:  # a twin still warming up gives no evidence either way
            events += self.gate.observe(
                IntervalEvidence(
                    decision_index=index,
                    time_s=end_s,
                    trust=trust,
                    drift=drift,
                    stale=set(interval.stale),
                    candidate_kpi=paired.candidate_z if paired else None,
                    incumbent_kpi=paired.incumbent_z if paired else None,
                )
            )
        for event in events:
            self.audit.event(
                event.kind,
                event.reason,
                time_s=end_s,
                decision_index=index,
                operator=event.operator,
                detail=event.to_dict(),
            )
        assignments = self.gate.assignments(end_s)
        self._reports: list[TwinReport] = []
        incumbent = self.incumbent.propose()
        candidate = self.candidate.propose() if self.candidate is not None else None
        commands = [
            command
            for machine in self.machines
            if (
                command := self._machine(
                    machine, index, end_s, assignments[machine], incumbent, candidate, ready
                )
            )
            is not None
        ]
        self.gate.save(self.audit.store)
        return Decision(
            index,
            end_s,
            self.gate.stage_label,
            commands,
            events,
            dict(trust),
            assignments,
            self._reports,
        )

    def _update_twin(self, interval: CompletedInterval) -> TwinUpdate | None:
        speeds = {
            m: {"speed_factor": float(self.reported.get(m, {}).get("speed_factor", 1.0))}
            for m in self.machines
        }
        try:
            self.last_update = self.twin.update(interval.samples, speeds)
        except ValueError as error:
            self.audit.event(
                "twin_error",
                f"interval {interval.index} not synchronised: {error}",
                time_s=interval.end_s,
                decision_index=interval.index,
            )
            return None
        return self.last_update

    def _machine(
        self,
        machine: str,
        index: int,
        end_s: float,
        assignment: str,
        incumbent: dict[str, Setpoints],
        candidate: dict[str, Setpoints] | None,
        ready: bool,
    ) -> TrackedCommand | None:
        chosen: Setpoints | None
        reason = assignment
        proposer = self.incumbent
        if assignment == "local":
            chosen, reason = None, "local control: the bridge sends nothing"
        elif assignment == "fallback":
            chosen = self.last_good.get(machine)
            reason = f"fallback: {self.gate.fallback.get(machine, '')}"
            if chosen is None:
                reason += " (no confirmed setpoints yet: nothing sent)"
        elif assignment == "candidate" and candidate is not None and ready:
            chosen, proposer = candidate[machine], self.candidate  # type: ignore[assignment]
        else:
            chosen = incumbent[machine]
            if assignment == "candidate":
                reason = "candidate held on the incumbent: the twin is warming up"
        applied = None
        actions: list[Any] = []
        command = None
        if chosen is not None:
            result = self.envelope.check(machine, chosen, self.last_good.get(machine))
            actions = [list(action) for action in result.actions]
            applied = result.applied
            if applied is None:
                reason += "; envelope rejected: " + "; ".join(a.reason for a in result.actions)
            else:
                command, created = self.ledger.create(
                    machine=machine,
                    decision_index=index,
                    policy_version=proposer.version,
                    stage=self.gate.stage_label,
                    setpoints=applied,
                )
                if not created:
                    command = None  # this decision was already sent (a replayed interval)
        update = self.last_update
        self.audit.record(
            AuditRecord(
                time_s=end_s,
                decision_index=index,
                machine=machine,
                stage=self.gate.stage_label,
                assignment=assignment,
                incumbent=incumbent[machine],
                candidate=None if candidate is None else candidate[machine],
                applied=applied,
                envelope_actions=actions,
                trust=None if update is None else update.trust.get(machine),
                drift=[] if update is None else list(update.drifted.get(machine, ())),
                reason=reason,
                command_id=None if command is None else command.command_id,
                wall_time=self.clock(),
                policy_version=proposer.version if applied is not None else None,
                envelope_version=self.envelope.version,
            )
        )
        self._reports.append(
            self._report(machine, index, end_s, assignment, reason, incumbent, candidate, applied)
        )
        return command

    def _report(
        self,
        machine: str,
        index: int,
        end_s: float,
        assignment: str,
        reason: str,
        incumbent: dict[str, Setpoints],
        candidate: dict[str, Setpoints] | None,
        applied: dict[str, Any] | None,
    ) -> TwinReport:
        update = self.last_update
        kinds = ("temperature", "wear", "power")

        def values(source: Mapping[str, float]) -> dict[str, float | None]:
            picked = {kind: source.get(f"{machine}.{kind}", math.nan) for kind in kinds}
            return {k: (v if math.isfinite(v) else None) for k, v in picked.items()}

        limits = self.envelope.limits[machine]
        trust = None if update is None or not update.ready else update.trust.get(machine)
        return TwinReport(
            machine=machine,
            decision_index=index,
            time_s=end_s,
            stage=self.gate.stage_label,
            assignment=assignment,
            measured=values(update.measured) if update is not None else {},
            predicted=values(update.predicted) if update is not None else {},
            trust=trust,
            drift=() if update is None else tuple(update.drifted.get(machine, ())),
            incumbent=incumbent[machine],
            candidate={} if candidate is None else candidate[machine],
            applied=applied or {},
            limits={
                "low": limits.speed_low,
                "high": limits.speed_high,
                "max_step": limits.speed_max_step,
            },
            reason=reason[:1000],
        )
