"""Evaluation harness: any mix of heuristics and saved SB3 policies over held-out seeds on a
production-line env, with KPI tables (IQM or mean with confidence intervals), the change against
``naive`` and plots. Every KPI comes from :mod:`envs.kpi` through the env's ``info``: Z is
:meth:`envs.kpi.Kpis.weighted_objective`, changes are :func:`envs.kpi.relative_change` (NaN, shown
"n/a", where the baseline is 0). :mod:`agents.comparison` pairs policies seed by seed."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import numpy as np

from agents.heuristics import HEURISTICS, make_heuristic
from agents.statistics import Estimate, estimate
from envs.atomic import atomic_path
from envs.kpi import HEADLINE_KPIS, Kpis, constraint_violation, relative_change

if TYPE_CHECKING:
    import gymnasium

__all__ = [
    "COLUMNS",
    "EpisodeResult",
    "NormalizedModel",
    "Policy",
    "evaluate",
    "format_changes",
    "format_table",
    "load_policy",
    "plot_kpis",
    "plot_trajectories",
    "relative_changes",
    "run_episode",
    "summarise",
]


class Policy(Protocol):
    """Anything with stable-baselines3's ``predict``: heuristics, SB3 models, exported policies."""

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]: ...


# (key in the result, column title, format)
COLUMNS = (
    ("cost", "C EUR", "{:,.0f}"),
    ("energy_kwh", "E kWh", "{:,.0f}"),
    ("downtime_h", "D h", "{:.1f}"),
    ("throughput_per_h", "T 1/h", "{:.2f}"),
    ("peak_kw", "R kW", "{:.1f}"),
    ("oee", "OEE", "{:.2f}"),
    ("objective", "Z", "{:,.0f}"),
    ("violation", "viol.", "{:.2f}"),
)


@dataclass
class EpisodeResult:
    policy: str
    seed: int
    kpis: dict[str, float]
    objective: float
    """Z = w1·C + w2·E + w3·D with the scenario's weights."""
    violation: float
    """Positive parts of G = (Tmin − T, R − Rmax), summed (0 when feasible)."""
    trajectory: dict[str, np.ndarray] = field(default_factory=dict)
    constraints: tuple[float, ...] = ()
    """G = (Tmin − T, R − Rmax) at the end of the episode (each ≤ 0 when feasible)."""

    def value(self, key: str) -> float:
        """A KPI by its ``info["kpi_total"]`` name, or ``objective`` / ``violation``."""
        if key in ("objective", "violation"):
            return getattr(self, key)
        return float(self.kpis[key])


class NormalizedModel:
    """A saved PPO model with the observation normalisation it was trained with."""

    def __init__(self, model: Any, statistics: Any) -> None:
        self.model, self.statistics = model, statistics

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = True,
    ) -> tuple[Any, Any]:
        """SB3's ``predict`` on the observation normalised with the training statistics."""
        normalized = self.statistics.normalize_obs(np.asarray(observation, dtype=np.float32))
        return self.model.predict(normalized, deterministic=deterministic)


def _size(space: gymnasium.Space[Any]) -> int:
    return int(np.prod(space.shape)) if space.shape else 1


def load_policy(spec: str, env: gymnasium.Env) -> tuple[str, Policy]:
    """A heuristic by name, an exported policy (``.npz``) or a saved stable-baselines3 PPO model
    (``.zip``, with ``vecnormalize.pkl`` beside it when it was trained with normalisation),
    checked against the env's spaces; returns (label, policy with ``predict``)."""
    if spec in HEURISTICS:
        return spec, make_heuristic(spec, env)
    path = Path(spec)
    if not path.exists():
        raise ValueError(
            f"policy '{spec}' is neither a heuristic ({', '.join(HEURISTICS)}) nor "
            "an existing model file"
        )
    if path.suffix == ".npz":
        from agents.exported import ExportedPolicy

        policy = ExportedPolicy.load(path)
        size = _size(env.observation_space)
        if policy.observation_size != size or policy.meta["action_size"] != _size(env.action_space):
            raise ValueError(
                f"{path}: the exported policy's sizes do not match the env's; "
                "evaluate it on the env and scenario it was trained on"
            )
        return path.stem, policy
    from stable_baselines3 import PPO

    try:
        model = PPO.load(path, device="cpu")
    except Exception as error:  # a corrupt zip, a model of another algorithm, ...
        raise ValueError(
            f"{path}: cannot be loaded as a stable-baselines3 PPO model "
            f"({error}); pass a model saved by scripts/train.py"
        ) from error
    for name in ("observation_space", "action_space"):
        if getattr(model, name) != getattr(env, name):
            raise ValueError(
                f"{path}: the model's {name} {getattr(model, name)} does not match "
                f"the env's {getattr(env, name)}; evaluate it on the env and "
                "scenario it was trained on"
            )
    statistics_file = path.with_name("vecnormalize.pkl")
    if statistics_file.is_file():
        from stable_baselines3.common.vec_env import VecEnv, VecNormalize

        from agents.exported import _DummyVec

        statistics = VecNormalize.load(str(statistics_file), cast(VecEnv, _DummyVec(model)))
        return path.parent.name or path.stem, NormalizedModel(model, statistics)
    return path.stem, model


def run_episode(
    env: gymnasium.Env,
    policy: Policy,
    seed: int,
    *,
    label: str = "policy",
    record: bool = False,
    on_step: Callable[[], None] | None = None,
) -> EpisodeResult:
    """One episode on ``env`` (a ProductionLine env) with ``policy``; ``record`` keeps the
    trajectories (time, power, speed factors, wear, maintenance and failure events)."""
    line_env: Any = env.unwrapped
    if not hasattr(line_env, "line"):
        raise ValueError(
            "the evaluation harness needs a twinfactory ProductionLine env (its "
            "info carries the KPIs)"
        )
    observation, _ = env.reset(seed=seed)
    machines = line_env.line.machines
    rows: dict[str, list[Any]] = {
        "time_h": [],
        "power_kw": [],
        "speed": [],
        "wear": [],
        "maintenance": [],
        "failed": [],
    }
    info: dict[str, Any] = {}
    while True:
        action, _ = policy.predict(observation, deterministic=True)
        observation, _, terminated, truncated, info = env.step(action)
        if record:
            rows["time_h"].append(info["time_h"])
            rows["power_kw"].append(line_env.line.last_power_kw)
            rows["speed"].append([m.speed_factor for m in machines])
            rows["wear"].append([m.wear_ratio for m in machines])
            rows["maintenance"].append([m.state.name == "MAINTENANCE" for m in machines])
            rows["failed"].append([m.state.name in ("FAILED", "REPAIR") for m in machines])
        if on_step is not None:
            on_step()
        if terminated or truncated:
            break
    kpis = info["kpi_total"]
    weights = line_env.scenario.objective
    z = Kpis.from_dict(kpis).weighted_objective(
        weights.w_cost, weights.w_energy, weights.w_downtime
    )
    constraints = tuple(float(g) for g in info["constraints"].values())
    violation = float(constraint_violation(constraints)) if constraints else 0.0
    trajectory = {name: np.asarray(values) for name, values in rows.items()} if record else {}
    return EpisodeResult(label, seed, kpis, z, violation, trajectory, constraints)


def evaluate(
    env: gymnasium.Env,
    policies: dict[str, Policy],
    seeds: Iterable[int],
    *,
    record_first: bool = True,
    on_step: Callable[[], None] | None = None,
) -> dict[str, list[EpisodeResult]]:
    """Every policy on every seed (common random numbers: the same seeds for all)."""
    seeds = list(seeds)
    results: dict[str, list[EpisodeResult]] = {}
    for label, policy in policies.items():
        results[label] = [
            run_episode(
                env, policy, seed, label=label, record=record_first and i == 0, on_step=on_step
            )
            for i, seed in enumerate(seeds)
        ]
    return results


def summarise(
    results: dict[str, list[EpisodeResult]], statistic: str = "iqm"
) -> dict[str, dict[str, Estimate]]:
    """Policy → KPI → estimate over seeds."""
    return {
        label: {key: estimate([r.value(key) for r in runs], statistic) for key, _, _ in COLUMNS}
        for label, runs in results.items()
    }


def relative_changes(
    summary: dict[str, dict[str, Estimate]], baseline: str = "naive"
) -> dict[str, dict[str, float]]:
    """Change of each headline KPI (:data:`envs.kpi.HEADLINE_KPIS`) against the baseline's
    point estimate, as fractions by :func:`envs.kpi.relative_change` (NaN where the baseline's
    value is 0)."""
    if baseline not in summary:
        return {}
    base = summary[baseline]
    return {
        label: {
            name: relative_change(values[key].value, base[key].value)
            for name, key in HEADLINE_KPIS.items()
            if key in values and key in base
        }
        for label, values in summary.items()
        if label != baseline
    }


def format_table(summary: dict[str, dict[str, Estimate]], statistic: str) -> str:
    """The KPI table: one row per policy, ``value [low, high]`` per column of :data:`COLUMNS`."""
    name = "IQM [95 % bootstrap CI]" if statistic == "iqm" else "mean [95 % t CI]"
    cells = [["policy", *[title for _, title, _ in COLUMNS]]]
    for label, values in summary.items():
        cells.append([label, *[values[key].format(fmt) for key, _, fmt in COLUMNS]])
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return f"{name} over seeds\n" + "\n".join(lines)


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.0f} %"


def format_changes(changes: dict[str, dict[str, float]], baseline: str = "naive") -> str:
    """``change against <baseline>:`` and one line per policy (``n/a`` where the baseline is 0)."""
    lines = [f"change against {baseline}:"]
    for label, values in changes.items():
        lines.append(
            f"  {label}: "
            + ", ".join(f"{name.replace('_', ' ')} {_percent(v)}" for name, v in values.items())
        )
    return "\n".join(lines)


def plot_kpis(summary: dict[str, dict[str, Estimate]], path: Path) -> Path:
    """Bars per policy for each KPI with confidence intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary)
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(3.2 * len(COLUMNS), 3.6))
    for axis, (key, title, _) in zip(axes, COLUMNS, strict=True):
        values = [summary[label][key] for label in labels]
        centres = [v.value for v in values]
        errors = [[v.value - v.low for v in values], [v.high - v.value for v in values]]
        axis.bar(
            range(len(labels)),
            centres,
            yerr=errors,
            capsize=4,
            color=[f"C{i}" for i in range(len(labels))],
        )
        axis.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
        axis.set_title(title)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return path


def plot_trajectories(
    results: dict[str, list[EpisodeResult]],
    machine_names: Sequence[str],
    peak_limit_kw: float,
    path: Path,
) -> Path:
    """A recorded episode per policy: power against the limit, speed factors, wear with
    maintenance (▲) and failure (✕) events."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recorded = {
        label: runs[0].trajectory for label, runs in results.items() if runs and runs[0].trajectory
    }
    figure, axes = plt.subplots(
        3, len(recorded), figsize=(5.5 * len(recorded), 8.5), sharex=True, squeeze=False
    )
    for column, (label, data) in enumerate(recorded.items()):
        hours = data["time_h"]
        axes[0, column].plot(hours, data["power_kw"], lw=0.7)
        axes[0, column].axhline(peak_limit_kw, color="red", ls="--", lw=1, label="Rmax")
        axes[0, column].set_title(label)
        axes[0, column].set_ylabel("line power [kW]")
        axes[0, column].legend(loc="upper right")
        for k, name in enumerate(machine_names):
            axes[1, column].plot(hours, data["speed"][:, k], lw=0.7, label=name)
            axes[2, column].plot(hours, data["wear"][:, k], lw=0.7, color=f"C{k}")
            starts = np.flatnonzero(np.diff(data["maintenance"][:, k].astype(int)) == 1)
            fails = np.flatnonzero(np.diff(data["failed"][:, k].astype(int)) == 1)
            axes[2, column].scatter(
                hours[starts], data["wear"][starts, k], marker="^", color=f"C{k}", s=18
            )
            axes[2, column].scatter(
                hours[fails], data["wear"][fails, k], marker="x", color=f"C{k}", s=18
            )
        axes[1, column].set_ylabel("speed factor")
        axes[1, column].ticklabel_format(axis="y", useOffset=False)
        axes[1, column].set_ylim(0.4, 1.4)
        axes[2, column].set_ylabel("wear / wear limit (▲ maintenance, ✕ failure)")
        axes[2, column].set_xlabel("time [h]")
    axes[1, 0].legend(fontsize=7, ncol=2)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, format="png")
    plt.close(figure)
    return path
