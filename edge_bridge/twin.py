"""The bridge's seed-free twin: a nominal-scenario line fed live by the plant's telemetry.

The bridge knows the scenario, not the plant's hidden parameters, random seed or drift. Its twin
is therefore a :class:`envs.line_env.ProductionLineEnv` of the nominal scenario whose machines
follow the *reported* states (:class:`envs.sync.StateReplay`: off, standby, idle, busy, failed,
repair, maintenance; a mill's cutting/handling phase from its measured power) instead of any
discrete events of its own, and whose temperature and wear are nudged toward every sample
(:class:`envs.sync.Nudger`). Once per decision interval :meth:`BridgeTwin.update` takes the
interval's samples (the format of :attr:`envs.plant.Plant.samples`: ``time_s`` and
``<machine>.<kind>``; NaN or a missing signal = dropped, but every machine's ``state`` is
required) and the setpoints in force, and for each sample:

1. replays one sample interval (a gap of several sample intervals replays each, holding the
   earlier state until the last half interval);
2. predicts the sample from the twin's corrected state, scores the residuals with
   :class:`edge_bridge.trust.MachineTrust` (the learned healthy-residual model and CUSUM);
3. nudges temperature (gain ``beta["temperature"]``, 1 by default: the twin restarts each
   sample from the measurement, so the residual is one sample's model error) and wear (gain
   ``beta["wear"]``, 0.1: a rate error accumulates in the residual, lifting a doubled wear
   rate above the sensor noise within a few samples).

Across machines, a line-wide detector per kind of :data:`COMMON_KINDS` scores the machines'
standardised residuals together (:class:`edge_bridge.trust.CommonModeDetector`: the ambient);
its flag (``line.temperature``) and trust apply to every machine. A machine back after a
telemetry gap (``TrustConfig.gap_samples`` missing sample times, or samples without any of its
scored values) is re-synced to the measurement and re-warms (:attr:`TwinUpdate.resynced`; not
``ready`` for ``TrustConfig.rewarm_samples``), so what the held replay got wrong over the gap is
not taken for a drift.

Cutting-power thresholds of the replay are derived live: the midpoint rule of
:class:`envs.sync.StateReplay` over the last ``threshold_history`` samples (none until a mill
has shown two power levels; until then the cutting phase runs on from the part's progress).

Bad input (an unknown machine, a time that does not advance by whole sample intervals, a
missing or invalid state, wrong setpoints) raises ``ValueError`` saying what and how to fix it,
before anything changes. The twin's part flow (buffers, backlog) is not replayed, so those
entries of :meth:`observation` are the twin's own and not the plant's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_bridge.trust import CommonModeDetector, MachineTrust, TrustConfig
from envs.line import ProductionLine
from envs.line_env import ProductionLineEnv
from envs.machines import MachineState
from envs.plant_signals import machine_signals
from envs.scenario import Scenario, load_scenario
from envs.seeding import event_rng
from envs.sync.nudging import Nudger
from envs.sync.recording import MEASURED_KINDS, Recording
from envs.sync.replay import StateReplay

__all__ = ["COMMON_KINDS", "DEFAULT_BETA", "SCORED_KINDS", "BridgeTwin", "TwinUpdate"]

SCORED_KINDS = ("temperature", "wear")
"""Signal kinds scored for trust (the twin's synchronised states)."""
COMMON_KINDS = ("temperature",)
"""Kinds with a line-wide common-mode detector as well (the hall's ambient moves them all)."""
DEFAULT_BETA: Mapping[str, float] = {"temperature": 1.0, "wear": 0.1}
"""Nudging gains per kind (module docstring, step 3)."""
_TIME_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TwinUpdate:
    """What one decision interval's samples did to the twin."""

    time_s: float
    """Plant time of the interval's last sample, s since the plant's reset."""
    trust: dict[str, float]
    """Per machine, [0, 1] (0 during the warm-up)."""
    drifted: dict[str, tuple[str, ...]]
    """Per machine, the signals flagged as drifted at the end of the interval."""
    residuals: dict[str, float]
    """Per signal, mean measured − predicted over the interval's valid samples (signal units)."""
    statistics: dict[str, float]
    """Per signal, the CUSUM statistic at the end of the interval (σ units)."""
    ready: bool
    """Whether every machine's warm-up is over (trust means something)."""
    samples: int
    """Samples consumed."""
    predicted: dict[str, float] = field(default_factory=dict)
    """Per signal, the twin's one-sample-ahead prediction of the interval's last sample."""
    measured: dict[str, float] = field(default_factory=dict)
    """The interval's last sample as measured (NaN = dropped)."""
    resynced: tuple[str, ...] = ()
    """Machines re-synchronised in this interval after a telemetry gap (re-warming)."""

    def untrusted(self, config: TrustConfig) -> tuple[str, ...]:
        """Machines with trust below ``config.threshold`` or a drift flag."""
        return tuple(
            name
            for name, value in self.trust.items()
            if not config.trusted(value) or self.drifted[name]
        )


class BridgeTwin:
    """A nominal-scenario twin fed by telemetry (module docstring).

    ``scenario``: the plant's scenario (name, path or :class:`Scenario`); ``sample_interval_s``:
    the plant's sampling period (a whole number of the scenario's ticks); ``start_s``: calendar
    time of the plant's ``time_s = 0`` (s into the week, for the observation's clock);
    ``seed`` only seeds the twin line's unused discrete-event generator (determinism).
    """

    def __init__(
        self,
        scenario: str | Path | Scenario,
        *,
        sample_interval_s: float,
        start_s: float = 0.0,
        config: TrustConfig | None = None,
        beta: Mapping[str, float] | None = None,
        threshold_history: int = 240,
        seed: int = 0,
    ) -> None:
        nominal = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        ticks = sample_interval_s / nominal.tick_s
        if not (math.isfinite(ticks) and ticks >= 1 and abs(ticks - round(ticks)) < 1e-9):
            raise ValueError(
                f"sample_interval_s = {sample_interval_s} is not a whole number (>= 1) of the "
                f"scenario's {nominal.tick_s} s ticks; give the plant's sampling period"
            )
        if not (isinstance(threshold_history, int) and threshold_history >= 4):
            raise ValueError(
                f"threshold_history must be a whole number >= 4, not {threshold_history!r}"
            )
        self.config = config or TrustConfig()
        self.beta = {**DEFAULT_BETA, **(beta or {})}
        self.env = ProductionLineEnv(nominal)
        self.line: ProductionLine = self.env.line
        try:
            self.nudger = Nudger(self.line, self.beta)  # validates the gains
        except ValueError:
            self.env.close()
            raise
        self.sample_interval_s = float(sample_interval_s)
        self.machine_names = tuple(m.name for m in self.line.machines)
        self.line.reset(event_rng(seed), start_s=start_s)
        self.start_s = float(start_s)
        self.trust = {name: MachineTrust(self.config) for name in self.machine_names}
        self.common = {kind: CommonModeDetector(self.config, kind) for kind in COMMON_KINDS}
        self._resync_nudger = Nudger(self.line, 1.0)
        self._silent = dict.fromkeys(self.machine_names, 0)
        self._resynced: set[str] = set()
        self._history: deque[dict[str, float]] = deque(maxlen=threshold_history)
        self._previous: dict[str, float] | None = None
        self._replay: StateReplay | None = None
        self._wear_feature = dict.fromkeys(self.machine_names, 0.0)
        self._predicted: dict[str, float] = {}

    # -- the live feed ------------------------------------------------------------------
    def update(
        self,
        samples: Sequence[Mapping[str, float]],
        setpoints_in_force: Mapping[str, Mapping[str, float]] | Sequence[float] | np.ndarray,
    ) -> TwinUpdate:
        """Consume one decision interval's samples (oldest first) under the setpoints in
        force: per machine ``{"speed_factor": ...}`` (the bridge's setpoint dicts) or the speed
        factors in machine order. See the module docstring."""
        checked = [self._checked_sample(s) for s in samples]
        if not checked:
            raise ValueError("no samples: an interval without telemetry is stale, not an update")
        self._check_times(checked)
        speeds = self._speeds(setpoints_in_force)
        residuals: dict[str, list[float]] = {}
        self._history.extend(checked)
        if self._replay is not None:  # cutting thresholds from the recent samples
            self._replay.thresholds = self._make_replay().thresholds
        self._resynced = set()
        for sample in checked:
            self._consume(sample, speeds, residuals)
        line_trust = min((c.trust for c in self.common.values()), default=1.0)
        line_flags = tuple(sorted(c.signal for c in self.common.values() if c.drifted))
        ready = all(self.trust[name].ready for name in self.machine_names)
        trust = {
            name: min(self.trust[name].trust, line_trust) if ready else self.trust[name].trust
            for name in self.machine_names
        }
        statistics = {
            s: v for name in self.machine_names for s, v in self.trust[name].statistics().items()
        }
        statistics.update({c.signal: c.statistic for c in self.common.values()})
        return TwinUpdate(
            time_s=checked[-1]["time_s"],
            trust=trust,
            drifted={
                name: self.trust[name].drifted + (line_flags if ready else ())
                for name in self.machine_names
            },
            residuals={k: float(np.mean(v)) for k, v in residuals.items() if v},
            statistics=statistics,
            ready=ready,
            samples=len(checked),
            predicted=dict(self._predicted),
            measured=dict(checked[-1]),
            resynced=tuple(n for n in self.machine_names if n in self._resynced),
        )

    @property
    def cutting_thresholds(self) -> dict[str, float | None]:
        """The replay's current cutting-power thresholds per machine (kW; None: not derived
        yet, or a machine without a cutting phase)."""
        return dict(self._replay.thresholds) if self._replay is not None else {}

    def observation(self) -> np.ndarray:
        """The env observation vector (:meth:`ProductionLineEnv.observation`) of the twin now."""
        return self.env.observation()

    def close(self) -> None:
        self.env.close()

    def __enter__(self) -> BridgeTwin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one sample ---------------------------------------------------------------------
    def _consume(
        self,
        sample: dict[str, float],
        speeds: np.ndarray,
        residuals: dict[str, list[float]],
    ) -> None:
        previous = self._previous
        if previous is None:  # the first sample: start the twin's states from it
            self._replay = self._make_replay()
            Nudger(self.line, 1.0).nudge(sample)
            self._previous = sample
            return
        replay = self._replay
        assert replay is not None
        before = {m.name: (m.temperature, m.wear_ratio) for m in self.line.machines}
        steps = round((sample["time_s"] - previous["time_s"]) / self.sample_interval_s)
        for _ in range(steps - 1):  # a gap: hold the earlier state
            replay.step(previous, previous, speeds)
        replay.step(previous, sample, speeds)
        predicted = self.nudger.predict()
        self._predicted = {
            **{k: v for m in self.line.machines for k, v in machine_signals(m).items()},
            **predicted,
        }
        gap = steps - 1 >= self.config.gap_samples
        resync: list[str] = []
        z_by_kind: dict[str, list[float]] = {kind: [] for kind in self.common}
        for machine in self.line.machines:
            name = machine.name
            start_temperature, start_wear = before[name]
            heard = any(
                math.isfinite(sample.get(f"{name}.{kind}", math.nan)) for kind in SCORED_KINDS
            )
            silent = self._silent[name] + steps - 1
            self._silent[name] = 0 if heard else silent + 1
            if heard and (gap or silent >= self.config.gap_samples):
                resync.append(name)  # back after a gap: start again from the measurement
                continue
            increment = machine.wear_ratio - start_wear
            carry = self._wear_feature[name]
            features = {
                "temperature": (1.0, start_temperature),
                "wear": (1.0, carry + increment),
            }
            reset = increment < 0  # a tool change in the twin: the carried error is gone
            for kind in SCORED_KINDS:
                signal = f"{name}.{kind}"
                value = sample.get(signal, math.nan)
                if not math.isfinite(value) or (kind == "wear" and reset):
                    continue
                residual = value - predicted[signal]
                residuals.setdefault(signal, []).append(residual)
                z = self.trust[name].detector(signal).update(residual, features[kind])
                if kind in z_by_kind:
                    z_by_kind[kind].append(z)
            measured = math.isfinite(sample.get(f"{name}.wear", math.nan))
            keep = (1.0 - self.beta["wear"]) if measured else 1.0
            self._wear_feature[name] = 0.0 if reset else keep * (carry + increment)
        for kind, detector in self.common.items():
            detector.update(z_by_kind[kind])
        self.nudger.nudge(sample)
        for name in resync:
            self._resync(name, sample)
        self._previous = sample

    def _resync(self, name: str, sample: Mapping[str, float]) -> None:
        """A machine back after a gap: its temperature and wear are set to the measurement
        (gain 1), the carried wear error is dropped, and its detectors re-warm
        (:meth:`MachineTrust.rewarm`: not ready, nothing scored for ``rewarm_samples``)."""
        prefix = f"{name}."
        self._resync_nudger.nudge({k: v for k, v in sample.items() if k.startswith(prefix)})
        self._wear_feature[name] = 0.0
        self.trust[name].rewarm()
        self._resynced.add(name)

    def _make_replay(self) -> StateReplay:
        """A replay on the twin whose cutting thresholds come from the recent samples."""
        history = tuple(self._history)
        nominal = (np.ones(len(self.machine_names)),) + (np.zeros(len(self.machine_names)),) * 2
        recording = Recording(
            start_s=self.start_s,
            seed=0,
            sample_interval_s=self.sample_interval_s,
            samples=history,
            setpoints=(nominal,) * len(history),
            scenario=self.line.scenario.name,
        )
        return StateReplay(self.line, recording)

    # -- validation (nothing changes before all of it passes) ------------------------------
    def _checked_sample(self, sample: Mapping[str, float]) -> dict[str, float]:
        if not isinstance(sample, Mapping):
            raise ValueError(
                f"a sample must be a mapping of signal -> value, not {type(sample).__name__}"
            )
        time_s = sample.get("time_s")
        if not (isinstance(time_s, int | float) and math.isfinite(time_s)):
            raise ValueError(f"sample time_s = {time_s!r}: every sample needs a finite time_s")
        checked: dict[str, float] = {"time_s": float(time_s)}
        for key, value in sample.items():
            if key == "time_s":
                continue
            machine, _, kind = str(key).rpartition(".")
            if machine not in self.machine_names:
                raise ValueError(
                    f"sample at {time_s} s: {key!r} names an unknown machine; this line's "
                    f"machines are {', '.join(self.machine_names)}"
                )
            if kind not in MEASURED_KINDS:
                raise ValueError(
                    f"sample at {time_s} s: {key!r} is not a measured signal; kinds are "
                    f"{', '.join(MEASURED_KINDS)}"
                )
            number = math.nan if value is None else value
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"sample at {time_s} s: {key} = {value!r} is not a number")
            checked[key] = float(number)
        for machine in self.machine_names:
            code = checked.get(f"{machine}.state", math.nan)
            if not (
                math.isfinite(code)
                and code == int(code)
                and int(code) in MachineState._value2member_map_
            ):
                raise ValueError(
                    f"sample at {time_s} s: {machine}.state = {sample.get(f'{machine}.state')!r}; "
                    "the seed-free twin needs every machine's state code "
                    f"({', '.join(f'{s.value}={s.name.lower()}' for s in MachineState)}) "
                    "in every sample"
                )
        return checked

    def _check_times(self, samples: Sequence[dict[str, float]]) -> None:
        last = self._previous["time_s"] if self._previous is not None else None
        for sample in samples:
            now = sample["time_s"]
            if last is not None:
                steps = (now - last) / self.sample_interval_s
                if not (
                    steps >= 1 - _TIME_TOLERANCE and abs(steps - round(steps)) < _TIME_TOLERANCE
                ):
                    raise ValueError(
                        f"sample time {now} s after {last} s: samples must advance in time by "
                        f"whole sample intervals ({self.sample_interval_s} s), oldest first"
                    )
            last = now

    def _speeds(
        self, setpoints: Mapping[str, Mapping[str, float]] | Sequence[float] | np.ndarray
    ) -> np.ndarray:
        if isinstance(setpoints, Mapping):
            missing = [name for name in self.machine_names if name not in setpoints]
            unknown = [name for name in setpoints if name not in self.machine_names]
            if missing or unknown:
                raise ValueError(
                    f"setpoints in force: missing machines {missing}, unknown machines {unknown}; "
                    "give every machine's {'speed_factor': ...}"
                )
            values = [setpoints[name].get("speed_factor", math.nan) for name in self.machine_names]
        else:
            values = list(np.asarray(setpoints, dtype=float).reshape(-1))
        speeds = np.asarray(values, dtype=float)
        if speeds.shape != (len(self.machine_names),):
            raise ValueError(
                "setpoints in force: need one speed factor per machine "
                f"({len(self.machine_names)}), got {speeds.size}"
            )
        for machine, factor in zip(self.line.machines, speeds, strict=True):
            low, high = machine.speed_range
            if not (math.isfinite(factor) and low <= factor <= high):
                raise ValueError(
                    f"setpoints in force: speed factor {factor} of {machine.name} is outside "
                    f"[{low}, {high}]"
                )
        return speeds
