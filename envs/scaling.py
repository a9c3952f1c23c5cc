"""Scaled production lines: the shipped line grown to N machines, for load and cost studies.

:func:`scaled_scenario` turns the shipped ``automotive_components`` line (4 mills → 2 welding
robots → 1 inspection robot) into one of N machines with the same station parameters: the
machine counts keep the 4 : 2 : 1 ratio and, since a station holds at most
:data:`MAX_PER_STATION` parallel machines (:class:`envs.scenario.StationConfig`), a line of more
than 20 machines of a kind is split into ``cells`` — copies of the three stations in series
(``cell1_machining``, ``cell1_welding``, …), each cell's machine counts as even as possible.
Demand and the peak limits scale with the machines so the heuristics see a plausible plant.

Used by the bridge's load tests (:mod:`edge_bridge.load`) and the cost-vs-plant-size benchmark
(:mod:`envs.profiling`, ``scripts/bench_scaling.py``).
"""

from __future__ import annotations

import dataclasses
import math

from envs.scenario import Scenario, StationConfig, load_scenario

__all__ = ["MAX_PER_STATION", "scaled_scenario"]

MAX_PER_STATION = 20
"""Parallel machines a station may hold (the bound of ``StationConfig.machines``)."""
_BASE_SHARES = (4, 2, 1)  # machining : welding : inspection in automotive_components


def _split(total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` whole numbers differing by at most one, larger first."""
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def scaled_scenario(machines: int, base: str = "automotive_components") -> Scenario:
    """The ``base`` scenario with ``machines`` machines (module docstring); ValueError for a
    count below the base's number of stations or a base that is not the 3-station line."""
    scenario = load_scenario(base)
    stations = scenario.stations
    if len(stations) != len(_BASE_SHARES):
        raise ValueError(
            f"scaled_scenario expects a 3-station base line, {base} has {len(stations)}"
        )
    if not (isinstance(machines, int) and machines >= len(stations)):
        raise ValueError(f"machines must be a whole number >= {len(stations)}, not {machines!r}")
    shares = sum(_BASE_SHARES)
    counts = [round(machines * share / shares) for share in _BASE_SHARES[:-1]]
    counts.append(machines - sum(counts))
    counts = [max(1, c) for c in counts]
    counts[0] = machines - sum(counts[1:])
    cells = max(math.ceil(c / MAX_PER_STATION) for c in counts)
    if any(c < cells for c in counts):
        raise ValueError(f"{machines} machines cannot fill {cells} cells of 3 stations")
    per_cell = [_split(count, cells) for count in counts]
    scaled: list[StationConfig] = []
    for cell in range(cells):
        for station, split in zip(stations, per_cell, strict=True):
            name = station.name if cells == 1 else f"cell{cell + 1}_{station.name}"
            scaled.append(dataclasses.replace(station, name=name, machines=split[cell]))
    factor = machines / scenario.machine_count
    per_cell_factor = factor / cells  # a cell in series carries one cell's throughput
    demand = dataclasses.replace(
        scenario.demand,
        orders_per_hour=scenario.demand.orders_per_hour * per_cell_factor,
        initial_backlog=round(scenario.demand.initial_backlog * per_cell_factor),
    )
    objective = dataclasses.replace(
        scenario.objective,
        throughput_min_per_h=scenario.objective.throughput_min_per_h * per_cell_factor,
        peak_max_kw=scenario.objective.peak_max_kw * factor,
    )
    return dataclasses.replace(
        scenario,
        name=f"{scenario.name}_x{machines}",
        description=f"{scenario.name} scaled to {machines} machines in {cells} cell(s)",
        stations=tuple(scaled),
        contracted_peak_kw=scenario.contracted_peak_kw * factor,
        demand=demand,
        objective=objective,
    )
