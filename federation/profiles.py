"""Node profiles: what makes one edge node's twin differ from another's.

A federation's nodes run the same scenario (``envs/scenarios/``) but their plants are not the
same: machines wear at different rates (tool grade, work material), some are older (they start
from, and return to after a renewal, a worn state), demand differs, electricity costs differ and
the shop floor is warmer or cooler. A :class:`NodeProfile` says exactly that, as a TOML file
validated by the one loader (:func:`envs.config.load_toml`), so a bad profile fails at start
with an error naming the file, the key and the allowed range::

    profile = load_node_profile("node-2")            # configs/federation/node-2.toml
    scenario = node_scenario(profile)                # the scenario with the profile applied
    env = make_node_env(profile, horizon_h=24.0)     # that node's twin, ambient included

Applying a profile (:func:`node_scenario`):

- ``stations[i].wear_rate_factor`` → the station FMU's ``wear_rate_factor`` parameter;
- ``stations[i].initial_wear`` (fraction of the wear limit, the machine's age) → the FMU's
  ``initial_tool_wear`` (mm, × the station's ``wear_limit``) or ``initial_wear`` (robots);
  the FMU returns to it after every tool change or gripper service;
- ``stations[i].parameters`` → further FMU parameter overrides;
- ``demand_factor`` × ``demand.orders_per_hour`` and × ``objective.throughput_min_per_h``
  (the customer's call-offs set both what arrives and what must ship);
- ``tariff`` (a whole time-of-use table, optional) then ``tariff_factor`` × every price;
- ``ambient_temperature`` (degC) is an FMU input, not a scenario value: :func:`make_node_env`
  holds it fixed through :class:`envs.line.Randomization`.

The result is rebuilt through :func:`envs.config.from_mapping` (every scenario bound applies)
and each FMU parameter is checked by :func:`envs.equipment.check_parameter`, as scenarios are.

The shipped profiles (``configs/federation/``): :data:`TRAINING_NODES` train, the
:data:`HELD_OUT_NODE` never does; :func:`heuristic_table` shows how different they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envs.config import ConfigError, config_to_dict, from_mapping, load_toml, setting
from envs.scenario import Scenario, TariffConfig, load_scenario

if TYPE_CHECKING:
    from envs.line_env import ProductionLineEnv

__all__ = [
    "HELD_OUT_NODE",
    "PROFILE_DIR",
    "TRAINING_NODES",
    "NodeProfile",
    "StationProfile",
    "heuristic_table",
    "load_node_profile",
    "make_node_env",
    "node_randomization",
    "node_scenario",
    "profile_names",
]

PROFILE_DIR = Path(__file__).resolve().parent.parent / "configs" / "federation"
TRAINING_NODES = ("node-1", "node-2", "node-3", "node-4")
HELD_OUT_NODE = "held-out"


@dataclasses.dataclass(frozen=True, kw_only=True)
class StationProfile:
    """How one station's machines differ on this node."""

    station: str = setting(doc="station name in the scenario")
    wear_rate_factor: float = setting(
        1.0, low=0.1, high=5.0, doc="multiplier on the FMU's wear rate (1 = the scenario's)"
    )
    initial_wear: float = setting(
        0.0,
        low=0.0,
        high=0.9,
        doc="machine age: wear at the start and after every renewal, fraction of the wear limit",
    )
    # setting() returns a dataclasses.field (with validation metadata)
    parameters: dict[str, float] = setting({}, doc="more FMU overrides, name = value")


@dataclasses.dataclass(frozen=True, kw_only=True)
class NodeProfile:
    """One edge node's plant: a scenario and what differs from it."""

    name: str = setting(doc="node name (node-1 ...)")
    description: str = setting("")
    scenario: str = setting("automotive_components", doc="shipped scenario name or .toml path")
    stations: tuple[StationProfile, ...] = setting((), doc="per-station differences")
    demand_factor: float = setting(
        1.0, low=0.5, high=1.5, doc="× orders_per_hour and × throughput_min_per_h"
    )
    tariff: TariffConfig | None = setting(None, doc="time-of-use table replacing the scenario's")
    tariff_factor: float = setting(1.0, low=0.1, high=5.0, doc="× every electricity price")
    ambient_temperature: float = setting(20.0, low=-10.0, high=45.0, doc="shop floor, degC")
    source: str = dataclasses.field(default="", init=False, compare=False)
    """The file the profile was loaded from ('' when built in code)."""


def profile_names() -> list[str]:
    """Names of the shipped profiles."""
    return sorted(path.stem for path in PROFILE_DIR.glob("*.toml"))


def load_node_profile(path_or_name: str | Path) -> NodeProfile:
    """A shipped profile by name (``node-1`` ... ``held-out``) or a profile file by path,
    validated and applied once (:func:`node_scenario`), so a bad profile or scenario fails here
    with a :class:`envs.config.ConfigError` naming the file, key and allowed range."""
    path = Path(path_or_name)
    if path.suffix != ".toml":
        if str(path_or_name) not in profile_names():
            raise ConfigError(
                f"no shipped node profile '{path_or_name}'; choose one of {profile_names()} "
                "or pass the path of a .toml file"
            )
        path = PROFILE_DIR / f"{path_or_name}.toml"
    profile = load_toml(NodeProfile, path)
    object.__setattr__(profile, "source", str(path))
    node_scenario(profile)
    return profile


def _where(profile: NodeProfile) -> str:
    return profile.source or f"node profile '{profile.name}'"


def _scale_tariff(tariff: dict[str, Any], factor: float) -> dict[str, Any]:
    return {
        "weekend_price": round(tariff["weekend_price"] * factor, 10),
        "periods": [
            {**period, "price": round(period["price"] * factor, 10)} for period in tariff["periods"]
        ],
    }


def node_scenario(profile: NodeProfile) -> Scenario:
    """The profile's scenario with the profile applied, validated as a scenario file is
    (every bound of :class:`envs.scenario.Scenario`, every FMU parameter through
    :func:`envs.equipment.check_parameter`); :class:`ConfigError` naming the profile's file and
    key otherwise."""
    from envs.equipment import ParameterError, check_parameter, equipment_parameters
    from envs.machines import EQUIPMENT

    where = _where(profile)
    scenario_ref = profile.scenario
    if scenario_ref.endswith(".toml") and profile.source:
        candidate = Path(profile.source).parent / scenario_ref
        scenario_ref = str(candidate) if candidate.is_file() else scenario_ref
    try:
        base = load_scenario(scenario_ref)
    except ConfigError as error:
        raise ConfigError(f"{where}: 'scenario' = {profile.scenario!r}: {error}") from None
    data = config_to_dict(base)
    stations = {station["name"]: station for station in data["stations"]}
    for index, change in enumerate(profile.stations):
        key = f"stations[{index}]"
        station = stations.get(change.station)
        if station is None:
            raise ConfigError(
                f"{where}: '{key}.station' = {change.station!r} is not a station of scenario "
                f"'{base.name}'; its stations are {', '.join(stations)}"
            )
        equipment = station["equipment"]
        kind = EQUIPMENT[equipment]
        parameters = dict(station.get("parameters", {}))
        parameters.update(change.parameters)
        parameters[kind.wear_rate_parameter] = change.wear_rate_factor
        if change.initial_wear:
            limit = 1.0
            if kind.wear_limit is not None:
                default = equipment_parameters(equipment)[kind.wear_limit].start
                limit = float(parameters.get(kind.wear_limit, default))  # type: ignore[arg-type]
            parameters[kind.initial_wear_parameter] = change.initial_wear * limit
        for name, value in parameters.items():
            try:
                check_parameter(equipment, name, value, key=f"{key}.parameters.{name}")
            except ParameterError as error:
                raise ConfigError(f"{where}: {error} (station '{change.station}')") from None
        station["parameters"] = parameters
    data["demand"]["orders_per_hour"] = round(
        data["demand"]["orders_per_hour"] * profile.demand_factor, 10
    )
    objective = data.setdefault("objective", {})
    objective["throughput_min_per_h"] = round(
        objective.get("throughput_min_per_h", 0.0) * profile.demand_factor, 10
    )
    tariff = config_to_dict(profile.tariff) if profile.tariff is not None else data["tariff"]
    data["tariff"] = _scale_tariff(tariff, profile.tariff_factor)
    data["description"] = f"{base.description} — node profile '{profile.name}'"
    return from_mapping(Scenario, data, source=f"{where} applied to scenario '{base.name}'")


def node_randomization(profile: NodeProfile) -> Any:
    """The :class:`envs.line.Randomization` that holds the node's shop-floor temperature."""
    from envs.line import Randomization

    t = profile.ambient_temperature
    return Randomization(ambient_temperature=(t, t))


def make_node_env(profile: NodeProfile, *, horizon_h: float | None = None) -> ProductionLineEnv:
    """The node's twin: ``twinfactory/ProductionLine-v0`` on :func:`node_scenario` with the
    node's ambient temperature (``horizon_h`` default: the scenario's)."""
    from envs.line_env import ProductionLineEnv

    return ProductionLineEnv(
        node_scenario(profile), horizon_h=horizon_h, randomization=node_randomization(profile)
    )


def heuristic_table(
    profiles: Sequence[NodeProfile],
    seeds: Sequence[int],
    horizon_h: float,
    *,
    heuristics: Sequence[str] = ("naive", "fixed_interval", "condition_based"),
) -> str:
    """How different the nodes are: each heuristic's mean KPIs on each node's twin over
    ``seeds`` (:mod:`agents.evaluation`, KPIs from :mod:`envs.kpi`), one row per node and
    heuristic, as a Markdown table."""
    import numpy as np

    from agents.evaluation import Policy, evaluate
    from agents.heuristics import make_heuristic

    columns = (
        ("cost", "C EUR", "{:,.0f}"),
        ("energy_kwh", "E kWh", "{:,.0f}"),
        ("downtime_h", "D h", "{:.2f}"),
        ("throughput_per_h", "T 1/h", "{:.2f}"),
        ("peak_kw", "R kW", "{:.1f}"),
        ("oee", "OEE", "{:.2f}"),
        ("objective", "Z", "{:,.0f}"),
    )
    lines = [
        "| node | heuristic | " + " | ".join(title for _, title, _ in columns) + " |",
        "|" + "---|" * (len(columns) + 2),
    ]
    for profile in profiles:
        env = make_node_env(profile, horizon_h=horizon_h)
        try:
            policies: dict[str, Policy] = {name: make_heuristic(name, env) for name in heuristics}
            results = evaluate(env, policies, seeds, record_first=False)
        finally:
            env.close()
        for name, runs in results.items():
            cells = [
                fmt.format(float(np.mean([run.value(key) for run in runs])))
                for key, _, fmt in columns
            ]
            lines.append(f"| {profile.name} | {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
