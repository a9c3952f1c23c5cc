"""The KPIs of a production line: the one definition used by the envs, the optimisers, the
evaluation harness and the edge bridge. Nothing else computes a KPI.

A simulation reports what happened in each interval as an :class:`IntervalRecord` (physical
quantities only: kWh, hours, parts, prices; :func:`combine_records` merges consecutive ones). A
:class:`KpiLedger` turns records into :class:`Kpis`, both per interval (the increment) and as
running totals:

=================  =====  ===================================================================
KPI                unit   definition
=================  =====  ===================================================================
C  cost            EUR    energy cost + maintenance + repair + scrap + backlog penalty
   energy cost     EUR    Σ price_i × energy_i over intervals (time-of-use tariff)
   scrap cost      EUR    scrap parts × scrap cost per part
   backlog penalty EUR    Σ backlog_i × duration_i × penalty per part-hour
E  energy          kWh    Σ energy_i
D  downtime        h      unplanned machine-hours: failed or under repair (not maintenance)
T  throughput      1/h    good parts / elapsed hours
R  resource        kW     peak of the interval-mean line power
idle energy share  1      energy drawn while machines were not producing / E
availability A     1      (planned − unplanned downtime − maintenance) / planned machine-hours
performance P      1      parts made / parts possible at the ideal cycle in the operating time
quality Q          1      good parts / parts made
OEE                1      A × P × Q
=================  =====  ===================================================================

The classic digital-twin objective is Z = w1·C + w2·E + w3·D subject to T ≥ Tmin and R ≤ Rmax
(:meth:`Kpis.weighted_objective`, :meth:`Kpis.constraints`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class CostRates:
    """Prices that turn physical quantities into cost."""

    scrap_per_part: float
    """Cost of one scrapped part, EUR (material plus value added up to the scrap point)."""
    backlog_per_part_hour: float
    """Penalty for one ordered part waiting one hour, EUR."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"CostRates.{field.name} = {value} must be finite and >= 0")


@dataclass(frozen=True)
class IntervalRecord:
    """What happened on the line during one interval."""

    duration_h: float
    """Length of the interval, hours."""
    energy_kwh: float
    """Electrical energy drawn by the whole line, kWh."""
    energy_price: float
    """Tariff during the interval, EUR/kWh."""
    idle_energy_kwh: float = 0.0
    """Part of ``energy_kwh`` drawn by machines that were not producing, kWh."""
    maintenance_cost: float = 0.0
    """Preventive maintenance started in the interval, EUR."""
    repair_cost: float = 0.0
    """Repairs (corrective maintenance) in the interval, EUR."""
    good_parts: int = 0
    """Good parts finished by the last station."""
    scrap_parts: int = 0
    """Parts scrapped at any station."""
    backlog_parts: float = 0.0
    """Ordered parts not yet delivered (mean over the interval)."""
    downtime_h: float = 0.0
    """Unplanned machine-hours: failed or under repair."""
    maintenance_h: float = 0.0
    """Machine-hours under preventive maintenance."""
    planned_h: float = 0.0
    """Staffed machine-hours (the planned production time)."""
    ideal_parts: float = 0.0
    """Parts the machines could have made at their ideal cycle in the operating time."""
    made_parts: float = 0.0
    """Parts the machines finished (good or scrap), counted at every station."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"IntervalRecord.{field.name} = {value} must be finite and >= 0")
        if self.duration_h <= 0:
            raise ValueError("IntervalRecord.duration_h must be positive")
        if self.idle_energy_kwh > self.energy_kwh * (1 + 1e-9):
            raise ValueError("IntervalRecord.idle_energy_kwh cannot exceed energy_kwh")

    @property
    def mean_power_kw(self) -> float:
        return self.energy_kwh / self.duration_h


def combine_records(records: Sequence[IntervalRecord]) -> IntervalRecord:
    """One :class:`IntervalRecord` for consecutive records (e.g. the plant's per-sample records
    of a decision interval): durations, energies, costs, parts and hours summed;
    ``energy_price`` energy-weighted (duration-weighted when no energy was drawn), so price ×
    energy is the interval's energy cost; ``backlog_parts`` time-weighted (the mean over the
    span). ValueError for an empty sequence."""
    if not records:
        raise ValueError("combine_records needs at least one IntervalRecord")
    duration = sum(r.duration_h for r in records)
    energy = sum(r.energy_kwh for r in records)
    if energy > 0:
        price = sum(r.energy_price * r.energy_kwh for r in records) / energy
    else:
        price = sum(r.energy_price * r.duration_h for r in records) / duration
    return IntervalRecord(
        duration_h=duration,
        energy_kwh=energy,
        energy_price=price,
        idle_energy_kwh=min(energy, sum(r.idle_energy_kwh for r in records)),
        maintenance_cost=sum(r.maintenance_cost for r in records),
        repair_cost=sum(r.repair_cost for r in records),
        good_parts=sum(r.good_parts for r in records),
        scrap_parts=sum(r.scrap_parts for r in records),
        backlog_parts=sum(r.backlog_parts * r.duration_h for r in records) / duration,
        downtime_h=sum(r.downtime_h for r in records),
        maintenance_h=sum(r.maintenance_h for r in records),
        planned_h=sum(r.planned_h for r in records),
        ideal_parts=sum(r.ideal_parts for r in records),
        made_parts=sum(r.made_parts for r in records),
    )


@dataclass(frozen=True)
class Kpis:
    """KPIs over a span of time (one interval or a whole run); see the module table."""

    hours: float
    cost: float
    energy_cost: float
    maintenance_cost: float
    repair_cost: float
    scrap_cost: float
    backlog_cost: float
    energy_kwh: float
    downtime_h: float
    throughput_per_h: float
    peak_kw: float
    good_parts: int
    scrap_parts: int
    idle_energy_share: float
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality

    def weighted_objective(self, w_cost: float, w_energy: float, w_downtime: float) -> float:
        """Z = w1·C + w2·E + w3·D in the KPIs' own units (EUR, kWh, h)."""
        return w_cost * self.cost + w_energy * self.energy_kwh + w_downtime * self.downtime_h

    def constraints(self, throughput_min: float, peak_max: float) -> tuple[float, float]:
        """G = (Tmin − T, R − Rmax); both ≤ 0 when feasible (pymoo's convention)."""
        return throughput_min - self.throughput_per_h, self.peak_kw - peak_max

    def as_dict(self) -> dict[str, float]:
        """Every KPI by name, OEE included (the ``info["kpi_total"]`` layout)."""
        values = {name: getattr(self, name) for name in _KPI_FIELDS}
        values["oee"] = self.oee
        return values

    @classmethod
    def from_dict(cls, values: dict[str, float]) -> Kpis:
        """The inverse of :meth:`as_dict` (derived entries such as ``oee`` are ignored)."""
        return cls(**{f.name: values[f.name] for f in fields(cls)})  # type: ignore[arg-type]


_KPI_FIELDS = tuple(f.name for f in fields(Kpis))


def _ratio(numerator: float, denominator: float, empty: float) -> float:
    return numerator / denominator if denominator > 0 else empty


class KpiLedger:
    """Accumulates interval records into running totals.

    ``record`` returns the interval's own KPIs (the increment); ``totals`` the KPIs since the
    ledger was made or reset.
    """

    def __init__(self, rates: CostRates) -> None:
        self.rates = rates
        self.reset()

    def reset(self) -> None:
        self._sums = dict.fromkeys(
            (
                "hours",
                "energy_kwh",
                "energy_cost",
                "idle_energy_kwh",
                "maintenance_cost",
                "repair_cost",
                "good_parts",
                "scrap_parts",
                "backlog_part_hours",
                "downtime_h",
                "maintenance_h",
                "planned_h",
                "ideal_parts",
                "made_parts",
            ),
            0.0,
        )
        self._peak_kw = 0.0

    def _kpis(self, sums: dict[str, float], peak_kw: float) -> Kpis:
        scrap_cost = sums["scrap_parts"] * self.rates.scrap_per_part
        backlog_cost = sums["backlog_part_hours"] * self.rates.backlog_per_part_hour
        cost = (
            sums["energy_cost"]
            + sums["maintenance_cost"]
            + sums["repair_cost"]
            + scrap_cost
            + backlog_cost
        )
        planned = sums["planned_h"]
        operating = max(0.0, planned - sums["downtime_h"] - sums["maintenance_h"])
        made = sums["good_parts"] + sums["scrap_parts"]
        return Kpis(
            hours=sums["hours"],
            cost=cost,
            energy_cost=sums["energy_cost"],
            maintenance_cost=sums["maintenance_cost"],
            repair_cost=sums["repair_cost"],
            scrap_cost=scrap_cost,
            backlog_cost=backlog_cost,
            energy_kwh=sums["energy_kwh"],
            downtime_h=sums["downtime_h"],
            throughput_per_h=_ratio(sums["good_parts"], sums["hours"], 0.0),
            peak_kw=peak_kw,
            good_parts=int(sums["good_parts"]),
            scrap_parts=int(sums["scrap_parts"]),
            idle_energy_share=_ratio(sums["idle_energy_kwh"], sums["energy_kwh"], 0.0),
            availability=_ratio(operating, planned, 1.0),
            performance=min(1.0, _ratio(sums["made_parts"], sums["ideal_parts"], 1.0)),
            quality=_ratio(sums["good_parts"], made, 1.0),
        )

    def record(self, interval: IntervalRecord) -> Kpis:
        """Add one interval; returns that interval's KPIs."""
        increment = {
            "hours": interval.duration_h,
            "energy_kwh": interval.energy_kwh,
            "energy_cost": interval.energy_price * interval.energy_kwh,
            "idle_energy_kwh": interval.idle_energy_kwh,
            "maintenance_cost": interval.maintenance_cost,
            "repair_cost": interval.repair_cost,
            "good_parts": interval.good_parts,
            "scrap_parts": interval.scrap_parts,
            "backlog_part_hours": interval.backlog_parts * interval.duration_h,
            "downtime_h": interval.downtime_h,
            "maintenance_h": interval.maintenance_h,
            "planned_h": interval.planned_h,
            "ideal_parts": interval.ideal_parts,
            "made_parts": interval.made_parts,
        }
        for key, value in increment.items():
            self._sums[key] += value
        self._peak_kw = max(self._peak_kw, interval.mean_power_kw)
        return self._kpis(increment, interval.mean_power_kw)

    @property
    def totals(self) -> Kpis:
        return self._kpis(self._sums, self._peak_kw)


HEADLINE_KPIS = {
    "cost": "cost",
    "energy": "energy_kwh",
    "downtime": "downtime_h",
    "throughput": "throughput_per_h",
    "peak_power": "peak_kw",
    "oee": "oee",
}
"""Headline name → :class:`Kpis` attribute, as the DT literature reports changes."""

CONSTRAINT_VIOLATION_PENALTY = 1_000.0
"""Z added per unit of constraint violation (part/h short of Tmin, kW over Rmax) wherever a
single number must rank constrained results: tuning scores, the weighted-sum optimiser and
the penalised pymoo adapter."""


def relative_change(new: float, old: float) -> float:
    """(new − old) / old as a fraction; NaN where the baseline ``old`` is 0 (no meaningful
    relative change), so a table shows "n/a" rather than a made-up figure."""
    return (new - old) / old if old else math.nan


def relative_changes(candidate: Kpis, baseline: Kpis) -> dict[str, float]:
    """Change of each headline KPI against a baseline (fractions; NaN where the baseline is 0):
    energy −x %, downtime −y %, throughput +z %."""
    return {
        name: relative_change(getattr(candidate, key), getattr(baseline, key))
        for name, key in HEADLINE_KPIS.items()
    }


def constraint_violation(G: ArrayLike) -> Any:
    """Σ max(0, g) over the last axis of ``G`` (pymoo's convention: g ≤ 0 is feasible); a float
    for one result, an array for a population."""
    violation = np.maximum(np.asarray(G, dtype=float), 0.0).sum(axis=-1)
    return float(violation) if violation.ndim == 0 else violation


def penalised_objective(
    objective: ArrayLike, G: ArrayLike, penalty: float = CONSTRAINT_VIOLATION_PENALTY
) -> Any:
    """``objective + penalty · constraint_violation(G)``: the one penalised sum (a float for one
    result, an array for a population; ``objective`` may be Z or each column of F)."""
    violation = constraint_violation(G)
    value = np.asarray(objective, dtype=float)
    if value.ndim == 2 and np.ndim(violation) == 1:
        violation = np.asarray(violation)[:, None]
    result = value + penalty * violation
    return float(result) if np.ndim(result) == 0 else result
