"""The condition-based rule with its settings exposed, a TOML file of them, and their tuning.

:class:`TunedRulePolicy` is the ``condition_based`` heuristic (:mod:`agents.heuristics`) with
every number a practitioner would set made a setting (:class:`RuleSettings`):

- ``speed.<station>``: speed factor of the station's machines (1 = nominal), within the
  station's ``speed_range``;
- ``wear_threshold.<equipment kind>``: preventive maintenance once wear / wear limit reaches it;
- ``standby_timeout_min.<equipment kind>``: standby is permitted once a machine has been without
  work (idle, standby or off) for this many minutes at consecutive decisions (0 = as soon as it
  is starved, the env's standby permission: standby when starved, off outside staffed hours);
- ``power_margin``: when the last interval's power reached this fraction of the contracted peak,
  every speed is multiplied by ``peak_slowdown``;
- ``tariff_speed_high`` / ``tariff_speed_low``: speed multiplier while the time-of-use tariff is
  at its highest / lowest price (1 at any price between).

The defaults are ``condition_based`` exactly (same actions, tested). The rule reads only the
observation, so it runs wherever a policy does (evaluation, the edge bridge's twin).

:func:`tune_rule` searches the settings with optuna (TPE) on training seeds only (below
:data:`envs.seeding.HELD_OUT_SEEDS_FROM`), one full episode (the scenario's week) per seed,
minimising the mean of Z + the constraint-violation penalty (:mod:`envs.kpi`); the study lives
in an RDB (SQLite by default), so a killed run resumes, and the best settings are written with
a header saying how they were made.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.heuristics import HeuristicPolicy
from envs.config import config_to_dict, load_toml, setting
from envs.machines import MachineState
from envs.seeding import HELD_OUT_SEEDS_FROM

if TYPE_CHECKING:
    import gymnasium
    import optuna

    from envs.scenario import Scenario

__all__ = [
    "RuleSettings",
    "TuneRuleConfig",
    "TunedRulePolicy",
    "load_rule",
    "rule_score",
    "save_rule",
    "suggest_settings",
    "tune_rule",
]

DEFAULT_SPEED = 1.0
DEFAULT_WEAR_THRESHOLD = 0.85
DEFAULT_STANDBY_TIMEOUT_MIN = 0.0
WEAR_THRESHOLD_RANGE = (0.05, 1.0)
STANDBY_TIMEOUT_RANGE_MIN = (0.0, 10_080.0)  # up to a week: in effect never
SPEED_RANGE = (0.1, 3.0)  # any station; the station's own speed_range is checked per scenario
_WITHOUT_WORK = [int(s) for s in (MachineState.OFF, MachineState.STANDBY, MachineState.IDLE)]
_STATE = 5  # offset of the state one-hot within a machine's block of the observation
# the line features at the end of the observation (envs.line_env): sin, cos of the hour, weekday,
# staffed, tariff / 0.3, power / contracted peak
_SIN, _COS, _WEEKDAY, _TARIFF, _POWER = -6, -5, -4, -2, -1


@dataclass(frozen=True, kw_only=True)
class RuleSettings:
    """The settings of :class:`TunedRulePolicy` (module docstring); defaults = condition_based."""

    scenario: str = setting("", doc="scenario name the settings are for ('' = any scenario)")
    power_margin: float = setting(
        0.9, low=0.3, high=2.0, doc="slow down once the last power / contracted peak reaches it"
    )
    peak_slowdown: float = setting(
        0.85, low=0.5, high=1.0, doc="speed multiplier after an interval near the power limit"
    )
    tariff_speed_high: float = setting(
        1.0, low=0.5, high=1.5, doc="speed multiplier at the tariff's highest price"
    )
    tariff_speed_low: float = setting(
        1.0, low=0.5, high=1.5, doc="speed multiplier at the tariff's lowest price"
    )
    speed: dict[str, float] = setting(  # noqa: RUF009 - a field with a default_factory
        {}, doc="speed factor per station name (default 1), within the station's speed_range"
    )
    wear_threshold: dict[str, float] = setting(  # noqa: RUF009 - a field with a default_factory
        {}, doc="maintenance at this wear / wear limit, per equipment kind (default 0.85)"
    )
    standby_timeout_min: dict[str, float] = setting(  # noqa: RUF009 - a field with a default_factory
        {}, doc="minutes without work before standby, per equipment kind (default 0)"
    )

    def __post_init__(self) -> None:
        for table, (low, high) in (
            ("speed", SPEED_RANGE),
            ("wear_threshold", WEAR_THRESHOLD_RANGE),
            ("standby_timeout_min", STANDBY_TIMEOUT_RANGE_MIN),
        ):
            for name, value in getattr(self, table).items():
                if not low <= value <= high:
                    raise ValueError(
                        f"'{table}.{name}' = {value!r} is outside the allowed range [{low}, {high}]"
                    )

    def check_scenario(self, scenario: Scenario, source: str = "rule settings") -> None:
        """ValueError (naming ``source``) when the settings are for another scenario, name a
        station or equipment kind the scenario lacks, or ask a speed outside a station's
        ``speed_range``."""
        if self.scenario and self.scenario != scenario.name:
            raise ValueError(
                f"{source}: the settings are for scenario '{self.scenario}', the env runs "
                f"'{scenario.name}'; tune a rule for this scenario (scripts/tune_rule.py)"
            )
        stations = {s.name: s for s in scenario.stations}
        kinds = sorted({s.equipment for s in scenario.stations})
        for name, value in self.speed.items():
            if name not in stations:
                raise ValueError(
                    f"{source}: 'speed.{name}' names no station of scenario '{scenario.name}' "
                    f"(stations: {', '.join(stations)})"
                )
            low, high = stations[name].speed_range
            if not low <= value <= high:
                raise ValueError(
                    f"{source}: 'speed.{name}' = {value!r} is outside the station's speed_range "
                    f"[{low}, {high}]"
                )
        for table in ("wear_threshold", "standby_timeout_min"):
            for name in getattr(self, table):
                if name not in kinds:
                    raise ValueError(
                        f"{source}: '{table}.{name}' names no equipment kind of scenario "
                        f"'{scenario.name}' (kinds: {', '.join(kinds)})"
                    )


def load_rule(path: str | Path) -> RuleSettings:
    """Settings from a TOML file; a missing file, bad TOML, unknown key or out-of-range value is
    a :class:`envs.config.ConfigError` naming the file, the key and the allowed range."""
    return load_toml(RuleSettings, path)


def save_rule(settings: RuleSettings, path: str | Path, header: Sequence[str] = ()) -> Path:
    """Write ``settings`` as TOML (atomically), ``header`` lines first as comments;
    :func:`load_rule` reads back equal settings."""
    import tomli_w

    from envs.atomic import write_atomic

    comments = "".join(f"# {line}\n" for line in header)
    return write_atomic(path, comments + tomli_w.dumps(config_to_dict(settings)))


class TunedRulePolicy(HeuristicPolicy):
    """The condition-based rule with :class:`RuleSettings` (module docstring)."""

    name = "tuned_rule"

    def __init__(
        self,
        env: gymnasium.Env,
        settings: RuleSettings | None = None,
        *,
        source: str = "rule settings",
    ) -> None:
        super().__init__(env)
        self.settings = settings = settings or RuleSettings()
        scenario: Scenario = env.unwrapped.scenario  # type: ignore[attr-defined]
        settings.check_scenario(scenario, source)
        stations = [station for _, station in scenario.machines()]
        self.line_env: Any = env.unwrapped
        self.speed = np.array([settings.speed.get(s.name, DEFAULT_SPEED) for s in stations])
        threshold = [settings.wear_threshold.get(k, DEFAULT_WEAR_THRESHOLD) for k in self.kinds]
        # the env maintains once wear ratio >= 1 - a: a constant action is a wear threshold
        self.maintenance = 1.0 - np.array(threshold)
        self.timeout_min = np.array(
            [settings.standby_timeout_min.get(k, DEFAULT_STANDBY_TIMEOUT_MIN) for k in self.kinds]
        )
        self.interval_min = scenario.decision_interval_s / 60.0
        tariff = scenario.tariff
        prices = sorted({p.price for p in tariff.periods} | {tariff.weekend_price})
        self.prices = np.array(prices)
        self.tariff_speed = np.ones(len(prices))
        if len(prices) > 1:
            self.tariff_speed[0], self.tariff_speed[-1] = (
                settings.tariff_speed_low,
                settings.tariff_speed_high,
            )
        self._rows: list[_Timers] = []

    def act(self, observation: np.ndarray, row: int = 0) -> np.ndarray:
        """The action for one observation (``row``: which env of a batch, each keeps its own
        standby timers)."""
        while len(self._rows) <= row:
            self._rows.append(_Timers(self.machines))
        one_hot = [self.machine_features(observation, _STATE + state) for state in _WITHOUT_WORK]
        without_work = np.sum(one_hot, axis=0) > 0.5
        waited = self._rows[row].update(_hour_of_week(observation), without_work, self.interval_min)
        level = int(np.argmin(np.abs(self.prices - observation[_TARIFF] * 0.3)))
        factor = self.speed * self.tariff_speed[level]
        if observation[_POWER] >= self.settings.power_margin:
            factor = factor * self.settings.peak_slowdown
        speed = np.array([self.line_env.speed_action(float(f), k) for k, f in enumerate(factor)])
        return self._pack(speed, self.maintenance, waited >= self.timeout_min)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict`` for one observation or a batch (rows: one env each)."""
        observation = np.asarray(observation, dtype=np.float64)
        if episode_start is not None:
            for row, start in enumerate(np.atleast_1d(episode_start)):
                if start and row < len(self._rows):
                    self._rows[row] = _Timers(self.machines)
        if observation.ndim == 2:
            actions = [self.act(o, row) for row, o in enumerate(observation)]
            return np.stack(actions).astype(np.float32), None
        return self.act(observation).astype(np.float32), None


def _hour_of_week(observation: np.ndarray) -> float:
    """Hours since Monday 00:00 from the observation's weekday and time-of-day features."""
    hour = (math.atan2(observation[_SIN], observation[_COS]) / (2 * math.pi) * 24.0) % 24.0
    return round(float(observation[_WEEKDAY]) * 6.0) * 24.0 + hour


class _Timers:
    """Minutes each machine has been without work at consecutive decisions, of one env; a clock
    that does not advance (a reset to Monday 00:00) starts them again."""

    def __init__(self, machines: int) -> None:
        self.minutes = np.zeros(machines)
        self.last_hour: float | None = None

    def update(self, hour: float, without_work: np.ndarray, interval_min: float) -> np.ndarray:
        if self.last_hour is None or hour <= self.last_hour:  # a new episode
            self.minutes = np.zeros_like(self.minutes)
        else:
            self.minutes = np.where(without_work, self.minutes + interval_min, 0.0)
        self.last_hour = hour
        return self.minutes


# -- tuning -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TuneRuleConfig:
    """A tuning run of the rule's settings (``scripts/tune_rule.py``)."""

    scenario: str = setting("automotive_components", doc="shipped scenario name or TOML path")
    horizon_h: float | None = setting(
        None, low=1e-3, high=1e5, doc="episode length in hours (default: the scenario's week)"
    )
    trials: int = setting(50, low=1, high=100_000, doc="trials of the study in all (resumed)")
    seeds: int = setting(2, low=1, high=HELD_OUT_SEEDS_FROM, doc="training episodes per trial")
    first_seed: int = setting(
        0, low=0, high=HELD_OUT_SEEDS_FROM - 1, doc="first training seed (below the held-out)"
    )
    sampler_seed: int = setting(0, low=0, high=2**31 - 1, doc="seed of optuna's TPE sampler")
    storage: str = setting(
        "sqlite:///runs/tuned_rule/study.db", doc="optuna RDB URL (the study resumes from it)"
    )
    study_name: str = setting("tuned_rule", doc="study name in the storage")
    out: str = setting("configs/tuned_rule.toml", doc="where the best settings are written")

    def __post_init__(self) -> None:
        if self.first_seed + self.seeds > HELD_OUT_SEEDS_FROM:
            raise ValueError(
                f"first_seed + seeds = {self.first_seed + self.seeds} reaches the held-out seeds "
                f"(>= {HELD_OUT_SEEDS_FROM}); tuning uses training seeds only"
            )

    @property
    def training_seeds(self) -> list[int]:
        return list(range(self.first_seed, self.first_seed + self.seeds))


def suggest_settings(trial: optuna.trial.BaseTrial, scenario: Scenario) -> RuleSettings:
    """The search space: every station's speed over its ``speed_range``, wear thresholds
    0.3–1.0 and standby timeouts 0–120 min per equipment kind, power margin 0.6–1.2, peak
    slowdown 0.6–1.0 and tariff multipliers 0.8–1.2."""
    kinds = sorted({s.equipment for s in scenario.stations})
    return RuleSettings(
        scenario=scenario.name,
        power_margin=trial.suggest_float("power_margin", 0.6, 1.2),
        peak_slowdown=trial.suggest_float("peak_slowdown", 0.6, 1.0),
        tariff_speed_high=trial.suggest_float("tariff_speed_high", 0.8, 1.2),
        tariff_speed_low=trial.suggest_float("tariff_speed_low", 0.8, 1.2),
        speed={
            s.name: trial.suggest_float(f"speed.{s.name}", *s.speed_range)
            for s in scenario.stations
        },
        wear_threshold={k: trial.suggest_float(f"wear_threshold.{k}", 0.3, 1.0) for k in kinds},
        standby_timeout_min={
            k: trial.suggest_float(f"standby_timeout_min.{k}", 0.0, 120.0) for k in kinds
        },
    )


def _trial_params(settings: RuleSettings) -> dict[str, float]:
    """``settings`` as the trial parameters of :func:`suggest_settings` (to enqueue them)."""
    params = {
        key: getattr(settings, key)
        for key in ("power_margin", "peak_slowdown", "tariff_speed_high", "tariff_speed_low")
    }
    for table in ("speed", "wear_threshold", "standby_timeout_min"):
        params.update({f"{table}.{k}": v for k, v in getattr(settings, table).items()})
    return params


def _default_settings(scenario: Scenario) -> RuleSettings:
    """``condition_based`` written out for every station and kind of ``scenario``."""
    kinds = sorted({s.equipment for s in scenario.stations})
    return RuleSettings(
        scenario=scenario.name,
        speed={s.name: DEFAULT_SPEED for s in scenario.stations},
        wear_threshold=dict.fromkeys(kinds, DEFAULT_WEAR_THRESHOLD),
        standby_timeout_min=dict.fromkeys(kinds, DEFAULT_STANDBY_TIMEOUT_MIN),
    )


def rule_score(env: gymnasium.Env, settings: RuleSettings, seeds: Sequence[int]) -> float:
    """Mean over ``seeds`` of Z + the constraint-violation penalty
    (:func:`envs.kpi.penalised_objective`) of the rule on ``env``, one episode per seed."""
    from agents.evaluation import run_episode
    from envs.kpi import penalised_objective

    policy = TunedRulePolicy(env, settings)
    scores = []
    for seed in seeds:
        result = run_episode(env, policy, seed, label="tuned_rule")
        scores.append(penalised_objective(result.objective, result.constraints or (0.0,)))
    return float(np.mean(scores))


def tune_rule(
    config: TuneRuleConfig,
    *,
    header: Sequence[str] = (),
    on_trial: Callable[[int, float, float], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the study up to ``config.trials`` trials (the first is the default rule),
    write the best settings to ``config.out`` with ``header`` and a line on the seeds and
    trials — after every trial, so a killed run leaves the best so far (and resumes);
    ``on_trial(number, score, best)`` after each trial. Returns the best score, the
    default rule's score, the trial count and the settings."""
    import gymnasium
    import optuna

    import envs  # noqa: F401 - registers the envs

    if config.storage.startswith("sqlite:///"):
        Path(config.storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=config.storage,
        direction="minimize",
        sampler=optuna.samplers.TPESampler(
            seed=config.sampler_seed, n_startup_trials=max(1, min(10, config.trials // 3))
        ),
        load_if_exists=True,
    )
    seeds = config.training_seeds
    if study.user_attrs.get("seeds", seeds) != seeds:
        raise ValueError(
            f"study '{config.study_name}' in {config.storage} was tuned on seeds "
            f"{study.user_attrs['seeds']}, not {seeds}; use another --study-name or storage"
        )
    study.set_user_attr("seeds", seeds)
    kwargs: dict[str, Any] = {"scenario": config.scenario}
    if config.horizon_h is not None:
        kwargs["horizon_h"] = config.horizon_h
    env = gymnasium.make("twinfactory/ProductionLine-v0", **kwargs)
    scenario: Scenario = env.unwrapped.scenario  # type: ignore[attr-defined]
    if not study.trials:
        study.enqueue_trial(_trial_params(_default_settings(scenario)))

    def objective(trial: optuna.Trial) -> float:
        return rule_score(env, suggest_settings(trial, scenario), seeds)

    steps = int(env.unwrapped.horizon_steps)  # type: ignore[attr-defined]

    def write_best() -> dict[str, Any]:
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        best = suggest_settings(optuna.trial.FixedTrial(study.best_params), scenario)
        first = study.trials[0]  # the enqueued defaults
        default = first.value if first.value is not None else math.nan
        lines = [
            *header,
            f"tuned on training seeds {seeds} ({steps} decisions of "
            f"{scenario.decision_interval_s:g} s per episode), {len(completed)} optuna TPE "
            f"trials (sampler seed {config.sampler_seed})",
            f"mean Z + penalty on those seeds: best {study.best_value:,.0f} "
            f"(trial {study.best_trial.number}), condition_based defaults {default:,.0f}",
        ]
        save_rule(best, config.out, lines)
        return {
            "best": study.best_value,
            "default": default,
            "trials": len(completed),
            "settings": best,
            "out": config.out,
        }

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        if trial.value is None:
            return
        write_best()  # after every trial: a killed run leaves the best so far
        if on_trial is not None:
            on_trial(trial.number, trial.value, study.best_value)

    done = len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE])
    try:
        if config.trials > done:
            study.optimize(objective, n_trials=config.trials - done, callbacks=[report])
    finally:
        env.close()
    return write_best()
