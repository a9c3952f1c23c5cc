"""An OPC UA equipment server (asyncua): the machines' setpoint and measurement tags.

It stands in for a line's PLC / OPC UA gateway in tests and in the emulator: one object per
machine, named as :attr:`envs.plant.Plant.machine_names`, under ``Objects`` in the namespace
:data:`NAMESPACE_URI`. Per machine (browse names; clients resolve them by name, never by
numeric node id):

====================== ======= ========= ==================================================
``SpeedFactor``        Double  writable  1 = nominal speed; ``EURange`` = the station's
                                         speed_range, ``EngineeringUnits`` = one (UNECE C62)
``Standby``            Boolean writable  standby permitted when starved
``MaintenanceRequest`` Boolean writable  one-shot: cleared when the plant consumes it
``SetpointVersion``    String  writable  the policy / command version of the setpoints
``Temperature``        Double  read-only degC (CEL)
``Wear``               Double  read-only fraction of the wear limit (C62)
``Power``              Double  read-only kW (KWT)
``Vibration``          Double  read-only mm/s RMS (C16); only on machines that measure it
``State``              Int32   read-only :class:`envs.machines.MachineState` code
                                         (``EnumStrings`` lists the names)
``PlantTime``          Double  read-only s since the plant's reset, of the last sample
====================== ======= ========= ==================================================

The server enforces the writes, per node, in the one Write service call: a variant of the
wrong type → ``BadTypeMismatch`` (asyncua's address space checks the node's type), a
``SpeedFactor`` outside its ``EURange`` or not finite → ``BadOutOfRange`` (this module's
attribute service, reading the range from the ``EURange`` property), a write to a read-only
tag → ``BadUserAccessDenied`` (asyncua's access-level check; remote sessions are never
admins here). A rejected write changes nothing.

Identity: anonymous and/or one username/password (:class:`Credentials`). Security policy: the
tests use ``NoSecurity`` on loopback. On a plant network use
``ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt`` (pass ``security_policies`` with a
``certificate`` and ``private_key`` PEM/DER path; the certificate's SubjectAltName URI must be
the server's application URI, :data:`APPLICATION_URI`) and disable anonymous access: with
``NoSecurity`` a username's password travels unencrypted.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from asyncua import Node, Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService
from asyncua.server.binary_server_asyncio import BinaryServer

from edge_bridge.schema import SETPOINT_TAGS
from envs.machines import MachineState

if TYPE_CHECKING:
    from envs.kpi import IntervalRecord
    from envs.plant import Plant

__all__ = [
    "APPLICATION_URI",
    "MEASURED_TAGS",
    "NAMESPACE_URI",
    "SETPOINT_BROWSE_NAMES",
    "SETPOINT_VARIANT_TYPES",
    "Credentials",
    "EquipmentServer",
    "MachineSpec",
    "free_port",
]

NAMESPACE_URI = "urn:twinfactory:equipment"
APPLICATION_URI = "urn:twinfactory:equipment-server"
_BROWSE_NAMES = {
    "speed_factor": "SpeedFactor",
    "standby": "Standby",
    "maintenance": "MaintenanceRequest",
}
_VARIANT_OF_WIRE_TYPE: dict[type, ua.VariantType] = {
    float: ua.VariantType.Double,
    bool: ua.VariantType.Boolean,
}
if set(_BROWSE_NAMES) != set(SETPOINT_TAGS):
    raise RuntimeError(
        f"edge_bridge.opcua_server has browse names for {sorted(_BROWSE_NAMES)} but the setpoint "
        f"tags (edge_bridge.schema.SETPOINT_TAGS) are {list(SETPOINT_TAGS)}; give every tag "
        "a browse name"
    )
SETPOINT_BROWSE_NAMES = {tag: _BROWSE_NAMES[tag] for tag in SETPOINT_TAGS}
"""Setpoint tag → browse name; the tags and their order are those of
:data:`edge_bridge.schema.SETPOINT_TAGS`."""
SETPOINT_VARIANT_TYPES = {tag: _VARIANT_OF_WIRE_TYPE[wire] for tag, wire in SETPOINT_TAGS.items()}
"""Setpoint tag → OPC UA variant type, from the tag's wire type (float: Double, bool: Boolean)."""
MEASURED_TAGS = {
    "temperature": "Temperature",
    "wear": "Wear",
    "power": "Power",
    "vibration": "Vibration",
}
"""Measured signal kind (:data:`envs.plant.SIGNAL_KINDS`) → browse name."""
STATE_TAG = "State"
VERSION_TAG = "SetpointVersion"
TIME_TAG = "PlantTime"

_UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
_UNITS = {  # browse name -> (UNECE common code, display name, description)
    "SpeedFactor": ("C62", "1", "speed factor, 1 = nominal"),
    "Temperature": ("CEL", "°C", "degree Celsius"),
    "Wear": ("C62", "1", "fraction of the wear limit"),
    "Power": ("KWT", "kW", "kilowatt"),
    "Vibration": ("C16", "mm/s", "millimetre per second (RMS)"),
    "PlantTime": ("SEC", "s", "second since the plant's reset"),
}
DROPPED_SAMPLE = ua.StatusCodes.BadSensorFailure
"""Status of a measured value whose sample the plant dropped (NaN)."""


def _engineering_units(code: str, display: str, description: str) -> ua.EUInformation:
    unit_id = 0
    for char in code:  # OPC UA Part 8 §5.6.3: the UNECE code's characters, big-endian
        unit_id = (unit_id << 8) | ord(char)
    return ua.EUInformation(
        NamespaceUri=_UNECE_NAMESPACE,
        UnitId=unit_id,
        DisplayName=ua.LocalizedText(display),
        Description=ua.LocalizedText(description),
    )


@dataclass(frozen=True)
class Credentials:
    """One OPC UA username and password."""

    username: str
    password: str


@dataclass(frozen=True)
class MachineSpec:
    """A machine's tags: its name, its speed factor range (min, max) and whether it measures
    vibration."""

    name: str
    speed_range: tuple[float, float]
    has_vibration: bool = True

    def __post_init__(self) -> None:
        low, high = self.speed_range
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise ValueError(f"machine {self.name!r}: speed_range must be finite [min, max]")


class _UserManager:
    """Anonymous (if allowed) and one username/password; never an admin, so asyncua's
    access-level checks apply to every remote session. ``certificate`` is the secure
    channel's client certificate (the application, not the user)."""

    def __init__(self, credentials: Credentials | None, allow_anonymous: bool) -> None:
        self.credentials = credentials
        self.allow_anonymous = allow_anonymous

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None:  # anonymous token (X509 user tokens are not enabled)
            # asyncua's role ruleset lets the Anonymous role do nothing: anonymous sessions,
            # where allowed, are plain users
            return User(role=UserRole.User, name="anonymous") if self.allow_anonymous else None
        expected = self.credentials
        if expected is None or username is None or password is None:
            return None
        if hmac.compare_digest(username, expected.username) and hmac.compare_digest(
            password, expected.password
        ):
            return User(role=UserRole.User, name=username)
        return None


_SERVER_SIDE = User(role=UserRole.Admin)  # asyncua's default: writes made by the server itself


class _RangeCheckedAttributeService(AttributeService):
    """asyncua's attribute service plus a ``BadOutOfRange`` check of Double writes against the
    node's ``EURange`` property; every other check stays asyncua's (access level, type)."""

    def __init__(self, aspace: AddressSpace) -> None:
        super().__init__(aspace)
        self.ranges: dict[ua.NodeId, ua.NodeId] = {}  # value node -> its EURange property

    async def write(
        self, params: ua.WriteParameters, user: User = _SERVER_SIDE
    ) -> list[ua.StatusCode]:
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            if self._out_of_range(item):
                results.append(ua.StatusCode(ua.UInt32(ua.StatusCodes.BadOutOfRange)))
                continue
            single = ua.WriteParameters(NodesToWrite=[item])
            results.extend(await super().write(single, user=user))
        return results

    def _out_of_range(self, item: ua.WriteValue) -> bool:
        range_node = self.ranges.get(item.NodeId)
        variant = item.Value.Value
        if range_node is None or item.AttributeId != ua.AttributeIds.Value or variant is None:
            return False
        if variant.VariantType != ua.VariantType.Double:
            return False  # asyncua answers BadTypeMismatch
        bounds = self._aspace.read_attribute_value(range_node, ua.AttributeIds.Value).Value
        value = float(variant.Value)
        if bounds is None or not isinstance(bounds.Value, ua.Range):
            return not math.isfinite(value)
        return not (math.isfinite(value) and bounds.Value.Low <= value <= bounds.Value.High)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the OS's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class EquipmentServer:
    """An asyncua server exposing ``machines`` (see the module docstring).

    ``port=None`` picks a free port once; pass the same port to a new server to "restart" the
    equipment. ``allow_anonymous`` defaults to True without ``credentials``, False with them.
    Use ``async with EquipmentServer(...) as server`` or :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        machines: Sequence[MachineSpec],
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        credentials: Credentials | None = None,
        allow_anonymous: bool | None = None,
        security_policies: Sequence[ua.SecurityPolicyType] = (ua.SecurityPolicyType.NoSecurity,),
        certificate: Path | None = None,
        private_key: Path | None = None,
    ) -> None:
        names = [machine.name for machine in machines]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"machines need unique names, got {names}")
        self.machines = {machine.name: machine for machine in machines}
        self.host = host
        self.port = free_port(host) if port is None else port
        self.credentials = credentials
        self.allow_anonymous = credentials is None if allow_anonymous is None else allow_anonymous
        if not self.allow_anonymous and credentials is None:
            raise ValueError("no anonymous access and no credentials: nobody could connect")
        self.security_policies = tuple(security_policies)
        self.certificate, self.private_key = certificate, private_key
        self._server: Server | None = None
        self._nodes: dict[str, dict[str, Node]] = {}

    @classmethod
    def from_plant(cls, plant: Plant, **options: Any) -> EquipmentServer:
        """A server for ``plant``'s machines (speed ranges and vibration as the plant has)."""
        specs = [
            MachineSpec(
                machine.name,
                (float(machine.speed_range[0]), float(machine.speed_range[1])),
                bool(machine.equipment.vibration_output),
            )
            for machine in plant.line.machines
        ]
        return cls(specs, **options)

    @property
    def url(self) -> str:
        """The endpoint URL clients connect to."""
        return f"opc.tcp://{self.host}:{self.port}/twinfactory/"

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Build the address space and listen (a few hundred ms: asyncua loads the standard
        nodes)."""
        if self._server is not None:
            raise RuntimeError("the server is already started")
        server = Server(user_manager=_UserManager(self.credentials, self.allow_anonymous))  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name("twinfactory equipment")
        await server.set_application_uri(APPLICATION_URI)
        server.set_security_policy(list(self.security_policies))
        tokens: list[type] = [ua.UserNameIdentityToken] if self.credentials else []
        if self.allow_anonymous:
            tokens.append(ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        if self.certificate is not None and self.private_key is not None:
            await server.load_certificate(str(self.certificate))
            await server.load_private_key(str(self.private_key))
        service = _RangeCheckedAttributeService(server.iserver.aspace)
        server.iserver.attribute_service = service
        index = await server.register_namespace(NAMESPACE_URI)
        for spec in self.machines.values():
            self._nodes[spec.name] = await self._add_machine(server, index, spec, service)
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Stop listening; clients see the connection drop."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def stop_listening(self) -> None:
        """Close every client connection and the listening socket, keeping the address space
        (setpoints, measurements): the OPC UA endpoint goes down as in a gateway restart or a
        network cut, while the controller keeps its values. :meth:`listen` brings it back."""
        server = self._require_started()
        if server.bserver is not None:
            await server.bserver.stop()
            server.bserver = None

    async def listen(self) -> None:
        """Listen again on the same port after :meth:`stop_listening` (no-op if listening)."""
        server = self._require_started()
        if server.bserver is not None:
            return
        bserver = BinaryServer(server.iserver, self.host, self.port, server.limits)
        bserver.set_policies(server._policies)
        await bserver.start()
        server.bserver = bserver

    def _require_started(self) -> Server:
        if self._server is None:
            raise RuntimeError("start the server first")
        return self._server

    async def __aenter__(self) -> EquipmentServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _add_machine(
        self, server: Server, index: int, spec: MachineSpec, service: _RangeCheckedAttributeService
    ) -> dict[str, Node]:
        machine = await server.nodes.objects.add_object(index, spec.name)
        nodes: dict[str, Node] = {}
        for tag, browse_name in SETPOINT_BROWSE_NAMES.items():
            initial = 1.0 if tag == "speed_factor" else False
            node = await machine.add_variable(
                index, browse_name, initial, SETPOINT_VARIANT_TYPES[tag]
            )
            await node.set_writable()
            nodes[tag] = node
        low, high = spec.speed_range
        eu_range = await nodes["speed_factor"].add_property(
            index, "EURange", ua.Range(Low=low, High=high)
        )
        service.ranges[nodes["speed_factor"].nodeid] = eu_range.nodeid
        version = await machine.add_variable(index, VERSION_TAG, "", ua.VariantType.String)
        await version.set_writable()
        nodes["version"] = version
        for kind, browse_name in MEASURED_TAGS.items():
            if kind == "vibration" and not spec.has_vibration:
                continue
            nodes[kind] = await machine.add_variable(index, browse_name, 0.0, ua.VariantType.Double)
        state = await machine.add_variable(
            index, STATE_TAG, int(MachineState.IDLE), ua.VariantType.Int32
        )
        names = [ua.LocalizedText(member.name) for member in MachineState]
        await state.add_property(index, "EnumStrings", names, ua.VariantType.LocalizedText)
        nodes["state"] = state
        nodes["time_s"] = await machine.add_variable(index, TIME_TAG, 0.0, ua.VariantType.Double)
        for node in nodes.values():
            browse_name = (await node.read_browse_name()).Name
            if browse_name in _UNITS:
                units = _engineering_units(*_UNITS[browse_name])
                await node.add_property(index, "EngineeringUnits", units)
        return nodes

    # -- equipment side ---------------------------------------------------------------
    def _machine_nodes(self, machine: str) -> dict[str, Node]:
        self._require_started()
        if machine not in self._nodes:
            raise KeyError(f"unknown machine {machine!r}; the server has {sorted(self._nodes)}")
        return self._nodes[machine]

    async def setpoints(self, machine: str) -> dict[str, Any]:
        """The setpoints written to ``machine`` now: speed_factor (float), standby,
        maintenance (bool), version (str)."""
        nodes = self._machine_nodes(machine)
        return {tag: await nodes[tag].read_value() for tag in (*SETPOINT_BROWSE_NAMES, "version")}

    async def publish(self, sample: Mapping[str, float]) -> None:
        """Set the measured tags from one plant sample (:meth:`envs.plant.Plant.measure`
        keys ``<machine>.<signal>``, ``time_s``); a NaN (dropped) value gets the status
        :data:`DROPPED_SAMPLE`; machines absent from the sample keep their values."""
        for name, nodes in self._nodes.items():
            if f"{name}.state" not in sample:
                continue
            for kind in MEASURED_TAGS:
                key = f"{name}.{kind}"
                if kind not in nodes or key not in sample:
                    continue
                value = float(sample[key])
                if math.isnan(value):
                    await nodes[kind].write_attribute(
                        ua.AttributeIds.Value,
                        ua.DataValue(StatusCode=ua.StatusCode(ua.UInt32(DROPPED_SAMPLE))),
                    )
                else:
                    await nodes[kind].write_value(value, ua.VariantType.Double)
            await nodes["state"].write_value(int(sample[f"{name}.state"]), ua.VariantType.Int32)
            await nodes["time_s"].write_value(float(sample["time_s"]), ua.VariantType.Double)

    async def apply_to(self, plant: Plant) -> dict[str, dict[str, Any]]:
        """Pass the written setpoints to ``plant.apply`` (in ``plant.machine_names`` order) and
        clear the one-shot maintenance requests; returns what was applied per machine."""
        applied = {name: await self.setpoints(name) for name in plant.machine_names}
        plant.apply(
            speed_factors=np.array([applied[n]["speed_factor"] for n in plant.machine_names]),
            standby=np.array([applied[n]["standby"] for n in plant.machine_names], dtype=bool),
            maintenance=np.array(
                [applied[n]["maintenance"] for n in plant.machine_names], dtype=bool
            ),
        )
        for name in plant.machine_names:
            if applied[name]["maintenance"]:
                await self._nodes[name]["maintenance"].write_value(False, ua.VariantType.Boolean)
        return applied

    async def step(self, plant: Plant) -> tuple[list[IntervalRecord], dict[str, int]]:
        """One decision interval: apply the written setpoints, advance the plant (in a worker
        thread, so the server keeps answering) and publish its last sample."""
        await self.apply_to(plant)
        records, events = await asyncio.to_thread(plant.advance)
        await self.publish(plant.measure())
        return records, events
