"""The gray-scale gate: which machines run the candidate policy, and when it is promoted or
rolled back.

Stages: ``shadow`` (the candidate is computed and logged, never applied) → ``canary`` (the
configured cohorts join one after another: at canary step k cohorts 0..k run the candidate) →
``full`` (every machine), and ``rolled_back`` (everyone on the incumbent; final for this
rollout id — a new candidate is a new rollout). A cohort is a set of machines (explicit names
and/or a ``share`` of the machines picked by a hash of ``rollout_id:machine``, so a machine's
cohort never changes for a rollout id; a cohort naming neither takes every machine not in an
earlier cohort) and may be limited to a shift window (``shift = "early"``): its machines run
the candidate only inside the window. Per-machine overrides win over the stage: ``local``
(an operator handed the machine back to local control) over ``fallback`` (the watchdog put it
on its last known good setpoints) over candidate/incumbent.

Evidence, once per decision interval (:meth:`RolloutGate.observe`): trust per machine, drift
flags, stale machines, and the candidate's and the incumbent's KPIs of the interval. KPIs are
:class:`envs.kpi.Kpis` turned into Z = w1·C + w2·E + w3·D with the scenario's objective
weights (lower is better), or already a Z (a float). The KPI window is its own: the last
``kpi_window_intervals`` intervals with both KPIs (a day by default), kept across promotions,
judged once it holds ``kpi_min_intervals`` (4 h) — an hour of a factory line holds one or two
maintenances, which swing a short window's Z by several hundred per cent either way. Its Z
values are summed and compared with :func:`envs.kpi.relative_change` (candidate against
incumbent; a zero incumbent counts as no change if the candidate is zero too, else as a
regression), with one-sided 95 % bounds on the change from the spread of block sums of the
paired differences (``kpi_block_intervals`` per block, Student's t; :class:`KpiVerdict`):
promotion needs the change itself within ``kpi_tolerance`` (not worse, as measured), a KPI
rollback needs the *lower* bound beyond ``rollback_kpi_tolerance`` (worse beyond doubt) — a
single maintenance in one copy and not yet in the other does not roll a candidate back. (Proving
a candidate *better* at 95 % would take days: over 24 h of four paired weeks the PPO recipe's
policy is 10 % better than condition_based with an upper bound of +23 %.)

Promotion to the next stage needs ``min_intervals`` consecutive intervals in the stage in
which every machine of the next stage's candidate set (local-control machines and rolled-back
cohorts left out) has trust ≥ ``trust_threshold``, no drift flag and fresh data, both KPIs
present, and the candidate's Z over the KPI window not worse than the incumbent's by more than
``kpi_tolerance``; then, with ``require_approval``, an operator's :meth:`~RolloutGate.approve`
(a pending approval is withdrawn if the evidence stops holding; :meth:`~RolloutGate.reject`
declines it and the stage's count starts again).

Automatic rollback (canary and full) when a machine running the candidate has stale data, a
drift flag or trust below the threshold, or when over the KPI window the candidate's Z is worse
than the incumbent's by more than ``rollback_kpi_tolerance``; and on an operator's
:meth:`~RolloutGate.rollback` (of the whole rollout, or of one cohort, whose machines then stay
on the incumbent). Every rollback names its reason. :meth:`RolloutGate.state_dict` /
:meth:`RolloutGate.from_state` (and :meth:`save` / :meth:`load_or_new` through
:class:`edge_bridge.store.Store`) round-trip the whole state, so a restarted bridge resumes in
the same stage with the same counters. An interval already observed (``decision_index`` not
above the last one) is ignored, so re-feeding evidence after a restart counts nothing twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edge_bridge.gate_config import (
    CohortConfig,
    GateConfig,
    ShiftWindow,
    assign_cohorts,
    load_gate_config,
)
from edge_bridge.store import Store
from envs.config import config_to_dict
from envs.kpi import Kpis, relative_change
from envs.scenario import ObjectiveConfig

__all__ = [
    "ASSIGNMENTS",
    "STAGES",
    "CohortConfig",
    "GateConfig",
    "GateEvent",
    "IntervalEvidence",
    "KpiVerdict",
    "PendingApproval",
    "RolloutGate",
    "ShiftWindow",
    "load_gate_config",
]
"""``CohortConfig``, ``GateConfig``, ``ShiftWindow`` and ``load_gate_config`` live in
:mod:`edge_bridge.gate_config`; they are re-exported here for the gate's callers."""

STAGES = ("shadow", "canary", "full", "rolled_back")
ASSIGNMENTS = ("candidate", "incumbent", "fallback", "local")


@dataclass(frozen=True)
class IntervalEvidence:
    """What the bridge knows about one decision interval (``time_s``: plant time at its end).
    KPIs: :class:`Kpis` or a Z value; ``None`` when not available this interval."""

    decision_index: int
    time_s: float
    trust: Mapping[str, float]
    drift: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    stale: set[str] | frozenset[str] = frozenset()
    candidate_kpi: Kpis | float | None = None
    incumbent_kpi: Kpis | float | None = None


@dataclass(frozen=True)
class KpiVerdict:
    """The KPI window's candidate-against-incumbent change of Z (a fraction; > 0 = worse) and
    its one-sided 95 % bounds from block means (``kpi_block_intervals`` per block)."""

    change: float
    low: float
    high: float


@dataclass(frozen=True)
class GateEvent:
    """A promotion, rollback, approval request/withdrawal/rejection or override, with its
    reason (``kind``: promotion | rollback | approval_requested | approval_withdrawn |
    approval_rejected | override)."""

    kind: str
    reason: str
    from_stage: str
    to_stage: str
    decision_index: int | None = None
    time_s: float | None = None
    operator: str | None = None
    machines: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "machines": list(self.machines)}


@dataclass(frozen=True)
class PendingApproval:
    """A promotion waiting for an operator."""

    to_stage: str
    to_step: int
    decision_index: int
    time_s: float


def _stage_label(stage: str, step: int) -> str:
    return f"canary[{step}]" if stage == "canary" else stage


class RolloutGate:
    """The gate of one rollout over ``machines`` (the plant's machine names)."""

    def __init__(
        self,
        config: GateConfig,
        machines: Sequence[str],
        objective: ObjectiveConfig | None = None,
    ) -> None:
        self.config = config
        self.machines = list(machines)
        self.objective = objective or ObjectiveConfig()
        self.cohort_of = assign_cohorts(config, self.machines)
        self._windows = {s.name: s for s in config.shifts}
        self.stage = "shadow"
        self.canary_step = 0
        self.intervals_in_stage = 0
        self.window: list[list[Any]] = []  # [healthy, candidate Z, incumbent Z] per interval
        self.kpi_window: list[list[float]] = []  # [candidate Z, incumbent Z], across stages
        self.last_decision_index: int | None = None
        self.pending: PendingApproval | None = None
        self.excluded_cohorts: list[str] = []
        self.fallback: dict[str, str] = {}
        self.local: dict[str, str] = {}
        self.rollback_reason = ""

    # -- assignment --------------------------------------------------------------------
    @property
    def stage_label(self) -> str:
        """``shadow``, ``canary[k]``, ``full`` or ``rolled_back``."""
        return _stage_label(self.stage, self.canary_step)

    def cohort_machines(self, name: str) -> list[str]:
        index = self._cohort_index(name)
        return [m for m in self.machines if self.cohort_of.get(m) == index]

    def _cohort_index(self, name: str) -> int:
        names = [c.name for c in self.config.cohorts]
        if name not in names:
            raise ValueError(f"no cohort {name!r}; cohorts: {', '.join(names)}")
        return names.index(name)

    def hour_of_day(self, time_s: float) -> float:
        return ((self.config.start_h * 3600.0 + time_s) / 3600.0) % 24.0

    def _candidate_set(self, stage: str, step: int, time_s: float | None) -> set[str]:
        """Machines on the candidate in ``stage``/``step`` (``time_s`` None: ignore shifts),
        before overrides."""
        if stage not in ("canary", "full"):
            return set()
        excluded = {self._cohort_index(name) for name in self.excluded_cohorts}
        chosen = set()
        for machine in self.machines:
            index = self.cohort_of.get(machine)
            if index in excluded:
                continue
            if stage == "full":
                chosen.add(machine)
            elif index is not None and index <= step:
                shift = self.config.cohorts[index].shift
                in_window = (
                    time_s is None
                    or not shift
                    or self._windows[shift].contains(self.hour_of_day(time_s))
                )
                if in_window:
                    chosen.add(machine)
        return chosen

    def assignments(self, time_s: float) -> dict[str, str]:
        """Machine → ``candidate`` | ``incumbent`` | ``fallback`` | ``local`` at plant time
        ``time_s`` (s)."""
        candidate = self._candidate_set(self.stage, self.canary_step, time_s)
        result = {}
        for machine in self.machines:
            if machine in self.local:
                result[machine] = "local"
            elif machine in self.fallback:
                result[machine] = "fallback"
            else:
                result[machine] = "candidate" if machine in candidate else "incumbent"
        return result

    def _next(self) -> tuple[str, int] | None:
        if self.stage == "shadow":
            return "canary", 0
        if self.stage == "canary":
            if self.canary_step + 1 < len(self.config.cohorts):
                return "canary", self.canary_step + 1
            return "full", 0
        return None

    # -- evidence ----------------------------------------------------------------------
    def _z(self, kpi: Kpis | float | None) -> float | None:
        if kpi is None:
            return None
        if isinstance(kpi, Kpis):
            o = self.objective
            return kpi.weighted_objective(o.w_cost, o.w_energy, o.w_downtime)
        return float(kpi)

    @staticmethod
    def _z_change(candidate: float, incumbent: float) -> float:
        change = relative_change(candidate, incumbent)
        if math.isnan(change):
            return 0.0 if candidate <= incumbent else math.inf
        return change if incumbent > 0 else -change

    def _machine_problems(self, machines: set[str], evidence: IntervalEvidence) -> list[str]:
        problems = []
        for machine in sorted(machines):
            if machine in evidence.stale:
                problems.append(f"stale data from {machine}")
            flags = tuple(evidence.drift.get(machine, ()))
            if flags:
                problems.append(f"drift on {machine} ({', '.join(flags)})")
            trust = evidence.trust.get(machine)
            if trust is None or not math.isfinite(trust):
                problems.append(f"no trust score for {machine}")
            elif trust < self.config.trust_threshold:
                problems.append(f"trust {trust:.3f} < {self.config.trust_threshold} on {machine}")
        return problems

    def _window_change(self) -> KpiVerdict | None:
        """Candidate against incumbent over the KPI window (None: not enough of it yet)."""
        entries = self.kpi_window[-self.config.kpi_window_intervals :]
        if len(entries) < self.config.kpi_min_intervals:
            return None
        change = self._z_change(sum(e[0] for e in entries), sum(e[1] for e in entries))
        size = self.config.kpi_block_intervals
        blocks = len(entries) // size
        recent = entries[len(entries) - blocks * size :]
        differences = [
            sum(c - i for c, i in recent[k * size : (k + 1) * size]) for k in range(blocks)
        ]
        scale = sum(i for _, i in recent) / blocks if blocks else 0.0
        if blocks < 2 or scale <= 0:
            return KpiVerdict(change, change, change)
        from scipy.stats import t

        mean = sum(differences) / blocks
        spread = math.sqrt(sum((d - mean) ** 2 for d in differences) / (blocks - 1))
        half = float(t.ppf(0.95, blocks - 1)) * spread / math.sqrt(blocks)
        return KpiVerdict(change, (mean - half) / scale, (mean + half) / scale)

    def observe(self, evidence: IntervalEvidence) -> list[GateEvent]:
        """Take one interval's evidence; returns the events it caused (promotion, rollback,
        approval requested or withdrawn)."""
        index = int(evidence.decision_index)
        if self.last_decision_index is not None and index <= self.last_decision_index:
            return []
        self.last_decision_index = index
        if self.stage == "rolled_back":
            return []
        events: list[GateEvent] = []
        # a candidate machine the watchdog already put on fallback still counts
        running = self._candidate_set(self.stage, self.canary_step, evidence.time_s)
        running -= set(self.local)
        reasons = self._machine_problems(running, evidence)
        upcoming = self._next()
        involved = set() if upcoming is None else self._candidate_set(*upcoming, None)
        involved -= set(self.local)
        healthy = not self._machine_problems(involved, evidence)
        z_candidate, z_incumbent = self._z(evidence.candidate_kpi), self._z(evidence.incumbent_kpi)
        if z_candidate is None or z_incumbent is None:
            z_candidate = z_incumbent = None
        self.window.append([healthy, z_candidate, z_incumbent])
        self.window = self.window[-self.config.min_intervals :]
        if z_candidate is not None and z_incumbent is not None:
            self.kpi_window.append([z_candidate, z_incumbent])
            self.kpi_window = self.kpi_window[-self.config.kpi_window_intervals :]
        self.intervals_in_stage += 1
        verdict = self._window_change()
        regressed = verdict is not None and verdict.low > self.config.rollback_kpi_tolerance
        if self.stage in ("canary", "full") and regressed and verdict is not None:
            reasons.append(
                f"KPI regression: candidate Z {verdict.change:+.1%} vs incumbent (95 % lower "
                f"bound {verdict.low:+.1%}) over the last "
                f"{min(len(self.kpi_window), self.config.kpi_window_intervals)} intervals "
                "(tolerance "
                f"{self.config.rollback_kpi_tolerance:.1%})"
            )
        if reasons:
            return [self._roll_back("; ".join(reasons), evidence, None)]
        if upcoming is None:
            return events
        ready = (
            self.intervals_in_stage >= self.config.min_intervals
            and all(entry[0] for entry in self.window)
            and verdict is not None
            and verdict.change <= self.config.kpi_tolerance
        )
        label = _stage_label(*upcoming)
        if not ready or verdict is None:
            if self.pending is not None:
                self.pending = None
                events.append(
                    self._event("approval_withdrawn", "evidence no longer holds", label, evidence)
                )
            return events
        detail = (
            f"{self.intervals_in_stage} intervals, trust >= {self.config.trust_threshold} on "
            f"{len(involved)} machines, candidate Z {verdict.change:+.1%} vs incumbent (95 % "
            f"bounds {verdict.low:+.1%} .. {verdict.high:+.1%})"
        )
        if not self.config.require_approval:
            return [self._promote(upcoming, detail, evidence.decision_index, evidence.time_s)]
        if self.pending is None:
            self.pending = PendingApproval(upcoming[0], upcoming[1], index, evidence.time_s)
            events.append(self._event("approval_requested", detail, label, evidence))
        return events

    def _event(
        self, kind: str, reason: str, to_label: str, evidence: IntervalEvidence | None
    ) -> GateEvent:
        return GateEvent(
            kind=kind,
            reason=reason,
            from_stage=self.stage_label,
            to_stage=to_label,
            decision_index=None if evidence is None else evidence.decision_index,
            time_s=None if evidence is None else evidence.time_s,
        )

    def _promote(
        self,
        target: tuple[str, int],
        reason: str,
        decision_index: int | None,
        time_s: float | None,
        operator: str | None = None,
    ) -> GateEvent:
        before = self.stage_label
        self.stage, self.canary_step = target
        self.intervals_in_stage, self.window, self.pending = 0, [], None
        machines = tuple(sorted(self._candidate_set(*target, None)))
        return GateEvent(
            "promotion",
            reason,
            before,
            self.stage_label,
            decision_index,
            time_s,
            operator,
            machines,
        )

    def _roll_back(
        self, reason: str, evidence: IntervalEvidence | None, operator: str | None
    ) -> GateEvent:
        before = self.stage_label
        machines = tuple(sorted(self._candidate_set(self.stage, self.canary_step, None)))
        self.stage, self.pending, self.rollback_reason = "rolled_back", None, reason
        return GateEvent(
            "rollback",
            reason,
            before,
            "rolled_back",
            None if evidence is None else evidence.decision_index,
            None if evidence is None else evidence.time_s,
            operator,
            machines,
        )

    # -- operators ---------------------------------------------------------------------
    def pending_approvals(self) -> list[PendingApproval]:
        return [] if self.pending is None else [self.pending]

    def approve(self, operator: str) -> list[GateEvent]:
        """Promote the pending approval; ``ValueError`` if none is pending."""
        if self.pending is None:
            raise ValueError(f"nothing to approve in stage {self.stage_label}")
        target = (self.pending.to_stage, self.pending.to_step)
        event = self._promote(
            target,
            f"approved by {operator}",
            self.last_decision_index,
            self.pending.time_s,
            operator,
        )
        return [event]

    def reject(self, operator: str) -> list[GateEvent]:
        """Decline the pending approval: stay in the stage, count its intervals from zero."""
        if self.pending is None:
            raise ValueError(f"nothing to reject in stage {self.stage_label}")
        label = _stage_label(self.pending.to_stage, self.pending.to_step)
        self.pending, self.intervals_in_stage, self.window = None, 0, []
        event = GateEvent(
            "approval_rejected",
            f"rejected by {operator}",
            self.stage_label,
            label,
            self.last_decision_index,
            None,
            operator,
        )
        return [event]

    def rollback(self, operator: str, cohort: str | None = None) -> list[GateEvent]:
        """An operator's rollback: the whole rollout, or only ``cohort`` (its machines stay on
        the incumbent from now on)."""
        if cohort is None:
            if self.stage == "rolled_back":
                return []
            return [self._roll_back(f"operator rollback by {operator}", None, operator)]
        self._cohort_index(cohort)
        if cohort not in self.excluded_cohorts:
            self.excluded_cohorts.append(cohort)
        machines = tuple(self.cohort_machines(cohort))
        return [
            GateEvent(
                "rollback",
                f"operator rollback of cohort {cohort} by {operator}",
                self.stage_label,
                self.stage_label,
                self.last_decision_index,
                None,
                operator,
                machines,
            )
        ]

    def _override(self, machine: str, reason: str, operator: str | None) -> list[GateEvent]:
        if machine not in self.machines:
            raise ValueError(f"{machine!r} is not a machine of this gate")
        return [
            GateEvent(
                "override",
                reason,
                self.stage_label,
                self.stage_label,
                self.last_decision_index,
                None,
                operator,
                (machine,),
            )
        ]

    def set_fallback(self, machine: str, reason: str) -> list[GateEvent]:
        """The watchdog puts ``machine`` on its last known good setpoints."""
        events = self._override(machine, f"fallback: {reason}", None)
        self.fallback[machine] = reason
        return events

    def clear_fallback(self, machine: str) -> list[GateEvent]:
        if machine not in self.fallback:
            return []
        events = self._override(machine, "fallback cleared: data fresh again", None)
        del self.fallback[machine]
        return events

    def set_local_control(self, machine: str, operator: str) -> list[GateEvent]:
        """An operator hands ``machine`` back to local control: the bridge sends it nothing."""
        events = self._override(machine, f"local control by {operator}", operator)
        self.local[machine] = operator
        return events

    def resume(self, machine: str, operator: str) -> list[GateEvent]:
        """An operator returns ``machine`` from local control to the bridge."""
        if machine not in self.local:
            return []
        events = self._override(machine, f"resumed by {operator}", operator)
        del self.local[machine]
        return events

    # -- persistence -------------------------------------------------------------------
    def fingerprint(self) -> str:
        """Hash of the config and the machines: a saved state only loads into the same."""
        text = json.dumps([config_to_dict(self.config), self.machines], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        """The whole state as JSON-ready data."""
        return {
            "rollout_id": self.config.rollout_id,
            "fingerprint": self.fingerprint(),
            "stage": self.stage,
            "canary_step": self.canary_step,
            "intervals_in_stage": self.intervals_in_stage,
            "window": self.window,
            "kpi_window": self.kpi_window,
            "last_decision_index": self.last_decision_index,
            "pending": None if self.pending is None else dataclasses.asdict(self.pending),
            "excluded_cohorts": list(self.excluded_cohorts),
            "fallback": dict(self.fallback),
            "local": dict(self.local),
            "rollback_reason": self.rollback_reason,
        }

    @classmethod
    def from_state(
        cls,
        config: GateConfig,
        machines: Sequence[str],
        state: Mapping[str, Any],
        objective: ObjectiveConfig | None = None,
    ) -> RolloutGate:
        """A gate resumed from :meth:`state_dict`; refuses a state saved under another config
        or machine list (start a new rollout id instead)."""
        gate = cls(config, machines, objective)
        if state.get("fingerprint") != gate.fingerprint():
            raise ValueError(
                f"saved gate state of rollout {state.get('rollout_id')!r} was made with another "
                "gate config or machine list; use a new rollout_id to start over"
            )
        gate.stage = state["stage"]
        gate.canary_step = int(state["canary_step"])
        gate.intervals_in_stage = int(state["intervals_in_stage"])
        gate.window = [list(entry) for entry in state["window"]]
        gate.kpi_window = [list(entry) for entry in state.get("kpi_window", [])]
        gate.last_decision_index = state["last_decision_index"]
        pending = state["pending"]
        gate.pending = None if pending is None else PendingApproval(**pending)
        gate.excluded_cohorts = list(state["excluded_cohorts"])
        gate.fallback = dict(state["fallback"])
        gate.local = dict(state["local"])
        gate.rollback_reason = state["rollback_reason"]
        return gate

    def save(self, store: Store) -> None:
        """Write the state to ``store`` (durably)."""
        store.save_gate_state(self.config.rollout_id, self.state_dict(), time.time())

    @classmethod
    def load_or_new(
        cls,
        config: GateConfig,
        machines: Sequence[str],
        store: Store,
        objective: ObjectiveConfig | None = None,
    ) -> RolloutGate:
        """The saved gate of ``config.rollout_id`` in ``store``, or a new one in shadow."""
        state = store.load_gate_state(config.rollout_id)
        if state is None:
            return cls(config, machines, objective)
        return cls.from_state(config, machines, state, objective)
