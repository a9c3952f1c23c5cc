"""SecAgg+ (federation.secagg): what a node contributes decodes to the plain FedAvg average and
the exactly merged statistics; bad settings and out-of-range statistics are refused; a round
through Flower's real SecAgg+ workflow and mod (nodes in this process) matches a plain round up
to quantisation. The deployment over TLS is in test_deployment.py."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import ArrayRecord

from federation.app_config import AppConfig, RunConfigError
from federation.normalisation import NormStats, merge_norm_stats
from federation.secagg import (
    RECORD_KEY_CONFIGS,
    SecAggSettings,
    decode_aggregate,
    encode_contribution,
    secure_train_round,
)
from federation.strategies import make_strategy
from tests.federation.messages import NodeGrid, task_identity  # noqa: F401

CLIP = 1.0


def _node(rng, reference, steps):
    weights = [(r + rng.normal(0, 0.01, r.shape)).astype(r.dtype) for r in reference]
    count = steps + int(rng.integers(1, 5))  # reset observations too
    stats = NormStats(rng.uniform(0, 1, 4), rng.uniform(0, 0.3, 4), float(count))
    return weights, stats, float(steps)


def test_contributions_decode_to_fedavg_and_the_pooled_statistics():
    rng = np.random.default_rng(0)
    reference = [rng.normal(0, 1, (3, 2)).astype(np.float32), np.zeros(4, np.float32)]
    global_norm = NormStats(rng.uniform(0, 1, 4), rng.uniform(0.01, 0.2, 4), 500.0)
    nodes = [_node(rng, reference, steps) for steps in (64, 128, 32)]
    contributions = [
        encode_contribution(w, reference, s, global_norm, n, CLIP) for w, s, n in nodes
    ]
    total = sum(n for _, _, n in nodes)
    # what SecAgg+ reveals: the step-weighted average of the contributions (exact here)
    average = [
        sum(n * c[i] for (_, _, n), c in zip(nodes, contributions, strict=True)) / total
        for i in range(len(contributions[0]))
    ]
    model, pooled = decode_aggregate(average, reference, global_norm, total, CLIP)
    fedavg = [sum(n * w[i] for w, _, n in nodes) / total for i in range(len(reference))]
    for got, want, ref in zip(model, fedavg, reference, strict=True):
        assert got.dtype == ref.dtype and np.allclose(got, want, atol=1e-6)
    expected = merge_norm_stats([s for _, s, _ in nodes])
    assert pooled.count == pytest.approx(expected.count)
    assert np.allclose(pooled.mean, expected.mean, atol=1e-12)
    assert np.allclose(pooled.var, expected.var, atol=1e-12)
    every = [np.abs(part).max() for c in contributions for part in c[len(reference) :]]
    assert max(every) <= CLIP  # the statistics fit the clipping range


def test_out_of_range_statistics_and_bad_settings_are_refused():
    reference = [np.zeros(3, np.float32)]
    zero = NormStats(np.zeros(2), np.ones(2), 0.0)
    far = NormStats(np.full(2, 50.0), np.ones(2), 10.0)  # outside the features' [-1, 10]
    with pytest.raises(ValueError, match="secagg-clipping-range"):
        encode_contribution(reference, reference, far, zero, 10.0, CLIP)
    many = NormStats(np.zeros(2), np.ones(2), 100.0)
    with pytest.raises(ValueError, match="per step"):
        encode_contribution(reference, reference, many, zero, 10.0, CLIP)
    with pytest.raises(ValueError, match="weight arrays"):
        encode_contribution([], reference, zero, zero, 10.0, CLIP)
    with pytest.raises(RunConfigError, match="'secagg'.*krum"):
        AppConfig(secagg=True, strategy="krum")
    with pytest.raises(RunConfigError, match="'secagg'.*dp"):
        AppConfig(secagg=True, dp="server")
    with pytest.raises(RunConfigError, match="'secagg-reconstruction-threshold'"):
        AppConfig(secagg=True, secagg_reconstruction_threshold=0.0)
    with pytest.raises(ValueError, match="clipping_range"):
        SecAggSettings(clipping_range=0.0)
    settings = AppConfig(secagg=True, local_steps=100, n_steps=32, batch_size=32)
    assert settings.secagg_settings().max_weight == 128.0  # whole rollouts
    # 70 nodes × 2**26 levels wrap the 2**32 modulus: refused before anything is sent
    strategy = make_strategy("fedavg", min_nodes=2, norm=zero)
    with pytest.raises(ValueError, match="modulus"):
        secure_train_round(
            NodeGrid(range(1, 71)), strategy, 1, ArrayRecord(reference), SecAggSettings()
        )


@pytest.mark.slow
def test_a_secagg_round_matches_the_plain_round_up_to_quantisation():
    from flwr.app import ConfigRecord

    from federation.server_app import observation_size
    from federation.task import initial_weights
    from tests.federation.test_app import TINY, InProcessGrid

    config = AppConfig.from_run_config({**TINY, "secagg": True})
    weights = initial_weights(config.local_config())
    start = NormStats.empty(observation_size(weights, config.local_config()))
    secure = make_strategy("fedavg", min_nodes=2, norm=start)
    grid = InProcessGrid(["node-1", "node-2"], {**TINY, "secagg": True})
    arrays, trained = secure_train_round(
        grid, secure, 1, ArrayRecord(weights), config.secagg_settings()
    )
    assert sorted(trained) == ["node-1", "node-2"]  # names and metrics in plaintext
    stages = [m.content.config_records.get(RECORD_KEY_CONFIGS) for m in grid.sent]
    assert sum(1 for s in stages if s is not None) == 4 * 2  # four protocol stages per node

    plain = make_strategy("fedavg", min_nodes=2, norm=start)  # the same nodes, in plaintext
    grid = InProcessGrid(["node-1", "node-2"], TINY)
    replies = grid.send_and_receive(
        plain.configure_train(1, ArrayRecord(weights), ConfigRecord(), grid)
    )
    expected, _ = plain.aggregate_train(1, replies)
    for a, b in zip(arrays.to_numpy_ndarrays(), expected.to_numpy_ndarrays(), strict=True):
        assert a.dtype == b.dtype and np.allclose(a, b, rtol=0, atol=1e-6)
    assert secure.norm.count == plain.norm.count > 0
    assert np.allclose(secure.norm.mean, plain.norm.mean, atol=1e-5)
    assert np.allclose(secure.norm.var, plain.norm.var, atol=1e-4)
