"""The results study's figures from its stages' outputs (:mod:`federation.study`):
``results.json``, ``results.md`` (Markdown tables) and ``return.png`` (the mean return over
the training nodes per round: federation, central and local-only)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.atomic import atomic_path, write_atomic

if TYPE_CHECKING:
    from federation.study import StudyConfig

__all__ = [
    "GOAL_HELD_OUT_IMPROVEMENT",
    "TARGET_FRACTION",
    "RoundsToTarget",
    "held_out_comparison",
    "mean_return_per_round",
    "rounds_to_target",
    "rounds_within_ratio",
    "summarise",
    "write_report",
]

TARGET_FRACTION = 0.95
"""The fraction of the central policy's improvement the federation must reach."""
GOAL_HELD_OUT_IMPROVEMENT = 0.10
"""The held-out goal: federated Z this fraction below the mean local-only Z."""


# -- the arithmetic -----------------------------------------------------------------------------
@dataclass(frozen=True)
class RoundsToTarget:
    """When the federation reached ``fraction`` of the central policy's improvement."""

    initial: float
    central: float
    target: float
    round: int | None
    """First round at or above the target; None if never (or undefined)."""
    defined: bool
    """False when the central policy did not improve on the initial one."""


def rounds_to_target(
    per_round: Mapping[int, float],
    initial: float,
    central: float,
    fraction: float = TARGET_FRACTION,
) -> RoundsToTarget:
    """The first round whose mean return ``per_round[r]`` reaches
    ``initial + fraction · (central − initial)`` (returns: higher is better)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    values = [initial, central, *per_round.values()]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("returns must be finite")
    target = initial + fraction * (central - initial)
    if central <= initial:
        return RoundsToTarget(initial, central, target, None, False)
    reached = [r for r, value in sorted(per_round.items()) if value >= target]
    return RoundsToTarget(initial, central, target, reached[0] if reached else None, True)


def rounds_within_ratio(
    per_round_z: Mapping[int, float], central_z: float, fraction: float = TARGET_FRACTION
) -> int | None:
    """The second reading of "95 % of the central policy": the first round whose mean
    objective Z (a cost, lower is better) is at most ``central_z / fraction``; None if never.
    Defined even when the central policy did not improve on the untrained one."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if not (math.isfinite(central_z) and central_z > 0):
        raise ValueError(f"central Z must be finite and positive, got {central_z}")
    reached = [r for r, z in sorted(per_round_z.items()) if z <= central_z / fraction]
    return reached[0] if reached else None


def mean_return_per_round(
    rows: Sequence[Mapping[str, Any]], nodes: Sequence[str], key: str = "return"
) -> dict[int, float]:
    """From ``rounds.csv`` rows: each round's mean of ``key`` over ``nodes`` (equal weight
    per node); a round where some node has no value is left out."""
    by_round: dict[int, dict[str, float]] = {}
    for row in rows:
        value = row.get(key)
        if row.get("node") in nodes and value not in (None, ""):
            by_round.setdefault(int(row["round"]), {})[str(row["node"])] = float(value)  # type: ignore[arg-type]
    return {
        r: sum(values.values()) / len(nodes)
        for r, values in sorted(by_round.items())
        if set(values) == set(nodes)
    }


def held_out_comparison(
    federated: float,
    local_only: Mapping[str, float],
    heuristics: Mapping[str, float],
    goal: float = GOAL_HELD_OUT_IMPROVEMENT,
) -> dict[str, Any]:
    """The held-out node's Z (a cost, lower is better): the federated policy's relative
    improvement on each local-only policy, on their mean and on the best heuristic
    (``(other − federated) / other``), and whether it meets ``goal`` against the mean."""
    if not local_only or not heuristics:
        raise ValueError("held_out_comparison needs local-only policies and heuristics")
    values = [federated, *local_only.values(), *heuristics.values()]
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError("objectives Z must be finite and positive")
    mean_local = sum(local_only.values()) / len(local_only)
    best = min(heuristics, key=lambda name: heuristics[name])
    improvement = (mean_local - federated) / mean_local
    return {
        "federated_z": federated,
        "local_only_z": dict(local_only),
        "mean_local_only_z": mean_local,
        "improvement_vs_each_local": {name: (z - federated) / z for name, z in local_only.items()},
        "improvement_vs_mean_local": improvement,
        "best_heuristic": best,
        "best_heuristic_z": heuristics[best],
        "improvement_vs_best_heuristic": (heuristics[best] - federated) / heuristics[best],
        "goal": goal,
        "goal_met": improvement >= goal,
    }


# -- the report ---------------------------------------------------------------------------------


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _last_round(rows: Sequence[Mapping[str, str]], node: str, key: str) -> float | None:
    mine = [r for r in rows if r.get("node") == node and r.get(key)]
    if not mine:
        return None
    return float(max(mine, key=lambda r: int(r["round"]))[key])


def _local_curve(local: Mapping[str, Any]) -> list[tuple[float, float]]:
    """Mean over the nodes of each local-only policy's return on its own node, per checkpoint."""
    curves = [
        [(p["rounds"], p["nodes"][node]["return"]) for p in result["curve"]]
        for node, result in local.items()
    ]
    return [(points[0][0], _mean([p[1] for p in points])) for points in zip(*curves, strict=False)]


def _seed_results(config: StudyConfig, got: Mapping[str, Any], heuristics: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    federation = got.get("federation")
    if federation is not None:
        per_round = {int(k): float(v) for k, v in federation["mean_return_per_round"].items()}
        summary = federation["summary"]
        out["federation"] = {
            "mean_return_per_round": per_round,
            "final_mean_return": per_round[max(per_round)] if per_round else None,
            "round_s": summary["round_s"],
            "mean_round_s": _mean(summary["round_s"]),
            "wall_s": summary.get("simulation_wall_s"),
            "peak_rss_mb": federation["peak_rss_mb"],
        }
    if "initial" in got and "central" in got:
        initial = float(got["initial"]["mean_return"])
        central_final = got["central"]["final"]
        central = _mean([v["return"] for v in central_final.values()])
        local_own = _mean([r["final"][node]["return"] for node, r in got["local"].items()])
        out["baselines"] = {
            "initial_mean_return": initial,
            "central_mean_return": central,
            "central_mean_z": _mean([v["objective"] for v in central_final.values()]),
            "local_only_mean_return_own_node": local_own,
            "central_curve": [
                (p["rounds"], _mean([v["return"] for v in p["nodes"].values()]))
                for p in got["central"]["curve"]
            ],
            "local_curve": _local_curve(got["local"]),
        }
        if federation is not None:
            reached = rounds_to_target(out["federation"]["mean_return_per_round"], initial, central)
            out["rounds_to_95"] = {
                "initial": reached.initial,
                "central": reached.central,
                "target": reached.target,
                "round": reached.round,
                "defined": reached.defined,
                "rounds_run": config.rounds,
                "round_z_within_1_over_095_of_central": rounds_within_ratio(
                    mean_return_per_round(federation["rows"], config.nodes, "objective"),
                    out["baselines"]["central_mean_z"],
                ),
            }
            held_z = _last_round(federation["rows"], config.held_out, "objective")
            if held_z is not None and heuristics:
                local_z = {
                    node: r["final"][config.held_out]["objective"]
                    for node, r in got["local"].items()
                }
                out["held_out"] = held_out_comparison(held_z, local_z, heuristics)
    dp = got.get("dp")
    if dp is not None:
        per_round = {int(k): float(v) for k, v in dp["mean_return_per_round"].items()}
        last = max(per_round) if per_round else None
        privacy = dp["summary"].get("dp") or {}
        plain = out.get("federation", {}).get("mean_return_per_round", {})
        out["dp"] = {
            "rounds": last,
            "mean_return": per_round.get(last) if last else None,
            "mean_return_without_dp_same_round": plain.get(last) if last else None,
            "epsilon": privacy.get("epsilon"),
            "epsilon_gdp": privacy.get("epsilon_gdp"),
            "delta": privacy.get("delta"),
            "noise_multiplier": privacy.get("noise_multiplier"),
            "clipping_norm": privacy.get("clipping_norm"),
            "mean_round_s": _mean(dp["summary"]["round_s"]),
        }
    return out


def summarise(config: StudyConfig, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The study's figures per seed and over seeds, from the stages' outputs."""
    seeds = {
        str(seed): _seed_results(config, got, raw.get("heuristics"))
        for seed, got in raw["seeds"].items()
    }
    reached = [s["rounds_to_95"]["round"] for s in seeds.values() if "rounds_to_95" in s]
    improvements = [
        s["held_out"]["improvement_vs_mean_local"] for s in seeds.values() if "held_out" in s
    ]
    return {
        "definition_95": (
            f"target = R0 + {TARGET_FRACTION} (Rc - R0): R0 the untrained policy's, Rc the central "
            "policy's mean return over the training nodes; first round whose global policy "
            "reaches it"
        ),
        "seeds": seeds,
        "rounds_to_95_per_seed": reached,
        "held_out_improvement_per_seed": improvements,
        "held_out_goal_met_all_seeds": bool(improvements)
        and all(i >= config.extra.get("goal", 0.10) for i in improvements),
        "heuristics_held_out_z": raw.get("heuristics"),
        "scaling": raw.get("scaling", []),
    }


def _fmt(value: Any, spec: str = ".3f") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return format(value, spec)


def _markdown(config: StudyConfig, results: Mapping[str, Any]) -> str:
    lines = [
        f"Reduced study: {len(config.nodes)} training nodes + `{config.held_out}`, "
        f"{config.rounds} rounds × {config.local_steps} local steps, horizon "
        f"{config.horizon_h:g} h, {config.eval_seeds} evaluation seed(s), federation seeds "
        f"{', '.join(map(str, config.seeds))}.",
        "",
        f"95 % target: {results['definition_95']}.",
        "",
        "| seed | R0 initial | Rc central | target | local-only (own node) | federation final | "
        "rounds to 95 % | rounds to Z ≤ Zc/0.95 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed, s in results["seeds"].items():
        b, r = s.get("baselines", {}), s.get("rounds_to_95", {})
        reached = r.get("round")
        if not r:
            cell = ratio = "–"
        else:
            cell = str(reached) if reached is not None else f"not in {config.rounds}"
            cell = cell if r["defined"] else "undefined (central did not improve)"
            ratio = str(r["round_z_within_1_over_095_of_central"] or f"not in {config.rounds}")
        lines.append(
            f"| {seed} | {_fmt(b.get('initial_mean_return'))} | "
            f"{_fmt(b.get('central_mean_return'))} | {_fmt(r.get('target'))} | "
            f"{_fmt(b.get('local_only_mean_return_own_node'))} | "
            f"{_fmt(s.get('federation', {}).get('final_mean_return'))} | {cell} | {ratio} |"
        )
    lines += ["", "Held-out node, weighted objective Z (lower is better):", ""]
    lines += [
        "| seed | federated Z | local-only Z (node-1..4) | mean local-only | vs mean local | "
        "best heuristic | vs best heuristic | goal ≥ 10 % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for seed, s in results["seeds"].items():
        h = s.get("held_out")
        if not h:
            continue
        locals_ = ", ".join(f"{z:,.0f}" for z in h["local_only_z"].values())
        lines.append(
            f"| {seed} | {h['federated_z']:,.0f} | {locals_} | {h['mean_local_only_z']:,.0f} | "
            f"{h['improvement_vs_mean_local']:+.1%} | {h['best_heuristic']} "
            f"{h['best_heuristic_z']:,.0f} | {h['improvement_vs_best_heuristic']:+.1%} | "
            f"{'met' if h['goal_met'] else 'missed'} |"
        )
    lines += ["", "Differential privacy (server-side fixed clipping, FedAvg):", ""]
    lines += [
        "| seed | rounds | z | C | ε at δ | mean return with DP | without DP (same round) |",
        "|---|---|---|---|---|---|---|",
    ]
    for seed, s in results["seeds"].items():
        d = s.get("dp")
        if not d:
            continue
        lines.append(
            f"| {seed} | {d['rounds']} | {_fmt(d['noise_multiplier'], 'g')} | "
            f"{_fmt(d['clipping_norm'], 'g')} | {_fmt(d['epsilon'], '.1f')} at "
            f"{_fmt(d['delta'], 'g')} | {_fmt(d['mean_return'])} | "
            f"{_fmt(d['mean_return_without_dp_same_round'])} |"
        )
    if results["scaling"]:
        lines += [
            "",
            f"Scaling ({config.scaling_rounds} rounds × {config.scaling_local_steps} local "
            f"steps, horizon {config.scaling_horizon_h:g} h):",
            "",
            "| engine | nodes | round 1 s | later rounds s | wall s | peak RSS MB |",
            "|---|---|---|---|---|---|",
        ]
        for row in results["scaling"]:
            if "error" in row:
                reason = row["error"].splitlines()[0][:120]
                lines.append(f"| {row['engine']} | {row['nodes']} | failed: {reason} | | | |")
                continue
            later = row["round_s"][1:]
            lines.append(
                f"| {row['engine']} | {row['nodes']} | {row['round_s'][0]:.1f} | "
                f"{_fmt(_mean(later), '.1f')} | {row['wall_s']:.0f} | "
                f"{row['peak_rss_mb']:,.0f} |"
            )
    timing = [(seed, s["federation"]) for seed, s in results["seeds"].items() if "federation" in s]
    if timing:
        lines += ["", "| seed | mean round s (simulation) | peak RSS MB |", "|---|---|---|"]
        for seed, f in timing:
            lines.append(f"| {seed} | {f['mean_round_s']:.1f} | {f['peak_rss_mb']:,.0f} |")
    return "\n".join(lines) + "\n"


def _plot(folder: Path, results: Mapping[str, Any]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    baselines_drawn = False
    for seed, s in results["seeds"].items():
        b = s.get("baselines")
        start = [(0.0, b["initial_mean_return"])] if b else []
        if "federation" in s:
            points = start + sorted(
                (float(r), v) for r, v in s["federation"]["mean_return_per_round"].items()
            )
            axes.plot(*zip(*points, strict=True), "-o", label=f"federation (seed {seed})")
        if b and not baselines_drawn:  # trained once, with the first seed
            baselines_drawn = True
            axes.plot(*zip(*(start + b["central_curve"]), strict=True), "-s", label="central")
            axes.plot(
                *zip(*(start + b["local_curve"]), strict=True), "-^", label="local-only (own node)"
            )
            if s.get("rounds_to_95", {}).get("defined"):
                axes.axhline(s["rounds_to_95"]["target"], ls="--", color="grey", lw=1)
    axes.set_xlabel("round (central / local-only: the same env steps per node)")
    axes.set_ylabel("mean return over the training nodes")
    axes.set_title("Federated vs central vs local-only PPO (dashed: 95 % target, if defined)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    path = folder / "return.png"
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)
    return path


def write_report(
    folder: Path, config: StudyConfig, results: Mapping[str, Any], raw: Mapping[str, Any]
) -> None:
    """``results.json``, ``results.md`` and ``return.png`` in ``folder``."""
    write_atomic(folder / "results.json", json.dumps(results, indent=2))
    write_atomic(folder / "results.md", _markdown(config, results))
    _plot(folder, results)
