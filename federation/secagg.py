"""Secure aggregation (SecAgg+, Bell et al. 2020) of a round's updates, through Flower's own
``SecAggPlusWorkflow`` (server) and ``secaggplus_mod`` (node): the server learns only the
step-weighted sum of the nodes' contributions, never one node's update.

Run config ``secagg = true`` (with fedavg, fedprox, fedavgm or fedadam; not with DP or the
robust aggregators, which need the individual updates). The same ServerApp and ClientApp
serve both paths: with SecAgg+ the train step of a round is :func:`secure_train_round`, which
runs Flower's four-stage protocol (setup → share keys → collect masked vectors → unmask, each a
round trip to every sampled node) inside the Message-API ServerApp, on a ``LegacyContext`` whose
legacy strategy (:class:`_SecureRoundStrategy`) only hands out the train instructions and
collects the unmasked average. Sampling, FedProx's ``proximal-mu``, FedAvgM's momentum and
FedAdam's moments stay with the Message-API strategy (:mod:`federation.strategies`), which
then steps from the securely averaged model as it would from a plain average.

What a node contributes (:func:`encode_contribution`, decoded by :func:`decode_aggregate`),
so that one secure weighted average carries both the update and the normalisation statistics:

- its update ``w − w_global`` (not its weights: the clipping range then bounds how far one node
  can move each coordinate, see below);
- its statistics, relative to the global ones it trained from (mean μ_g, a public scale S):
  ``q·(μ_i − μ_g)/S``, ``q·(σ_i² + (μ_i − μ_g)²)/S²`` and ``q·clipping_range``, with
  ``q = count_i / n_i / 2`` (observations per local step, at most 2, halved to fit the
  clipping range). Weighted by ``n_i`` and summed, these give Σcount·(μ−μ_g),
  Σcount·(σ² + (μ−μ_g)²) and Σcount over 2·Σn — the pooled mean and variance exactly (the
  merge of :mod:`federation.normalisation`, written as sums), up to quantisation.

Flower's protocol multiplies each contribution by ``n_i / max_weight`` (``max_weight`` = the
largest local step count a node can report, so the ratio is ≤ 1), clips every entry to
``± clipping_range``, quantises it stochastically to ``quantization_range`` levels and masks
it; the server unmasks the sum and divides by Σ ratio. The average's error per entry is below
``2 · clipping_range / quantization_range / Σ ratio`` (unbiased). Sums are modulo 2³², so
``quantization_range × nodes`` must stay below 2³² (checked each round).

What SecAgg+ costs in protection: the server's screening (:mod:`federation.screening`: shapes,
NaN/inf, norm far above the others) needs the individual updates, so under SecAgg+ it cannot
run — a bad update is summed in. What still bounds it depends on whether the node runs this
code: a node whose training went wrong (a diverged ×1000 update) has every entry clipped to
± ``clipping_range`` before masking, so it moves each coordinate of the average by at most
``clipping_range / Σ ratio`` (≈ clipping_range / nodes); a node whose update is not finite
refuses to send it (its reply is an error, the protocol treats it as dropped and removes its
masks). A node whose code was altered is not bounded by its own clipping: it can add any
integer to the modular sum, i.e. up to ``2³² / quantization_range · 2 · clipping_range / Σ
ratio`` per coordinate (64 · clipping_range / Σ ratio with the defaults) — SecAgg+ gives
privacy, not robustness; the server checks only that the average is finite. Shapes are fixed
by the protocol (the masks are drawn for the global weights' shapes). The nodes' ``node-name``
and training metrics travel in plaintext, as Flower's legacy ``FitRes`` metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from logging import INFO, WARNING
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    Parameters,
    Scalar,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS
from flwr.compat.common import recorddict_compat as compat
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.compat.legacy_context import LegacyContext
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.serverapp import Grid
from flwr.supercore import log

from federation.normalisation import NormStats, merge_norm_stats
from federation.screening import ScreenedStrategy

__all__ = [
    "FEATURE_RANGE",
    "MODULUS_RANGE",
    "RECORD_KEY_CONFIGS",
    "SECAGG_STRATEGIES",
    "SecAggSettings",
    "SecureRound",
    "decode_aggregate",
    "encode_contribution",
    "is_secagg_message",
    "norm_scale",
    "secure_train_round",
]

FEATURE_RANGE = (-1.0, 10.0)
"""The observation features' range (``envs.line_env.ProductionLineEnv.observation_space``):
the public bound the statistics are scaled by, so they fit the clipping range."""

SECAGG_STRATEGIES = ("fedavg", "fedprox", "fedavgm", "fedadam")
"""Strategies that step from an average, so SecAgg+'s secure average can feed them."""

MODULUS_RANGE = 2**32
"""Flower's mask modulus (its maximum): quantised sums wrap beyond it."""

STATISTICS_ARRAYS = 3
"""Arrays after the weight update in a contribution: shifted mean, second moment, share."""

RATIO_BOUND = 2.0
"""The most observations per local step a node may report (each step's observation plus,
at most, one reset observation)."""


@dataclass(frozen=True)
class SecAggSettings:
    """SecAgg+ parameters (run config ``secagg-*``, :mod:`federation.app_config`).

    ``num_shares``: the fraction of the sampled nodes each node's key is split among (1 = all);
    ``reconstruction_threshold``: the fraction of those shares needed to reconstruct a key
    (higher: more privacy, fewer dropouts tolerated; at least 2 shares);
    ``clipping_range``: each (step-weighted) entry is clipped to ± this before quantisation;
    ``quantization_range``: levels of the quantiser; ``max_weight``: the largest local step
    count a node may report (the step weights are divided by it); ``timeout_s``: each of the
    four stages waits this long for replies."""

    num_shares: float = 1.0
    reconstruction_threshold: float = 0.67
    clipping_range: float = 1.0
    quantization_range: int = 2**26
    max_weight: float = 2048.0
    timeout_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.num_shares <= 1.0:
            raise ValueError(f"secagg num_shares must be in (0, 1], got {self.num_shares}")
        if not 0.0 < self.reconstruction_threshold <= 1.0:
            raise ValueError(
                "secagg reconstruction_threshold must be in (0, 1], "
                f"got {self.reconstruction_threshold}"
            )
        if not 0.0 < self.clipping_range < math.inf:
            raise ValueError(f"secagg clipping_range must be > 0, got {self.clipping_range}")
        if not 2 <= self.quantization_range < MODULUS_RANGE // 2:
            raise ValueError(
                f"secagg quantization_range must be in [2, 2**31), got {self.quantization_range}"
            )
        if not self.max_weight > 0:
            raise ValueError(f"secagg max_weight must be > 0, got {self.max_weight}")

    def workflow(self) -> SecAggPlusWorkflow:
        """Flower's SecAgg+ workflow with these settings."""
        return SecAggPlusWorkflow(
            num_shares=float(self.num_shares),
            reconstruction_threshold=float(self.reconstruction_threshold),
            max_weight=self.max_weight,
            clipping_range=self.clipping_range,
            quantization_range=self.quantization_range,
            modulus_range=MODULUS_RANGE,
            timeout=self.timeout_s,
        )


def norm_scale(clipping_range: float) -> float:
    """The public scale S of the statistics: shifted means (|μ_i − μ_g| ≤ D, the features'
    span) divided by S and second moments (≤ D² + (D/2)²) by S² fit ± ``clipping_range``."""
    low, high = FEATURE_RANGE
    span = high - low
    moment = span**2 + (span / 2) ** 2
    return max(math.sqrt(moment / clipping_range), span / clipping_range)


def encode_contribution(
    weights: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    stats: NormStats,
    global_norm: NormStats,
    num_examples: float,
    clipping_range: float,
) -> list[np.ndarray]:
    """What one node puts into the secure average (module docstring): its update per weight
    array, then the shifted, scaled statistics and the ratio ``count / num_examples``.
    ValueError if the shapes do not fit or the statistics fall outside ``FEATURE_RANGE``
    (they would be clipped and the merge go wrong)."""
    if len(weights) != len(reference):
        raise ValueError(f"{len(weights)} weight arrays, the global model has {len(reference)}")
    if stats.size != global_norm.size:
        raise ValueError(f"statistics of {stats.size} features, global ones {global_norm.size}")
    if num_examples <= 0:
        raise ValueError(f"num_examples must be > 0, got {num_examples}")
    update = [
        np.asarray(w, np.float64) - np.asarray(r, np.float64)
        for w, r in zip(weights, reference, strict=True)
    ]
    for u, r in zip(update, reference, strict=True):
        if u.shape != np.shape(r):
            raise ValueError(f"update of shape {u.shape} for a global array of {np.shape(r)}")
    scale = norm_scale(clipping_range)
    ratio = stats.count / num_examples
    if not 0.0 <= ratio <= RATIO_BOUND:
        raise ValueError(
            f"{stats.count:g} observations for {num_examples:g} local steps: more than "
            f"{RATIO_BOUND:g} per step cannot be encoded"
        )
    share = ratio / RATIO_BOUND
    shift = stats.mean - global_norm.mean
    mean_part = share * shift / scale
    moment_part = share * (stats.var + shift**2) / scale**2
    worst = max(float(np.max(np.abs(mean_part), initial=0.0)), float(np.max(moment_part)))
    if worst > clipping_range:
        raise ValueError(
            f"normalisation statistics outside the features' range {FEATURE_RANGE} "
            f"(scaled entry {worst:.3g} > secagg-clipping-range {clipping_range:g}); "
            "raise secagg-clipping-range or fix the observation range"
        )
    return [*update, mean_part, moment_part, np.array([share * clipping_range])]


def decode_aggregate(
    average: Sequence[np.ndarray],
    reference: Sequence[np.ndarray],
    global_norm: NormStats,
    total_examples: float,
    clipping_range: float,
) -> tuple[list[np.ndarray], NormStats]:
    """From the secure step-weighted average of the contributions: the averaged model
    (``reference`` + the average update, in the reference's dtypes) and the pooled statistics
    of this round's observations (count = Σ count). ValueError if the arrays do not fit."""
    if len(average) != len(reference) + STATISTICS_ARRAYS:
        raise ValueError(
            f"secure average has {len(average)} arrays, expected {len(reference)} weights "
            f"+ {STATISTICS_ARRAYS} statistics"
        )
    model = [
        (np.asarray(r, np.float64) + np.asarray(u, np.float64)).astype(np.asarray(r).dtype)
        for u, r in zip(average[: len(reference)], reference, strict=True)
    ]
    mean_part, moment_part, share_part = (
        np.asarray(a, np.float64) for a in average[len(reference) :]
    )
    scale = norm_scale(clipping_range)
    share = float(share_part.ravel()[0]) / clipping_range
    if share <= 0 or not np.isfinite(share):
        return model, NormStats.empty(global_norm.size)
    count = share * RATIO_BOUND * total_examples
    shift = mean_part * scale / share
    moment = moment_part * scale**2 / share
    var = np.maximum(moment - shift**2, 0.0)
    return model, NormStats(global_norm.mean + shift, var, count)


def is_secagg_message(message: Message) -> bool:
    """Whether ``message`` is one of the SecAgg+ protocol's (it carries Flower's
    ``secaggplus`` ConfigRecord)."""
    return RECORD_KEY_CONFIGS in message.content.config_records


@dataclass
class SecureRound:
    """What one SecAgg+ round left: the unmasked average (None if the protocol halted), each
    replying node's id, local steps and plaintext metrics, and the failures."""

    average: list[np.ndarray] | None
    nodes: list[tuple[int, float, dict[str, Scalar]]]
    failures: int


class _SecureRoundStrategy(LegacyStrategy):
    """The legacy strategy the SecAgg+ workflow calls: train instructions for the nodes the
    Message-API strategy sampled, and the unmasked average captured (not aggregated further:
    that is the Message-API strategy's job)."""

    def __init__(self, grid: Grid, node_ids: Sequence[int], config: Mapping[str, Any]) -> None:
        self.grid = grid
        self.node_ids = list(node_ids)
        self.config = dict(config)
        self.outcome = SecureRound(None, [], 0)

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        """Not used (the ServerApp holds the global model)."""
        return None

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        """One train instruction per sampled node: the global weights and the Message-API
        strategy's config (server round, normalisation statistics, FedProx's mu)."""
        run_id = int(getattr(getattr(self.grid, "run", None), "run_id", 0) or 0)
        return [
            (GridClientProxy(node_id, self.grid, run_id), FitIns(parameters, self.config))
            for node_id in self.node_ids
        ]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        """Capture the unmasked average (every result carries it) and the nodes' metrics."""
        average = parameters_to_ndarrays(results[0][1].parameters) if results else None
        nodes = [
            (int(getattr(proxy, "node_id", 0)), float(res.num_examples), dict(res.metrics))
            for proxy, res in results
        ]
        self.outcome = SecureRound(average, nodes, len(failures))
        return (results[0][1].parameters if results else None), {}

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        """Not used (evaluation goes through the Message-API strategy)."""
        return []

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        """Not used."""
        return None, {}

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        """Not used."""
        return None


def secure_train_round(
    grid: Grid,
    strategy: ScreenedStrategy,
    server_round: int,
    arrays: ArrayRecord,
    settings: SecAggSettings,
    *,
    min_replies: int = 1,
) -> tuple[ArrayRecord | None, dict[str, dict[str, float]]]:
    """One round's training with SecAgg+: ``strategy`` samples the nodes and configures them
    as in a plain round; Flower's SecAgg+ workflow runs the local training and returns only
    the step-weighted average of the contributions; the global statistics are merged with the
    pooled ones decoded from it, and the inner strategy (FedAvg, FedProx, FedAvgM, FedAdam)
    steps from the averaged model. Returns the new global arrays (None if the round produced
    no aggregate: the protocol halted, fewer than ``min_replies`` nodes are in the sum, or the
    average is not finite) and each replying node's plaintext training metrics by node
    name."""
    instructions = list(strategy.configure_train(server_round, arrays, ConfigRecord(), grid))
    if not instructions:
        log(WARNING, "round %d: no nodes sampled for SecAgg+", server_round)
        return None, {}
    if len(instructions) * settings.quantization_range >= MODULUS_RANGE:
        raise ValueError(
            f"secagg-quantization-range {settings.quantization_range} × {len(instructions)} "
            f"nodes reaches the 2**32 modulus: lower it below {MODULUS_RANGE // len(instructions)}"
        )
    reference = arrays.to_numpy_ndarrays()
    global_norm = strategy.norm or NormStats.empty(0)
    config = dict(instructions[0].content.config_records.get("config", ConfigRecord()))
    adapter = _SecureRoundStrategy(grid, [m.metadata.dst_node_id for m in instructions], config)
    context = LegacyContext(
        Context(run_id=0, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        strategy=adapter,
    )
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {WorkflowKey.CURRENT_ROUND: server_round}
    )
    context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters(reference), keep_input=True
    )
    settings.workflow()(grid, context)
    outcome = adapter.outcome
    trained = {
        str(metrics.get("node-name", f"node-{node_id}")): {
            key: float(value)
            for key, value in metrics.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        for node_id, _, metrics in outcome.nodes
    }
    if outcome.average is None:
        log(WARNING, "round %d: SecAgg+ halted (too few nodes replied)", server_round)
        return None, {}
    if len(outcome.nodes) < min_replies:
        log(
            WARNING,
            "round %d: %d nodes in the secure sum, fewer than min-replies %d; "
            "the global weights stay",
            server_round,
            len(outcome.nodes),
            min_replies,
        )
        return None, trained
    total = sum(steps for _, steps, _ in outcome.nodes)
    model, round_norm = decode_aggregate(
        outcome.average, reference, global_norm, total, settings.clipping_range
    )
    if not all(np.isfinite(w).all() for w in model):
        log(WARNING, "round %d: the secure average is not finite; left out", server_round)
        return None, trained
    log(
        INFO,
        "round %d: SecAgg+ average of %d nodes (%d failures), %g local steps",
        server_round,
        len(outcome.nodes),
        outcome.failures,
        total,
    )
    reply = Message(
        content=RecordDict(
            {
                "arrays": ArrayRecord(model),
                "metrics": MetricRecord({"num-examples": total}),
            }
        ),
        reply_to=instructions[0],
    )
    new_arrays, _ = strategy.inner.aggregate_train(server_round, [reply])
    if round_norm.count > 0:
        base = [strategy.norm] if strategy.norm is not None else []
        strategy.norm = merge_norm_stats([*base, round_norm])
    strategy.last_train_replies = []
    return new_arrays, trained
