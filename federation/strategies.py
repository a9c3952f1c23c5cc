"""Server strategies: Flower's own aggregators, wrapped so that every round's updates are
screened and the observation normalisation is federated as statistics, not as weights.

``make_strategy(name, ...)`` builds one of Flower's message-API strategies
(``flwr.serverapp.strategy``) and wraps it in :class:`ScreenedStrategy`:

- ``fedavg`` (default): FedAvg, weighted by each node's local PPO steps (``num-examples``);
- ``fedprox``: FedProx — the same average, and ``proximal-mu`` sent to the nodes, which add
  (mu/2)·||w − w_global||² to their local PPO loss (``federation.task``);
- ``fedavgm``: FedAvgM, server-side momentum (``server_momentum``, ``server_lr``);
- ``fedadam``: FedAdam, server-side Adam on the averaged update (``server_lr`` as ``eta``);
- ``fedmedian`` / ``fedtrimmedavg`` (``trim_beta``) / ``krum`` (``krum_malicious``): robust
  aggregators, for when some nodes may send harmful updates.

The wrapper, around whichever of these, screens every update and federates the observation
normalisation as statistics (:mod:`federation.screening`).

Differential privacy (``dp``, :mod:`federation.privacy`): with ``dp="server"`` the inner
strategy (FedAvg or FedProx only) is wrapped in Flower's
``DifferentialPrivacyServerSideFixedClipping``, with ``dp="client"`` in
``DifferentialPrivacyClientSideFixedClipping`` (the nodes clip, ``fixedclipping_mod``). The
order is screening → clipping → averaging → noise: updates are screened as the nodes sent them
(clipping would hide a scaled update's norm), only the accepted ones reach the DP wrapper, whose
noise is calibrated to their number each round, and each release is entered in the
:class:`federation.privacy.PrivacyLedger` with its effective noise multiplier. With client-side
clipping the screening also rejects an update whose norm exceeds the clipping norm (a node that
did not clip). The normalisation statistics are merged as without DP (they are not noised).

Strategy state that lives on the server (FedAvgM's momentum, FedAdam's first and second
moments) is read by :func:`strategy_state` and put back by :func:`restore_strategy_state`; the
ServerApp saves it in the same atomic checkpoint as the global weights
(:mod:`federation.records`), so a resumed FedAdam or FedAvgM federation continues with the
moments it had, as if it had not been interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from flwr.serverapp.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideFixedClipping,
    FedAdam,
    FedAvg,
    FedAvgM,
    FedMedian,
    FedProx,
    FedTrimmedAvg,
    Krum,
    Strategy,
)
from flwr.serverapp.strategy.fedopt import FedOpt

from federation.normalisation import NormStats
from federation.privacy import DP_MODES, DP_STRATEGIES, PrivacyLedger
from federation.screening import (
    DEFAULT_MAX_NORM_RATIO,
    NORM_KEY,
    Rejection,
    ScreenedStrategy,
    norm_from_config,
    norm_to_config,
)

__all__ = [
    "DEFAULT_MAX_NORM_RATIO",
    "NORM_KEY",
    "STRATEGIES",
    "Rejection",
    "ScreenedStrategy",
    "make_strategy",
    "norm_from_config",
    "norm_to_config",
    "restore_strategy_state",
    "strategy_state",
]

STRATEGIES = ("fedavg", "fedprox", "fedavgm", "fedadam", "fedmedian", "fedtrimmedavg", "krum")
"""Names ``make_strategy`` accepts."""


def make_strategy(
    name: str = "fedavg",
    *,
    min_nodes: int = 2,
    min_available_nodes: int | None = None,
    fraction_train: float = 1.0,
    proximal_mu: float = 0.01,
    server_lr: float | None = None,
    server_momentum: float = 0.9,
    trim_beta: float = 0.2,
    krum_malicious: int = 0,
    max_norm_ratio: float = DEFAULT_MAX_NORM_RATIO,
    norm: NormStats | None = None,
    dp: str = "off",
    dp_noise_multiplier: float = 1.0,
    dp_clipping_norm: float = 1.0,
    dp_delta: float = 1e-5,
    privacy: PrivacyLedger | None = None,
) -> ScreenedStrategy:
    """The named Flower strategy (``STRATEGIES``), wrapped in ScreenedStrategy.

    ``min_nodes`` is set explicitly as ``min_train_nodes`` and ``min_evaluate_nodes`` (Flower's
    default of 2 is not assumed); ``min_available_nodes`` defaults to it. ``fraction_train``
    < 1 samples part of the nodes each round (partial participation). ``server_lr`` is
    FedAvgM's server learning rate (default 1) or FedAdam's eta (default 0.01).

    ``dp`` "server" or "client" wraps the strategy (fedavg or fedprox) in Flower's DP
    fixed-clipping wrapper with ``dp_noise_multiplier`` and ``dp_clipping_norm``; its releases
    are entered in ``privacy`` (a new ledger at ``dp_delta`` if None; pass the saved one when
    resuming)."""
    if dp not in DP_MODES:
        raise ValueError(f"dp must be one of {', '.join(DP_MODES)}, got {dp!r}")
    if dp != "off" and name.lower() not in DP_STRATEGIES:
        raise ValueError(
            f"dp={dp!r} needs an averaging strategy ({', '.join(DP_STRATEGIES)}), got {name!r}"
        )
    if min_nodes < 1:
        raise ValueError(f"min_nodes must be >= 1, got {min_nodes}")
    common: dict[str, Any] = {
        "fraction_train": fraction_train,
        "fraction_evaluate": 1.0,
        "min_train_nodes": min_nodes,
        "min_evaluate_nodes": min_nodes,
        "min_available_nodes": min_nodes if min_available_nodes is None else min_available_nodes,
    }
    inner: Strategy
    key = name.lower()
    if key == "fedavg":
        inner = FedAvg(**common)
    elif key == "fedprox":
        if proximal_mu <= 0:
            raise ValueError(f"fedprox needs proximal_mu > 0, got {proximal_mu}")
        inner = FedProx(**common, proximal_mu=proximal_mu)
    elif key == "fedavgm":
        inner = FedAvgM(
            **common,
            server_learning_rate=1.0 if server_lr is None else server_lr,
            server_momentum=server_momentum,
        )
    elif key == "fedadam":
        inner = FedAdam(**common, eta=0.01 if server_lr is None else server_lr)
    elif key == "fedmedian":
        inner = FedMedian(**common)
    elif key == "fedtrimmedavg":
        inner = FedTrimmedAvg(**common, beta=trim_beta)
    elif key == "krum":
        inner = Krum(**common, num_malicious_nodes=krum_malicious)
    else:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if dp != "off":
        wrapper = (
            DifferentialPrivacyServerSideFixedClipping
            if dp == "server"
            else DifferentialPrivacyClientSideFixedClipping
        )
        inner = wrapper(inner, dp_noise_multiplier, dp_clipping_norm, min_nodes)
        privacy = privacy if privacy is not None else PrivacyLedger(dp_delta)
    return ScreenedStrategy(inner, norm=norm, max_norm_ratio=max_norm_ratio, privacy=privacy)


_MOMENTS = ("m_t", "v_t")


def strategy_state(strategy: ScreenedStrategy) -> dict[str, np.ndarray]:
    """The server-side state of ``strategy``'s aggregator as named arrays (copies): FedAdam's
    (FedOpt's) moments as ``fedopt.m_t.<array name>`` and ``fedopt.v_t.<array name>``, FedAvgM's
    momentum as ``fedavgm.momentum.<index>``; empty for the stateless strategies and before the
    first aggregation."""
    inner = strategy.inner
    state: dict[str, np.ndarray] = {}
    if isinstance(inner, FedOpt):
        for moment in _MOMENTS:
            for key, value in (getattr(inner, moment) or {}).items():
                state[f"fedopt.{moment}.{key}"] = np.array(value, copy=True)
    elif isinstance(inner, FedAvgM) and inner.momentum_vector is not None:
        for index, value in enumerate(inner.momentum_vector):
            state[f"fedavgm.momentum.{index}"] = np.array(value, copy=True)
    return state


def restore_strategy_state(strategy: ScreenedStrategy, state: Mapping[str, np.ndarray]) -> None:
    """Put ``state`` (from :func:`strategy_state`) back into ``strategy``'s aggregator.
    ValueError, changing nothing, if it belongs to another kind of strategy (names that this
    aggregator does not keep) or a FedAvgM momentum has a gap in its indices."""
    if not state:
        return
    inner = strategy.inner
    if isinstance(inner, FedOpt):
        moments: dict[str, dict[str, np.ndarray]] = {moment: {} for moment in _MOMENTS}
        for name, value in state.items():
            parts = name.split(".", 2)
            if len(parts) != 3 or parts[0] != "fedopt" or parts[1] not in moments:
                raise ValueError(
                    f"strategy state {name!r} is not a FedOpt moment (fedopt.m_t.* / fedopt.v_t.*)"
                )
            moments[parts[1]][parts[2]] = np.array(value, copy=True)
        for moment, values in moments.items():
            setattr(inner, moment, values or None)
        return
    if isinstance(inner, FedAvgM):
        vectors: dict[int, np.ndarray] = {}
        for name, value in state.items():
            prefix, _, index = name.rpartition(".")
            if prefix != "fedavgm.momentum" or not index.isdigit():
                raise ValueError(
                    f"strategy state {name!r} is not a FedAvgM momentum (fedavgm.momentum.<i>)"
                )
            vectors[int(index)] = np.array(value, copy=True)
        if sorted(vectors) != list(range(len(vectors))):
            raise ValueError(f"FedAvgM momentum indices {sorted(vectors)} are not 0..n-1")
        inner.momentum_vector = [vectors[i] for i in range(len(vectors))]
        return
    raise ValueError(
        f"strategy state {sorted(state)[:3]}... given to {type(inner).__name__}, which keeps none"
    )
