"""``twinfactory/ProductionLine-v0`` and ``-MO-v0``: run a production line, one decision interval
per step. :class:`ProductionLineEnv` documents the spaces, reward, episode end and arguments
(``help(env.unwrapped)`` shows the same text).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import ArrayLike

from envs.kpi import CostRates, IntervalRecord, KpiLedger, Kpis
from envs.line import ProductionLine, Randomization
from envs.machines import MachineState
from envs.scenario import Scenario, load_scenario

_STATES = len(MachineState)
MACHINE_FEATURES = 5 + _STATES
LINE_FEATURES = 7


class ProductionLineEnv(gym.Env[np.ndarray, np.ndarray]):
    """A production line (:class:`envs.line.ProductionLine`), one decision interval per step.

    ## Action — ``Box(-1, 1, (3·M,), float32)`` for M machines, three values per machine

    Symmetric and centred, as stable-baselines3 recommends: a fresh Gaussian policy (mean 0)
    starts at nominal speed, maintaining tools at their wear limit. (low, high) is the station's
    speed_range.

    | index | meaning | mapping |
    |---|---|---|
    | 3k | speed factor | 1 + a·(high − 1) if a ≥ 0 else 1 + a·(1 − low); a = 0 is nominal |
    | 3k+1 | maintenance threshold | maintain when free once wear ratio ≥ θ = 1 − a; a = −1: never |
    | 3k+2 | standby permission | a > 0: standby when starved, off outside staffed hours |

    The maintenance decision is a threshold on the wear ratio (wear / wear limit) rather than a
    per-step request: an exploring policy's noise then moves the threshold a little instead of
    ordering a maintenance on every other step, which made early PPO runs keep the machines in
    maintenance.
    A heuristic that decides by itself sends 1 (maintain now) or −1 (do not).

    ## Observation — ``Box(-1, 10, (12·M + 2·S + 7,), float32)``, S stations

    | per machine (12) | unit / scaling |
    |---|---|
    | temperature | degC / 100 |
    | wear | fraction of the wear limit |
    | vibration RMS | mm/s / 5 (0 for robots) |
    | hazard | 1/h × 10 |
    | operating hours since maintenance | h / 10 |
    | state one-hot | off, standby, idle, busy, failed, repair, maintenance |

    | per station (2) | |
    |---|---|
    | input buffer fill | parts / capacity |
    | outgoing conveyor fill | parts / capacity (0 without conveyor) |

    | line (7) | |
    |---|---|
    | backlog | open orders / 100 |
    | time of day | sin, cos of 2π·hour/24 |
    | weekday | 0 (Mon) .. 1 (Sun) |
    | staffed | 1 during shifts |
    | tariff | EUR/kWh / 0.3 |
    | power of the last interval | kW / contracted peak |

    Values are clipped to the box.

    ## Reward
    ProductionLine-v0: r = −(w1·ΔC + w2·ΔE + w3·ΔD) / reward_scale over the interval, with the
    scenario's weights (EUR, kWh, h), minus ``peak_penalty`` EUR per kWh drawn above Rmax in the
    interval (÷ reward_scale), and at the end of the episode minus ``throughput_penalty`` EUR per
    part missing from Tmin over the episode (÷ reward_scale). ``reward_scale`` (default 100 EUR)
    keeps a step's reward of order 1.
    ProductionLine-MO-v0: the vector (−ΔC, −ΔE, −ΔD) in EUR, kWh and h (MO-Gymnasium convention,
    ``reward_space``), with the constraint values G = (Tmin − T, R − Rmax) in ``info``.

    ## Episode end
    Termination only if an equipment FMU asks to stop (a third-party FMU may: FMI 2 discard +
    terminated, FMI 3 ``terminateSimulation``; the shipped ones never do): ``terminated=True``
    with ``info["stopped_by"]`` naming the unit, the last interval ending at that tick.
    Otherwise truncation after ``horizon_h`` (default the scenario's, one week): the env
    itself returns ``truncated=True`` after ``horizon_steps = horizon_h · 3600 /
    decision_interval_s`` steps, for any scenario and horizon. That is the one time limit: the ids
    are registered without ``max_episode_steps`` (a fixed step count cannot know the scenario's
    decision interval or a ``horizon_h`` argument). Stepping an ended episode, or before the first
    ``reset``, raises ``RuntimeError``.

    ## Info
    ``time_h``; ``kpi_step`` (the interval's KPIs) and ``kpi_total`` (the running totals) as dicts
    from :mod:`envs.kpi`; ``constraints``; ``failures`` and ``maintenances`` in the interval;
    ``randomized`` at reset.

    ## Arguments
    ``scenario`` (name or path), ``horizon_h``, ``reward_scale``, ``peak_penalty``,
    ``throughput_penalty``, ``randomization`` (:class:`envs.line.Randomization` or a dict of its
    fields), ``clip_actions``.

    Version history: v0 — first version (before the first release the action became centred on
    nominal speed and the maintenance decision a wear threshold; the registered 2016-step
    ``TimeLimit`` was dropped in favour of the env's own horizon, which it always equalled for the
    default scenario).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | Path | Scenario = "automotive_components",
        *,
        horizon_h: float | None = None,
        reward_scale: float = 100.0,
        peak_penalty: float = 10.0,
        throughput_penalty: float = 100.0,
        randomization: Randomization | dict[str, Any] | None = None,
        clip_actions: bool = False,
        render_mode: str | None = None,
    ) -> None:
        # These envs do not render. A render_mode is accepted (stable-baselines3's
        # make_vec_env passes "rgb_array") and ignored: render() stays unavailable.
        self.render_mode = None
        for name, value in (
            ("reward_scale", reward_scale),
            ("peak_penalty", peak_penalty),
            ("throughput_penalty", throughput_penalty),
        ):
            if not (math.isfinite(value) and value >= 0) or (name == "reward_scale" and value == 0):
                raise ValueError(f"{name} must be a finite number > 0 (>= 0 for penalties)")
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if isinstance(randomization, dict):
            randomization = Randomization(**{k: tuple(v) for k, v in randomization.items()})
        self.horizon_h = self.scenario.horizon_h if horizon_h is None else float(horizon_h)
        if self.horizon_h * 3600 < self.scenario.decision_interval_s:
            raise ValueError(f"horizon_h {horizon_h} is shorter than one decision interval")
        self.horizon_steps = round(self.horizon_h * 3600 / self.scenario.decision_interval_s)
        self.reward_scale = reward_scale
        self.peak_penalty = peak_penalty
        self.throughput_penalty = throughput_penalty
        self.clip_actions = clip_actions
        self.line = ProductionLine(self.scenario, randomization=randomization)
        self.ledger = KpiLedger(
            CostRates(self.scenario.costs.scrap_per_part, self.scenario.costs.backlog_per_part_hour)
        )
        machines = len(self.line.machines)
        stations = len(self.scenario.stations)
        self.action_space = spaces.Box(-1.0, 1.0, (3 * machines,), np.float32)
        size = MACHINE_FEATURES * machines + 2 * stations + LINE_FEATURES
        self.observation_space = spaces.Box(-1.0, 10.0, (size,), np.float32)
        self.machine_names = [m.name for m in self.line.machines]
        self._speed_bounds = np.array([m.speed_range for m in self.line.machines]).T
        self.machine_kinds = [m.kind for m in self.line.machines]
        self._steps = 0
        self._needs_reset = True

    # -- mapping ------------------------------------------------------------------------
    def speed_action(self, factor: float, machine: int) -> float:
        """The action value that asks ``machine`` for speed ``factor`` (1 = nominal)."""
        low, high = self.line.machines[machine].speed_range
        if factor >= 1.0:
            return float(min(1.0, (factor - 1.0) / (high - 1.0))) if high > 1.0 else 0.0
        return float(max(-1.0, (factor - 1.0) / (1.0 - low))) if low < 1.0 else 0.0

    def decode_action(self, action: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(speed factors, maintenance requests, standby permissions) per machine that ``action``
        asks for in the line's current state (the mapping of the class docstring); a wrong size,
        NaN or (without ``clip_actions``) an out-of-range value raises ``ValueError``."""
        values = np.asarray(action, dtype=np.float64).reshape(-1)
        if values.shape != self.action_space.shape:
            raise ValueError(
                f"action has {values.size} values; this env needs "
                f"{3 * len(self.line.machines)} (3 per machine)"
            )
        if not np.isfinite(values).all():
            raise ValueError("action contains NaN or infinite values; nothing was changed")
        if ((values < -1) | (values > 1)).any():
            if not self.clip_actions:
                raise ValueError(
                    "action values must lie in [-1, 1]; nothing was changed (pass "
                    "clip_actions=True to clip)"
                )
            values = np.clip(values, -1.0, 1.0)
        triples = values.reshape(-1, 3)
        low, high = self._speed_bounds
        requested = triples[:, 0]
        speed = 1.0 + requested * np.where(requested >= 0, high - 1.0, 1.0 - low)
        wear = np.array([machine.wear_ratio for machine in self.line.machines])
        maintenance = (triples[:, 1] > -1.0) & (wear >= 1.0 - triples[:, 1])
        return speed, maintenance, triples[:, 2] > 0.0

    def observation(self) -> np.ndarray:
        """The observation of the line's current state (layout in the class docstring); the edge
        bridge reads it from its synchronised twin."""
        line = self.line
        values: list[float] = []
        for machine in line.machines:
            state = [0.0] * _STATES
            state[int(machine.state)] = 1.0
            values += (
                machine.temperature / 100.0,
                machine.wear_ratio,
                machine.vibration / 5.0,
                machine.hazard_per_h * 10.0,
                machine.hours_since_maintenance / 10.0,
            )
            values += state
        for index, station in enumerate(self.scenario.stations):
            conveyor = line.conveyors[index]
            fill = conveyor.fill if conveyor is not None else 0.0
            values += (line.buffers[index] / station.buffer_capacity, fill)
        weekday, hour, staffed = line.calendar()
        angle = 2.0 * math.pi * hour / 24.0
        values += (
            line.open_orders / 100.0,
            math.sin(angle),
            math.cos(angle),
            weekday / 6.0,
            float(staffed),
            self.scenario.tariff.price(weekday, hour) / 0.3,
            line.last_power_kw / self.scenario.contracted_peak_kw,
        )
        observation = np.array(values, dtype=np.float64)
        return np.clip(observation, -1.0, 10.0).astype(np.float32)

    # -- gymnasium API ----------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode at Monday 00:00; ``seed`` seeds the line's discrete events (same
        seed → same demand, failures and repairs). ``options`` is accepted and unused."""
        super().reset(seed=seed)
        drawn = self.line.reset(self.np_random)
        self.ledger.reset()
        self._steps = 0
        self._needs_reset = False
        return self.observation(), {"time_h": 0.0, "randomized": drawn}

    def _advance(
        self, action: ArrayLike
    ) -> tuple[IntervalRecord, Kpis, Kpis, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError(
                "the episode has ended (truncated after horizon_h) or was never started; "
                "call reset() before step()"
                if self._steps
                else "call reset() before the first step()"
            )
        speed, maintenance, standby = self.decode_action(action)
        record, events = self.line.advance(speed, maintenance, standby)
        step_kpis = self.ledger.record(record)
        totals = self.ledger.totals
        self._steps += 1
        stopped_by = self.line.stopped_by
        truncated = self._steps >= self.horizon_steps and stopped_by is None
        self._needs_reset = truncated or stopped_by is not None
        objective = self.scenario.objective
        info = {
            "time_h": self.line.time_s / 3600.0,
            "kpi_step": step_kpis.as_dict(),
            "kpi_total": totals.as_dict(),
            "constraints": dict(
                zip(
                    ("throughput", "peak_power"),
                    totals.constraints(objective.throughput_min_per_h, objective.peak_max_kw),
                    strict=True,
                )
            ),
            **events,
        }
        if stopped_by is not None:
            info["stopped_by"] = stopped_by
        return record, step_kpis, totals, truncated, info

    def step(self, action: ArrayLike) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` for one decision interval; see the class docstring."""
        record, step_kpis, totals, truncated, info = self._advance(action)
        objective = self.scenario.objective
        cost = step_kpis.weighted_objective(
            objective.w_cost, objective.w_energy, objective.w_downtime
        )
        cost += (
            self.peak_penalty
            * max(0.0, step_kpis.peak_kw - objective.peak_max_kw)
            * (record.duration_h)
        )
        if truncated or "stopped_by" in info:  # the episode's end: Tmin over the whole episode
            missing = max(0.0, objective.throughput_min_per_h - totals.throughput_per_h)
            cost += self.throughput_penalty * missing * totals.hours
        return self.observation(), -cost / self.reward_scale, "stopped_by" in info, truncated, info

    def close(self) -> None:
        line = getattr(self, "line", None)
        if line is not None:
            line.close()


class ProductionLineMOEnv(ProductionLineEnv):
    """The same line with the vector reward (−ΔC, −ΔE, −ΔD); constraints in ``info``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reward_space = spaces.Box(-np.inf, 0.0, (3,), np.float64)
        self.reward_dim = 3

    def step(  # type: ignore[override]
        self, action: ArrayLike
    ) -> tuple[np.ndarray, np.ndarray, bool, bool, dict[str, Any]]:
        """As :meth:`ProductionLineEnv.step`, with the reward vector (−ΔC, −ΔE, −ΔD)."""
        _, step_kpis, _, truncated, info = self._advance(action)
        reward = -np.array([step_kpis.cost, step_kpis.energy_kwh, step_kpis.downtime_h])
        return self.observation(), reward, "stopped_by" in info, truncated, info
