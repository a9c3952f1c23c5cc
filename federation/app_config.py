"""The Flower App's run configuration: ``[tool.flwr.app.config]`` in ``pyproject.toml``,
overridden per run with ``flwr run . <connection> --run-config 'num-rounds=10 ...'``.

Both apps read it from ``Context.run_config``: the ServerApp for the rounds, strategy, logging
and export, the ClientApp for the local PPO settings (so every node trains alike). Keys are
Flower's kebab-case; :class:`AppConfig` holds them checked, with errors naming the key.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.seeding import held_out_seeds
from federation.privacy import DP_MODES, DP_STRATEGIES
from federation.secagg import SECAGG_STRATEGIES, SecAggSettings
from federation.strategies import STRATEGIES
from federation.task import LocalConfig

__all__ = ["RUN_CONFIG_DEFAULTS", "AppConfig", "RunConfigError"]

RUN_CONFIG_DEFAULTS: dict[str, str | int | float | bool] = {
    "num-rounds": 10,
    "strategy": "fedavg",
    "min-nodes": 2,
    "min-replies": 1,
    "fraction-train": 1.0,
    "proximal-mu": 0.01,
    "server-lr": 0.0,
    "server-momentum": 0.9,
    "trim-beta": 0.2,
    "krum-malicious": 0,
    "max-norm-ratio": 10.0,
    "round-timeout": 1800.0,
    "local-steps": 2048,
    "n-steps": 1024,
    "batch-size": 256,
    "n-epochs": 5,
    "horizon-h": 168.0,
    "seed": 0,
    "eval-seeds": 3,
    "held-out": "held-out",
    "out-dir": "runs/federation",
    "resume": True,
    "tensorboard": True,
    "dp": "off",
    "dp-noise-multiplier": 1.0,
    "dp-clipping-norm": 1.0,
    "dp-delta": 1e-5,
    "secagg": False,
    "secagg-num-shares": 1.0,
    "secagg-reconstruction-threshold": 0.67,
    "secagg-clipping-range": 1.0,
    "secagg-quantization-range": 67108864,
}
"""The run configuration's keys and defaults, as in ``pyproject.toml``
(``server-lr`` 0 = the strategy's default; ``held-out`` "" = no held-out evaluation; ``dp``
off | server | client, :mod:`federation.privacy`; ``secagg`` true: SecAgg+,
:mod:`federation.secagg`, its ``secagg-*`` settings there)."""


class RunConfigError(ValueError):
    """A run-configuration value is of the wrong type or out of range; names the key."""


@dataclass(frozen=True)
class AppConfig:
    """The run configuration, checked (see RUN_CONFIG_DEFAULTS for the keys)."""

    num_rounds: int = 10
    strategy: str = "fedavg"
    min_nodes: int = 2
    min_replies: int = 1
    fraction_train: float = 1.0
    proximal_mu: float = 0.01
    server_lr: float = 0.0
    server_momentum: float = 0.9
    trim_beta: float = 0.2
    krum_malicious: int = 0
    max_norm_ratio: float = 10.0
    round_timeout: float = 1800.0
    local_steps: int = 2048
    n_steps: int = 1024
    batch_size: int = 256
    n_epochs: int = 5
    horizon_h: float = 168.0
    seed: int = 0
    eval_seeds: int = 3
    held_out: str = "held-out"
    out_dir: str = "runs/federation"
    resume: bool = True
    tensorboard: bool = True
    dp: str = "off"
    dp_noise_multiplier: float = 1.0
    dp_clipping_norm: float = 1.0
    dp_delta: float = 1e-5
    secagg: bool = False
    secagg_num_shares: float = 1.0
    secagg_reconstruction_threshold: float = 0.67
    secagg_clipping_range: float = 1.0
    secagg_quantization_range: int = 67108864

    def __post_init__(self) -> None:
        checks: list[tuple[str, bool, str]] = [
            ("num-rounds", self.num_rounds >= 1, ">= 1"),
            ("strategy", self.strategy.lower() in STRATEGIES, f"one of {', '.join(STRATEGIES)}"),
            ("min-nodes", self.min_nodes >= 1, ">= 1"),
            ("min-replies", self.min_replies >= 1, ">= 1"),
            ("fraction-train", 0.0 < self.fraction_train <= 1.0, "in (0, 1]"),
            ("proximal-mu", self.proximal_mu >= 0.0, ">= 0"),
            ("server-lr", self.server_lr >= 0.0, ">= 0 (0 = the strategy's default)"),
            ("server-momentum", 0.0 <= self.server_momentum < 1.0, "in [0, 1)"),
            ("trim-beta", 0.0 <= self.trim_beta < 0.5, "in [0, 0.5)"),
            ("krum-malicious", self.krum_malicious >= 0, ">= 0"),
            ("max-norm-ratio", self.max_norm_ratio > 1.0, "> 1"),
            ("round-timeout", self.round_timeout > 0.0, "> 0 s"),
            ("eval-seeds", self.eval_seeds >= 1, ">= 1"),
            ("dp", self.dp in DP_MODES, f"one of {', '.join(DP_MODES)}"),
            (
                "dp",
                self.dp == "off" or self.strategy.lower() in DP_STRATEGIES,
                f"'off' with strategy {self.strategy!r} (DP wraps {', '.join(DP_STRATEGIES)})",
            ),
            ("dp-noise-multiplier", 0.0 <= self.dp_noise_multiplier < math.inf, ">= 0, finite"),
            ("dp-clipping-norm", 0.0 < self.dp_clipping_norm < math.inf, "> 0, finite"),
            ("dp-delta", 0.0 < self.dp_delta < 1.0, "in (0, 1)"),
            (
                "secagg",
                not self.secagg or self.strategy.lower() in SECAGG_STRATEGIES,
                f"false with strategy {self.strategy!r} (SecAgg+ averages: "
                f"{', '.join(SECAGG_STRATEGIES)})",
            ),
            ("secagg", not self.secagg or self.dp == "off", "false with dp (not combined)"),
            ("secagg", not self.secagg or self.min_nodes >= 2, "false with min-nodes < 2"),
            ("secagg-num-shares", 0.0 < self.secagg_num_shares <= 1.0, "in (0, 1]"),
            (
                "secagg-reconstruction-threshold",
                0.0 < self.secagg_reconstruction_threshold <= 1.0,
                "in (0, 1]",
            ),
            (
                "secagg-clipping-range",
                0.0 < self.secagg_clipping_range < math.inf,
                "> 0, finite",
            ),
            (
                "secagg-quantization-range",
                2 <= self.secagg_quantization_range < 2**31,
                "in [2, 2**31)",
            ),
        ]
        for key, ok, allowed in checks:
            if not ok:
                value = getattr(self, key.replace("-", "_"))
                raise RunConfigError(f"run config '{key}' = {value!r}: must be {allowed}")

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> AppConfig:
        """From ``Context.run_config`` (kebab-case keys; missing keys take the defaults,
        unknown keys are ignored: they may belong to Flower)."""
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            key = spec.name.replace("_", "-")
            if key not in run_config:
                continue
            value = run_config[key]
            default = spec.default
            try:
                if isinstance(default, bool):
                    if not isinstance(value, bool):
                        raise TypeError
                elif isinstance(default, int):
                    if isinstance(value, bool) or int(value) != value:
                        raise TypeError
                    value = int(value)
                elif isinstance(default, float):
                    if isinstance(value, bool):
                        raise TypeError
                    value = float(value)
                else:
                    value = str(value)
            except (TypeError, ValueError):
                kind = type(default).__name__
                raise RunConfigError(f"run config '{key}' = {value!r}: must be a {kind}") from None
            values[spec.name] = value
        return cls(**values)

    def local_config(self, *, proximal_mu: float = 0.0) -> LocalConfig:
        """The nodes' local PPO settings: the shipped recipe with this run's step counts,
        horizon, seed and (from the train message) FedProx's ``proximal_mu``. ValueError naming
        the field if the recipe rejects them (e.g. batch size not dividing the rollout)."""
        return LocalConfig.from_recipe(
            local_steps=self.local_steps,
            n_steps=self.n_steps,
            batch_size=self.batch_size,
            n_epochs=self.n_epochs,
            horizon_h=self.horizon_h,
            seed=self.seed,
            proximal_mu=proximal_mu,
        )

    def secagg_settings(self) -> SecAggSettings:
        """The SecAgg+ settings: the ``secagg-*`` keys, ``round-timeout`` per protocol stage,
        and as ``max_weight`` the most local steps a node reports (``local-steps`` rounded up
        to whole rollouts)."""
        local = self.local_config()
        rollout = local.n_steps * local.n_envs
        return SecAggSettings(
            num_shares=self.secagg_num_shares,
            reconstruction_threshold=self.secagg_reconstruction_threshold,
            clipping_range=self.secagg_clipping_range,
            quantization_range=self.secagg_quantization_range,
            max_weight=float(math.ceil(local.local_steps / rollout) * rollout),
            timeout_s=self.round_timeout,
        )

    def evaluation_seeds(self) -> list[int]:
        """The held-out evaluation seeds (from ``envs.seeding.HELD_OUT_SEEDS_FROM``)."""
        return list(held_out_seeds(self.eval_seeds))

    def output_folder(self) -> Path:
        """``out-dir`` as a path (relative paths are relative to the ServerApp's folder)."""
        return Path(self.out_dir).expanduser()
