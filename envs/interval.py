"""What a production line sums over the ticks of one decision interval, and the
:class:`envs.kpi.IntervalRecord` it becomes (physical quantities only; the KPI module prices
and aggregates them)."""

from __future__ import annotations

from dataclasses import dataclass

from envs.kpi import IntervalRecord

__all__ = ["IntervalSums"]


@dataclass
class IntervalSums:
    """Running sums over the ticks of one decision interval (kWh, EUR, parts, machine-hours)."""

    energy: float = 0.0
    energy_cost: float = 0.0
    idle_energy: float = 0.0
    maintenance_cost: float = 0.0
    repair_cost: float = 0.0
    good: int = 0
    scrap: int = 0
    backlog_ticks: float = 0.0
    """Σ open orders over the ticks (divided by the tick count: the mean backlog)."""
    downtime_h: float = 0.0
    maintenance_h: float = 0.0
    planned_h: float = 0.0
    ideal_parts: float = 0.0
    made_parts: float = 0.0
    failures: int = 0
    maintenances: int = 0

    def record(self, hours: float, ticks: int, *, fallback_price: float) -> IntervalRecord:
        """The interval of ``ticks`` ticks lasting ``hours`` as a record; its energy price is
        the energy-weighted mean tariff (``fallback_price`` when no energy was drawn)."""
        return IntervalRecord(
            duration_h=hours,
            energy_kwh=self.energy,
            energy_price=self.energy_cost / self.energy if self.energy > 0 else fallback_price,
            idle_energy_kwh=min(self.idle_energy, self.energy),
            maintenance_cost=self.maintenance_cost,
            repair_cost=self.repair_cost,
            good_parts=self.good,
            scrap_parts=self.scrap,
            backlog_parts=self.backlog_ticks / ticks,
            downtime_h=self.downtime_h,
            maintenance_h=self.maintenance_h,
            planned_h=self.planned_h,
            ideal_parts=self.ideal_parts,
            made_parts=self.made_parts,
        )
