"""Federated PPO across factory twins with Flower (Message API, flwr 1.40–1.x).

Each edge node trains PPO on its own twin — a scenario plus a node profile (wear rates, age,
demand, tariff, ambient) — and only weight updates, step counts and observation statistics
leave it. Split as Flower's own examples are:

- :mod:`federation.profiles` — node profiles (``configs/federation/``) and the node's twin;
- :mod:`federation.task` — local PPO training on a node's twin and the public entry points;
  :mod:`federation.weights` — the policy network and its weights; :mod:`federation.evaluation`
  — evaluation on a node's twin and the policy export (``agents.exported`` format);
- :mod:`federation.normalisation` — observation statistics, merged exactly (not averaged);
- :mod:`federation.updates` — screening of nodes' updates (shape, dtype, NaN/inf, norm);
- :mod:`federation.strategies` — Flower's FedAvg / FedProx / FedAvgM / FedAdam / FedMedian /
  FedTrimmedAvg / Krum, wrapped with screening and statistics merging;
- :mod:`federation.client_app` / :mod:`federation.server_app` — the ClientApp and ServerApp
  (``[tool.flwr.app.components]`` in pyproject.toml); :mod:`federation.app_config` — the run
  configuration; :mod:`federation.records` — CSV, PNG, TensorBoard, checkpoint;
  :mod:`federation.privacy` — ε of the Gaussian mechanism over rounds (differential privacy);
- :mod:`federation.certificates` / :mod:`federation.deployment` — TLS certificates and node
  keys; a SuperLink and SuperNodes started as processes on this machine
  (:mod:`federation.daemons` runs the processes, :mod:`federation.flwr_cli` talks to the
  SuperLink).

Names are imported from their submodule on first use, so ``import federation`` loads neither
flwr nor torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from federation.app_config import AppConfig
    from federation.certificates import Credentials, generate_credentials
    from federation.deployment import LocalDeployment, NodeSpec
    from federation.evaluation import evaluate_weights, export_policy
    from federation.normalisation import NormStats, merge_norm_stats
    from federation.privacy import PrivacyLedger, gdp_epsilon, rdp_epsilon
    from federation.profiles import (
        HELD_OUT_NODE,
        TRAINING_NODES,
        NodeProfile,
        load_node_profile,
        node_scenario,
    )
    from federation.server_app import run_federation
    from federation.strategies import STRATEGIES, ScreenedStrategy, make_strategy
    from federation.task import LocalConfig, LocalResult, train_locally
    from federation.updates import check_update
    from federation.weights import initial_weights

_SOURCES = {
    "federation.app_config": ("AppConfig",),
    "federation.certificates": ("Credentials", "generate_credentials"),
    "federation.deployment": ("LocalDeployment", "NodeSpec"),
    "federation.evaluation": ("evaluate_weights", "export_policy"),
    "federation.normalisation": ("NormStats", "merge_norm_stats"),
    "federation.profiles": (
        "HELD_OUT_NODE",
        "TRAINING_NODES",
        "NodeProfile",
        "load_node_profile",
        "node_scenario",
    ),
    "federation.privacy": ("PrivacyLedger", "gdp_epsilon", "rdp_epsilon"),
    "federation.server_app": ("run_federation",),
    "federation.strategies": ("STRATEGIES", "ScreenedStrategy", "make_strategy"),
    "federation.task": ("LocalConfig", "LocalResult", "train_locally"),
    "federation.updates": ("check_update",),
    "federation.weights": ("initial_weights",),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "HELD_OUT_NODE",
    "STRATEGIES",
    "TRAINING_NODES",
    "AppConfig",
    "Credentials",
    "LocalConfig",
    "LocalDeployment",
    "LocalResult",
    "NodeProfile",
    "NodeSpec",
    "NormStats",
    "PrivacyLedger",
    "ScreenedStrategy",
    "check_update",
    "evaluate_weights",
    "export_policy",
    "gdp_epsilon",
    "generate_credentials",
    "initial_weights",
    "load_node_profile",
    "make_strategy",
    "merge_norm_stats",
    "node_scenario",
    "rdp_epsilon",
    "run_federation",
    "train_locally",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'federation' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
