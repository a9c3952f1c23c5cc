"""Screening a round's updates and federating the observation normalisation: the wrapper
:class:`ScreenedStrategy` that :func:`federation.strategies.make_strategy` puts around every
Flower strategy, and the wire format of the normalisation statistics in messages.

- It sends the global normalisation statistics with every train message (config keys
  ``norm-mean``, ``norm-var``, ``norm-count``) and merges the statistics the accepted nodes
  send back (their ``norm`` ConfigRecord: this round's observations only) with
  :func:`federation.normalisation.merge_norm_stats` — count-weighted, exact;
- it checks every update with :func:`federation.updates.check_update` against the global
  weights it was trained from (array count, shapes, dtypes, NaN/inf, norm far above the round's
  others); a rejected update is logged with the node id and reason and left out before the
  inner strategy aggregates — it is never averaged in (nor seen by Krum or the median);
- with differential privacy the inner strategy is Flower's DP wrapper; screening runs first
  (see :mod:`federation.strategies`), and each release is entered in the privacy ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from logging import WARNING
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.exception import InconsistentMessageReplies
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    Strategy,
)
from flwr.serverapp.strategy.dp_fixed_clipping import DifferentialPrivacyFixedClippingBase
from flwr.supercore import log

from federation.normalisation import NormStats, merge_norm_stats
from federation.privacy import PrivacyLedger, effective_noise_multiplier
from federation.updates import check_update

__all__ = [
    "DEFAULT_MAX_NORM_RATIO",
    "NORM_KEY",
    "Rejection",
    "ScreenedStrategy",
    "norm_from_config",
    "norm_to_config",
]

DEFAULT_MAX_NORM_RATIO = 10.0
"""An update whose norm is more than this many times the median of the round's other
updates' norms is rejected."""

NORM_KEY = "norm"
"""Key of the ConfigRecord in a train reply that carries the node's normalisation statistics
(``mean``, ``var``, ``count``) and ``node-name``."""


def norm_to_config(norm: NormStats, prefix: str = "") -> dict[str, Any]:
    """``norm`` as ConfigRecord entries ``<prefix>mean``, ``<prefix>var`` (float lists) and
    ``<prefix>count`` (float)."""
    return {
        f"{prefix}mean": [float(x) for x in norm.mean],
        f"{prefix}var": [float(x) for x in norm.var],
        f"{prefix}count": float(norm.count),
    }


def norm_from_config(config: ConfigRecord, prefix: str = "") -> NormStats | None:
    """The statistics ``norm_to_config`` wrote, None if the keys are not there; ValueError
    (from NormStats) if they are malformed."""
    if f"{prefix}mean" not in config:
        return None
    mean = np.asarray(config[f"{prefix}mean"], dtype=np.float64)
    var = np.asarray(config[f"{prefix}var"], dtype=np.float64)
    count = config[f"{prefix}count"]
    if not isinstance(count, int | float):
        raise ValueError(f"{prefix}count must be a number, got {count!r}")
    return NormStats(mean, var, float(count))


@dataclass(frozen=True)
class Rejection:
    """An update left out of a round's aggregate."""

    server_round: int
    node_id: int
    node_name: str
    reason: str


def _node_name(message: Message) -> str:
    record = message.content.config_records.get(NORM_KEY)
    name = record.get("node-name") if record is not None else None
    return str(name) if name is not None else f"node {message.metadata.src_node_id}"


def _update_norm(weights: list[np.ndarray], reference: list[np.ndarray]) -> float | None:
    """||w − w_ref|| over all arrays, None if the shapes do not fit (such an update is
    rejected anyway) or the result is not finite."""
    if len(weights) != len(reference):
        return None
    total = 0.0
    for w, r in zip(weights, reference, strict=True):
        if np.shape(w) != np.shape(r):
            return None
        with np.errstate(all="ignore"):
            total += float(np.sum((np.asarray(w, np.float64) - np.asarray(r, np.float64)) ** 2))
    return float(np.sqrt(total)) if np.isfinite(total) else None


def _num_examples(message: Message) -> float:
    """A reply's ``num-examples`` (its weight in the average; screening checked it is a
    positive number), 1 if it has no metrics."""
    if not message.content.metric_records:
        return 1.0
    value = next(iter(message.content.metric_records.values())).get("num-examples", 1.0)
    return float(value) if isinstance(value, int | float) else 1.0


def _common_metrics(messages: list[Message]) -> None:
    """Keep only the metric keys every reply has (Flower refuses to aggregate otherwise; a
    node whose episodes did not end this round has no training return, say)."""
    records = [
        (message, key, record)
        for message in messages
        if not message.has_error()
        for key, record in message.content.metric_records.items()
    ]
    if not records:
        return
    common = set.intersection(*(set(record.keys()) for _, _, record in records))
    for message, key, record in records:
        if set(record.keys()) != common:
            message.content[key] = MetricRecord({k: record[k] for k in record if k in common})


class ScreenedStrategy(Strategy):
    """A Flower strategy with update screening and federated normalisation statistics (see
    the module docstring). ``norm`` is the global statistics (None until a node reports);
    ``rejections`` every update left out so far; ``last_train_replies`` the accepted train
    replies of the latest round (for per-node logging). When ``inner`` is one of Flower's DP
    fixed-clipping wrappers, ``privacy`` is the ledger its releases are entered in and
    ``clip_bound`` (client-side clipping) the norm above which an update is rejected."""

    def __init__(
        self,
        inner: Strategy,
        *,
        norm: NormStats | None = None,
        max_norm_ratio: float = DEFAULT_MAX_NORM_RATIO,
        arrayrecord_key: str = "arrays",
        privacy: PrivacyLedger | None = None,
    ) -> None:
        if max_norm_ratio <= 1.0:
            raise ValueError(f"max_norm_ratio must be > 1, got {max_norm_ratio}")
        self.inner = inner
        self.dp = inner if isinstance(inner, DifferentialPrivacyFixedClippingBase) else None
        if self.dp is not None and privacy is None:
            raise ValueError("a DP strategy needs a PrivacyLedger to account its releases")
        self.privacy = privacy if self.dp is not None else None
        self.clip_bound = (
            self.dp.clipping_norm
            if isinstance(self.dp, DifferentialPrivacyClientSideFixedClipping)
            else None
        )
        self.norm = norm
        self.max_norm_ratio = max_norm_ratio
        self.arrayrecord_key = arrayrecord_key
        self.rejections: list[Rejection] = []
        self.last_train_replies: list[Message] = []
        self._reference: list[np.ndarray] | None = None
        self._reference_keys: list[str] = []

    def summary(self) -> None:
        """Log the inner strategy's summary and the screening threshold."""
        self.inner.summary()
        log(
            20,
            "\t└──> Screening: norm ratio ≤ %s; normalisation statistics merged",
            self.max_norm_ratio,
        )

    def _with_norm(self, config: ConfigRecord) -> ConfigRecord:
        if self.norm is not None:
            for key, value in norm_to_config(self.norm, prefix="norm-").items():
                config[key] = value
        return config

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The inner strategy's train messages, with the global normalisation statistics."""
        self._reference = arrays.to_numpy_ndarrays()
        self._reference_keys = list(arrays.keys())
        return self.inner.configure_train(server_round, arrays, self._with_norm(config), grid)

    def screen(self, server_round: int, replies: list[Message]) -> list[Message]:
        """The replies whose updates pass ``check_update``; the others are logged and recorded
        in ``rejections``. Error replies pass through (the inner strategy logs them)."""
        if self._reference is None:
            raise RuntimeError("screen() before configure_train(): no reference weights")
        reference = self._reference
        updates: dict[int, list[np.ndarray] | None] = {}
        norms: dict[int, float | None] = {}
        for index, message in enumerate(replies):
            if message.has_error():
                continue
            record = message.content.array_records.get(self.arrayrecord_key)
            if record is None or len(message.content.array_records) != 1:
                updates[index] = None
                continue
            weights = record.to_numpy_ndarrays()
            updates[index] = weights
            norms[index] = (
                _update_norm(weights, reference)
                if list(record.keys()) == self._reference_keys
                else None
            )
        kept: list[Message] = []
        for index, message in enumerate(replies):
            if message.has_error():
                kept.append(message)
                continue
            candidate = updates[index]
            if candidate is None:
                reason: str | None = f"expected one ArrayRecord '{self.arrayrecord_key}'"
            elif list(message.content[self.arrayrecord_key].keys()) != self._reference_keys:
                reason = "array names differ from the global weights'"
            else:
                others = [n for i, n in norms.items() if i != index and n is not None]
                reason = check_update(
                    candidate, reference, max_norm_ratio=self.max_norm_ratio, others_norms=others
                )
                norm = norms.get(index)
                bound = self.clip_bound
                over = bound is not None and norm is not None and norm > bound * (1.0 + 1e-4)
                if reason is None and over:
                    reason = (
                        f"update norm {norm:.6g} exceeds the clipping norm "
                        f"{bound:g}: the node did not clip"
                    )
            if reason is None and message.content.metric_records:
                metrics = next(iter(message.content.metric_records.values()))
                steps = metrics.get("num-examples")
                if not isinstance(steps, int | float) or not np.isfinite(steps) or steps <= 0:
                    reason = f"num-examples must be a positive number, got {steps!r}"
            if reason is None:
                kept.append(message)
                continue
            rejection = Rejection(
                server_round, message.metadata.src_node_id, _node_name(message), reason
            )
            self.rejections.append(rejection)
            log(
                WARNING,
                "round %d: update from node %d (%s) rejected, left out of the aggregate: %s",
                server_round,
                rejection.node_id,
                rejection.node_name,
                reason,
            )
        return kept

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Screen the replies, let the inner strategy aggregate the accepted ones and merge
        their normalisation statistics into the global ones."""
        kept = self.screen(server_round, list(replies))
        accepted = [message for message in kept if not message.has_error()]
        self.last_train_replies = accepted
        if not accepted:
            log(WARNING, "round %d: no update accepted; the global weights stay", server_round)
            self.inner.aggregate_train(server_round, kept)  # logs the errors
            return None, None
        _common_metrics(kept)
        if self.dp is not None:
            arrays, metrics = self._aggregate_private(server_round, kept, accepted)
        else:
            arrays, metrics = self.inner.aggregate_train(server_round, kept)
        round_stats: list[NormStats] = []
        for message in accepted:
            record = message.content.config_records.get(NORM_KEY)
            if record is None:
                continue
            try:
                stats = norm_from_config(record)
            except ValueError as error:
                log(
                    WARNING,
                    "round %d: normalisation statistics from %s ignored: %s",
                    server_round,
                    _node_name(message),
                    error,
                )
                continue
            if stats is not None:
                round_stats.append(stats)
        if round_stats:
            base = (
                [self.norm]
                if self.norm is not None and self.norm.size == round_stats[0].size
                else []
            )
            try:
                self.norm = merge_norm_stats([*base, *round_stats])
            except ValueError as error:
                log(
                    WARNING,
                    "round %d: normalisation statistics not merged: %s",
                    server_round,
                    error,
                )
        return arrays, metrics

    def _aggregate_private(
        self, server_round: int, kept: list[Message], accepted: list[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Clip, average and noise the accepted updates through the DP wrapper, its noise
        calibrated to their number, and enter the release in the ledger."""
        assert self.dp is not None and self.privacy is not None
        for message in kept:
            if message.has_error():  # the wrapper would skip the round for an error reply
                log(
                    WARNING,
                    "round %d: node %d failed, left out: %s",
                    server_round,
                    message.metadata.src_node_id,
                    message.error,
                )
        self.dp.num_sampled_clients = len(accepted)
        arrays, metrics = self.dp.aggregate_train(server_round, accepted)
        if arrays is not None:
            weights = [_num_examples(message) for message in accepted]
            self.privacy.record(effective_noise_multiplier(self.dp.noise_multiplier, weights))
            log(
                20,
                "round %d: DP release %d, epsilon = %.4g (exact %.4g) at delta = %g",
                server_round,
                self.privacy.releases,
                self.privacy.epsilon(),
                self.privacy.epsilon_gdp(),
                self.privacy.delta,
            )
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """The inner strategy's evaluate messages, with the global normalisation statistics."""
        return self.inner.configure_evaluate(server_round, arrays, self._with_norm(config), grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """The inner strategy's (weighted) aggregate of the evaluation metrics (over the keys
        every node reported)."""
        messages = list(replies)
        _common_metrics(messages)
        try:
            return self.inner.aggregate_evaluate(server_round, messages)
        except InconsistentMessageReplies as error:
            log(WARNING, "round %d: evaluation metrics not aggregated: %s", server_round, error)
            return None
