"""Differential privacy of the federation, in process: Flower's fixed-clipping wrappers around
the screened strategy (clipping bounds every update, noise changes the aggregate, screening
comes first, statistics still merge exactly), client-side clipping, the run-config checks and
the accountant's ε."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict

from federation.app_config import AppConfig, RunConfigError
from federation.client_app import clip_if_requested
from federation.normalisation import NormStats, merge_norm_stats
from federation.privacy import (
    PrivacyLedger,
    effective_noise_multiplier,
    gdp_epsilon,
    rdp_epsilon,
)
from federation.strategies import make_strategy
from tests.federation.messages import NodeGrid, task_identity, train_reply  # noqa: F401

GLOBAL = [np.full((20, 25), 0.5, np.float32), np.zeros(500, np.float32)]
CLIP = 2.0


def _reply(instruction, weights, node, norm=None, steps=64):
    return train_reply(instruction, weights, steps, node, norm)


def _configure(strategy, server_round=1, nodes=(11, 12, 13)):
    messages = strategy.configure_train(
        server_round, ArrayRecord(GLOBAL), ConfigRecord(), NodeGrid(nodes)
    )
    return {m.metadata.dst_node_id: m for m in messages}


def _direction(seed):
    rng = np.random.default_rng(seed)
    parts = [rng.normal(size=w.shape) for w in GLOBAL]
    total = math.sqrt(sum(float(np.sum(p**2)) for p in parts))
    return [p / total for p in parts]


def _update(seed, norm):
    """The global weights plus a random update of L2 norm ``norm``."""
    return [
        (w + norm * d).astype(np.float32) for w, d in zip(GLOBAL, _direction(seed), strict=True)
    ]


def _deviation(arrays):
    return [a.astype(np.float64) - g for a, g in zip(arrays, GLOBAL, strict=True)]


def _l2(parts):
    return math.sqrt(sum(float(np.sum(np.asarray(p, np.float64) ** 2)) for p in parts))


NORMS = {11: 0.5, 12: 3.0, 13: 6.0}  # one under the clipping norm, two above


def _private_round(noise, seed=0):
    strategy = make_strategy(
        "fedavg", min_nodes=3, dp="server", dp_noise_multiplier=noise, dp_clipping_norm=CLIP
    )
    sent = _configure(strategy)
    replies = [_reply(sent[n], _update(n, NORMS[n]), f"node-{n}") for n in sent]
    np.random.seed(seed)  # Flower's noise draws from NumPy's global generator
    arrays, _ = strategy.aggregate_train(1, replies)
    return strategy, arrays.to_numpy_ndarrays()


def test_server_side_clipping_bounds_every_update_and_the_aggregate_as_promised():
    strategy, aggregate = _private_round(noise=0.0)
    # every accepted update was clipped to the clipping norm before averaging
    clipped = [m.content["arrays"].to_numpy_ndarrays() for m in strategy.last_train_replies]
    assert len(clipped) == 3
    for message, arrays in zip(strategy.last_train_replies, clipped, strict=True):
        expected = min(NORMS[message.metadata.src_node_id], CLIP)
        assert _l2(_deviation(arrays)) == pytest.approx(expected, rel=1e-5)
    # noise 0: the aggregate is the global weights plus the mean of the clipped updates
    expected = [
        np.mean(
            [min(1.0, CLIP / NORMS[n]) * NORMS[n] * d for n in NORMS for d in [_direction(n)[i]]],
            axis=0,
        )
        for i in range(len(GLOBAL))
    ]
    assert all(
        np.allclose(dev, exp, atol=1e-5)
        for dev, exp in zip(_deviation(aggregate), expected, strict=True)
    )
    assert _l2(_deviation(aggregate)) <= CLIP * (1 + 1e-6)
    # with noise 0 nothing is private: the ledger says ε = inf
    assert strategy.privacy.releases == 1 and math.isinf(strategy.privacy.epsilon())


def test_noise_changes_the_aggregate_by_z_c_over_m():
    _, exact = _private_round(noise=0.0)
    _, noisy = _private_round(noise=1.0, seed=1)
    difference = np.concatenate(
        [(a.astype(np.float64) - b).ravel() for a, b in zip(noisy, exact, strict=True)]
    )
    assert np.std(difference) == pytest.approx(1.0 * CLIP / 3, rel=0.1)  # z·C/m, m = 3
    _, again = _private_round(noise=1.0, seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(noisy, again, strict=True))


def test_screening_comes_before_clipping_and_the_statistics_still_merge_exactly(caplog):
    start = NormStats(np.zeros(2), np.ones(2), 5.0)
    strategy = make_strategy(
        "fedprox",
        min_nodes=2,
        dp="server",
        dp_noise_multiplier=0.5,
        dp_clipping_norm=CLIP,
        norm=start,
    )
    sent = _configure(strategy, nodes=(11, 12, 13, 14))
    a = NormStats(np.array([1.0, 2.0]), np.array([1.0, 4.0]), 30.0)
    b = NormStats(np.array([3.0, 0.0]), np.array([2.0, 1.0]), 10.0)
    scaled = [w * np.float32(1000.0) for w in _update(14, 1.0)]  # clipping would hide it
    nan = _update(13, 1.0)
    nan[0].flat[0] = np.nan
    replies = [
        _reply(sent[11], _update(11, 1.0), "node-1", a),
        _reply(sent[12], _update(12, 1.5), "node-2", b),
        _reply(sent[13], nan, "node-3"),
        _reply(sent[14], scaled, "node-4"),
    ]
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    assert {r.node_name for r in strategy.rejections} == {"node-3", "node-4"}
    assert [m.metadata.src_node_id for m in strategy.last_train_replies] == [11, 12]
    # the noise was calibrated to the two accepted updates, and one release entered
    assert strategy.dp.num_sampled_clients == 2 and strategy.privacy.releases == 1
    merged = merge_norm_stats([start, a, b])
    assert np.allclose(strategy.norm.mean, merged.mean)
    assert np.allclose(strategy.norm.var, merged.var)
    assert strategy.norm.count == merged.count == 45.0


def test_client_side_clipping_on_the_node_and_a_node_that_did_not_clip_is_rejected():
    strategy = make_strategy(
        "fedavg", min_nodes=2, dp="client", dp_noise_multiplier=1.0, dp_clipping_norm=CLIP
    )
    sent = _configure(strategy, nodes=(11, 12, 13))
    assert all(m.content["config"]["clipping_norm"] == CLIP for m in sent.values())
    context = Context(run_id=1, node_id=11, node_config={}, state=RecordDict(), run_config={})

    def big_update(msg, ctx):
        return _reply(msg, _update(msg.metadata.dst_node_id, 7.0), "node")

    clipped = clip_if_requested(sent[11], context, big_update)
    assert _l2(_deviation(clipped.content["arrays"].to_numpy_ndarrays())) == pytest.approx(
        CLIP, rel=1e-5
    )
    # without DP in the message the reply is left alone
    plain = make_strategy("fedavg", min_nodes=2)
    unclipped = clip_if_requested(_configure(plain)[11], context, big_update)
    assert _l2(_deviation(unclipped.content["arrays"].to_numpy_ndarrays())) == pytest.approx(
        7.0, rel=1e-5
    )
    replies = [
        clip_if_requested(sent[11], context, big_update),
        clip_if_requested(sent[12], context, big_update),
        _reply(sent[13], _update(13, 3.0), "node-3"),  # skipped the clipping
    ]
    arrays, _ = strategy.aggregate_train(1, replies)
    assert arrays is not None
    [rejection] = strategy.rejections
    assert rejection.node_name == "node-3" and "exceeds the clipping norm" in rejection.reason


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"dp": "laplace"}, "'dp'"),
        ({"dp": "server", "strategy": "fedmedian"}, "'dp'"),
        ({"dp": "client", "strategy": "fedadam"}, "'dp'"),
        ({"dp-noise-multiplier": -0.1}, "'dp-noise-multiplier'"),
        ({"dp-noise-multiplier": "much"}, "'dp-noise-multiplier'"),
        ({"dp-noise-multiplier": math.inf}, "'dp-noise-multiplier'"),
        ({"dp-clipping-norm": 0.0}, "'dp-clipping-norm'"),
        ({"dp-delta": 1.0}, "'dp-delta'"),
        ({"dp-delta": 0.0}, "'dp-delta'"),
    ],
)
def test_bad_dp_settings_are_refused_naming_the_key(values, key):
    with pytest.raises(RunConfigError, match=key):
        AppConfig.from_run_config(values)


def test_good_dp_settings_are_taken_and_make_strategy_checks_too():
    config = AppConfig.from_run_config(
        {"dp": "server", "strategy": "fedprox", "dp-noise-multiplier": 2, "dp-delta": 1e-6}
    )
    assert (config.dp, config.dp_noise_multiplier, config.dp_delta) == ("server", 2.0, 1e-6)
    with pytest.raises(ValueError, match="dp"):
        make_strategy("krum", dp="server")
    with pytest.raises(ValueError, match="dp"):
        make_strategy("fedavg", dp="on")
    with pytest.raises(ValueError, match="clipping norm"):
        make_strategy("fedavg", dp="server", dp_clipping_norm=0.0)


def test_epsilon_known_values_and_composition():
    # RDP/zCDP: rho = 1/(2 z^2) per release, eps = rho + 2 sqrt(rho ln(1/delta))
    assert rdp_epsilon([1.0], 1e-5) == pytest.approx(0.5 + 2 * math.sqrt(0.5 * math.log(1e5)))
    assert rdp_epsilon([1.0], 1e-5) == pytest.approx(5.2985, abs=1e-4)
    # exact Gaussian mechanism: sigma = 3.73 gives (1, 1e-5)-DP (Balle & Wang 2018)
    assert gdp_epsilon([3.73], 1e-5) == pytest.approx(1.0, abs=2e-3)
    # T releases at z are one at z / sqrt(T) (Gaussians compose exactly)
    assert gdp_epsilon([2.0] * 4, 1e-5) == pytest.approx(gdp_epsilon([1.0], 1e-5), rel=1e-8)
    for z in (0.5, 1.0, 4.0):
        assert gdp_epsilon([z] * 10, 1e-5) < rdp_epsilon([z] * 10, 1e-5)  # the bound is looser
    assert rdp_epsilon([], 1e-5) == gdp_epsilon([], 1e-5) == 0.0
    assert math.isinf(rdp_epsilon([1.0, 0.0], 1e-5))
    with pytest.raises(ValueError, match="delta"):
        rdp_epsilon([1.0], 0.0)
    # a round with unequal weights is less private than its nominal multiplier says
    assert effective_noise_multiplier(1.0, [64, 64, 64]) == pytest.approx(1.0)
    assert effective_noise_multiplier(1.0, [64, 32, 32]) == pytest.approx(2 / 3)


def _epsilons(noise, rounds=3):
    strategy = make_strategy(
        "fedavg", min_nodes=3, dp="server", dp_noise_multiplier=noise, dp_clipping_norm=CLIP
    )
    spent = []
    for server_round in range(1, rounds + 1):
        sent = _configure(strategy, server_round)
        replies = [_reply(sent[n], _update(n, NORMS[n]), f"node-{n}") for n in sent]
        strategy.aggregate_train(server_round, replies)
        spent.append(strategy.privacy.epsilon())
    return spent, strategy.privacy


def test_epsilon_is_reported_per_round_grows_with_rounds_and_falls_with_noise(tmp_path):
    low, ledger = _epsilons(noise=0.8)
    high, _ = _epsilons(noise=3.0)
    assert low == sorted(low) and low[0] < low[-1]  # every round spends more
    assert all(h < lo for h, lo in zip(high, low, strict=True))
    assert low[-1] == pytest.approx(rdp_epsilon([0.8] * 3, 1e-5))
    # the ledger survives a restart (resume keeps counting) and refuses another delta
    ledger.save(tmp_path)
    saved = json.loads((tmp_path / "privacy.json").read_text())
    assert saved["epsilon"] == pytest.approx(low[-1])
    again = PrivacyLedger.load(tmp_path, 1e-5)
    assert again.noise_multipliers == [0.8] * 3 and again.epsilon() == pytest.approx(low[-1])
    with pytest.raises(ValueError, match="delta"):
        PrivacyLedger.load(tmp_path, 1e-6)


class _InProcessGrid:
    """Each message goes to the ClientApp's handler (clipping included) with the node's own
    Context, as in test_app."""

    def __init__(self, profiles, run_config):
        self.contexts = {
            21 + i: Context(
                run_id=1,
                node_id=21 + i,
                node_config={"profile": name},
                state=RecordDict(),
                run_config=run_config,
            )
            for i, name in enumerate(profiles)
        }

    def get_node_ids(self):
        return list(self.contexts)

    def send_and_receive(self, messages, *, timeout=None):
        from federation import client_app

        replies = []
        for message in messages:
            train = message.metadata.message_type == "train"
            handler = client_app.train if train else client_app.evaluate
            replies.append(handler(message, self.contexts[message.metadata.dst_node_id]))
        return replies


def test_a_client_side_dp_federation_reports_epsilon_per_round(tmp_path):
    import csv

    from federation.records import load_checkpoint
    from federation.server_app import run_federation
    from federation.weights import initial_weights

    run_config = {
        "local-steps": 32,
        "n-steps": 32,
        "batch-size": 32,
        "n-epochs": 1,
        "horizon-h": 1.0,
        "eval-seeds": 1,
        "tensorboard": False,
        "min-nodes": 2,
        "held-out": "",
        "num-rounds": 2,
        "dp": "client",
        "dp-noise-multiplier": 1.5,
        "dp-clipping-norm": 0.05,
        "out-dir": str(tmp_path),
    }
    config = AppConfig.from_run_config(run_config)
    summary = run_federation(_InProcessGrid(["node-1", "node-2"], run_config), config)
    assert summary["rejections"] == []  # the nodes clipped: nothing over the clipping norm
    expected = [rdp_epsilon([1.5], 1e-5), rdp_epsilon([1.5] * 2, 1e-5)]
    assert summary["dp"]["releases"] == 2
    assert summary["dp"]["epsilon"] == pytest.approx(expected[-1])
    rows = list(csv.DictReader((tmp_path / "rounds.csv").open()))
    per_round = {int(r["round"]): float(r["epsilon"]) for r in rows}
    assert per_round == pytest.approx({1: expected[0], 2: expected[1]})
    assert json.loads((tmp_path / "privacy.json").read_text())["noise_multipliers"] == [1.5] * 2
    # the global weights moved, by at most clipping norm + noise per round
    start = initial_weights(config.local_config())
    final = load_checkpoint(tmp_path).weights
    assert _l2([a - b for a, b in zip(final, start, strict=True)]) > 0
