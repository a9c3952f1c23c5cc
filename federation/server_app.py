"""The ServerApp: rounds of federated PPO over the SuperNodes the SuperLink knows.

Each round (``num-rounds`` in the run config, see :mod:`federation.app_config`):

1. the strategy (:func:`federation.strategies.make_strategy`: Flower's FedAvg by default,
   weighted by local steps; FedProx, FedAvgM, FedAdam, FedMedian, FedTrimmedAvg, Krum) sends the
   global weights and normalisation statistics to the sampled nodes, which train locally;
2. the replies are screened — an update with wrong shapes or dtypes, NaN/inf or a norm far
   above the round's others is logged with the node id and reason and left out — the rest are
   aggregated, and the nodes' statistics merged exactly;
3. the new global policy is evaluated on every node's twin (Flower's evaluate round) and, by
   the ServerApp itself, on the held-out node's twin (``held-out``: a profile that never
   trains);
4. ``rounds.csv``, ``return.png``, TensorBoard and ``checkpoint.npz`` (the global weights and
   statistics and the strategy's server-side state: FedAdam's moments, FedAvgM's momentum) are
   written atomically into ``out-dir`` (:mod:`federation.records`); with ``resume`` on, a
   federation started again with the same ``out-dir`` continues after the last checkpointed
   round, with the strategy state it had then.

With ``dp`` "server" or "client" (:mod:`federation.privacy`) the accepted updates are clipped
to ``dp-clipping-norm`` and the average noised; the ε spent so far at ``dp-delta`` is logged
after each round, written into ``rounds.csv`` (``epsilon``, ``epsilon_gdp``) and
``privacy.json`` (read back on resume, so a resumed federation keeps counting) and reported in
``summary.json``.

With ``secagg`` on (:mod:`federation.secagg`) the training step of each round is Flower's
SecAgg+ protocol: the server sees only the step-weighted average of the updates and of the
statistics, so the screening above cannot run (the average is still checked for finiteness);
the evaluation, logging and checkpointing are the same.

At the end the global policy is exported (``policy.npz``) through
:func:`federation.task.export_policy`: the file ``agents.exported.ExportedPolicy`` loads, the
one the edge bridge runs. ``summary.json`` lists the rounds, nodes, rejections and wall times.

Stragglers and failures: a round waits ``round-timeout`` seconds for replies; nodes that do not
reply in time, or whose SuperNode died (the SuperLink answers for it with an error), are left
out of that round. A round with fewer than ``min-replies`` replies in time, or fewer updates
accepted by the screening, keeps the global weights (and the strategy's state); otherwise
training goes on with the updates that arrived. A node that comes back is sampled again from
the next round on (``min-nodes`` nodes must be connected for a round to start).
"""

from __future__ import annotations

import json
import time
from logging import INFO, WARNING
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message
from flwr.serverapp import Grid, ServerApp
from flwr.supercore import log

from envs.atomic import write_atomic
from federation.app_config import AppConfig
from federation.normalisation import NormStats
from federation.privacy import PrivacyLedger
from federation.records import Checkpoint, RoundLog, load_checkpoint, save_checkpoint
from federation.secagg import secure_train_round
from federation.strategies import (
    NORM_KEY,
    ScreenedStrategy,
    make_strategy,
    restore_strategy_state,
    strategy_state,
)
from federation.task import LocalConfig, evaluate_weights, export_policy, initial_weights

__all__ = ["POLICY_FILE", "app", "observation_size", "run_federation"]

POLICY_FILE = "policy.npz"

app = ServerApp()


def observation_size(weights: list[np.ndarray], config: LocalConfig) -> int:
    """The number of observation features the policy of ``weights`` reads: the input width
    of the actor's first hidden layer (``mlp_extractor.policy_net.0.weight``)."""
    from federation.task import weight_names

    names = weight_names(config)
    return int(weights[names.index("mlp_extractor.policy_net.0.weight")].shape[1])


def _node_name(message: Message, record_key: str) -> str:
    record = message.content.config_records.get(record_key)
    name = record.get("node-name") if record is not None else None
    return str(name) if name is not None else f"node-{message.metadata.src_node_id}"


def _metrics_of(message: Message) -> dict[str, float]:
    record = message.content.metric_records.get("metrics")
    if record is None:
        return {}
    return {
        key: float(value)
        for key, value in record.items()
        if key != "num-examples" and isinstance(value, int | float)
    }


def _start(
    config: AppConfig, folder: Path, local: LocalConfig
) -> tuple[int, list[np.ndarray], NormStats, dict[str, np.ndarray]]:
    """The round to start after, the global weights and statistics and the strategy's saved
    server-side state: from the checkpoint when resuming (the state only if the strategy is
    the same), else fresh."""
    if config.resume:
        checkpoint = load_checkpoint(folder)
        if checkpoint is not None:
            state = checkpoint.strategy_state
            if checkpoint.strategy and checkpoint.strategy != config.strategy:
                log(
                    WARNING,
                    "resuming a %s federation with strategy %s: its server-side state "
                    "(%d arrays) is not carried over",
                    checkpoint.strategy,
                    config.strategy,
                    len(state),
                )
                state = {}
            log(INFO, "resuming after round %d from %s", checkpoint.server_round, folder)
            return checkpoint.server_round, checkpoint.weights, checkpoint.norm, state
    weights = initial_weights(local)
    return 0, weights, NormStats.empty(observation_size(weights, local)), {}


def _plain_train_round(
    grid: Grid,
    strategy: ScreenedStrategy,
    server_round: int,
    arrays: ArrayRecord,
    config: AppConfig,
) -> tuple[ArrayRecord | None, dict[str, dict[str, float]]]:
    """Send the round's train messages, wait up to ``round-timeout`` and aggregate the
    screened replies: the new global arrays (None, the weights stay, if fewer than
    ``min-replies`` replies arrived in time, or fewer than that many updates were accepted)
    and the accepted nodes' training metrics by name."""
    replies = list(
        grid.send_and_receive(
            strategy.configure_train(server_round, arrays, ConfigRecord(), grid),
            timeout=config.round_timeout,
        )
    )
    arrived = sum(1 for message in replies if not message.has_error())
    if arrived < config.min_replies:
        log(
            WARNING,
            "round %d: %d replies in time, fewer than min-replies %d; the global weights stay",
            server_round,
            arrived,
            config.min_replies,
        )
        strategy.last_train_replies = []
        return None, {}
    norm, state = strategy.norm, strategy_state(strategy)
    new_arrays, _ = strategy.aggregate_train(server_round, replies)
    accepted = strategy.last_train_replies
    if len(accepted) < config.min_replies:
        log(
            WARNING,
            "round %d: %d updates accepted, fewer than min-replies %d; the global weights stay",
            server_round,
            len(accepted),
            config.min_replies,
        )
        strategy.norm = norm  # undo the merge and the server-side step
        _reset_strategy_state(strategy, state, arrays)
        strategy.last_train_replies = []
        return None, {}
    return new_arrays, {_node_name(m, NORM_KEY): _metrics_of(m) for m in accepted}


def _reset_strategy_state(
    strategy: ScreenedStrategy, state: dict[str, np.ndarray], arrays: ArrayRecord
) -> None:
    """Put the strategy's server-side state back to ``state`` (taken before the round),
    FedAvgM's model reference back to ``arrays``."""
    inner = strategy.inner
    if not state:
        for name in ("m_t", "v_t", "momentum_vector"):
            if hasattr(inner, name):
                setattr(inner, name, None)
    else:
        restore_strategy_state(strategy, state)
    if hasattr(inner, "momentum_vector") and hasattr(inner, "current_arrays"):
        inner.current_arrays = arrays


def run_federation(grid: Grid, config: AppConfig) -> dict[str, Any]:
    """Run the federation described by ``config`` over ``grid``; the summary it writes to
    ``summary.json`` (see the module docstring)."""
    folder = config.output_folder()
    folder.mkdir(parents=True, exist_ok=True)
    local = config.local_config()
    done, weights, norm, saved_state = _start(config, folder, local)
    privacy = None
    if config.dp != "off":
        privacy = (
            PrivacyLedger.load(folder, config.dp_delta) if done else PrivacyLedger(config.dp_delta)
        )
        if privacy.releases > done:  # released, then interrupted before the checkpoint
            log(
                WARNING,
                "%s: %d DP releases for %d checkpointed rounds; all are counted",
                folder,
                privacy.releases,
                done,
            )
    strategy: ScreenedStrategy = make_strategy(
        config.strategy,
        min_nodes=config.min_nodes,
        fraction_train=config.fraction_train,
        proximal_mu=config.proximal_mu,
        server_lr=config.server_lr or None,
        server_momentum=config.server_momentum,
        trim_beta=config.trim_beta,
        krum_malicious=config.krum_malicious,
        max_norm_ratio=config.max_norm_ratio,
        norm=norm,
        dp=config.dp,
        dp_noise_multiplier=config.dp_noise_multiplier,
        dp_clipping_norm=config.dp_clipping_norm,
        privacy=privacy,
    )
    restore_strategy_state(strategy, saved_state)
    secagg = config.secagg_settings() if config.secagg else None
    held_out = None
    if config.held_out:
        from federation.profiles import load_node_profile

        held_out = load_node_profile(config.held_out)
    records = RoundLog(folder, tensorboard=config.tensorboard)
    records.resume(done)
    seeds = config.evaluation_seeds()
    arrays = ArrayRecord(weights)
    round_times: list[float] = []
    started = time.monotonic()
    try:
        for server_round in range(done + 1, config.num_rounds + 1):
            t0 = time.monotonic()
            log(INFO, "[ROUND %d/%d] %s", server_round, config.num_rounds, config.strategy)
            rejected_before = len(strategy.rejections)
            if secagg is not None:
                new_arrays, trained = secure_train_round(
                    grid, strategy, server_round, arrays, secagg, min_replies=config.min_replies
                )
            else:
                new_arrays, trained = _plain_train_round(
                    grid, strategy, server_round, arrays, config
                )
            if new_arrays is not None:
                arrays = new_arrays
            for rejection in strategy.rejections[rejected_before:]:
                records.reject(
                    server_round, rejection.node_id, rejection.node_name, rejection.reason
                )
            global_norm = strategy.norm or norm
            evaluations = grid.send_and_receive(
                strategy.configure_evaluate(server_round, arrays, ConfigRecord(), grid),
                timeout=config.round_timeout,
            )
            strategy.aggregate_evaluate(server_round, evaluations)
            round_s = time.monotonic() - t0
            spent: dict[str, float] = {}
            if privacy is not None:
                privacy.save(folder)
                spent = {"epsilon": privacy.epsilon(), "epsilon_gdp": privacy.epsilon_gdp()}
            rejected = {r.node_name for r in strategy.rejections[rejected_before:]}
            for message in evaluations:
                if message.has_error():
                    continue
                name = _node_name(message, "node")
                records.add(
                    server_round,
                    name,
                    "train",
                    _metrics_of(message),
                    trained.get(name),
                    accepted=int(name in trained),
                    rejected=int(name in rejected),
                    round_s=round_s,
                    **spent,
                )
            current = arrays.to_numpy_ndarrays()
            if held_out is not None:
                values = evaluate_weights(held_out, current, global_norm, local, seeds)
                records.add(
                    server_round, held_out.name, "held-out", values, None, round_s=round_s, **spent
                )
            save_checkpoint(
                folder,
                Checkpoint(
                    server_round, current, global_norm, config.strategy, strategy_state(strategy)
                ),
            )
            records.write()
            round_times.append(time.monotonic() - t0)
            returns = ", ".join(
                f"{row['node']} {row['return']:.3f}"
                for row in records.rows
                if row["round"] == server_round and "return" in row
            )
            log(
                INFO,
                "round %d done in %.1f s: accepted %d, rejected %d | return: %s",
                server_round,
                round_times[-1],
                len(trained),
                len(rejected),
                returns,
            )
        final = load_checkpoint(folder)
        if final is None:
            raise RuntimeError(f"no checkpoint in {folder}: no round completed")
        policy = export_policy(final.weights, final.norm, local, folder / POLICY_FILE)
    finally:
        records.close()
    summary: dict[str, Any] = {
        "strategy": config.strategy,
        "rounds": final.server_round,
        "resumed_after": done,
        "nodes": sorted({str(r["node"]) for r in records.rows if r.get("role") == "train"}),
        "held_out": held_out.name if held_out is not None else None,
        "rejections": records.rejections,
        "round_s": round_times,
        "wall_s": time.monotonic() - started,
        "policy": str(policy),
        "norm_count": final.norm.count,
        "secagg": config.secagg,
        "dp": None
        if privacy is None
        else {
            "mode": config.dp,
            "noise_multiplier": config.dp_noise_multiplier,
            "clipping_norm": config.dp_clipping_norm,
            "delta": privacy.delta,
            "releases": privacy.releases,
            "epsilon": privacy.epsilon(),
            "epsilon_gdp": privacy.epsilon_gdp(),
        },
    }
    write_atomic(folder / "summary.json", json.dumps(summary, indent=2))
    log(INFO, "federation done: %d rounds, policy exported to %s", final.server_round, policy)
    return summary


@app.main()
def main(grid: Grid, context: Context) -> None:
    """The ServerApp's entry point (``[tool.flwr.app.components] serverapp``)."""
    import torch

    torch.set_num_threads(1)
    run_federation(grid, AppConfig.from_run_config(context.run_config))
