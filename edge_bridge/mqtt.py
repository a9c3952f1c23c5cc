"""A small MQTT 5 client for the edge bridge over paho-mqtt 2 (``CallbackAPIVersion.VERSION2``).

It adds to paho what every bridge/equipment/operator client needs:

- **delivery rules**: ``publish(topic, message)`` takes a schema object, finds its kind from the
  topic and applies QoS, retain and MQTT 5 message expiry from ``edge_bridge.topics.DELIVERY``
  (a ``Command`` expires with its ``expires_at``);
- **validated receipt**: ``subscribe(filter, handler)``; handlers get decoded, validated schema
  objects; an invalid message is counted in ``rejected`` (key ``"<kind>:<code>"``) and given to
  ``on_invalid``, never to a handler;
- **persistent sessions**: ``session_expiry_s > 0`` connects with ``clean_start=False`` and that
  MQTT 5 session expiry interval, so the broker queues QoS 1 messages for the client while it is
  away (and keeps them across a broker restart with persistence). Every filter is subscribed
  again on each connect; handlers are looked up by topic, so messages the broker delivers from
  the session before the new SUBACK still reach them (register handlers before ``start``);
- **reconnect with exponential backoff**: paho's own (``reconnect_delay_set``): after a lost
  connection or a refused attempt it waits ``reconnect_min_s``, doubling up to
  ``reconnect_max_s``, reset after a successful CONNACK. It retries forever until ``stop``;
- **clean stop**: ``stop`` first waits (bounded) until the broker has acknowledged every QoS > 0
  publish, then sends DISCONNECT. paho closes the socket right after writing DISCONNECT; PUBACKs
  still unread in the socket then turn the close into a TCP reset, the broker loses the
  DISCONNECT ("disconnected due to out of memory" in Mosquitto's log) and publishes the will;
- TLS (CA file, optional client certificate), username/password, last will.

**Threads**: paho runs the network loop in its own thread (``loop_start``); handlers,
``on_invalid`` and the connection callbacks run on that thread, one at a time, in arrival order.
Keep them short (hand work to a queue) and do not block: while a handler runs no other message
is read or acknowledged. An exception in a handler is logged and counted in
``handler_errors``; the loop goes on.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_bridge.schema import MESSAGE_TYPES, Command, Message, SchemaError, decode
from edge_bridge.topics import DELIVERY, parse_topic

__all__ = ["ConnectionSettings", "Handler", "InvalidHandler", "MqttClient", "TlsSettings"]

logger = logging.getLogger(__name__)

Handler = Callable[[str, Message], None]
"""``handler(topic, message)``: a validated message received on ``topic``."""
InvalidHandler = Callable[[str, bytes, SchemaError], None]
"""``on_invalid(topic, payload, error)``: a message that failed validation."""


@dataclass(frozen=True)
class TlsSettings:
    """TLS to the broker: the CA certificate that signed the broker's certificate, and
    optionally this client's certificate and key (for brokers with require_certificate)."""

    ca_file: str | Path
    cert_file: str | Path | None = None
    key_file: str | Path | None = None


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and how to connect. ``session_expiry_s``: 0 = a clean session that ends with the
    connection; > 0 = a persistent session kept that many seconds after a disconnect (use it
    wherever a message must survive a disconnect: equipment for commands, the bridge for acks
    and KPIs). ``keepalive_s``: the broker declares the client dead (and publishes its will)
    after 1.5 × this without traffic. Reconnect waits from ``reconnect_min_s`` doubling to
    ``reconnect_max_s`` seconds."""

    host: str
    port: int
    client_id: str
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    session_expiry_s: int = 0
    keepalive_s: int = 10
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 10.0


class MqttClient:
    """One MQTT 5 connection with the edge bridge's conventions (see the module docstring).

    ``will``: (topic, message) the broker publishes if this client disappears without a clean
    ``stop`` (node death, bridge state offline), with its kind's QoS and retain flag."""

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        will: tuple[str, Message] | None = None,
        on_invalid: InvalidHandler | None = None,
    ) -> None:
        self.settings = settings
        self.on_invalid = on_invalid
        self.rejected: Counter[str] = Counter()
        """Invalid messages received, by ``"<kind>:<code>"`` (edge_bridge.schema.SchemaError)."""
        self.publish_refused: Counter[str] = Counter()
        """QoS 1 publishes the broker refused, by reason (e.g. 'Not authorized' from the ACL)."""
        self.handler_errors = 0
        self.connects = 0
        """Successful connections so far (a reconnect adds one)."""
        self.session_present = False
        """Whether the broker resumed a stored session at the last connect."""
        self.last_refusal: str | None = None
        """The reason of the last refused connection attempt (e.g. 'Not authorized')."""
        self.subscribe_refused: Counter[str] = Counter()
        """Subscriptions the broker refused at connect, by filter (the ACL's read rules)."""
        self._handlers: dict[str, tuple[Handler, int]] = {}
        self._subscribe_mid: int | None = None
        self._subscribed_filters: list[str] = []
        self._unacknowledged: dict[int, paho.MQTTMessageInfo] = {}
        self._acknowledged = threading.Condition()
        self._connected = threading.Event()
        self._refused = threading.Event()
        self._started = False
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=paho.MQTTv5,
            reconnect_on_failure=True,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls is not None:
            tls = settings.tls
            client.tls_set(
                ca_certs=str(tls.ca_file),
                certfile=None if tls.cert_file is None else str(tls.cert_file),
                keyfile=None if tls.key_file is None else str(tls.key_file),
            )
        if will is not None:
            topic, message = will
            rule = DELIVERY[self._kind_of(topic, message)]
            client.will_set(topic, message.to_payload(), qos=rule.qos, retain=rule.retain)
        client.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)  # type: ignore[arg-type]
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        self._client = client

    # --- connection ----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the client holds an accepted connection now, with the subscriptions of the
        handlers registered before the connect acknowledged by the broker."""
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background and keep reconnecting (returns at once)."""
        if self._started:
            return
        settings = self.settings
        properties = Properties(PacketTypes.CONNECT)
        if settings.session_expiry_s > 0:
            properties.SessionExpiryInterval = settings.session_expiry_s
        self._client.connect_async(
            settings.host,
            settings.port,
            keepalive=settings.keepalive_s,
            clean_start=settings.session_expiry_s == 0,
            properties=properties,
        )
        self._client.loop_start()
        self._started = True

    def wait_connected(self, timeout_s: float) -> bool:
        """Whether the client is connected within ``timeout_s`` seconds."""
        return self._connected.wait(timeout_s)

    def connect(self, timeout_s: float = 10.0) -> MqttClient:
        """``start`` and wait for the connection; ConnectionRefusedError (with the broker's
        reason, e.g. a wrong password) or TimeoutError otherwise, leaving the client stopped."""
        self._refused.clear()
        self.start()
        deadline = time.monotonic() + timeout_s
        while not self._connected.wait(0.02):
            if self._refused.is_set():
                self.stop()
                raise ConnectionRefusedError(
                    f"{self.settings.host}:{self.settings.port} refused client "
                    f"{self.settings.client_id!r} (user {self.settings.username!r}): "
                    f"{self.last_refusal}; check the username/password and the broker's ACL"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"no connection to {self.settings.host}:{self.settings.port} within "
                    f"{timeout_s} s; is the broker running (TLS port with TLS settings)?"
                )
        return self

    @property
    def unacknowledged(self) -> int:
        """QoS > 0 publishes the broker has not acknowledged yet (queued ones included)."""
        with self._acknowledged:
            return len(self._unacknowledged)

    def wait_acknowledged(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds, while connected, until the broker has acknowledged
        every QoS > 0 publish; whether none is left unacknowledged. Returns at once when not
        connected (queued messages go out only after a reconnect)."""
        deadline = time.monotonic() + timeout_s
        with self._acknowledged:
            while self._unacknowledged and self._connected.is_set():
                self._forget_published()
                left = deadline - time.monotonic()
                if not self._unacknowledged or left <= 0:
                    break
                self._acknowledged.wait(min(left, 0.05))
            return not self._unacknowledged

    def _forget_published(self) -> None:
        """Drop entries whose PUBACK came before ``publish`` recorded them (caller holds the
        lock): ``_on_publish`` found nothing to remove then."""
        for mid, info in list(self._unacknowledged.items()):
            try:
                published = info.is_published()
            except (RuntimeError, ValueError):  # queued while disconnected: rc says NO_CONN
                published = False
            if published:
                del self._unacknowledged[mid]

    def stop(self, drain_timeout_s: float = 5.0) -> None:
        """Disconnect cleanly (the broker does NOT publish the will) and stop the loop. First
        waits up to ``drain_timeout_s`` seconds (while connected) until the broker acknowledged
        the outstanding QoS > 0 publishes (``wait_acknowledged``); those still unacknowledged
        then are logged and, with a persistent session, resent by a later connection of the
        same client id."""
        if self._started:
            if not self.wait_acknowledged(drain_timeout_s) and self._connected.is_set():
                logger.warning(
                    "%s: %d publishes not acknowledged within %.1f s; disconnecting anyway",
                    self.settings.client_id,
                    self.unacknowledged,
                    drain_timeout_s,
                )
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False
        self._connected.clear()
        with self._acknowledged:
            self._unacknowledged.clear()

    def abort(self) -> None:
        """Drop the connection without a DISCONNECT packet, as a crash or a pulled cable does:
        the broker publishes the will. The client is dead afterwards (for tests and demos)."""
        sock = self._client.socket()
        self._client.loop_stop()  # the loop thread is gone: nothing reconnects
        if isinstance(sock, socket.socket):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        self._started = False
        self._connected.clear()

    def _on_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.last_refusal = str(reason)
            self._refused.set()
            logger.warning("%s: connection refused: %s", self.settings.client_id, reason)
            return
        self.connects += 1
        self.session_present = bool(flags.session_present)
        if not self._handlers:
            self._connected.set()
            return
        # `connected` is set once the SUBACK is in: a caller that publishes after
        # wait_connected() can rely on the subscriptions being in place at the broker
        filters = list(self._handlers.items())
        self._subscribed_filters = [f for f, _ in filters]
        _result, self._subscribe_mid = client.subscribe(
            [(f, SubscribeOptions(qos=qos)) for f, (_h, qos) in filters]
        )

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for topic_filter, reason in zip(self._subscribed_filters, reasons, strict=False):
            if reason.is_failure:
                self.subscribe_refused[topic_filter] += 1
                logger.warning(
                    "%s: subscription %s refused: %s", self.settings.client_id, topic_filter, reason
                )
        if mid == self._subscribe_mid:
            self._connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._connected.clear()
        if reason.is_failure:
            logger.info("%s: disconnected: %s", self.settings.client_id, reason)

    # --- publish -------------------------------------------------------------------------

    @staticmethod
    def _kind_of(topic: str, message: Message) -> str:
        kind = parse_topic(topic).kind
        if not isinstance(message, MESSAGE_TYPES[kind]):
            raise TypeError(
                f"{type(message).__name__} cannot be published on {topic!r}: a {kind} topic "
                f"takes {MESSAGE_TYPES[kind].__name__}"
            )
        return kind

    def publish(
        self, topic: str, message: Message, *, expiry_s: int | None = None
    ) -> paho.MQTTMessageInfo:
        """Publish ``message`` on ``topic`` with its kind's QoS and retain flag and an MQTT 5
        message expiry (``expiry_s`` overrides the table; a Command gets its remaining life).
        Not connected: QoS 1 messages wait in paho's queue and go out after the reconnect.
        ValueError for a command that has already expired (it is not sent)."""
        rule = DELIVERY[self._kind_of(topic, message)]
        if expiry_s is None:
            if isinstance(message, Command):
                expiry_s = message.remaining_s(time.time())
                if expiry_s == 0:
                    raise ValueError(
                        f"command {message.command_id} expired at {message.expires_at}; "
                        "not sent (issue a new one)"
                    )
            elif isinstance(rule.expiry_s, int):
                expiry_s = rule.expiry_s
        properties = Properties(PacketTypes.PUBLISH)
        if expiry_s is not None:
            properties.MessageExpiryInterval = max(1, int(expiry_s))
        info = self._client.publish(
            topic, message.to_payload(), qos=rule.qos, retain=rule.retain, properties=properties
        )
        return self._track(info, rule.qos)

    def publish_raw(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False
    ) -> paho.MQTTMessageInfo:
        """Publish bytes unchecked (tests of receivers and of the broker's ACL and limits)."""
        return self._track(self._client.publish(topic, payload, qos=qos, retain=retain), qos)

    def _track(self, info: paho.MQTTMessageInfo, qos: int) -> paho.MQTTMessageInfo:
        """Remember a QoS > 0 publish paho accepted (sent or queued) until its PUBACK."""
        queued = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)
        if qos > 0 and info.rc in queued:
            with self._acknowledged:
                self._unacknowledged[info.mid] = info
        return info

    def _on_publish(
        self,
        client: paho.Client,
        userdata: object,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        with self._acknowledged:  # a refused publish is answered too: nothing to wait for
            self._unacknowledged.pop(mid, None)
            if not self._unacknowledged:
                self._acknowledged.notify_all()
        if reason.is_failure:
            self.publish_refused[str(reason)] += 1
            logger.warning("%s: publish %d refused: %s", self.settings.client_id, mid, reason)

    # --- subscribe -----------------------------------------------------------------------

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Deliver validated messages on ``topic_filter`` to ``handler`` (on paho's thread).
        Registered before ``start``, it is subscribed at every connect."""
        self._handlers[topic_filter] = (handler, qos)
        if self.connected:
            result, _mid = self._client.subscribe(topic_filter, options=SubscribeOptions(qos=qos))
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                logger.warning("subscribe %s failed: %s", topic_filter, result)

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            message = decode(msg.topic, msg.payload)
        except SchemaError as error:
            self.rejected[f"{error.kind}:{error.code}"] += 1
            logger.info("rejected message on %s: %s", msg.topic, error)
            if self.on_invalid is not None:
                self._guarded(self.on_invalid, msg.topic, msg.payload, error)
            return
        for topic_filter, (handler, _qos) in list(self._handlers.items()):
            if paho.topic_matches_sub(topic_filter, msg.topic):
                self._guarded(handler, msg.topic, message)

    def _guarded(self, callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            self.handler_errors += 1
            logger.exception("%s: handler failed", self.settings.client_id)
