"""Run the three heuristic baselines on a production-line scenario over several seeds and print
their KPIs (mean ± 95 % CI over seeds) and the change against ``naive``.

    python scripts/line_baselines.py                       # default scenario, 10 seeds, 1 week
    python scripts/line_baselines.py --seeds 3 --horizon-h 24 --json runs/baselines.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agents import HEURISTICS, make_heuristic  # noqa: E402
from envs.line_env import ProductionLineEnv  # noqa: E402

COLUMNS = (
    ("cost", "C EUR", "{:,.0f}"),
    ("energy_kwh", "E kWh", "{:,.0f}"),
    ("downtime_h", "D h", "{:.1f}"),
    ("throughput_per_h", "T 1/h", "{:.2f}"),
    ("peak_kw", "R kW", "{:.1f}"),
    ("oee", "OEE", "{:.2f}"),
    ("idle_energy_share", "idle E", "{:.2f}"),
)


@dataclass(frozen=True)
class BaselineConfig:
    scenario: str = "automotive_components"
    """Shipped scenario name or path of a scenario TOML."""
    seeds: int = 10
    """Seeds 0..N-1 (common random numbers: every policy sees the same seeds)."""
    horizon_h: float | None = None
    """Episode length in hours (default: the scenario's)."""
    json: Path | None = None
    """Also write per-seed KPIs to this JSON file."""


def evaluate(config: BaselineConfig) -> dict[str, list[dict]]:
    from tqdm import tqdm

    env = ProductionLineEnv(config.scenario, horizon_h=config.horizon_h)
    results: dict[str, list[dict]] = {name: [] for name in HEURISTICS}
    try:
        with tqdm(
            total=len(HEURISTICS) * config.seeds * env.horizon_steps, unit="step", desc="simulating"
        ) as progress:
            for name in HEURISTICS:
                policy = make_heuristic(name, env)
                for seed in range(config.seeds):
                    observation, _ = env.reset(seed=seed)
                    for _ in range(env.horizon_steps):
                        action, _ = policy.predict(observation)
                        observation, _, _, truncated, info = env.step(action)
                        progress.update(1)
                        if truncated:
                            break
                    results[name].append(info["kpi_total"])
    finally:
        env.close()
    return results


def summarise(results: dict[str, list[dict]]) -> str:
    header = f"{'policy':<16}" + "".join(f"{title:>20}" for _, title, _ in COLUMNS)
    lines = [header, "-" * len(header)]
    means = {}
    for name, runs in results.items():
        cells = []
        for key, _, fmt in COLUMNS:
            values = np.array([run[key] for run in runs])
            half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
            means[(name, key)] = values.mean()
            cells.append(f"{fmt.format(values.mean())} ± {fmt.format(half)}")
        lines.append(f"{name:<16}" + "".join(f"{cell:>20}" for cell in cells))
    lines.append("")
    lines.append("change against naive:")
    for name in results:
        if name == "naive":
            continue
        changes = ", ".join(
            f"{title.split()[0]} {100 * (means[(name, key)] / means[('naive', key)] - 1):+.0f} %"
            for key, title, _ in COLUMNS[:5]
            if means[("naive", key)]
        )
        lines.append(f"  {name:<16}{changes}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    defaults = BaselineConfig()
    parser = argparse.ArgumentParser(
        description="KPIs of the naive, fixed_interval and condition_based heuristics on a "
        "production-line scenario over several seeds (mean ± 95 %% CI).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--scenario",
        default=defaults.scenario,
        help="shipped scenario name or path of a scenario TOML",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=defaults.seeds,
        help="number of seeds (0..N-1), the same for every policy",
    )
    parser.add_argument(
        "--horizon-h",
        type=float,
        default=None,
        help="episode length in hours (default: the scenario's)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write per-seed KPIs here")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    config = BaselineConfig(args.scenario, args.seeds, args.horizon_h, args.json)
    results = evaluate(config)
    print(summarise(results))
    if config.json:
        config.json.parent.mkdir(parents=True, exist_ok=True)
        config.json.write_text(json.dumps(results, indent=2))
        print(f"wrote {config.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
