"""Who proposes setpoints: the incumbent and the candidate of a rollout.

Either is one of

- a heuristic by name (``naive``, ``fixed_interval``, ``condition_based``;
  :mod:`agents.heuristics`),
- an exported policy (``.npz``, :mod:`agents.exported`, numpy only: what an edge device runs) or a
  saved stable-baselines3 model (``.zip``) — loaded by :func:`agents.evaluation.load_policy`, the
  one loader every comparison uses,
- an optimiser's plan: a ``pareto.json`` of ``scripts/optimize.py``, optionally with the plan's
  position (``runs/opt/pareto.json#3``; default: the knee point, as ``optimize.py`` picks it).

Every proposer acts on the bridge's synchronised twin (a :class:`envs.line_env.ProductionLineEnv`
whose line follows the plant): it reads the twin's observation, asks its policy for an action and
decodes it with the env's own mapping (:meth:`ProductionLineEnv.decode_action`), so a proposal
means exactly what the same action means in training. A proposal is, per machine,
``{"speed_factor": float, "standby": bool, "maintenance": bool}``.

A proposer carries a ``version``: the heuristic's name, or the file's name and the first 12 hex
digits of its SHA-256 — the policy version every command and audit row names.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_bridge import schema
from envs.line_env import ProductionLineEnv

Setpoints = dict[str, float | bool]
"""One machine's setpoints: ``speed_factor`` (1 = nominal), ``standby``, ``maintenance``."""

SETPOINT_TAGS = tuple(schema.SETPOINT_TAGS)
"""The tags of a proposal, in order (:data:`edge_bridge.schema.SETPOINT_TAGS`)."""


class ProposerError(ValueError):
    """A policy or plan that cannot drive this plant."""


def file_version(path: str | Path) -> str:
    """``<file name>@<first 12 hex digits of its SHA-256>``: changes whenever the file does."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{path.name}@{digest}"


@dataclass
class Proposer:
    """A policy acting on the twin env; :meth:`propose` gives every machine's setpoints."""

    label: str
    version: str
    policy: Any
    """Anything with stable-baselines3's ``predict(observation, deterministic=True)``."""
    env: ProductionLineEnv

    def propose(self) -> dict[str, Setpoints]:
        """Setpoints per machine for the twin's current state."""
        observation = self.env.observation()
        action, _ = self.policy.predict(observation, deterministic=True)
        action = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), -1.0, 1.0)
        speed, maintenance, standby = self.env.decode_action(action)
        return {
            name: {
                "speed_factor": float(speed[k]),
                "standby": bool(standby[k]),
                "maintenance": bool(maintenance[k]),
            }
            for k, name in enumerate(self.env.machine_names)
        }


def load_proposer(spec: str, env: ProductionLineEnv) -> Proposer:
    """The proposer ``spec`` names (module docstring) on the twin ``env``; a file that does not
    fit the plant's machines or scenario raises :class:`ProposerError` saying why."""
    from agents.evaluation import load_policy
    from agents.heuristics import HEURISTICS

    path_text, _, pick = spec.partition("#")
    path = Path(path_text)
    if spec in HEURISTICS:
        label, policy = load_policy(spec, env)
        return Proposer(label, spec, policy, env)
    if not path.is_file():
        raise ProposerError(
            f"proposer '{spec}' is neither a heuristic ({', '.join(HEURISTICS)}) nor an existing "
            "file (.npz exported policy, .zip PPO model, pareto.json[#index] plan)"
        )
    if path.suffix == ".json":
        return _plan_proposer(path, pick, env)
    if pick:
        raise ProposerError(f"'{spec}': '#<index>' selects a plan of a pareto.json only")
    try:
        label, policy = load_policy(str(path), env)
    except ValueError as error:
        raise ProposerError(str(error)) from error
    trained_on = getattr(policy, "meta", {}).get("scenario", "")
    if trained_on and trained_on != env.scenario.name:
        raise ProposerError(
            f"{path}: the policy was trained on scenario '{trained_on}', this plant runs "
            f"'{env.scenario.name}'; export a policy trained on this plant's scenario"
        )
    return Proposer(label, file_version(path), policy, env)


def _plan_proposer(path: Path, pick: str, env: ProductionLineEnv) -> Proposer:
    from agents.report import load_plan_policy

    spec = f"{path}#{pick}" if pick else str(path)
    try:  # the one loader of plan specs (evaluate.py uses it too): scenario, encoding, index
        label, policy = load_plan_policy(spec, env)
    except ValueError as error:
        raise ProposerError(str(error)) from error
    index = label.partition("#")[2]
    return Proposer(label, f"{file_version(path)}#{index}", policy, env)
