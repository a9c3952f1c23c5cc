"""Proposers: heuristics, exported policies and optimiser plans propose setpoints on the twin."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.exported import FORMAT
from edge_bridge.proposers import SETPOINT_TAGS, ProposerError, file_version, load_proposer
from envs.line_env import ProductionLineEnv


@pytest.fixture(scope="module")
def twin_env():
    env = ProductionLineEnv(horizon_h=4.0)
    env.reset(seed=1001)
    yield env
    env.close()


def write_policy(path, env: ProductionLineEnv, *, scenario: str, bias: float) -> None:
    """A one-layer exported policy whose actions are the constant ``bias`` (zero weights)."""
    size = env.observation_space.shape[0]
    actions = env.action_space.shape[0]
    meta = {
        "format": FORMAT,
        "env_id": "twinfactory/ProductionLine-v0",
        "scenario": scenario,
        "activation": "tanh",
        "hidden_layers": 1,
        "observation_size": size,
        "action_size": actions,
        "normalize_observations": False,
        "timesteps": 0,
        "source": "test",
    }
    np.savez(
        path,
        meta=np.array(json.dumps(meta)),
        hidden_0_weight=np.zeros((4, size), np.float32),
        hidden_0_bias=np.zeros(4, np.float32),
        action_weight=np.zeros((actions, 4), np.float32),
        action_bias=np.full(actions, bias, np.float32),
        obs_mean=np.zeros(size),
        obs_var=np.ones(size),
        obs_clip=np.array(10.0),
        obs_epsilon=np.array(1e-8),
        action_low=-np.ones(actions, np.float32),
        action_high=np.ones(actions, np.float32),
    )


def test_a_heuristic_proposes_every_machines_three_tags_within_its_speed_range(twin_env):
    proposer = load_proposer("condition_based", twin_env)
    assert proposer.version == "condition_based"
    proposal = proposer.propose()
    assert list(proposal) == twin_env.machine_names
    for machine, setpoints in zip(twin_env.line.machines, proposal.values(), strict=True):
        assert tuple(setpoints) == SETPOINT_TAGS
        low, high = machine.speed_range
        assert low <= setpoints["speed_factor"] <= high
        assert isinstance(setpoints["standby"], bool)
        assert isinstance(setpoints["maintenance"], bool)


def test_an_exported_policy_proposes_what_its_action_decodes_to(twin_env, tmp_path):
    path = tmp_path / "fast.npz"
    write_policy(path, twin_env, scenario=twin_env.scenario.name, bias=1.0)
    proposer = load_proposer(str(path), twin_env)
    assert proposer.version == file_version(path) and proposer.version.startswith("fast.npz@")
    proposal = proposer.propose()
    for machine in twin_env.line.machines:  # action 1 = the top of the speed range, standby on
        assert proposal[machine.name]["speed_factor"] == pytest.approx(machine.speed_range[1])
        assert proposal[machine.name]["standby"] is True
        assert proposal[machine.name]["maintenance"] is (machine.wear_ratio >= 0.0)


def test_a_policy_of_another_scenario_is_refused_naming_both(twin_env, tmp_path):
    path = tmp_path / "other.npz"
    write_policy(path, twin_env, scenario="semiconductor_fab", bias=0.0)
    with pytest.raises(ProposerError, match="trained on scenario 'semiconductor_fab'"):
        load_proposer(str(path), twin_env)


def test_a_policy_for_another_machine_count_is_refused(tmp_path, twin_env):
    small = ProductionLineEnv(horizon_h=1.0)
    path = tmp_path / "wrong.npz"
    write_policy(path, small, scenario=twin_env.scenario.name, bias=0.0)
    data = dict(np.load(path))
    meta = json.loads(str(data["meta"]))
    meta["observation_size"] += 12  # one machine more
    data["meta"] = np.array(json.dumps(meta))
    size = meta["observation_size"]
    data["hidden_0_weight"] = np.zeros((4, size), np.float32)
    data["obs_mean"], data["obs_var"] = np.zeros(size), np.ones(size)
    np.savez(path, **data)
    small.close()
    with pytest.raises(ProposerError, match="sizes do not match"):
        load_proposer(str(path), twin_env)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_policy", "neither a heuristic"),
        ("condition_based#2", "neither a heuristic"),
    ],
)
def test_unknown_proposers_are_clear_errors(twin_env, spec, message):
    with pytest.raises(ProposerError, match=message):
        load_proposer(spec, twin_env)


def test_an_index_on_a_policy_file_is_refused(twin_env, tmp_path):
    path = tmp_path / "p.npz"
    write_policy(path, twin_env, scenario=twin_env.scenario.name, bias=0.0)
    with pytest.raises(ProposerError, match="selects a plan of a pareto.json only"):
        load_proposer(f"{path}#1", twin_env)


def test_an_optimiser_plan_proposes_its_speeds(twin_env, tmp_path):
    from optimizers.algorithms import run_algorithm
    from optimizers.config import ProblemConfig
    from optimizers.engines import SerialEngine
    from optimizers.pareto import ParetoFront, save_pareto
    from optimizers.problems import FactoryProblem

    problem = FactoryProblem(ProblemConfig(horizon_h=0.5, seeds=1, throughput_min_per_h=0.0))
    with SerialEngine() as engine:
        result = run_algorithm("random", problem, budget=4, seed=3, pop_size=4, engine=engine)
    json_path, _ = save_pareto(tmp_path, result, problem, chosen=0)
    front = ParetoFront.of_run(result, problem)
    proposer = load_proposer(f"{json_path}#0", twin_env)
    assert proposer.version.endswith("#0") and proposer.label == "plan#0"
    plan = problem.encoding.decode(front.X[0])
    proposal = proposer.propose()
    speeds = np.array([proposal[name]["speed_factor"] for name in twin_env.machine_names])
    ranges = np.array([m.speed_range for m in twin_env.line.machines])
    low, high = ranges[:, 0], ranges[:, 1]
    tariff = plan.tariff_speed  # one multiplier is in force: the speeds are the plan's times it
    assert any(np.allclose(speeds, np.clip(plan.speed * m, low, high), atol=1e-6) for m in tariff)
    with pytest.raises(ProposerError, match="index must be a whole number below"):
        load_proposer(f"{json_path}#{len(front)}", twin_env)
