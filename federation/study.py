"""The federation's results study (issue 13): federated PPO against a centrally trained policy
and local-only policies, the held-out node, wall time and memory, and the cost of DP.

Stages (each writes ``<out>/<stage>.json`` and is skipped when that file exists, so an
interrupted study continues; :func:`run_study` puts them together):

- ``initial-s<seed>``: the untrained policy (the federation's round-0 weights) on every training
  node — the start of the improvement the 95 % target is measured on;
- ``central-s<seed>``: one PPO on all training nodes' twins at once
  (:func:`federation.central.train_pooled`), ``rounds × local_steps`` env steps per node — the
  federation's total — evaluated every ``curve_every`` rounds' worth on every training node;
- ``local-<node>-s<seed>``: one PPO on that node alone, ``rounds × local_steps`` steps,
  evaluated on its own node and on the held-out node;
- ``federation-s<seed>``: ``rounds`` rounds of the Flower App on Flower's simulation engine
  (FedAvg), its ``rounds.csv`` giving the global policy's return per node per round;
- ``dp-s<seed>``: the same federation with server-side DP (``dp = "server"``), ε at δ;
- ``scaling-<engine>-<n>``: short federations of n nodes in simulation and in a local
  deployment (SuperLink + SuperNodes as processes): wall time per round, peak memory.

The 95 % target (returns are negative costs, so "95 % of the central return" is not a ratio):
``target = R0 + 0.95 · (Rc − R0)`` with ``R0`` the untrained policy's and ``Rc`` the central
policy's mean return over the training nodes (equal weight per node); the rounds to 95 % are the
first round whose global policy's mean return over the training nodes reaches the target
(:func:`rounds_to_target`). Undefined when the central policy did not improve on ``R0``.

The held-out node: the federated policy's weighted objective Z (a cost, lower is better) against
each local-only policy's and their mean, and against the best heuristic's there
(:func:`held_out_comparison`); the goal is Z at least 10 % below the mean local-only Z.

Peak memory is the largest sum of the resident set sizes of this process and every process it
started (Ray's and the deployment's daemons and ClientApps), sampled every 0.5 s
(:class:`PeakMemory`). Nodes beyond the four training profiles (8 and 16 in the scaling stage)
are copies of node-1..4 under new names: the same twins, different training seeds.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from envs.atomic import write_atomic
from federation.profiles import HELD_OUT_NODE, TRAINING_NODES
from federation.study_report import (
    GOAL_HELD_OUT_IMPROVEMENT,
    TARGET_FRACTION,
    RoundsToTarget,
    held_out_comparison,
    mean_return_per_round,
    rounds_to_target,
    summarise,
    write_report,
)

__all__ = [
    "GOAL_HELD_OUT_IMPROVEMENT",
    "TARGET_FRACTION",
    "PeakMemory",
    "RoundsToTarget",
    "StudyConfig",
    "held_out_comparison",
    "mean_return_per_round",
    "process_tree_rss",
    "rounds_to_target",
    "run_study",
    "scaled_profiles",
]

Say = Callable[[str], None]


# -- memory -------------------------------------------------------------------------------------
def process_tree_rss(pid: int | None = None) -> int:
    """Bytes resident in process ``pid`` (default this one) and all its descendants."""
    import psutil

    root = psutil.Process(pid)
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


class PeakMemory:
    """``with PeakMemory() as peak: ...``; ``peak.bytes`` is the largest
    :func:`process_tree_rss` seen, sampled every ``every_s`` seconds in a thread."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.bytes = max(self.bytes, process_tree_rss())
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


# -- configuration ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StudyConfig:
    """What the study runs (defaults: the reduced study that fits a loaded 2-core machine)."""

    rounds: int = 8
    local_steps: int = 1024
    n_steps: int = 1024
    batch_size: int = 256
    n_epochs: int = 5
    horizon_h: float = 48.0
    eval_seeds: int = 1
    seeds: tuple[int, ...] = (0,)
    nodes: tuple[str, ...] = TRAINING_NODES
    held_out: str = HELD_OUT_NODE
    curve_every: int = 2
    dp: bool = True
    dp_rounds: int = 4
    dp_noise_multiplier: float = 1.0
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-5
    scaling_nodes: tuple[int, ...] = (4, 8, 16)
    deployment_nodes: tuple[int, ...] = (4, 8)
    scaling_rounds: int = 2
    scaling_local_steps: int = 256
    scaling_horizon_h: float = 12.0
    deployment_timeout_s: float = 900.0
    num_cpus: int | None = None
    stages: tuple[str, ...] = ("baselines", "federation", "dp", "scaling")
    report_only: bool = False
    """Run nothing: the report from the stages saved so far."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        checks = [
            ("rounds", self.rounds >= 1),
            ("local_steps", self.local_steps >= 8),
            ("eval_seeds", self.eval_seeds >= 1),
            ("seeds", len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds)),
            ("nodes", len(self.nodes) >= 2 and self.held_out not in self.nodes),
            ("curve_every", self.curve_every >= 1),
            ("dp_rounds", self.dp_rounds >= 1),
            ("scaling_nodes", all(n >= 1 for n in self.scaling_nodes)),
            ("deployment_nodes", all(n >= 1 for n in self.deployment_nodes)),
            ("scaling_rounds", self.scaling_rounds >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"study setting {name} = {getattr(self, name)!r} is invalid")
        unknown = set(self.stages) - {"baselines", "federation", "dp", "scaling"}
        if unknown:
            raise ValueError(
                f"unknown stage(s) {sorted(unknown)}: choose from baselines, federation, dp, "
                "scaling"
            )

    def run_config(self, seed: int, out: Path, **overrides: Any) -> dict[str, Any]:
        """The Flower App's run configuration of the study's federation with ``seed``."""
        config: dict[str, Any] = {
            "num-rounds": self.rounds,
            "strategy": "fedavg",
            "min-nodes": len(self.nodes),
            "local-steps": self.local_steps,
            "n-steps": self.n_steps,
            "batch-size": self.batch_size,
            "n-epochs": self.n_epochs,
            "horizon-h": self.horizon_h,
            "seed": seed,
            "eval-seeds": self.eval_seeds,
            "held-out": self.held_out,
            "out-dir": str(out),
            "resume": True,
            "tensorboard": False,
        }
        config.update(overrides)
        return config

    def local_config(self, seed: int) -> Any:
        """The nodes' local PPO settings (the run configuration's, via AppConfig)."""
        from federation.app_config import AppConfig

        return AppConfig.from_run_config(self.run_config(seed, Path("."))).local_config()


# -- stages -------------------------------------------------------------------------------------
def _cached(
    config: StudyConfig, out: Path, stage: str, say: Say, compute: Callable[[], dict[str, Any]]
) -> Any:
    """The stage's saved result, else (unless ``config.report_only``: None) computed and
    saved."""
    path = out / f"{stage}.json"
    if path.is_file():
        say(f"[{stage}] done before: {path}")
        return json.loads(path.read_text(encoding="utf-8"))
    if config.report_only:
        say(f"[{stage}] not run (report only)")
        return None
    started = time.monotonic()
    say(f"[{stage}] ...")
    result = compute()
    result["stage_wall_s"] = time.monotonic() - started
    write_atomic(path, json.dumps(result, indent=2))
    say(f"[{stage}] {result['stage_wall_s']:.0f} s")
    return result


def _evaluate(
    names: Sequence[str], weights: Any, norm: Any, local: Any, seeds: Sequence[int]
) -> dict[str, dict[str, float]]:
    from federation.profiles import load_node_profile
    from federation.task import evaluate_weights

    return {
        name: evaluate_weights(load_node_profile(name), weights, norm, local, seeds)
        for name in names
    }


def _mean(values: Mapping[str, Mapping[str, float]], key: str = "return") -> float:
    return sum(v[key] for v in values.values()) / len(values)


def stage_initial(config: StudyConfig, seed: int) -> dict[str, Any]:
    """The untrained policy (the federation's round-0 weights) on every training node."""
    from federation.normalisation import NormStats
    from federation.server_app import observation_size
    from federation.task import initial_weights

    local = config.local_config(seed)
    weights = initial_weights(local)
    norm = NormStats.empty(observation_size(weights, local))
    seeds = list(_seeds(config))
    nodes = _evaluate(config.nodes, weights, norm, local, seeds)
    return {"nodes": nodes, "mean_return": _mean(nodes)}


def _seeds(config: StudyConfig) -> list[int]:
    from envs.seeding import held_out_seeds

    return list(held_out_seeds(config.eval_seeds))


def stage_pooled(
    config: StudyConfig, seed: int, names: Sequence[str], evaluate_on: Sequence[str], say: Say
) -> dict[str, Any]:
    """A pooled PPO on ``names`` (central: all training nodes; local-only: one), its learning
    curve on ``evaluate_on`` every ``curve_every`` rounds' worth of steps."""
    from federation.central import PooledPolicy, train_pooled
    from federation.profiles import load_node_profile

    local = config.local_config(seed)
    seeds = _seeds(config)
    curve: list[dict[str, Any]] = []
    last: dict[str, Any] = {}

    def checkpoint(policy: PooledPolicy) -> None:
        rounds = policy.steps_per_node / config.local_steps
        nodes = _evaluate(evaluate_on, policy.weights, policy.norm, local, seeds)
        point = {"rounds": rounds, "steps_per_node": policy.steps_per_node, "nodes": nodes}
        curve.append(point)
        last["policy"] = policy
        cells = " | ".join(f"{n} {v['return']:8.3f}" for n, v in nodes.items())
        say(f"  {'+'.join(names)} after {rounds:4.1f} rounds' steps | {cells}")

    train_pooled(
        [load_node_profile(name) for name in names],
        local,
        config.rounds * config.local_steps,
        seed=seed,
        checkpoint_steps=config.curve_every * config.local_steps,
        on_checkpoint=checkpoint,
    )
    final = curve[-1]
    return {"trained_on": list(names), "curve": curve, "final": final["nodes"]}


class _RoundPrinter:
    """Prints each new round of ``rounds.csv`` (per-node return, round wall time)."""

    def __init__(self, folder: Path, rounds: int, say: Say) -> None:
        self.folder, self.rounds, self.say = folder, rounds, say
        self.shown = 0
        self.started = time.monotonic()

    def __call__(self) -> None:
        rows = _read_rounds(self.folder)
        last = max((int(r["round"]) for r in rows), default=0)
        for r in range(self.shown + 1, last + 1):
            mine = [row for row in rows if int(row["round"]) == r]
            cells = " | ".join(f"{row['node']} {float(row['return']):8.3f}" for row in mine)
            round_s = float(mine[0].get("round_s") or 0.0)
            self.say(
                f"  round {r:3d}/{self.rounds} | {cells} | {round_s:6.1f} s "
                f"(total {time.monotonic() - self.started:6.0f} s)"
            )
        self.shown = max(self.shown, last)


def _read_rounds(folder: Path) -> list[dict[str, str]]:
    path = folder / "rounds.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if row.get("return")]


def stage_federation(
    config: StudyConfig,
    seed: int,
    folder: Path,
    say: Say,
    profiles: Sequence[str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """The Flower App on Flower's simulation engine; its rounds, summary and peak memory."""
    from federation.simulation import simulate

    names = list(profiles or config.nodes)
    run_config = config.run_config(seed, folder, **overrides)
    printer = _RoundPrinter(folder, int(run_config["num-rounds"]), say)
    with PeakMemory() as peak:
        summary = simulate(names, run_config, num_cpus=config.num_cpus, on_poll=printer)
    printer()
    rows = _read_rounds(folder)
    return {
        "summary": summary,
        "peak_rss_mb": peak.bytes / 2**20,
        "mean_return_per_round": mean_return_per_round(rows, names),
        "held_out_per_round": mean_return_per_round(rows, [config.held_out], "objective")
        if config.held_out
        else {},
        "rows": rows,
    }


def scaled_profiles(count: int, folder: Path, base: Sequence[str] = TRAINING_NODES) -> list[str]:
    """``count`` node profiles: the training profiles, then copies of them named
    ``node-<k>`` (k > 4) written into ``folder`` — the same twins, other training seeds."""
    from federation.profiles import PROFILE_DIR

    names: list[str] = []
    for k in range(count):
        source = base[k % len(base)]
        if k < len(base):
            names.append(source)
            continue
        text = (PROFILE_DIR / f"{source}.toml").read_text(encoding="utf-8")
        lines = [
            f'name = "node-{k + 1}"' if ln.startswith("name =") else ln for ln in text.split("\n")
        ]
        path = folder / f"node-{k + 1}.toml"
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, "\n".join(lines))
        names.append(str(path))
    return names


def _scaling_overrides(config: StudyConfig, count: int) -> dict[str, Any]:
    return {
        "num-rounds": config.scaling_rounds,
        "local-steps": config.scaling_local_steps,
        "n-steps": config.scaling_local_steps,
        "batch-size": min(config.batch_size, config.scaling_local_steps),
        "horizon-h": config.scaling_horizon_h,
        "held-out": "",
        "min-nodes": count,
        "resume": False,
    }


def stage_scaling_simulation(
    config: StudyConfig, count: int, out: Path, say: Say
) -> dict[str, Any]:
    """A short federation of ``count`` simulated nodes: round wall times, peak memory."""
    folder = out / f"scaling-simulation-{count}"
    names = scaled_profiles(count, out / "profiles")
    result = stage_federation(config, 0, folder, say, names, **_scaling_overrides(config, count))
    return {
        "engine": "simulation",
        "nodes": count,
        "round_s": result["summary"]["round_s"],
        "wall_s": result["summary"]["simulation_wall_s"],
        "peak_rss_mb": result["peak_rss_mb"],
    }


def stage_scaling_deployment(
    config: StudyConfig, count: int, out: Path, say: Say
) -> dict[str, Any]:
    """The same short federation in a local deployment (SuperLink + ``count`` SuperNodes as
    processes, TLS and node authentication on)."""
    from federation.deployment import LocalDeployment, NodeSpec
    from federation.profiles import load_node_profile

    folder = out / f"scaling-deployment-{count}"
    names = scaled_profiles(count, out / "profiles")
    nodes = [NodeSpec(load_node_profile(n).name, {"profile": n}) for n in names]
    run_config = config.run_config(0, folder, **_scaling_overrides(config, count))
    printer = _RoundPrinter(folder, config.scaling_rounds, say)
    started = time.monotonic()
    with PeakMemory() as peak:
        with LocalDeployment(folder / "deployment", nodes) as deployment:
            up = time.monotonic() - started
            run_id = deployment.submit(run_config)
            status = deployment.wait(
                run_id, timeout_s=config.deployment_timeout_s, on_poll=lambda _: printer()
            )
            if not status.completed:
                raise RuntimeError(f"deployment run ended {status.status}")
    printer()
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    return {
        "engine": "deployment",
        "nodes": count,
        "round_s": summary["round_s"],
        "wall_s": time.monotonic() - started,
        "startup_s": up,
        "peak_rss_mb": peak.bytes / 2**20,
    }


def held_out_heuristics(config: StudyConfig) -> dict[str, float]:
    """Each heuristic's mean Z on the held-out node's twin (the study's horizon and seeds)."""
    from agents.evaluation import evaluate
    from agents.heuristics import make_heuristic
    from federation.profiles import load_node_profile, make_node_env

    env = make_node_env(load_node_profile(config.held_out), horizon_h=config.horizon_h)
    try:
        names = ("naive", "fixed_interval", "condition_based")
        results = evaluate(
            env, {n: make_heuristic(n, env) for n in names}, _seeds(config), record_first=False
        )
    finally:
        env.close()
    return {n: sum(r.objective for r in runs) / len(runs) for n, runs in results.items()}


def _baselines(config: StudyConfig, folder: Path, say: Say) -> dict[str, Any]:
    """Central and local-only policies, trained with the first seed (shared by all seeds)."""
    seed = config.seeds[0]
    central = _cached(
        config,
        folder,
        f"central-s{seed}",
        say,
        lambda: stage_pooled(config, seed, config.nodes, config.nodes, say),
    )
    local = {}
    for node in config.nodes:

        def compute(node: str = node) -> dict[str, Any]:
            return stage_pooled(config, seed, [node], [node, config.held_out], say)

        local[node] = _cached(config, folder, f"local-{node}-s{seed}", say, compute)
    return {"central": central, "local": local}


def _run_seed(
    config: StudyConfig, seed: int, folder: Path, say: Say, baselines: dict[str, Any]
) -> dict[str, Any]:
    """One federation seed's stages (the initial policy, the federation, DP)."""
    stages = set(config.stages)
    got: dict[str, Any] = {}
    if "baselines" in stages:
        got["initial"] = _cached(
            config, folder, f"initial-s{seed}", say, lambda: stage_initial(config, seed)
        )
        got.update(baselines)
    if "federation" in stages:
        got["federation"] = _cached(
            config,
            folder,
            f"federation-s{seed}",
            say,
            lambda: stage_federation(config, seed, folder / f"federation-s{seed}", say),
        )
    if "dp" in stages and config.dp:
        dp: dict[str, Any] = {
            "num-rounds": config.dp_rounds,
            "dp": "server",
            "dp-noise-multiplier": config.dp_noise_multiplier,
            "dp-clipping-norm": config.dp_clipping_norm,
            "dp-delta": config.dp_delta,
        }
        got["dp"] = _cached(
            config,
            folder,
            f"dp-s{seed}",
            say,
            lambda: stage_federation(config, seed, folder / f"dp-s{seed}", say, **dp),
        )
    if got.get("central") is None or any(v is None for v in got.get("local", {}).values()):
        got.pop("central", None)  # report only, before the baselines were all trained
        got.pop("local", None)
    return {key: value for key, value in got.items() if value is not None}


def run_study(config: StudyConfig, out: str | Path, say: Say = print) -> dict[str, Any]:
    """Run (or continue) the study into ``out``; the results (also ``results.json``,
    ``results.md`` and ``return.png`` there). The central and local-only baselines are
    trained once, with the first seed; every seed has its own initial policy and federation."""
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "config.json", json.dumps(asdict(config), indent=2))
    stages = set(config.stages)
    raw: dict[str, Any] = {"config": asdict(config), "seeds": {}}
    baselines = _baselines(config, folder, say) if "baselines" in stages else {}
    if "baselines" in stages and config.held_out:
        heuristics = _cached(
            config, folder, "heuristics-held-out", say, lambda: {"z": held_out_heuristics(config)}
        )
        raw["heuristics"] = heuristics["z"] if heuristics else None
    for seed in config.seeds:
        raw["seeds"][seed] = _run_seed(config, seed, folder, say, baselines)
    if "scaling" in stages:
        raw["scaling"] = []
        for count in config.scaling_nodes:

            def simulated(count: int = count) -> dict[str, Any]:
                return stage_scaling_simulation(config, count, folder, say)

            raw["scaling"].append(
                _cached(config, folder, f"scaling-simulation-{count}", say, simulated)
            )
        for count in config.deployment_nodes:

            def deployed(count: int = count) -> dict[str, Any]:
                return stage_scaling_deployment(config, count, folder, say)

            try:
                raw["scaling"].append(
                    _cached(config, folder, f"scaling-deployment-{count}", say, deployed)
                )
            except RuntimeError as error:  # DeploymentError too: reported, not cached
                say(f"[scaling-deployment-{count}] failed: {str(error)[:2000]}")
                raw["scaling"].append(
                    {"engine": "deployment", "nodes": count, "error": str(error)[:2000]}
                )
    raw["scaling"] = [row for row in raw.get("scaling", []) if row is not None]
    results = summarise(config, raw)
    write_report(folder, config, results, raw)
    return results
