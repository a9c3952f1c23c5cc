"""One evaluation: simulate a decision vector on the line over a horizon and a few seeds.

:func:`evaluate_plan` is what every worker runs. It keeps one :class:`ProductionLine` per
scenario in the worker process and resets it for every seed with a fresh
:func:`envs.seeding.event_rng` ``(seed)``: every candidate meets the same demand and failure draws
(common random numbers), and a reused line gives the same numbers as a new one. KPIs come from
:class:`envs.kpi.KpiLedger` only; the result averages them over the seeds:

- ``F = (C, E, D)``: cost EUR, energy kWh and unplanned downtime machine-hours over the horizon;
- ``G = (Tmin − T, R − Rmax)``: good parts/h short of the minimum, kW over the contracted peak;
  the candidate is feasible when both are ≤ 0.

A simulation that raises (an FMU error, an invalid record) or produces non-finite KPIs returns a
failed :class:`Evaluation` with the reason: F and G are then :data:`FAILED_VALUE`, which makes the
candidate infeasible and dominated, and the line is rebuilt for the next evaluation.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from envs.kpi import CostRates, KpiLedger, Kpis
from envs.scenario import Scenario
from envs.seeding import event_rng
from optimizers.config import PlantChange
from optimizers.plan import PlanController, PlanEncoding

if TYPE_CHECKING:
    from envs.line import ProductionLine

FAILED_VALUE = 1e12
"""F and G of a failed evaluation: finite (pymoo and SciPy need numbers), infeasible, dominated."""
OBJECTIVES = ("cost", "energy_kwh", "downtime_h")
CONSTRAINTS = ("throughput_short_per_h", "peak_excess_kw")
KPI_KEYS = (
    "cost",
    "energy_kwh",
    "downtime_h",
    "throughput_per_h",
    "peak_kw",
    "energy_cost",
    "maintenance_cost",
    "repair_cost",
    "scrap_cost",
    "backlog_cost",
    "good_parts",
    "scrap_parts",
    "idle_energy_share",
    "oee",
)
_MAX_CACHED_LINES = 2
_LINES: dict[str, ProductionLine] = {}  # per process: scenario digest -> ProductionLine
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationSpec:
    """Everything a worker needs to evaluate a decision vector (picklable, no FMUs)."""

    scenario: Scenario
    granularity: str
    horizon_steps: int
    """Decision intervals simulated per seed."""
    start_s: float
    """Seconds into the week at which each simulation starts."""
    seeds: tuple[int, ...]
    throughput_min_per_h: float
    peak_max_kw: float
    plant_changes: tuple[PlantChange, ...] = ()

    @property
    def line_key(self) -> str:
        """Digest of the scenario: evaluations of the same scenario share a worker's line."""
        return hashlib.sha256(repr(self.scenario).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Evaluation:
    """The outcome of one decision vector (means over the seeds)."""

    F: np.ndarray
    G: np.ndarray
    kpis: dict[str, float] = field(default_factory=dict)
    ok: bool = True
    reason: str = ""
    """Why the simulation failed ('' when it did not)."""
    seconds: float = 0.0
    """Wall time of the evaluation in the worker, s."""

    @property
    def feasible(self) -> bool:
        """Simulated without failure and every G ≤ 0."""
        return self.ok and bool((self.G <= 0).all())


def failed(reason: str, seconds: float = 0.0) -> Evaluation:
    """A failed evaluation: F and G are :data:`FAILED_VALUE`, ``reason`` says why."""
    return Evaluation(
        F=np.full(len(OBJECTIVES), FAILED_VALUE),
        G=np.full(len(CONSTRAINTS), FAILED_VALUE),
        ok=False,
        reason=reason,
        seconds=seconds,
    )


def _line_for(spec: SimulationSpec) -> ProductionLine:
    from envs.line import ProductionLine

    key = spec.line_key
    line = _LINES.get(key)
    if line is None:
        while len(_LINES) >= _MAX_CACHED_LINES:
            _LINES.pop(next(iter(_LINES))).close()
        line = ProductionLine(spec.scenario)
        _LINES[key] = line
    return line


def _drop_line(spec: SimulationSpec) -> None:
    line = _LINES.pop(spec.line_key, None)
    if line is not None:
        try:
            line.close()
        except Exception:  # a broken FMU may fail to free; the process keeps going
            pass


def close_lines() -> None:
    """Free the FMUs of this process's cached lines."""
    for key in list(_LINES):
        _LINES.pop(key).close()


def _apply_plant_changes(line: ProductionLine, changes: tuple[PlantChange, ...]) -> None:
    by_name = {m.name: m for m in line.machines}
    for change in changes:
        machine = by_name[change.machine]
        machine.unit.reset({change.parameter: change.value})
        machine.reset_state()


def simulate(line: ProductionLine, spec: SimulationSpec, x: np.ndarray, seed: int) -> Kpis:
    """KPI totals of one seed: reset ``line`` at ``spec.start_s`` with ``event_rng(seed)``,
    apply the plant changes, then run the plan of ``x`` for ``spec.horizon_steps`` intervals."""
    scenario = spec.scenario
    plan = PlanEncoding(scenario, spec.granularity).decode(x)
    controller = PlanController(plan, scenario)
    line.reset(event_rng(seed), start_s=spec.start_s)
    _apply_plant_changes(line, spec.plant_changes)
    ledger = KpiLedger(
        CostRates(scenario.costs.scrap_per_part, scenario.costs.backlog_per_part_hour)
    )
    for _ in range(spec.horizon_steps):
        record, _ = line.advance(*controller.decide(line))
        ledger.record(record)
    return ledger.totals


def evaluate_plan(task: tuple[SimulationSpec, np.ndarray]) -> Evaluation:
    """Evaluate one ``(spec, x)`` in this process (what engines map over); never raises for a
    failing simulation: the result says why it failed."""
    spec, x = task
    started = time.perf_counter()
    try:
        line = _line_for(spec)
        totals = [simulate(line, spec, x, seed) for seed in spec.seeds]
    except Exception as error:  # any simulation failure marks the candidate infeasible
        _drop_line(spec)
        reason = f"{type(error).__name__}: {error}"[:500]
        log.warning("evaluation failed: %s", reason)
        return failed(reason, time.perf_counter() - started)
    kpis = {
        key: float(np.mean([t.oee if key == "oee" else getattr(t, key) for t in totals]))
        for key in KPI_KEYS
    }
    F = np.array([kpis[name] for name in OBJECTIVES])
    G = np.array(
        [
            spec.throughput_min_per_h - kpis["throughput_per_h"],
            kpis["peak_kw"] - spec.peak_max_kw,
        ]
    )
    seconds = time.perf_counter() - started
    if not (np.isfinite(F).all() and np.isfinite(G).all()):
        bad = [k for k, v in kpis.items() if not math.isfinite(v)]
        reason = f"non-finite KPIs {bad}"
        log.warning("evaluation failed: %s", reason)
        return failed(reason, seconds)
    return Evaluation(F=F, G=G, kpis=kpis, seconds=seconds)
