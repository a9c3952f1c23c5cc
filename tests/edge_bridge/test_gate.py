"""The gray-scale gate: promotion with healthy evidence, approval, every rollback trigger,
stable cohorts, and a restart that resumes identically."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_bridge.gate import (
    CohortConfig,
    GateConfig,
    IntervalEvidence,
    RolloutGate,
    load_gate_config,
)
from edge_bridge.store import Store
from envs.config import ConfigError
from envs.kpi import CostRates, IntervalRecord, KpiLedger
from envs.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = load_scenario("automotive_components")
MACHINES = SCENARIO.machine_names
COHORTS = (
    CohortConfig(name="first", machines=("machining-1",)),
    CohortConfig(name="mills", machines=("machining-2", "machining-3", "machining-4")),
    CohortConfig(name="rest"),
)


def config(**overrides) -> GateConfig:
    values = {"rollout_id": "r1", "min_intervals": 3, "cohorts": COHORTS, **overrides}
    # the KPI window as long as a stage, so each test's few intervals decide
    values.setdefault("kpi_min_intervals", values["min_intervals"])
    values.setdefault("kpi_window_intervals", values["min_intervals"])
    values.setdefault("kpi_block_intervals", values["kpi_min_intervals"])  # one block: no spread
    return GateConfig(**values)


class Feed:
    """Evidence generator: healthy by default, one decision interval (300 s) per call."""

    def __init__(self, gate: RolloutGate) -> None:
        self.gate = gate
        self.index = 0

    def __call__(self, trust=None, drift=None, stale=(), candidate=100.0, incumbent=100.0):
        self.index += 1
        values = {m: 0.9 for m in MACHINES} | (trust or {})
        evidence = IntervalEvidence(
            decision_index=self.index,
            time_s=300.0 * self.index,
            trust=values,
            drift=drift or {},
            stale=set(stale),
            candidate_kpi=candidate,
            incumbent_kpi=incumbent,
        )
        return self.gate.observe(evidence)


def promote_through(gate: RolloutGate, feed: Feed, intervals: int) -> list:
    events = []
    for _ in range(intervals):
        events += feed()
    return events


def test_shadow_canary_full_with_healthy_evidence():
    gate = RolloutGate(config(), MACHINES, SCENARIO.objective)
    feed = Feed(gate)
    assert set(gate.assignments(0.0).values()) == {"incumbent"}
    assert feed() == [] and feed() == []
    (event,) = feed()
    assert (event.kind, event.from_stage, event.to_stage) == ("promotion", "shadow", "canary[0]")
    assert event.machines == ("machining-1",) and "3 intervals" in event.reason
    assignment = gate.assignments(1000.0)
    assert assignment["machining-1"] == "candidate" and assignment["machining-2"] == "incumbent"
    stages = [e.to_stage for e in promote_through(gate, feed, 9)]
    assert stages == ["canary[1]", "canary[2]", "full"]
    assert set(gate.assignments(0.0).values()) == {"candidate"}
    assert promote_through(gate, feed, 10) == []  # full is the last stage
    assert gate.stage == "full"


def test_kpi_tolerance_and_missing_kpis_block_promotion():
    gate = RolloutGate(config(kpi_tolerance=0.02), MACHINES)
    feed = Feed(gate)
    for _ in range(5):
        assert feed(candidate=103.0, incumbent=100.0) == []  # 3 % worse
    assert feed(candidate=None) == [] and gate.stage == "shadow"  # no KPI: not judged
    assert feed(candidate=101.0) == []  # the window (last 3 with KPIs): 103, 103, 101
    (event,) = feed(candidate=101.0)  # 103, 101, 101: 1.7 % worse, within tolerance
    assert event.to_stage == "canary[0]" and "+1.7%" in event.reason


def test_kpis_as_envs_kpi_values_use_the_scenario_weights():
    ledger = KpiLedger(CostRates(scrap_per_part=45.0, backlog_per_part_hour=0.5))
    cheap = ledger.record(IntervalRecord(duration_h=1 / 12, energy_kwh=3.0, energy_price=0.2))
    dear = ledger.record(IntervalRecord(duration_h=1 / 12, energy_kwh=4.0, energy_price=0.2))
    gate = RolloutGate(config(min_intervals=1), MACHINES, SCENARIO.objective)
    feed = Feed(gate)
    assert feed(candidate=dear, incumbent=cheap) == []  # 33 % worse
    (event,) = feed(candidate=cheap, incumbent=dear)
    assert event.kind == "promotion"


def test_untrusted_involved_machine_resets_the_count():
    gate = RolloutGate(config(), MACHINES)
    feed = Feed(gate)
    feed(), feed()
    assert feed(trust={"machining-1": 0.3}) == []  # shadow: no rollback, no promotion
    assert feed(trust={"welding-1": 0.1}) == []  # not involved in canary[0]
    feed()
    assert feed()[0].to_stage == "canary[0]"


def test_approval_required_blocks_until_approved():
    gate = RolloutGate(config(require_approval=True), MACHINES)
    feed = Feed(gate)
    feed(), feed()
    (request,) = feed()
    assert request.kind == "approval_requested" and request.to_stage == "canary[0]"
    assert feed() == [] and gate.stage == "shadow"
    (pending,) = gate.pending_approvals()
    assert (pending.to_stage, pending.to_step, pending.decision_index) == ("canary", 0, 3)
    (event,) = gate.approve("alice")
    assert event.kind == "promotion" and event.operator == "alice" and gate.stage == "canary"
    assert gate.pending_approvals() == []
    with pytest.raises(ValueError, match="nothing to approve"):
        gate.approve("alice")


def test_rejected_approval_restarts_the_count_and_bad_evidence_withdraws_it():
    gate = RolloutGate(config(require_approval=True), MACHINES)
    feed = Feed(gate)
    promote_through(gate, feed, 3)
    (event,) = gate.reject("bob")
    assert event.kind == "approval_rejected" and event.operator == "bob"
    assert gate.stage == "shadow" and gate.intervals_in_stage == 0
    assert promote_through(gate, feed, 2) == []
    assert feed()[0].kind == "approval_requested"
    (withdrawn,) = feed(trust={"machining-1": 0.2})
    assert withdrawn.kind == "approval_withdrawn" and gate.pending_approvals() == []
    with pytest.raises(ValueError, match="nothing to reject"):
        gate.reject("bob")


def canary_gate(**overrides) -> tuple[RolloutGate, Feed]:
    gate = RolloutGate(config(**overrides), MACHINES)
    feed = Feed(gate)
    promote_through(gate, feed, 3)
    assert gate.stage == "canary"
    return gate, feed


@pytest.mark.parametrize(
    ("evidence", "reason"),
    [
        ({"trust": {"machining-1": 0.3}}, "trust 0.300 < 0.5 on machining-1"),
        ({"trust": {"machining-1": float("nan")}}, "no trust score for machining-1"),
        ({"drift": {"machining-1": ("temperature",)}}, "drift on machining-1 (temperature)"),
        ({"stale": ("machining-1",)}, "stale data from machining-1"),
    ],
)
def test_rollback_on_each_machine_trigger_with_its_reason(evidence, reason):
    gate, feed = canary_gate()
    (event,) = feed(**evidence)
    assert event.kind == "rollback" and event.to_stage == "rolled_back"
    assert event.from_stage == "canary[0]" and reason in event.reason
    assert event.machines == ("machining-1",)
    assert set(gate.assignments(0.0).values()) == {"incumbent"}
    assert promote_through(gate, feed, 10) == [] and gate.stage == "rolled_back"


def test_problems_on_incumbent_machines_do_not_roll_back():
    gate, feed = canary_gate()
    assert (
        feed(trust={"welding-1": 0.1}, drift={"machining-2": ("wear",)}, stale={"inspection-1"})
        == []
    )
    assert gate.stage == "canary"


def test_rollback_on_kpi_regression():
    _, feed = canary_gate(rollback_kpi_tolerance=0.05)
    # the KPI window spans the promotion: 100, 100 from the shadow stage, then 120
    (event,) = feed(candidate=120.0)  # 20/300 = +6.7 % over 3 intervals
    assert event.kind == "rollback" and "KPI regression" in event.reason and "+6.7%" in event.reason


def test_operator_rollback_of_everything_or_one_cohort():
    gate, feed = canary_gate()
    promote_through(gate, feed, 9)
    assert gate.stage == "full"
    (event,) = gate.rollback("carol", cohort="mills")
    assert event.operator == "carol" and "cohort mills" in event.reason
    assert event.machines == ("machining-2", "machining-3", "machining-4")
    assignment = gate.assignments(0.0)
    assert assignment["machining-2"] == "incumbent" and assignment["machining-1"] == "candidate"
    assert gate.stage == "full"
    feed(drift={"machining-3": ("wear",)})  # an excluded machine no longer rolls back
    assert gate.stage == "full"
    with pytest.raises(ValueError, match="no cohort"):
        gate.rollback("carol", cohort="presses")
    (event,) = gate.rollback("carol")
    assert event.reason == "operator rollback by carol" and gate.stage == "rolled_back"
    assert gate.rollback("carol") == []


def test_fallback_and_local_control_override_the_stage():
    gate, feed = canary_gate()
    gate.set_fallback("machining-1", "no telemetry for 2 intervals")
    gate.set_local_control("machining-2", "dave")
    assignment = gate.assignments(0.0)
    assert assignment["machining-1"] == "fallback" and assignment["machining-2"] == "local"
    gate.set_local_control("machining-1", "dave")
    assert gate.assignments(0.0)["machining-1"] == "local"  # local wins over fallback
    assert gate.resume("machining-1", "dave")[0].operator == "dave"
    assert gate.clear_fallback("machining-1")[0].kind == "override"
    assert gate.assignments(0.0)["machining-1"] == "candidate"
    assert gate.resume("machining-1", "dave") == [] and gate.clear_fallback("machining-1") == []
    with pytest.raises(ValueError, match="not a machine"):
        gate.set_fallback("press-1", "x")
    # a candidate machine on fallback with stale data still rolls the canary back
    gate.set_fallback("machining-1", "stale")
    (event,) = feed(stale={"machining-1"})
    assert event.kind == "rollback" and "stale data from machining-1" in event.reason


def test_shift_cohort_runs_the_candidate_only_in_its_window():
    cohorts = (CohortConfig(name="early-mill", machines=("machining-1",), shift="early"),)
    gate = RolloutGate(config(cohorts=cohorts, min_intervals=1), MACHINES)
    Feed(gate)()
    assert gate.stage == "canary"
    # start_h = 6: plant time 0 is 06:00, the early shift runs 06:00-14:00
    assert gate.assignments(0.0)["machining-1"] == "candidate"
    assert gate.assignments(9 * 3600.0)["machining-1"] == "incumbent"  # 15:00
    assert gate.assignments(24 * 3600.0)["machining-1"] == "candidate"  # next day 06:00
    night = GateConfig(rollout_id="n", cohorts=cohorts).shifts[2]
    assert night.contains(23.0) and night.contains(5.0) and not night.contains(12.0)


def test_hash_cohorts_are_stable_per_rollout_id():
    cohorts = (CohortConfig(name="half", share=0.5), CohortConfig(name="rest"))
    first = RolloutGate(config(cohorts=cohorts, rollout_id="a"), MACHINES)
    again = RolloutGate(config(cohorts=cohorts, rollout_id="a"), list(reversed(MACHINES)))
    assert first.cohort_of == again.cohort_of
    bigger = RolloutGate(config(cohorts=cohorts, rollout_id="a"), [*MACHINES, "press-1"])
    assert {m: bigger.cohort_of[m] for m in MACHINES} == first.cohort_of  # others keep theirs
    others = [RolloutGate(config(cohorts=cohorts, rollout_id=f"r{k}"), MACHINES) for k in range(8)]
    assert any(o.cohort_of != first.cohort_of for o in others)


def test_restart_resumes_identically(tmp_path):
    def script(feed):
        """The same evidence for both gates: healthy, then a drift on the canary machine."""
        events = []
        for step in range(12):
            drift = {"machining-1": ("wear",)} if step == 10 else None
            events += [e.to_dict() for e in feed(drift=drift)]
        return events

    gate = RolloutGate(config(require_approval=True), MACHINES)
    feed = Feed(gate)
    promote_through(gate, feed, 3)
    gate.approve("alice")
    promote_through(gate, feed, 2)
    gate.set_fallback("welding-1", "stale")
    gate.set_local_control("inspection-1", "erin")
    with Store(tmp_path / "bridge.sqlite") as store:
        gate.save(store)
    with Store(tmp_path / "bridge.sqlite") as store:
        resumed = RolloutGate.load_or_new(config(require_approval=True), MACHINES, store)
    assert resumed.state_dict() == gate.state_dict()
    assert (resumed.stage, resumed.intervals_in_stage) == ("canary", 2)
    assert resumed.assignments(0.0) == gate.assignments(0.0)
    # an interval observed before the restart and fed again is ignored
    stale_copy = IntervalEvidence(decision_index=5, time_s=1500.0, trust={})
    assert resumed.observe(stale_copy) == [] and resumed.intervals_in_stage == 2
    resumed_feed = Feed(resumed)
    resumed_feed.index = feed.index
    expected = script(feed)
    assert script(resumed_feed) == expected
    assert [e["kind"] for e in expected] == ["approval_requested", "rollback"]
    assert resumed.state_dict() == gate.state_dict()
    with Store(tmp_path / "bridge.sqlite") as store:
        with pytest.raises(ValueError, match="new rollout_id"):
            RolloutGate.load_or_new(config(require_approval=True, min_intervals=5), MACHINES, store)
    with Store(tmp_path / "other.sqlite") as store:
        assert RolloutGate.load_or_new(config(), MACHINES, store).stage == "shadow"


def test_shipped_gate_config_loads():
    loaded = load_gate_config(ROOT / "configs/bridge/gate.toml")
    gate = RolloutGate(loaded, MACHINES, SCENARIO.objective)
    assert [c.name for c in loaded.cohorts] == ["mill-early", "mills", "rest"]
    assert gate.cohort_of["inspection-1"] == 2 and loaded.require_approval


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rollout_id = "r"\n', "missing key 'cohorts'"),
        ('rollout_id = "r"\ntrust_threshold = 1.5\n[[cohorts]]\nname = "a"\n', "allowed range"),
        ('rollout_id = "r"\n[[cohorts]]\nname = "a"\nshift = "noon"\n', "not a shift"),
        ('rollout_id = "r"\n[[cohorts]]\nname = "a"\n[[cohorts]]\nname = "a"\n', "unique"),
        (
            'rollout_id = "r"\n[[cohorts]]\nname = "a"\nshare = 0.7\n'
            '[[cohorts]]\nname = "b"\nshare = 0.7\n',
            "more than 1",
        ),
        (
            'rollout_id = "r"\nkpi_tolerance = 0.1\nrollback_kpi_tolerance = 0.05\n'
            '[[cohorts]]\nname = "a"\n',
            "rollback_kpi_tolerance",
        ),
        ('rollout_id = "r"\n[[cohorts]]\nname = "a"\nmachines = "machining-1"\n', "must be a list"),
    ],
)
def test_malformed_gate_configs_are_refused(tmp_path, text, message):
    path = tmp_path / "gate.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="gate.toml") as error:
        load_gate_config(path)
    assert message in str(error.value)


def test_cohorts_that_do_not_fit_the_plant_are_refused():
    with pytest.raises(ConfigError, match="'press-1', not a machine"):
        RolloutGate(config(cohorts=(CohortConfig(name="a", machines=("press-1",)),)), MACHINES)
    twice = (
        CohortConfig(name="a", machines=("machining-1",)),
        CohortConfig(name="b", machines=("machining-1",)),
    )
    with pytest.raises(ConfigError, match="two cohorts"):
        RolloutGate(config(cohorts=twice), MACHINES)
    empty = (CohortConfig(name="all"), CohortConfig(name="none"))
    with pytest.raises(ConfigError, match="'none' has no machines"):
        RolloutGate(config(cohorts=empty), MACHINES)


def test_the_kpi_window_spans_promotions_and_waits_for_its_minimum():
    gate = RolloutGate(
        config(min_intervals=2, kpi_min_intervals=6, kpi_window_intervals=6), MACHINES
    )
    index = 0

    def feed(candidate: float, incumbent: float = 100.0) -> list:
        nonlocal index
        index += 1
        trust = dict.fromkeys(MACHINES, 0.9)
        return gate.observe(
            IntervalEvidence(index, 300.0 * index, trust, {}, set(), candidate, incumbent)
        )

    for _ in range(5):  # healthy, but fewer paired KPIs than the minimum: no promotion yet
        assert feed(90.0) == []
    assert [e.kind for e in feed(90.0)] == ["promotion"]  # the 6th interval
    assert len(gate.kpi_window) == 6  # kept across the promotion
    events = []
    for _ in range(6):  # a regression of the candidate, seen over the whole window
        events += feed(400.0)
        if gate.stage == "rolled_back":
            break
    assert events[-1].kind == "rollback" and "KPI regression" in events[-1].reason


def test_lumpy_kpis_promote_on_the_change_and_roll_back_only_beyond_doubt():
    gate = RolloutGate(
        config(
            min_intervals=2, kpi_min_intervals=4, kpi_window_intervals=24, kpi_block_intervals=2
        ),
        MACHINES,
    )
    index = 0

    def feed(candidate: float, incumbent: float = 100.0) -> list:
        nonlocal index
        index += 1
        trust = dict.fromkeys(MACHINES, 0.9)
        return gate.observe(
            IntervalEvidence(index, 300.0 * index, trust, {}, set(), candidate, incumbent)
        )

    for candidate in (400.0, 0.0, 50.0, 50.0, 400.0, 0.0, 400.0, 0.0):  # worse, as measured
        assert feed(candidate) == []
    verdict = gate._window_change()
    assert verdict.change == pytest.approx(0.625) and verdict.low < 0 < 0.5 < verdict.high
    for _ in range(24):  # steadily better: promoted once the measured change is within 2 %
        events = feed(60.0)
        if events:
            break
    assert events[0].kind == "promotion" and "bounds" in events[0].reason
    for _ in range(6):  # a maintenance-sized lump is no regression beyond doubt ...
        for candidate in (400.0, 0.0):
            assert feed(candidate) == []
    for _ in range(40):  # ... a steady regression is, once its lower bound clears 5 %
        events = feed(130.0)
        if events:
            break
    assert events[0].kind == "rollback" and "lower bound" in events[0].reason
