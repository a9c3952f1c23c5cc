"""The bridge's OPC UA adapter (asyncua client): write setpoints, confirm them, read measurements.

The address space is :mod:`edge_bridge.opcua_server`'s (namespace
:data:`~edge_bridge.opcua_server.NAMESPACE_URI`, one object per machine under ``Objects``);
nodes are resolved by browse name after every (re)connect, never by numeric node id.

:meth:`OpcUaAdapter.write_setpoints` writes a machine's setpoints in **one** Write service
call, each as the node's variant type (``SpeedFactor`` Double, ``Standby`` and
``MaintenanceRequest`` Boolean, ``SetpointVersion`` String); the server's per-node status codes
are the acknowledgement: a Good write is then read back (one Read call) and confirmed within
``tolerance``; a Bad one is reported as rejected with the status code's name and description
(``BadOutOfRange``, ``BadTypeMismatch``, ``BadUserAccessDenied`` ...) and changed nothing.

Retry policy (:class:`RetryPolicy`): every call first makes sure the session is up; a lost or
never-made connection is (re)made with exponential backoff (``attempts`` connects, waiting
``first_delay_s`` × ``factor``\\ :sup:`k`, at most ``max_delay_s``, between them), then
:class:`OpcUaConnectionError`. Authentication failures are not retried. A *read* that fails
because the connection dropped mid-call is retried once on the new session; a *write* is not:
its outcome is unknown (the request may have reached the equipment), so it raises
:class:`OpcUaConnectionError` and the caller (the command ledger) decides, after reading back.

:class:`SyncOpcUaAdapter` offers the same calls to code that is not async (a private event loop
in a thread, :class:`BackgroundLoop`).
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState

from edge_bridge.opcua_server import (
    MEASURED_TAGS,
    NAMESPACE_URI,
    SETPOINT_BROWSE_NAMES,
    SETPOINT_VARIANT_TYPES,
    STATE_TAG,
    TIME_TAG,
    VERSION_TAG,
    Credentials,
)

__all__ = [
    "BackgroundLoop",
    "OpcUaAdapter",
    "OpcUaAuthError",
    "OpcUaConnectionError",
    "OpcUaError",
    "RetryPolicy",
    "SyncOpcUaAdapter",
    "TagResult",
    "UnknownMachineError",
    "WriteResult",
]

_T = TypeVar("_T")
_BROWSE_TO_TAG = {
    **{name: tag for tag, name in SETPOINT_BROWSE_NAMES.items()},
    **{name: kind for kind, name in MEASURED_TAGS.items()},
    STATE_TAG: "state",
    VERSION_TAG: "version",
    TIME_TAG: "time_s",
}
_WRITE_TYPES = {**SETPOINT_VARIANT_TYPES, "version": ua.VariantType.String}
_CONNECTION_ERRORS = (OSError, asyncio.TimeoutError, ConnectionError, ua.UaError)
_LOST_SESSION = (  # status codes that mean "the session is gone", not "the request was refused"
    ua.StatusCodes.BadConnectionClosed,
    ua.StatusCodes.BadSecureChannelClosed,
    ua.StatusCodes.BadSessionIdInvalid,
    ua.StatusCodes.BadSessionClosed,
    ua.StatusCodes.BadServerNotConnected,
    ua.StatusCodes.BadCommunicationError,
    ua.StatusCodes.BadTimeout,
)
_AUTH_FAILURES = (ua.StatusCodes.BadUserAccessDenied, ua.StatusCodes.BadIdentityTokenRejected,
                  ua.StatusCodes.BadIdentityTokenInvalid)  # fmt: skip


class OpcUaError(RuntimeError):
    """An OPC UA operation failed (the message says what and how to fix it)."""


class OpcUaConnectionError(OpcUaError):
    """No session to the server (after the retry policy), or it dropped during a write."""


class OpcUaAuthError(OpcUaError):
    """The server refused the identity (wrong username/password, anonymous not allowed)."""


class UnknownMachineError(OpcUaError, KeyError):
    """The server has no machine object of that name."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class RetryPolicy:
    """How the adapter (re)connects: ``attempts`` tries, exponential backoff between them."""

    attempts: int = 6
    first_delay_s: float = 0.25
    factor: float = 2.0
    max_delay_s: float = 4.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay_s < 0 or self.factor < 1 or self.max_delay_s < 0:
            raise ValueError("RetryPolicy needs attempts >= 1, delays >= 0 and factor >= 1")

    def delays(self) -> Iterator[float]:
        """The waits (s) between consecutive attempts (``attempts - 1`` of them)."""
        delay = self.first_delay_s
        for _ in range(self.attempts - 1):
            yield min(delay, self.max_delay_s)
            delay *= self.factor


@dataclass(frozen=True)
class TagResult:
    """One tag of a write: ``outcome`` ``ok`` (written Good, read back within tolerance),
    ``rejected`` (the server's Bad status; nothing changed) or ``unconfirmed`` (written Good but
    the read-back differs). ``code``/``description``: the write's status code name and text."""

    tag: str
    requested: Any
    outcome: str
    code: str
    description: str
    readback: Any


@dataclass(frozen=True)
class WriteResult:
    """The outcome of :meth:`OpcUaAdapter.write_setpoints` for one machine."""

    machine: str
    tags: dict[str, TagResult] = field(default_factory=dict)

    @property
    def confirmed(self) -> bool:
        """Every tag written and read back within tolerance."""
        return all(result.outcome == "ok" for result in self.tags.values())

    @property
    def rejected(self) -> dict[str, str]:
        """Rejected tags → status code name."""
        return {t: r.code for t, r in self.tags.items() if r.outcome == "rejected"}

    @property
    def readback(self) -> dict[str, Any]:
        """Each tag's value read back after the write."""
        return {tag: result.readback for tag, result in self.tags.items()}


def _variant(tag: str, value: Any) -> ua.Variant:
    """The setpoint ``value`` as its tag's variant; wrong Python types raise ValueError."""
    if tag not in _WRITE_TYPES:
        raise ValueError(f"unknown setpoint tag {tag!r}; expected {sorted(_WRITE_TYPES)}")
    kind = _WRITE_TYPES[tag]
    if kind == ua.VariantType.Double:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{tag} must be a number, got {value!r}")
        return ua.Variant(float(value), kind)
    if kind == ua.VariantType.Boolean:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{tag} must be a bool, got {value!r}")
        return ua.Variant(bool(value), kind)
    if not isinstance(value, str):
        raise ValueError(f"{tag} must be a string, got {value!r}")
    return ua.Variant(value, kind)


def _value_of(data: ua.DataValue) -> Any:
    """A read DataValue's Python value; None for a Bad status (a dropped sample) or no value."""
    bad = data.StatusCode is not None and not data.StatusCode.is_good()
    if bad or data.Value is None or data.Value.Value is None:
        return None
    return data.Value.Value


class OpcUaAdapter:
    """The bridge side of OPC UA for one server (``url``). ``credentials=None``: anonymous.

    ``connect_timeout_s`` bounds one connect attempt, ``request_timeout_s`` each request;
    ``tolerance`` is the read-back tolerance of ``speed_factor`` (absolute)."""

    def __init__(
        self,
        url: str,
        *,
        credentials: Credentials | None = None,
        namespace_uri: str = NAMESPACE_URI,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 4.0,
        retry: RetryPolicy | None = None,
        tolerance: float = 1e-9,
    ) -> None:
        self.url = url
        self.credentials = credentials
        self.namespace_uri = namespace_uri
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.retry = retry or RetryPolicy()
        self.tolerance = tolerance
        self.reconnects = 0  # sessions made after the first one
        self._client: Client | None = None
        self._namespace = -1
        self._nodes: dict[str, dict[str, ua.NodeId]] = {}
        self._sessions = 0

    # -- connection -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        client = self._client
        return client is not None and client.uaclient.state is UaClientState.CONNECTED

    async def connect(self) -> None:
        """Make sure a session is up (see the module's retry policy)."""
        if self.connected:
            return
        await self._drop_client()
        last: BaseException | None = None
        delays = self.retry.delays()
        for attempt in range(self.retry.attempts):
            try:
                await self._open()
                return
            except OpcUaError:
                raise
            except _CONNECTION_ERRORS as exc:
                last = exc
                await self._drop_client()
            if attempt + 1 < self.retry.attempts:
                await asyncio.sleep(next(delays))
        raise OpcUaConnectionError(
            f"could not connect to {self.url} in {self.retry.attempts} attempts "
            f"(last error: {last!r}); is the equipment server up and the URL right?"
        )

    async def _open(self) -> None:
        client = Client(self.url, timeout=self.request_timeout_s)
        if self.credentials is not None:
            client.set_user(self.credentials.username)
            client.set_password(self.credentials.password)
        self._client = client
        try:
            await asyncio.wait_for(client.connect(), self.connect_timeout_s)
        except ua.UaStatusCodeError as exc:
            if exc.code in _AUTH_FAILURES:
                await self._drop_client()
                who = "anonymous" if self.credentials is None else self.credentials.username
                raise OpcUaAuthError(
                    f"{self.url} refused the identity {who!r} ({type(exc).__name__}); "
                    "check the username and password"
                ) from exc
            raise
        namespaces = await client.get_namespace_array()
        if self.namespace_uri not in namespaces:
            await self._drop_client()
            raise OpcUaError(
                f"{self.url} has no namespace {self.namespace_uri!r} (it has {namespaces}); "
                "is this an equipment server?"
            )
        self._namespace = namespaces.index(self.namespace_uri)
        self._nodes = {}
        self._sessions += 1
        self.reconnects = self._sessions - 1

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        self._nodes = {}
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), self.request_timeout_s)
        except Exception:
            client.disconnect_socket()  # the server is gone; just let go of the socket

    async def close(self) -> None:
        """End the session (idempotent)."""
        await self._drop_client()

    async def __aenter__(self) -> OpcUaAdapter:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, operation: Callable[[], Awaitable[_T]], *, idempotent: bool) -> _T:
        await self.connect()
        try:
            return await operation()
        except OpcUaError:
            raise
        except _CONNECTION_ERRORS as exc:
            if isinstance(exc, ua.UaStatusCodeError) and exc.code not in _LOST_SESSION:
                raise OpcUaError(f"{self.url} refused the request: {exc}") from exc
            await self._drop_client()
            if not idempotent:
                raise OpcUaConnectionError(
                    f"the connection to {self.url} dropped during a write; its outcome is "
                    "unknown: read the setpoints back before retrying"
                ) from exc
        await self.connect()
        return await operation()

    # -- address space ----------------------------------------------------------------
    async def machines(self) -> list[str]:
        """The machines the server exposes (browse names of its objects in our namespace)."""
        return await self._call(self._browse_machines, idempotent=True)

    async def _browse_machines(self) -> list[str]:
        assert self._client is not None
        references = await self._client.nodes.objects.get_references(
            refs=ua.ObjectIds.HierarchicalReferences,
            direction=ua.BrowseDirection.Forward,
            nodeclassmask=ua.NodeClass.Object,
        )
        return sorted(
            ref.BrowseName.Name
            for ref in references
            if ref.BrowseName.NamespaceIndex == self._namespace
        )

    async def _resolve(self, machine: str) -> dict[str, ua.NodeId]:
        if machine in self._nodes:
            return self._nodes[machine]
        assert self._client is not None
        try:
            node = await self._client.nodes.objects.get_child(f"{self._namespace}:{machine}")
        except (ua.uaerrors.BadNoMatch, ua.uaerrors.BadNodeIdUnknown):
            known = await self._browse_machines()
            raise UnknownMachineError(
                f"unknown machine {machine!r} on {self.url}; it has {known}"
            ) from None
        references = await node.get_references(
            refs=ua.ObjectIds.HierarchicalReferences,
            direction=ua.BrowseDirection.Forward,
            nodeclassmask=ua.NodeClass.Variable,
        )
        tags = {
            # browse answers ExpandedNodeIds; Read and Write take plain NodeIds
            _BROWSE_TO_TAG[ref.BrowseName.Name]: ua.NodeId(
                ref.NodeId.Identifier, ref.NodeId.NamespaceIndex
            )
            for ref in references
            if ref.BrowseName.NamespaceIndex == self._namespace
            and ref.BrowseName.Name in _BROWSE_TO_TAG
        }
        missing = [t for t in (*SETPOINT_BROWSE_NAMES, "state") if t not in tags]
        if missing:
            raise OpcUaError(f"machine {machine!r} on {self.url} lacks the tags {missing}")
        self._nodes[machine] = tags
        return tags

    async def _read(self, machine: str, tags: list[str]) -> dict[str, Any]:
        assert self._client is not None
        nodes = await self._resolve(machine)
        present = [tag for tag in tags if tag in nodes]
        values = await self._client.uaclient.read_attributes(
            [nodes[tag] for tag in present], ua.AttributeIds.Value
        )
        return {tag: _value_of(value) for tag, value in zip(present, values, strict=True)}

    # -- the service ------------------------------------------------------------------
    async def read_setpoints(self, machine: str) -> dict[str, Any]:
        """The setpoints in force: speed_factor, standby, maintenance, version."""
        tags = [*SETPOINT_BROWSE_NAMES, "version"]
        return await self._call(lambda: self._read(machine, tags), idempotent=True)

    async def read_measurements(self, machine: str) -> dict[str, Any]:
        """The last sample: ``time_s`` (plant s), temperature (degC), wear (1), power (kW),
        vibration (mm/s, mills only), ``state`` (MachineState code, int); a dropped sample
        reads NaN."""
        tags = ["time_s", *MEASURED_TAGS, "state"]
        values = await self._call(lambda: self._read(machine, tags), idempotent=True)
        for kind in ("time_s", *MEASURED_TAGS):
            if kind in values and values[kind] is None:
                values[kind] = math.nan
        return values

    async def write_setpoints(
        self, machine: str, setpoints: Mapping[str, Any], *, version: str | None = None
    ) -> WriteResult:
        """Write ``setpoints`` (any of speed_factor, standby, maintenance) and, if given, the
        ``version`` string in one Write call; read back and confirm. A wrong tag or Python type
        raises ValueError before anything is sent."""
        variants = {tag: _variant(tag, value) for tag, value in setpoints.items()}
        if version is not None:
            variants["version"] = _variant("version", version)
        return await self.write_variants(machine, variants)

    async def write_variants(self, machine: str, variants: Mapping[str, ua.Variant]) -> WriteResult:
        """Write the given variants as they are (the low level of :meth:`write_setpoints`;
        tests use it to send a wrong variant type) and confirm them by read-back."""
        if not variants:
            raise ValueError("nothing to write: give at least one setpoint")

        async def operation() -> list[ua.StatusCode]:
            assert self._client is not None
            nodes = await self._resolve(machine)
            unknown = sorted(set(variants) - set(nodes))
            if unknown:
                raise ValueError(f"machine {machine!r} has no tags {unknown}")
            return await self._client.uaclient.write_attributes(
                [nodes[tag] for tag in variants],
                [ua.DataValue(variant) for variant in variants.values()],
                ua.AttributeIds.Value,
            )

        statuses = await self._call(operation, idempotent=False)
        readback = await self._call(lambda: self._read(machine, list(variants)), idempotent=True)
        results = {}
        for (tag, variant), status in zip(variants.items(), statuses, strict=True):
            value = readback.get(tag)
            if not status.is_good():
                outcome = "rejected"
            elif self._matches(variant.Value, value):
                outcome = "ok"
            else:
                outcome = "unconfirmed"
            results[tag] = TagResult(tag, variant.Value, outcome, status.name, status.doc, value)
        return WriteResult(machine, results)

    def _matches(self, requested: Any, readback: Any) -> bool:
        if isinstance(requested, float) and isinstance(readback, float):
            return abs(requested - readback) <= self.tolerance
        return bool(requested == readback and type(requested) is type(readback))


class BackgroundLoop:
    """An asyncio event loop in a daemon thread: :meth:`run` a coroutine on it from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T], timeout_s: float | None = None) -> _T:
        """Run ``coroutine`` on the loop and wait for its result (re-raising its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout_s)

    def close(self) -> None:
        """Stop the loop and its thread (idempotent)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5.0)
        self.loop.close()


class SyncOpcUaAdapter:
    """:class:`OpcUaAdapter` for callers that are not async (same arguments and calls)."""

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = BackgroundLoop()
        self.adapter = OpcUaAdapter(url, **options)

    def connect(self) -> None:
        self._loop.run(self.adapter.connect())

    def machines(self) -> list[str]:
        return self._loop.run(self.adapter.machines())

    def read_setpoints(self, machine: str) -> dict[str, Any]:
        return self._loop.run(self.adapter.read_setpoints(machine))

    def read_measurements(self, machine: str) -> dict[str, Any]:
        return self._loop.run(self.adapter.read_measurements(machine))

    def write_setpoints(
        self, machine: str, setpoints: Mapping[str, Any], *, version: str | None = None
    ) -> WriteResult:
        return self._loop.run(self.adapter.write_setpoints(machine, setpoints, version=version))

    def close(self) -> None:
        """End the session and stop the loop thread."""
        try:
            self._loop.run(self.adapter.close(), timeout_s=10.0)
        finally:
            self._loop.close()

    def __enter__(self) -> SyncOpcUaAdapter:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
