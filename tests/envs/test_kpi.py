"""KPI arithmetic on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from envs.kpi import (
    CONSTRAINT_VIOLATION_PENALTY,
    CostRates,
    IntervalRecord,
    KpiLedger,
    Kpis,
    combine_records,
    constraint_violation,
    penalised_objective,
    relative_change,
    relative_changes,
)

RATES = CostRates(scrap_per_part=40.0, backlog_per_part_hour=2.0)


def two_intervals() -> KpiLedger:
    ledger = KpiLedger(RATES)
    # off-peak hour: 100 kWh at 0.10, 30 kWh of it idle; 10 good, 1 scrap; 5 parts backlog
    ledger.record(
        IntervalRecord(
            duration_h=1.0,
            energy_kwh=100.0,
            energy_price=0.10,
            idle_energy_kwh=30.0,
            good_parts=10,
            scrap_parts=1,
            backlog_parts=5.0,
            planned_h=4.0,
            ideal_parts=12.0,
            made_parts=11.0,
        )
    )
    # peak half hour: 80 kWh at 0.25, a failure (0.5 machine-h down), a repair and a PM
    ledger.record(
        IntervalRecord(
            duration_h=0.5,
            energy_kwh=80.0,
            energy_price=0.25,
            idle_energy_kwh=50.0,
            repair_cost=300.0,
            maintenance_cost=150.0,
            good_parts=4,
            scrap_parts=0,
            backlog_parts=8.0,
            downtime_h=0.5,
            maintenance_h=0.25,
            planned_h=2.0,
            ideal_parts=6.0,
            made_parts=4.0,
        )
    )
    return ledger


def test_totals_by_hand():
    totals = two_intervals().totals
    assert totals.energy_cost == pytest.approx(100 * 0.10 + 80 * 0.25)  # Σ price × energy = 30
    assert totals.scrap_cost == pytest.approx(40.0)
    assert totals.backlog_cost == pytest.approx((5 * 1.0 + 8 * 0.5) * 2.0)  # 18
    assert totals.cost == pytest.approx(30 + 300 + 150 + 40 + 18)
    assert totals.energy_kwh == 180.0
    assert totals.downtime_h == 0.5  # maintenance is not unplanned downtime
    assert totals.throughput_per_h == pytest.approx(14 / 1.5)
    assert totals.peak_kw == pytest.approx(160.0)  # 80 kWh in half an hour
    assert totals.idle_energy_share == pytest.approx(80 / 180)
    assert totals.availability == pytest.approx((6.0 - 0.5 - 0.25) / 6.0)
    assert totals.performance == pytest.approx(15 / 18)
    assert totals.quality == pytest.approx(14 / 15)
    assert totals.oee == pytest.approx(totals.availability * totals.performance * totals.quality)


def test_increment_is_the_interval_alone():
    ledger = two_intervals()
    increment = ledger.record(
        IntervalRecord(duration_h=0.25, energy_kwh=10.0, energy_price=0.2, good_parts=2)
    )
    assert increment.cost == pytest.approx(2.0)
    assert increment.throughput_per_h == pytest.approx(8.0)
    assert increment.peak_kw == pytest.approx(40.0)
    assert ledger.totals.peak_kw == pytest.approx(160.0)
    assert ledger.totals.good_parts == 16


def test_objective_and_constraints():
    totals = two_intervals().totals
    assert totals.weighted_objective(1.0, 0.5, 100.0) == pytest.approx(
        totals.cost + 0.5 * 180.0 + 100.0 * 0.5
    )
    shortfall, excess = totals.constraints(throughput_min=10.0, peak_max=150.0)
    assert shortfall == pytest.approx(10.0 - 14 / 1.5) and excess == pytest.approx(10.0)


def test_reset_and_empty_ledger():
    ledger = two_intervals()
    ledger.reset()
    totals = ledger.totals
    assert totals.cost == 0.0 and totals.throughput_per_h == 0.0
    assert totals.availability == 1.0 and totals.quality == 1.0


def test_relative_change():
    baseline = two_intervals().totals
    better = KpiLedger(RATES)
    better.record(IntervalRecord(duration_h=1.5, energy_kwh=90.0, energy_price=0.1, good_parts=17))
    change = relative_changes(better.totals, baseline)
    assert change["energy"] == pytest.approx(-0.5)
    assert change["downtime"] == pytest.approx(-1.0)
    assert change["throughput"] == pytest.approx(17 / 14 - 1)
    empty = KpiLedger(RATES).totals
    assert math.isnan(relative_changes(baseline, empty)["energy"])
    assert relative_change(3.0, 2.0) == pytest.approx(0.5)
    assert math.isnan(relative_change(1.0, 0.0))


def test_kpis_round_trip_through_their_dict():
    totals = two_intervals().totals
    assert Kpis.from_dict(totals.as_dict()) == totals


def test_penalised_objective_for_one_result_and_a_population():
    assert constraint_violation([-1.0, 2.5]) == pytest.approx(2.5)
    assert penalised_objective(10.0, [0.5, -3.0]) == pytest.approx(
        10.0 + 0.5 * CONSTRAINT_VIOLATION_PENALTY
    )
    assert penalised_objective(10.0, [-1.0, -2.0]) == 10.0  # feasible: no penalty
    F = [[1.0, 2.0], [3.0, 4.0]]
    G = [[0.0, 1.0], [-1.0, -1.0]]
    assert penalised_objective(F, G, penalty=10.0).tolist() == [[11.0, 12.0], [3.0, 4.0]]
    assert penalised_objective([5.0, 6.0], G, penalty=2.0).tolist() == [7.0, 6.0]


@pytest.mark.parametrize(
    ("field", "value"),
    [("energy_kwh", -1.0), ("duration_h", 0.0), ("energy_price", math.nan), ("good_parts", -2)],
)
def test_bad_records_are_refused(field, value):
    arguments = {"duration_h": 1.0, "energy_kwh": 1.0, "energy_price": 0.1, field: value}
    with pytest.raises(ValueError, match=field):
        IntervalRecord(**arguments)
    with pytest.raises(ValueError, match="cannot exceed"):
        IntervalRecord(duration_h=1.0, energy_kwh=1.0, energy_price=0.1, idle_energy_kwh=2.0)
    with pytest.raises(ValueError, match="scrap_per_part"):
        CostRates(scrap_per_part=-1.0, backlog_per_part_hour=0.0)


def test_combine_records_weights_price_by_energy_and_backlog_by_time():
    records = [
        IntervalRecord(
            duration_h=0.5,
            energy_kwh=1.0,
            energy_price=0.1,
            backlog_parts=10.0,
            good_parts=2,
            idle_energy_kwh=0.5,
        ),
        IntervalRecord(
            duration_h=1.5,
            energy_kwh=3.0,
            energy_price=0.3,
            backlog_parts=2.0,
            good_parts=1,
            repair_cost=5.0,
        ),
    ]
    combined = combine_records(records)
    assert combined.duration_h == 2.0 and combined.energy_kwh == 4.0
    assert combined.energy_price * combined.energy_kwh == pytest.approx(0.1 + 0.9)
    assert combined.backlog_parts == pytest.approx((5.0 + 3.0) / 2.0)
    assert (combined.good_parts, combined.repair_cost, combined.idle_energy_kwh) == (3, 5.0, 0.5)
    with pytest.raises(ValueError, match="at least one"):
        combine_records([])
