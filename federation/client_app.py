"""The ClientApp: one factory's edge node, training PPO on its own twin.

A SuperNode is started with ``--node-config 'profile="node-1"'`` (a profile name in
``configs/federation/`` or a path to a profile TOML, :mod:`federation.profiles`). Only weight
updates, step counts, this round's observation statistics and metrics leave the node.

- ``@app.train()``: reads the global weights (ArrayRecord ``arrays``) and the global
  normalisation statistics (``norm-*`` in ConfigRecord ``config``; FedProx's ``proximal-mu``
  there too), runs :func:`federation.task.train_locally`, keeps ``LocalResult.state`` (the
  optimiser's moments, the node's round counter) in ``Context.state`` — each call may be a new
  process, the SuperNode keeps the context — and replies ``arrays`` (the new weights),
  ``metrics`` (``num-examples`` = local env steps, the FedAvg weight; training metrics) and
  ``norm`` (this round's statistics, merged exactly by the server, and ``node-name``).
- ``@app.evaluate()``: :func:`federation.task.evaluate_weights` of the global policy on the
  node's twin over the held-out evaluation seeds; replies ``metrics`` (``num-examples`` = the
  number of episodes, ``return``, ``objective``, KPIs) and ``node`` (``node-name``).

Client-side DP clipping (``dp = "client"``, :mod:`federation.privacy`): when the train
message's config carries Flower's ``clipping_norm`` (sent by
``DifferentialPrivacyClientSideFixedClipping``), the reply goes through Flower's
``fixedclipping_mod``, which clips the update (new − global weights) to that L2 norm before it
leaves the node; without it the reply is unchanged.

Secure aggregation (``secagg = true``, :mod:`federation.secagg`): the SecAgg+ protocol's
train messages (they carry Flower's ``secaggplus`` ConfigRecord) go through Flower's
``secaggplus_mod``; in its masked-vector stage the node trains as above and contributes its
update and statistics (:func:`federation.secagg.encode_contribution`) as a legacy ``FitRes``
(``num_examples`` = local steps; ``node-name`` and training metrics in plaintext), which the
mod quantises and masks before it leaves the node. A node whose update is not finite refuses
to send it (an error reply: the protocol drops it).

``--node-config 'poison="nan"'`` (or ``"scale"``, ``"shape"``) makes the node send a broken
update on purpose, to test the server's screening; never set it on a real node.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.compat.common import recorddict_compat as compat
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from federation.app_config import AppConfig
from federation.normalisation import NormStats
from federation.profiles import NodeProfile, load_node_profile
from federation.secagg import encode_contribution, is_secagg_message
from federation.strategies import NORM_KEY, norm_from_config, norm_to_config
from federation.task import LocalResult, evaluate_weights, train_locally

__all__ = [
    "POISON_MODES",
    "STATE_KEY",
    "app",
    "clip_if_requested",
    "node_profile",
    "poison_update",
    "round_seed",
]

STATE_KEY = "local-state"
"""Key of the ConfigRecord in ``Context.state`` that holds ``LocalResult.state`` (bytes)."""

POISON_MODES = ("nan", "scale", "shape")

app = ClientApp()


def node_profile(context: Context) -> NodeProfile:
    """The node's profile from its node config (``profile``: a name or a TOML path); errors
    name the SuperNode option to set, or (from the loader) the file, key and allowed range."""
    name = context.node_config.get("profile")
    if not isinstance(name, str) or not name:
        raise ValueError(
            "this SuperNode has no profile: start it with --node-config 'profile=\"node-1\"' "
            "(a name in configs/federation/ or a path to a profile TOML)"
        )
    return load_node_profile(name)


def round_seed(seed: int, server_round: int, node: str) -> int:
    """The seed of one node's local training in one round: distinct per run seed, round and
    node (CRC-32 of the node's name), below 2³¹ and below nothing else a training seed uses."""
    return (seed * 1_000_003 + server_round * 10_007 + zlib.crc32(node.encode())) % (2**31 - 1)


def poison_update(weights: list[np.ndarray], mode: str) -> list[np.ndarray]:
    """A deliberately broken update (testing only): ``nan`` puts NaN in the first array,
    ``scale`` multiplies every array by 1000, ``shape`` drops the last element of the first
    array."""
    if mode == "nan":
        first = np.array(weights[0], copy=True)
        first.flat[0] = np.nan
        return [first, *weights[1:]]
    if mode == "scale":
        return [np.asarray(w) * np.asarray(1000.0, dtype=np.asarray(w).dtype) for w in weights]
    if mode == "shape":
        return [np.asarray(weights[0]).ravel()[:-1], *weights[1:]]
    raise ValueError(f"poison mode must be one of {POISON_MODES}, got {mode!r}")


def _global_norm(config: ConfigRecord) -> NormStats:
    norm = norm_from_config(config, prefix="norm-")
    if norm is None:
        raise ValueError("the train message carries no normalisation statistics (norm-*)")
    return norm


def _global_weights(msg: Message) -> list[np.ndarray]:
    record = msg.content.array_records.get("arrays")
    if record is None:
        raise ValueError("the message carries no global weights (ArrayRecord 'arrays')")
    return record.to_numpy_ndarrays()


def _load_state(context: Context) -> dict[str, bytes] | None:
    record = context.state.config_records.get(STATE_KEY)
    if record is None:
        return None
    return {key: value for key, value in record.items() if isinstance(value, bytes)}


def _metrics(values: dict[str, float], weight: float) -> MetricRecord:
    record: dict[str, Any] = {
        key: float(value) for key, value in values.items() if np.isfinite(value)
    }
    record["num-examples"] = weight
    return MetricRecord(record)


def clip_if_requested(
    msg: Message, context: Context, call_next: Callable[[Message, Context], Message]
) -> Message:
    """A mod: ``fixedclipping_mod`` around ``call_next`` when the message's config has
    ``clipping_norm`` (client-side DP), else ``call_next`` alone."""
    config = msg.content.config_records.get("config")
    if config is not None and KEY_CLIPPING_NORM in config:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """One round of local PPO from the global weights: through SecAgg+ when the message is
    the protocol's, else with the update clipped when the server asks for client-side DP;
    see the module docstring."""
    if is_secagg_message(msg):
        return secaggplus_mod(msg, context, _train_secure)
    return clip_if_requested(msg, context, _train)


def _local_round(
    context: Context, weights: list[np.ndarray], config: ConfigRecord
) -> tuple[NodeProfile, LocalResult, list[np.ndarray]]:
    """Train on the node's twin from ``weights`` with the message's ``config`` (server round,
    FedProx's mu, global statistics), the optimiser state kept in ``context.state``; the
    profile, the result and the weights to send (poisoned if the node config says so)."""
    profile = node_profile(context)
    settings = AppConfig.from_run_config(context.run_config)
    mu = config.get("proximal-mu", 0.0)
    server_round = int(config.get("server-round", 0))  # type: ignore[arg-type]
    local = settings.local_config(proximal_mu=float(mu))  # type: ignore[arg-type]
    result = train_locally(
        profile,
        weights,
        _global_norm(config),
        local,
        round_seed=round_seed(settings.seed, server_round, profile.name),
        state=_load_state(context),
    )
    context.state[STATE_KEY] = ConfigRecord(dict(result.state))
    new_weights = result.weights
    poison = context.node_config.get("poison")
    if isinstance(poison, str) and poison:
        new_weights = poison_update(new_weights, poison)
    return profile, result, new_weights


def _train(msg: Message, context: Context) -> Message:
    config = msg.content.config_records.get("config", ConfigRecord())
    profile, result, new_weights = _local_round(context, _global_weights(msg), config)
    norm = norm_to_config(result.norm)
    norm["node-name"] = profile.name
    content = RecordDict(
        {
            "arrays": ArrayRecord(new_weights),
            "metrics": _metrics(result.metrics, float(result.num_steps)),
            NORM_KEY: ConfigRecord(norm),
        }
    )
    return Message(content=content, reply_to=msg)


def _train_secure(msg: Message, context: Context) -> Message:
    """SecAgg+'s masked-vector stage: train, and reply the contribution as a legacy FitRes
    (``secaggplus_mod`` quantises and masks it)."""
    fitins = msg.content.array_records.get("fitins.parameters")
    config = msg.content.config_records.get("fitins.config")
    if fitins is None or config is None:
        raise ValueError("a SecAgg+ train message without fitins.parameters / fitins.config")
    reference = parameters_to_ndarrays(compat.arrayrecord_to_parameters(fitins, keep_input=True))
    profile, result, new_weights = _local_round(context, reference, config)
    if not all(np.isfinite(np.asarray(w)).all() for w in new_weights):
        raise ValueError(f"node {profile.name}: update not finite; not sent into SecAgg+")
    settings = AppConfig.from_run_config(context.run_config)
    contribution = encode_contribution(
        new_weights,
        reference,
        result.norm,
        _global_norm(config),
        float(result.num_steps),
        settings.secagg_clipping_range,
    )
    metrics: dict[str, bool | bytes | float | int | str] = {
        key: float(value) for key, value in result.metrics.items() if np.isfinite(value)
    }
    metrics["node-name"] = profile.name
    fitres = FitRes(
        Status(Code.OK, ""), ndarrays_to_parameters(contribution), int(result.num_steps), metrics
    )
    return Message(content=compat.fitres_to_recorddict(fitres, keep_input=True), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """The global policy on this node's twin over the held-out evaluation seeds."""
    profile = node_profile(context)
    settings = AppConfig.from_run_config(context.run_config)
    config = msg.content.config_records.get("config", ConfigRecord())
    weights = _global_weights(msg)
    seeds = settings.evaluation_seeds()
    values = evaluate_weights(
        profile, weights, _global_norm(config), settings.local_config(), seeds
    )
    content = RecordDict(
        {
            "metrics": _metrics(values, float(len(seeds))),
            "node": ConfigRecord({"node-name": profile.name}),
        }
    )
    return Message(content=content, reply_to=msg)
