"""The Flower app's pieces without a deployment: screening and aggregation in the wrapped
strategies (on real Flower Messages), the run configuration, checkpoints, credentials."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_ssh_private_key, load_ssh_public_key
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from federation.app_config import RUN_CONFIG_DEFAULTS, AppConfig, RunConfigError
from federation.certificates import generate_credentials, load_credentials
from federation.client_app import poison_update, round_seed
from federation.deployment import node_config_argument
from federation.normalisation import NormStats, merge_norm_stats
from federation.records import Checkpoint, RoundLog, load_checkpoint, save_checkpoint
from federation.strategies import (
    STRATEGIES,
    make_strategy,
    norm_from_config,
    restore_strategy_state,
    strategy_state,
)
from tests.federation.messages import NodeGrid, task_identity, train_reply  # noqa: F401

GLOBAL = [np.zeros((3, 2), np.float32), np.zeros(4, np.float32)]


def _round(strategy, nodes=(11, 12, 13)):
    messages = list(
        strategy.configure_train(1, ArrayRecord(GLOBAL), ConfigRecord(), NodeGrid(nodes))
    )
    return {m.metadata.dst_node_id: m for m in messages}


def _update(delta):
    return [w + np.float32(delta) for w in GLOBAL]


def test_fedavg_weights_by_local_steps_and_merges_norm_stats_exactly():
    start = NormStats(np.zeros(2), np.ones(2), 0.0)
    strategy = make_strategy("fedavg", min_nodes=2, norm=start)
    sent = _round(strategy, nodes=(11, 12))
    config = sent[11].content["config"]
    assert norm_from_config(config, prefix="norm-").count == 0.0  # the global stats go out
    a = NormStats(np.array([1.0, 2.0]), np.array([1.0, 4.0]), 30.0)
    b = NormStats(np.array([3.0, 0.0]), np.array([2.0, 1.0]), 10.0)
    replies = [
        train_reply(sent[11], _update(1.0), 300, "node-1", a, loss=1.0),
        train_reply(sent[12], _update(3.0), 100, "node-2", b, loss=3.0),
    ]
    arrays, metrics = strategy.aggregate_train(1, replies)
    merged = arrays.to_numpy_ndarrays()
    assert np.allclose(merged[0], 1.5) and np.allclose(merged[1], 1.5)  # (300·1 + 100·3)/400
    assert metrics["loss"] == pytest.approx(1.5)
    expected = merge_norm_stats([a, b])
    assert strategy.norm.count == 40.0
    assert np.allclose(strategy.norm.mean, expected.mean)
    assert np.allclose(strategy.norm.var, expected.var)
    assert not np.allclose(strategy.norm.var, (a.var + b.var) / 2)  # not averaged like weights


@pytest.mark.parametrize("mode", ["nan", "scale", "shape"])
def test_a_poisoned_update_is_rejected_logged_and_left_out(mode, caplog):
    strategy = make_strategy("fedavg", min_nodes=2)
    sent = _round(strategy)
    bad = poison_update(_update(0.5), mode)
    replies = [
        train_reply(sent[11], _update(1.0), 100, "node-1"),
        train_reply(sent[12], _update(2.0), 100, "node-2"),
        train_reply(sent[13], bad, 100, "node-3", NormStats(np.full(2, 1e6), np.ones(2), 1e6)),
    ]
    with caplog.at_level("WARNING"):
        arrays, _ = strategy.aggregate_train(1, replies)
    merged = arrays.to_numpy_ndarrays()
    assert np.allclose(merged[0], 1.5) and np.allclose(merged[1], 1.5)  # only nodes 1 and 2
    assert [(r.node_id, r.node_name) for r in strategy.rejections] == [(13, "node-3")]
    assert "node-3" in caplog.text and "13" in caplog.text and "rejected" in caplog.text
    assert strategy.norm.count == 20.0  # its statistics are left out too


def test_robust_and_adaptive_strategies_aggregate_the_accepted_updates():
    for name in STRATEGIES:
        strategy = make_strategy(name, min_nodes=3, trim_beta=0.2)
        sent = _round(strategy)
        replies = [
            train_reply(sent[11], _update(1.0), 100, "node-1"),
            train_reply(sent[12], _update(2.0), 100, "node-2"),
            train_reply(sent[13], _update(2.5), 100, "node-3"),
        ]
        arrays, _ = strategy.aggregate_train(1, replies)
        merged = arrays.to_numpy_ndarrays()
        assert all(np.isfinite(w).all() for w in merged), name
        assert not np.allclose(merged[0], 0.0), name  # the global weights moved
        if name == "fedmedian":
            assert np.allclose(merged[0], 2.0)
        if name == "krum":  # Krum picks one update, the one closest to the others
            assert np.allclose(merged[0], 2.0)


def test_fedprox_sends_proximal_mu_to_the_nodes():
    strategy = make_strategy("fedprox", min_nodes=2, proximal_mu=0.05)
    config = _round(strategy, nodes=(11, 12))[11].content["config"]
    assert config["proximal-mu"] == 0.05
    with pytest.raises(ValueError, match="proximal_mu"):
        make_strategy("fedprox", proximal_mu=0.0)
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("fedsgd")


def test_metric_keys_a_node_lacks_are_left_out_not_fatal():
    strategy = make_strategy("fedavg", min_nodes=2)
    sent = _round(strategy, nodes=(11, 12))
    replies = [
        train_reply(sent[11], _update(1.0), 100, "node-1", train_return=-3.0, loss=1.0),
        train_reply(sent[12], _update(1.0), 100, "node-2", loss=2.0),
    ]
    _, metrics = strategy.aggregate_train(1, replies)
    assert set(metrics) == {"loss"}


def test_run_config_defaults_match_pyproject_and_bad_values_name_the_key():
    import tomllib

    from federation.deployment import APP_DIR

    shipped = tomllib.loads((APP_DIR / "pyproject.toml").read_text())["tool"]["flwr"]["app"]
    assert shipped["config"] == RUN_CONFIG_DEFAULTS
    assert shipped["components"] == {
        "serverapp": "federation.server_app:app",
        "clientapp": "federation.client_app:app",
    }
    assert AppConfig.from_run_config(RUN_CONFIG_DEFAULTS) == AppConfig()
    with pytest.raises(RunConfigError, match="'num-rounds'"):
        AppConfig.from_run_config({"num-rounds": 0})
    with pytest.raises(RunConfigError, match="'local-steps'.*int"):
        AppConfig.from_run_config({"local-steps": 1.5})
    with pytest.raises(RunConfigError, match="'strategy'"):
        AppConfig.from_run_config({"strategy": "fedsgd"})
    local = AppConfig.from_run_config({"local-steps": 64, "n-steps": 32, "batch-size": 32})
    assert local.local_config(proximal_mu=0.1).proximal_mu == 0.1
    assert local.local_config().local_steps == 64
    assert min(AppConfig().evaluation_seeds()) >= 1000


def test_round_seeds_differ_per_node_and_round():
    seeds = {round_seed(0, r, n) for r in (1, 2) for n in ("node-1", "node-2")}
    assert len(seeds) == 4 and all(0 <= s < 2**31 for s in seeds)
    assert round_seed(0, 1, "node-1") == round_seed(0, 1, "node-1")


def test_checkpoint_round_trip_and_round_log(tmp_path):
    norm = NormStats(np.array([1.0, 2.0]), np.array([0.5, 3.0]), 7.0)
    weights = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones(2, np.float32)]
    assert load_checkpoint(tmp_path) is None
    save_checkpoint(tmp_path, Checkpoint(3, weights, norm, "fedavg"))
    back = load_checkpoint(tmp_path)
    assert back.server_round == 3 and back.strategy == "fedavg"
    assert all(
        np.array_equal(a, b) and a.dtype == b.dtype
        for a, b in zip(back.weights, weights, strict=True)
    )
    assert np.array_equal(back.norm.var, norm.var) and back.norm.count == 7.0
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "checkpoint.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(tmp_path / "bad")

    log = RoundLog(tmp_path, tensorboard=False)
    for r in (1, 2, 3):
        log.add(r, "node-1", "train", {"return": -float(r)}, {"update_norm": 0.1}, accepted=1)
        log.add(r, "held-out", "held-out", {"return": -2.0 * r})
    log.reject(2, 13, "node-3", "NaN")
    log.write()
    assert (tmp_path / "return.png").stat().st_size > 0
    resumed = RoundLog(tmp_path, tensorboard=False)
    resumed.resume(2)  # an interrupted run resumes after round 2: round 3's rows go
    assert [row["round"] for row in resumed.rows] == [1, 1, 2, 2]
    assert resumed.rows[0]["train_update_norm"] == 0.1
    assert resumed.rejections == [{"round": 2, "node_id": 13, "node": "node-3", "reason": "NaN"}]


def _stateful_round(strategy, server_round, arrays):
    """One round on two nodes whose updates depend on the round (deterministic)."""
    messages = list(
        strategy.configure_train(server_round, arrays, ConfigRecord(), NodeGrid((11, 12)))
    )
    sent = {m.metadata.dst_node_id: m for m in messages}
    start = arrays.to_numpy_ndarrays()
    rng = np.random.default_rng(server_round)
    replies = [
        train_reply(
            sent[node],
            [w + rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in start],
            steps,
            name,
        )
        for node, steps, name in ((11, 100, "node-1"), (12, 300, "node-2"))
    ]
    new, _ = strategy.aggregate_train(server_round, replies)
    return new


@pytest.mark.parametrize("name", ["fedadam", "fedavgm"])
def test_server_state_is_checkpointed_so_a_resumed_run_matches_an_uninterrupted_one(name, tmp_path):
    uninterrupted = make_strategy(name, min_nodes=2)
    arrays = ArrayRecord(GLOBAL)
    for server_round in (1, 2, 3):
        arrays = _stateful_round(uninterrupted, server_round, arrays)
    expected = arrays.to_numpy_ndarrays()

    first = make_strategy(name, min_nodes=2)  # interrupted after round 2
    arrays = ArrayRecord(GLOBAL)
    for server_round in (1, 2):
        arrays = _stateful_round(first, server_round, arrays)
    norm = NormStats(np.zeros(2), np.ones(2), 1.0)
    state = strategy_state(first)
    assert state and all(np.any(v != 0) for v in state.values())
    save_checkpoint(tmp_path, Checkpoint(2, arrays.to_numpy_ndarrays(), norm, name, state))

    def resume(restore):
        checkpoint = load_checkpoint(tmp_path)
        strategy = make_strategy(name, min_nodes=2)
        if restore:
            restore_strategy_state(strategy, checkpoint.strategy_state)
        result = _stateful_round(strategy, 3, ArrayRecord(checkpoint.weights))
        return result.to_numpy_ndarrays()

    resumed = resume(restore=True)
    assert all(np.array_equal(a, b) for a, b in zip(resumed, expected, strict=True))
    restarted = resume(restore=False)  # what a resume did before: moments from zero
    assert not all(np.allclose(a, b) for a, b in zip(restarted, expected, strict=True))


class _ReplyGrid(NodeGrid):
    """Nodes 11 and 12 whose replies ``answer(instructions)`` makes (real Messages)."""

    def __init__(self, answer):
        super().__init__((11, 12))
        self.answer = answer

    def send_and_receive(self, messages, *, timeout=None):
        return self.answer({m.metadata.dst_node_id: m for m in messages})


def test_a_round_with_fewer_than_min_replies_keeps_the_weights_and_the_state():
    from federation.server_app import _plain_train_round

    config = AppConfig(strategy="fedadam", min_replies=2)
    strategy = make_strategy("fedadam", min_nodes=2, norm=NormStats(np.zeros(2), np.ones(2), 0))
    honest = _update(0.1)
    one_late = _ReplyGrid(lambda sent: [train_reply(sent[11], honest, 100, "node-1")])
    arrays, trained = _plain_train_round(one_late, strategy, 1, ArrayRecord(GLOBAL), config)
    assert arrays is None and trained == {}
    one_rejected = _ReplyGrid(
        lambda sent: [
            train_reply(sent[11], honest, 100, "node-1"),
            train_reply(sent[12], poison_update(honest, "nan"), 100, "node-2"),
        ]
    )
    arrays, trained = _plain_train_round(one_rejected, strategy, 1, ArrayRecord(GLOBAL), config)
    assert arrays is None and trained == {}
    assert [r.node_name for r in strategy.rejections] == ["node-2"]
    assert strategy.norm.count == 0 and strategy_state(strategy) == {}  # nothing applied
    both = _ReplyGrid(
        lambda sent: [train_reply(sent[n], honest, 100, f"node-{n - 10}") for n in (11, 12)]
    )
    arrays, trained = _plain_train_round(both, strategy, 1, ArrayRecord(GLOBAL), config)
    assert arrays is not None and sorted(trained) == ["node-1", "node-2"]
    assert strategy.norm.count == 20.0 and strategy_state(strategy)


def test_strategy_state_of_another_strategy_is_refused():
    fedadam = make_strategy("fedadam", min_nodes=2)
    arrays = _stateful_round(fedadam, 1, ArrayRecord(GLOBAL))
    assert strategy_state(make_strategy("fedavg")) == {}
    fedavgm = make_strategy("fedavgm", min_nodes=2)
    with pytest.raises(ValueError, match="not a FedAvgM momentum"):
        restore_strategy_state(fedavgm, strategy_state(fedadam))
    assert fedavgm.inner.momentum_vector is None  # changed nothing
    with pytest.raises(ValueError, match="keeps none"):
        restore_strategy_state(make_strategy("fedavg"), strategy_state(fedadam))
    with pytest.raises(ValueError, match="not a FedOpt moment"):
        restore_strategy_state(make_strategy("fedadam"), {"fedavgm.momentum.0": np.zeros(2)})
    assert arrays is not None


def test_credentials_are_a_ca_a_server_certificate_it_signed_and_p384_node_keys(tmp_path):
    made = generate_credentials(tmp_path, ["node-1", "node-2"], hosts=("localhost", "127.0.0.1"))
    ca = x509.load_pem_x509_certificate(made.ca_certificate.read_bytes())
    server = x509.load_pem_x509_certificate(made.server_certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert server.not_valid_after_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)
    for name in ("node-1", "node-2"):
        keys = made.node(name)
        private = load_ssh_private_key(keys.private_key.read_bytes(), None)
        public = load_ssh_public_key(keys.public_key.read_bytes())
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        assert private.curve.name == "secp384r1"
        assert private.public_key().public_numbers() == public.public_numbers()
        assert keys.private_key.stat().st_mode & 0o077 == 0
    assert sorted(load_credentials(tmp_path).nodes) == ["node-1", "node-2"]
    with pytest.raises(KeyError, match="node-9"):
        made.node("node-9")
    made.server_key.unlink()
    with pytest.raises(FileNotFoundError, match="certs"):
        load_credentials(tmp_path)


def test_node_config_argument_is_toml_pairs():
    assert node_config_argument({"profile": "node-1", "k": 3, "on": True}) == (
        'profile="node-1" k=3 on=true'
    )
    with pytest.raises(ValueError, match="key"):
        node_config_argument({"a b": 1})


class InProcessGrid:
    """A Grid whose nodes are this process: each message goes, as its own copy (a transport
    delivers one per node), to the ClientApp's handler with the node's own Context (kept
    across rounds, as a SuperNode keeps it)."""

    def __init__(self, profiles, run_config):
        from flwr.app import Context

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
        self.sent = []

    def get_node_ids(self):
        return list(self.contexts)

    def send_and_receive(self, messages, *, timeout=None):
        import copy

        from federation import client_app

        replies = []
        for message in messages:
            self.sent.append(message)
            handler = client_app.train if message.metadata.message_type == "train" else None
            handler = handler or client_app.evaluate
            delivered = copy.deepcopy(message)
            replies.append(handler(delivered, self.contexts[message.metadata.dst_node_id]))
        return replies


TINY = {
    "local-steps": 32,
    "n-steps": 32,
    "batch-size": 32,
    "n-epochs": 1,
    "horizon-h": 1.0,
    "eval-seeds": 1,
    "tensorboard": False,
    "min-nodes": 2,
}


@pytest.mark.slow
def test_server_loop_trains_keeps_node_state_resumes_and_exports(tmp_path):
    from agents.exported import ExportedPolicy
    from federation.client_app import STATE_KEY
    from federation.server_app import run_federation

    run_config = {**TINY, "num-rounds": 1, "strategy": "fedprox", "proximal-mu": 0.1}
    run_config["out-dir"] = str(tmp_path)
    grid = InProcessGrid(["node-1", "node-2"], run_config)
    first = run_federation(grid, AppConfig.from_run_config(run_config))
    assert first["rounds"] == 1 and first["resumed_after"] == 0
    assert first["nodes"] == ["node-1", "node-2"] and first["held_out"] == "held-out"
    train_messages = [m for m in grid.sent if m.metadata.message_type == "train"]
    assert all(m.content["config"]["proximal-mu"] == 0.1 for m in train_messages)
    for context in grid.contexts.values():  # the optimiser state stays on the node
        assert set(context.state[STATE_KEY]) >= {"optimizer", "meta"}
    after_one = load_checkpoint(tmp_path)

    # "interrupted" after round 1: started again for 2 rounds, it resumes with round 2
    run_config["num-rounds"] = 2
    second = run_federation(grid, AppConfig.from_run_config(run_config))
    assert second["rounds"] == 2 and second["resumed_after"] == 1
    train_rounds = [
        m.content["config"]["server-round"] for m in grid.sent if m.metadata.message_type == "train"
    ]
    assert train_rounds == [1, 1, 2, 2]
    # round 2 started from round 1's weights and statistics (sent with the train message)
    round_two = [m for m in grid.sent if m.metadata.message_type == "train"][2]
    sent = round_two.content["arrays"].to_numpy_ndarrays()
    assert all(np.array_equal(a, b) for a, b in zip(sent, after_one.weights, strict=True))
    assert round_two.content["config"]["norm-count"] == after_one.norm.count > 0
    rows = list(csv.DictReader((tmp_path / "rounds.csv").open()))
    assert [(r["round"], r["node"]) for r in rows if r["node"] == "held-out"] == [
        ("1", "held-out"),
        ("2", "held-out"),
    ]
    final = load_checkpoint(tmp_path)
    assert final.norm.count > after_one.norm.count
    policy = ExportedPolicy.load(tmp_path / "policy.npz")
    assert np.allclose(policy.obs_mean, final.norm.mean)


def test_federate_script_certs_and_help(tmp_path):
    import subprocess
    import sys

    from federation.deployment import APP_DIR

    script = str(APP_DIR / "scripts" / "federate.py")
    shown = subprocess.run(
        [sys.executable, script, "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "deploy-local" in shown and "ray" in shown  # simulate needs ray: said so
    made = subprocess.run(
        [sys.executable, script, "certs", "--out", str(tmp_path), "--node", "a", "--node", "b"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ca.crt" in made.stdout
    assert sorted(load_credentials(tmp_path).nodes) == ["a", "b"]
    refused = subprocess.run(
        [sys.executable, script, "deploy-local", "--nodes", "node-1", "held-out"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 2 and "held-out" in refused.stderr
