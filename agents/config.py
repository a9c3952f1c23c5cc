"""The configuration of a PPO run: one frozen dataclass loaded through :mod:`envs.config`
(defaults → TOML file → command-line overrides, validated with errors that name the key)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envs.config import ConfigError, load_toml, setting
from envs.seeding import HELD_OUT_SEEDS_FROM

__all__ = ["TrainConfig", "parse_env_kwargs"]

# the heuristics agents.heuristics defines (named here so the config needs no env imports)
_HEURISTIC_NAMES = ("naive", "fixed_interval", "condition_based")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A PPO run. Every field has a default; a TOML file overrides any of them."""

    env_id: str = setting("twinfactory/ProductionLine-v0", doc="registered env id")
    env_kwargs: dict[str, float] = setting({}, doc="numeric keyword arguments of the env")
    scenario: str = setting("automotive_components", doc="scenario for production-line envs")
    total_timesteps: int = setting(100_000, low=64, high=100_000_000)
    n_envs: int = setting(2, low=1, high=64, doc="parallel envs")
    vectorization: str = setting(
        "dummy", choices=("dummy", "subproc"), doc="dummy: in process; subproc: one process per env"
    )
    normalize_observations: bool = setting(True)
    normalize_rewards: bool = setting(True)
    learning_rate: float = setting(3e-4, low=1e-6, high=1.0)
    n_steps: int = setting(512, low=8, high=100_000, doc="rollout length per env")
    batch_size: int = setting(128, low=8, high=100_000)
    n_epochs: int = setting(10, low=1, high=100)
    gamma: float = setting(0.99, low=0.0, high=1.0)
    gae_lambda: float = setting(0.95, low=0.0, high=1.0)
    clip_range: float = setting(0.2, low=0.01, high=1.0)
    ent_coef: float = setting(0.0, low=0.0, high=1.0)
    net_arch: tuple[int, ...] = setting((64, 64), low=1, high=4096, doc="hidden layer sizes")
    log_std_init: float = setting(
        0.0, low=-5.0, high=2.0, doc="initial log std of the Gaussian actions (SB3 default 0)"
    )
    action_log_std: tuple[float, ...] = setting(
        (),
        low=-10.0,
        high=2.0,
        doc="initial log std per action, tiled over the action vector (e.g. [-1, -3.5, -3.5]: "
        "explore each machine's speed, hardly its maintenance and standby); empty: log_std_init",
    )
    use_sde: bool = setting(
        False,
        doc="generalised state-dependent exploration: noise that is a smooth function of the "
        "observation, redrawn every sde_sample_freq steps, instead of fresh noise each step",
    )
    sde_sample_freq: int = setting(
        -1, low=-1, high=1_000_000, doc="steps between gSDE noise draws (-1: once per rollout)"
    )
    wear_shaping_eur: float = setting(
        0.0,
        low=0.0,
        high=1e6,
        doc="production lines: potential-based shaping valuing tool wear at this many EUR per "
        "wear limit (agents.shaping; 0 = off); the optimal policy is unchanged",
    )
    pretrain_policy: str = setting(
        "",
        doc="policy to imitate before PPO starts (agents.pretraining): a heuristic (naive, "
        "fixed_interval, condition_based) or a tuned-rule TOML file (agents.tuned_rule, e.g. "
        "configs/tuned_rule.toml); '' = none",
    )
    pretrain_steps: int = setting(20_000, low=64, high=10_000_000, doc="env steps of imitation")
    pretrain_epochs: int = setting(20, low=1, high=1000, doc="passes over the imitation data")
    seed: int = setting(
        0,
        low=0,
        high=HELD_OUT_SEEDS_FROM - 1,
        doc="training seed (below envs.seeding.HELD_OUT_SEEDS_FROM: evaluation seeds are held out)",
    )
    out_dir: str = setting("runs/ppo", doc="run folder")
    checkpoint_every: int = setting(10_000, low=1, high=100_000_000, doc="timesteps")
    eval_every: int = setting(10_000, low=1, high=100_000_000, doc="timesteps")
    eval_episodes: int = setting(2, low=1, high=100)

    def __post_init__(self) -> None:
        policy = self.pretrain_policy
        if policy and policy not in _HEURISTIC_NAMES and not policy.endswith(".toml"):
            raise ValueError(
                f"pretrain_policy '{policy}' is neither a heuristic "
                f"({', '.join(_HEURISTIC_NAMES)}) nor a tuned-rule .toml file; use one of those "
                "or '' for none"
            )
        if policy.endswith(".toml") and not Path(policy).is_file():
            raise ValueError(
                f"pretrain_policy '{policy}': no such tuned-rule file (scripts/tune_rule.py "
                "writes one; configs/tuned_rule.toml is shipped)"
            )
        rollout = self.n_steps * self.n_envs
        if rollout % self.batch_size:
            raise ValueError(
                f"batch_size ({self.batch_size}) must divide n_steps × n_envs ({rollout})"
            )

    @classmethod
    def from_toml(cls, path: str | Path) -> TrainConfig:
        """Load and validate a run configuration from a TOML file (unknown keys are errors)."""
        return load_toml(cls, path)

    @property
    def is_production_line(self) -> bool:
        """Whether the env is a production line (scenario, wear shaping and imitation apply)."""
        return "ProductionLine" in self.env_id


def parse_env_kwargs(items: list[str], option: str = "--set") -> dict[str, float]:
    """``NAME=NUMBER`` items (a command line's repeated ``--set``) as env keyword arguments;
    ConfigError naming the malformed item."""
    kwargs: dict[str, float] = {}
    for item in items:
        name, separator, value = item.partition("=")
        try:
            if not (name and separator):
                raise ValueError(item)
            kwargs[name] = float(value)
        except ValueError:
            raise ConfigError(f"{option} {item}: expected NAME=NUMBER") from None
    return kwargs
